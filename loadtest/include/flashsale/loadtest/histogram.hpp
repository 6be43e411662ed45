// LatencyHistogram: log-linear buckets in the manner of HdrHistogram — each power of two split
// into 32 linear steps, so any recorded value is reported within 1/32 (3%) of itself, from 1 µs
// to over an hour, in 16 KiB of counters. Recording is O(1) and allocation-free; one histogram
// per thread, merged at the end.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <stdexcept>
#include <utility>
#include <vector>

namespace flashsale::loadtest {

class LatencyHistogram {
 public:
  static constexpr int sub_buckets = 32;
  static constexpr int exponents = 64;

  void record(std::uint64_t micros) {
    counts_[index_of(micros)] += 1;
    total_ += 1;
    if (micros > max_) max_ = micros;
  }
  void merge(const LatencyHistogram& other) {
    for (std::size_t index = 0; index < counts_.size(); ++index)
      counts_[index] += other.counts_[index];
    total_ += other.total_;
    if (other.max_ > max_) max_ = other.max_;
  }
  // The buckets that counted something, as (bucket, count), and a histogram rebuilt from them:
  // how a histogram crosses from a worker process to the one that merges.
  std::vector<std::pair<std::size_t, std::uint64_t>> buckets() const {
    std::vector<std::pair<std::size_t, std::uint64_t>> used;
    for (std::size_t index = 0; index < counts_.size(); ++index)
      if (counts_[index] > 0) used.emplace_back(index, counts_[index]);
    return used;
  }
  static LatencyHistogram from_buckets(
      const std::vector<std::pair<std::size_t, std::uint64_t>>& buckets, std::uint64_t max) {
    LatencyHistogram histogram;
    for (const auto& [index, count] : buckets) {
      if (index >= histogram.counts_.size()) throw std::out_of_range("histogram bucket");
      histogram.counts_[index] += count;
      histogram.total_ += count;
    }
    histogram.max_ = max;
    return histogram;
  }
  std::uint64_t count() const noexcept { return total_; }
  std::uint64_t max() const noexcept { return max_; }

  // The value at `quantile` (0..1), as the upper edge of its bucket; 0 when empty.
  std::uint64_t percentile(double quantile) const {
    if (total_ == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(quantile * static_cast<double>(total_ - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t index = 0; index < counts_.size(); ++index) {
      seen += counts_[index];
      if (seen >= rank) return std::min(upper_edge(index), max_);
    }
    return max_;
  }

 private:
  static std::size_t index_of(std::uint64_t value) {
    if (value < sub_buckets) return static_cast<std::size_t>(value);
    const int exponent = std::bit_width(value) - 1;  // value in [2^e, 2^(e+1))
    const int shift = exponent - 5;                  // keep the top 5 bits below the leading one
    const auto step = static_cast<std::size_t>((value >> shift) & (sub_buckets - 1));
    return static_cast<std::size_t>(exponent - 4) * sub_buckets + step;
  }
  static std::uint64_t upper_edge(std::size_t index) {
    if (index < sub_buckets) return index;
    const int exponent = static_cast<int>(index / sub_buckets) + 4;
    const std::uint64_t step = index % sub_buckets;
    return ((std::uint64_t{sub_buckets} + step + 1) << (exponent - 5)) - 1;
  }

  std::array<std::uint64_t, static_cast<std::size_t>(exponents) * sub_buckets> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace flashsale::loadtest
