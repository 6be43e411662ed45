// Server: the whole `flashsale` process — I/O threads with their hubs, the engine thread, the
// journal — from recovery to a clean stop. With cluster.role = gateway it has no engine and
// forwards to the engines through Redis; with role = engine it has no viewers: it serves the
// shards it holds, and only /healthz and /metrics on cluster.status_listen (docs/scaling.md).
//
// run() recovers the engine from the journal, listens, and serves until SIGINT or SIGTERM;
// then it stops accepting, lets the engine thread finish and release every outcome that became
// durable, closes every WebSocket with 1001 once its queued frames are out, flushes the
// journal and returns 0. Start-up failures (config, bind, a damaged journal) throw.
#pragma once

#include "flashsale/gateway/config.hpp"

namespace flashsale::gateway {

class Server {
 public:
  explicit Server(GatewayConfig config);
  int run();

 private:
  int run_engine();

  GatewayConfig config_;
};

}  // namespace flashsale::gateway
