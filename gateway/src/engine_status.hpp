// An engine's own /healthz and /metrics (`--listen` with --role engine, docs/operations.md):
// which shards it serves, and their journals' states.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flashsale/gateway/config.hpp"
#include "flashsale/journal/journal.hpp"
#include "metrics.hpp"
#include "requests.hpp"

namespace flashsale::gateway {

// What a shard worker reports: whether it serves its shard, and its journal's status then.
struct ShardStatus {
  std::uint32_t shard = 0;
  std::optional<journal::JournalStatus> journal;  // set while serving
};

class StatusServer {
 public:
  // Listens on `listen` (HOST:PORT; throws std::exception if it cannot) and answers GET
  // /healthz with `health()` and GET /metrics with `metrics_text()` (Prometheus text), through
  // the same HttpSession and Listener as a gateway, on a thread of its own until destroyed.
  StatusServer(const std::string& listen, const Limits& limits, Metrics& metrics,
               std::function<HostReply()> health, std::function<std::string()> metrics_text);
  ~StatusServer();
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

 private:
  struct Server;
  std::unique_ptr<Server> server_;
};

// 200 {"status":"ok","role":"engine","id":…,"serving":[{"shard":…,"journal":…,
// "durable_sequence":…},…]}, or 503 naming the first served shard whose journal is not ok.
HostReply engine_health(std::string_view id, const std::vector<ShardStatus>& shards);
// The process's metrics (Prometheus text), and per shard whether it is served and its
// journal's state.
std::string engine_metrics(const Metrics& metrics, const std::vector<ShardStatus>& shards);

}  // namespace flashsale::gateway
