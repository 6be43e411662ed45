// Histogram: a Prometheus histogram (`_bucket`, `_sum`, `_count`) of durations or of counts,
// for the latencies an on-call engineer reads during a drop. Any thread may observe: one relaxed
// atomic add to a bucket and one to the sum, no lock and no allocation, so recording stays off
// the order path's cost (docs/benchmarks.md). A scrape reads the counters without stopping
// writers, so a bucket may be one observation ahead of the count: Prometheus tolerates that.
#pragma once

#include <fmt/format.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>

namespace flashsale::gateway {

// Upper bounds in seconds, for what docs/benchmarks.md measured: a drop update reaching its
// I/O threads in tens of µs, an order answered in 1-5 ms at rest and tens of ms in a surge, a
// journal round trip of ~1-3 ms (an fsync), and the seconds a stalled Redis takes.
inline constexpr std::array<double, 16> latency_bounds_s = {
    0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01,
    0.02,    0.05,   0.1,    0.2,    0.5,   1,     2.5,   10};
// A recovery: milliseconds for a fresh journal, ~0.5 s per million orders replayed
// (docs/benchmarks.md), minutes for a journal that was never snapshotted.
inline constexpr std::array<double, 12> recovery_bounds_s = {0.01, 0.05, 0.1, 0.25, 0.5, 1,
                                                             2.5,  5,    10,  30,   60,  300};
// Events in one journal batch: one at rest, hundreds to thousands in a surge (group commit).
inline constexpr std::array<double, 13> batch_events_bounds = {1,   2,   4,   8,    16,   32,   64,
                                                               128, 256, 512, 1024, 4096, 16384};

// `Bounds`: the buckets' upper bounds in the rendered unit; observations are recorded as whole
// amounts, `PerUnit` of them to the unit (µs for seconds, so sums stay whole numbers).
template <const auto& Bounds, std::uint64_t PerUnit>
class BasicHistogram {
 public:
  void record(std::uint64_t amount) noexcept {
    const double value = static_cast<double>(amount) / PerUnit;
    std::size_t bucket = 0;
    while (bucket < Bounds.size() && value > Bounds[bucket]) ++bucket;
    buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(amount, std::memory_order_relaxed);
  }

  // Appends the HELP and TYPE lines of a histogram family.
  static void render_header(std::string& out, std::string_view name, std::string_view help) {
    fmt::format_to(std::back_inserter(out), "# HELP {0} {1}\n# TYPE {0} histogram\n", name, help);
  }
  // Appends one series of the family: `labels` is empty or `key="value",…` without braces.
  void render_series(std::string& out, std::string_view name, std::string_view labels) const {
    const std::string_view comma = labels.empty() ? "" : ",";
    std::uint64_t count = 0;
    for (std::size_t bucket = 0; bucket < Bounds.size(); ++bucket) {
      count += buckets_[bucket].load(std::memory_order_relaxed);
      fmt::format_to(std::back_inserter(out), "{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels,
                     comma, Bounds[bucket], count);
    }
    count += buckets_.back().load(std::memory_order_relaxed);
    const auto braced = labels.empty() ? std::string() : fmt::format("{{{}}}", labels);
    fmt::format_to(std::back_inserter(out),
                   "{0}_bucket{{{1}{2}le=\"+Inf\"}} {3}\n{0}_sum{4} {5}\n{0}_count{4} {3}\n", name,
                   labels, comma, count, braced,
                   static_cast<double>(sum_.load(std::memory_order_relaxed)) / PerUnit);
  }
  // A family of this one series, without labels.
  void render(std::string& out, std::string_view name, std::string_view help) const {
    render_header(out, name, help);
    render_series(out, name, {});
  }

 private:
  // One more than the bounds: the last is +Inf. Each counts its own range; rendering adds up.
  std::array<std::atomic<std::uint64_t>, Bounds.size() + 1> buckets_{};
  std::atomic<std::uint64_t> sum_{0};
};

// Durations, rendered in seconds, counted in µs.
template <const auto& Bounds>
class DurationHistogram : public BasicHistogram<Bounds, 1'000'000> {
 public:
  void observe(std::chrono::steady_clock::duration elapsed) noexcept {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
    this->record(static_cast<std::uint64_t>(us > 0 ? us : 0));
  }
};

using Histogram = DurationHistogram<latency_bounds_s>;
using RecoveryHistogram = DurationHistogram<recovery_bounds_s>;
using CountHistogram = BasicHistogram<batch_events_bounds, 1>;

}  // namespace flashsale::gateway
