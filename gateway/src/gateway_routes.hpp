// GatewayRoutes: what a serving process (role all or gateway) answers over HTTP — the WebSocket
// upgrade at /ws (counted against limits.connections_max and the source's share), the pages,
// GET /drops, the host API under /api/, /healthz and /metrics. One per I/O thread: upgraded
// connections join that thread's hub.
#pragma once

#include "context.hpp"
#include "http_session.hpp"
#include "hub.hpp"

namespace flashsale::gateway {

class GatewayRoutes final : public HttpSession::Routes {
 public:
  GatewayRoutes(ServerContext& context, Hub& hub) : context_(context), hub_(hub) {}
  void route(HttpSession& session, HttpRequest& request) override;

 private:
  void upgrade(HttpSession& session, HttpRequest& request);

  ServerContext& context_;
  Hub& hub_;
};

}  // namespace flashsale::gateway
