// What every session of the server shares: configuration, the engine thread, the journal's
// status, metrics, and the hub of its own I/O thread. Owned by the Server; sessions hold a
// reference for their whole life, which ends before the Server's.
#pragma once

#include <atomic>

#include "flashsale/gateway/config.hpp"
#include "hub.hpp"
#include "metrics.hpp"
#include "sequencer.hpp"
#include "source_limits.hpp"

namespace flashsale::gateway {

struct ServerContext {
  const GatewayConfig& config;
  Sequencer& sequencer;
  journal::Journal& journal;
  Metrics& metrics;
  SourceLimits& source_limits;
  std::atomic<bool> shutting_down{false};
};

}  // namespace flashsale::gateway
