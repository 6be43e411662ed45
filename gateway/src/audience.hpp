// How often a drop's viewers hear of stock and the countdown, by how many there are: every
// stock frame and every tick is one send per viewer, so past the limits' budgets
// (limits.stock_deliveries_per_second, limits.tick_deliveries_per_second) they come less
// often. Used where updates are fanned out: the engine thread's ViewerFeed in one process, each
// gateway's PacedFanout in the cluster. Every open connection counts as a viewer.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "flashsale/engine/engine.hpp"
#include "flashsale/gateway/config.hpp"

namespace flashsale::gateway::audience {

inline constexpr engine::TimeMs stock_interval_min_ms = 100;   // 10 stock updates a second
inline constexpr engine::TimeMs tick_interval_min_ms = 1'000;  // a tick a second

inline engine::TimeMs stock_interval_ms(std::uint64_t viewers, const Limits& limits) {
  const double budget_ms =
      static_cast<double>(viewers) * 1000.0 / limits.stock_deliveries_per_second;
  return std::max(stock_interval_min_ms, static_cast<engine::TimeMs>(budget_ms));
}

// Whole seconds: past the budget, ticks come every 2, 3, … seconds.
inline engine::TimeMs tick_interval_ms(std::uint64_t viewers, const Limits& limits) {
  const double seconds =
      std::ceil(static_cast<double>(viewers) / limits.tick_deliveries_per_second);
  return std::max<engine::TimeMs>(1, static_cast<engine::TimeMs>(seconds)) * tick_interval_min_ms;
}

}  // namespace flashsale::gateway::audience
