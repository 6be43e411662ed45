// Histogram: a Prometheus histogram of durations (`_bucket`, `_sum`, `_count`), for the
// latencies an on-call engineer reads during a drop. Any thread may observe: one relaxed atomic
// add to a bucket, the sum and the count, no lock and no allocation, so recording stays off the
// order path's cost (docs/benchmarks.md). A scrape reads the counters without stopping writers,
// so a bucket may be one observation ahead of the count: Prometheus tolerates that.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace flashsale::gateway {

// Upper bounds in seconds, for what docs/benchmarks.md measured: a drop update reaching its
// I/O threads in tens of µs, an order answered in 1-5 ms at rest and tens of ms in a surge, a
// journal round trip of ~1-3 ms (an fsync), and the seconds a stalled Redis takes.
inline constexpr std::array<double, 16> latency_bounds_s = {
    0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01,
    0.02,    0.05,   0.1,    0.2,    0.5,   1,     2.5,   10};

class Histogram {
 public:
  void observe(std::chrono::steady_clock::duration elapsed) noexcept {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
    const double seconds = static_cast<double>(us) / 1e6;
    std::size_t bucket = 0;
    while (bucket < latency_bounds_s.size() && seconds > latency_bounds_s[bucket]) ++bucket;
    buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
    sum_us_.fetch_add(static_cast<std::uint64_t>(us > 0 ? us : 0), std::memory_order_relaxed);
  }

  // Appends the histogram in Prometheus' text format.
  void render(std::string& out, std::string_view name, std::string_view help) const;

 private:
  // One more than the bounds: the last is +Inf. Each counts its own range; rendering adds up.
  std::array<std::atomic<std::uint64_t>, latency_bounds_s.size() + 1> buckets_{};
  std::atomic<std::uint64_t> sum_us_{0};
};

}  // namespace flashsale::gateway
