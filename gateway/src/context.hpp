// What every session of the server shares: configuration, the engine thread, the journal's
// status, metrics, and the hub of its own I/O thread. Owned by the Server; sessions hold a
// reference for their whole life, which ends before the Server's.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "flashsale/gateway/config.hpp"
#include "hub.hpp"
#include "metrics.hpp"
#include "sequencer.hpp"
#include "source_limits.hpp"

namespace flashsale::gateway {

class ClusterLink;

// GET /drops answers anyone, so it must not let anyone flood the engine thread: the list is
// read from the engine at most once per `fresh_for`, every caller meanwhile shares the answer.
struct DropListCache {
  static constexpr std::chrono::milliseconds fresh_for{250};
  std::mutex mutex;
  std::string body;  // empty until the first read
  std::chrono::steady_clock::time_point read_at;
  bool reading = false;
  std::vector<std::function<void(HostReply)>> waiting;
};

struct ServerContext {
  const GatewayConfig& config;
  RequestSink& sequencer;
  journal::Journal* journal;  // null in a gateway: the engines hold the journals
  Metrics& metrics;
  SourceLimits& source_limits;
  ClusterLink* cluster = nullptr;  // a gateway's link to the engines
  std::atomic<bool> shutting_down{false};
  DropListCache drop_list{};
};

}  // namespace flashsale::gateway
