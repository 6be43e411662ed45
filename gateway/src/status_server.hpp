// StatusServer: /healthz, /readyz and /metrics on an address of their own, so that the viewers'
// port need not expose them: an engine's status (`--listen` with --role engine), or a gateway's
// operations address (server.ops_listen). The same HttpSession and Listener as a gateway, with
// their limits, on a thread of its own until destroyed. GET and HEAD only.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "flashsale/gateway/config.hpp"
#include "metrics.hpp"
#include "requests.hpp"

namespace flashsale::gateway {

// Liveness (/healthz): the process runs and answers. Whether it can serve orders is /readyz's.
inline HostReply alive() {
  return {200, R"({"status":"alive"})"};
}

class StatusServer {
 public:
  // Listens on `listen` (HOST:PORT; throws std::exception if it cannot) and answers /healthz
  // with alive(), /readyz with `readiness()` and /metrics with `metrics_text()` (Prometheus
  // text). `what` names it in the log ("engine status", "operations").
  StatusServer(const std::string& what, const std::string& listen, const Limits& limits,
               Metrics& metrics, std::function<HostReply()> readiness,
               std::function<std::string()> metrics_text);
  ~StatusServer();
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

 private:
  struct Server;
  std::unique_ptr<Server> server_;
};

}  // namespace flashsale::gateway
