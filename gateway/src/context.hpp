// What every session of the server shares: configuration, where requests go, metrics, the
// per-source limits, and how to report health. Owned by the Server; sessions hold a reference
// for their whole life, which ends before the Server's.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "flashsale/gateway/config.hpp"
#include "host_directory.hpp"
#include "metrics.hpp"
#include "requests.hpp"
#include "source_limits.hpp"

namespace flashsale::gateway {

// GET /drops answers anyone, so it must not let anyone flood the engine thread: the list is
// read from the engine at most once per `fresh_for`, every caller meanwhile shares the answer.
struct DropListCache {
  static constexpr std::chrono::milliseconds fresh_for{250};
  std::mutex mutex;
  std::string body;  // empty until the first read
  std::chrono::steady_clock::time_point read_at;
  bool reading = false;
  std::vector<std::function<void(HostReply)>> waiting;

  // At shutdown, once no I/O thread runs: the callers still waiting (for a read the engine
  // never released) are let go unanswered. Their connections may end here, so before the
  // io_contexts they belong to are destroyed.
  void abandon_waiting() {
    std::vector<std::function<void(HostReply)>> abandoned;
    std::lock_guard lock(mutex);
    abandoned.swap(waiting);
    reading = false;
  }
};

struct ServerContext {
  const GatewayConfig& config;
  // The engine thread of this process, or (a gateway) the link to the engines.
  RequestSink& requests;
  Metrics& metrics;
  SourceLimits& source_limits;
  HostDirectory& hosts;
  // GET /readyz (can this process serve orders now, and if not why) and GET /metrics: what the
  // process is made of decides what they say.
  std::function<HostReply()> health;
  std::function<std::string()> render_metrics;
  std::atomic<bool> shutting_down{false};
  DropListCache drop_list{};
};

}  // namespace flashsale::gateway
