// See gateway_routes.hpp.
#include "gateway_routes.hpp"

#include <algorithm>
#include <boost/beast/websocket.hpp>

#include "host_api.hpp"
#include "host_json.hpp"
#include "status_server.hpp"
#include "websocket_session.hpp"

namespace flashsale::gateway {

namespace http = boost::beast::http;

void GatewayRoutes::route(HttpSession& session, HttpRequest& request) {
  if (boost::beast::websocket::is_upgrade(request)) return upgrade(session, request);
  // Routed by path: a query (a cache-buster, a probe's marker) does not change the resource.
  const std::string_view target = request.target().substr(0, request.target().find('?'));
  const bool reading = request.method() == http::verb::get || request.method() == http::verb::head;
  if (!context_.config.ops_listen.empty() &&
      (target == "/healthz" || target == "/readyz" || target == "/metrics"))
    return session.respond(
        host_json::error(404, "not_found", "health and metrics are on the operations address"));
  if (target == "/healthz") {
    if (!reading) return session.respond(host_json::error(405, "method_not_allowed", "use GET"));
    return session.respond(alive());
  }
  if (target == "/readyz") {
    if (!reading) return session.respond(host_json::error(405, "method_not_allowed", "use GET"));
    if (context_.shutting_down)
      return session.respond(host_json::error(503, "shutting_down", "the server is stopping"));
    return session.respond(context_.health());
  }
  if (target == "/metrics") {
    if (!reading) return session.respond(host_json::error(405, "method_not_allowed", "use GET"));
    return session.respond({200, context_.render_metrics()}, "text/plain; version=0.0.4");
  }
  if (const WebAsset* asset = find_web_asset(target)) {
    if (!reading) return session.respond(host_json::error(405, "method_not_allowed", "use GET"));
    return session.respond_asset(*asset, request);
  }
  if (target == "/drops") {
    if (!reading) return session.respond(host_json::error(405, "method_not_allowed", "use GET"));
    if (auto reply = public_drops(context_, session.respond_later()))
      session.respond(std::move(*reply));
    return;
  }
  if (target.starts_with("/api/")) {
    if (auto reply =
            route_api(request, context_, session.remote_address(), session.respond_later()))
      session.respond(std::move(*reply));
    return;
  }
  session.respond(host_json::error(404, "not_found", "no such page"));
}

void GatewayRoutes::upgrade(HttpSession& session, HttpRequest& request) {
  if (request.target() != "/ws")
    return session.respond(host_json::error(404, "not_found", "WebSocket is at /ws"));
  if (context_.shutting_down)
    return session.respond(host_json::error(503, "shutting_down", "the server is stopping"));
  // A browser names the page that opens the socket: with a list, only those pages may (no other
  // site hotlinks the sale through its viewers' browsers). Apps send no Origin; their token
  // speaks for them (docs/operations.md, "Security").
  const std::vector<std::string>& origins = context_.config.allowed_origins;
  const std::string_view origin = request[http::field::origin];
  if (!origins.empty() && !origin.empty() &&
      std::find(origins.begin(), origins.end(), origin) == origins.end())
    return session.respond(
        host_json::error(403, "forbidden_origin", "pages from this origin may not connect"));
  // Counted here rather than at accept, so the host API stays reachable at capacity.
  if (context_.metrics.connections_open.load(std::memory_order_relaxed) >=
      context_.config.limits.connections_max) {
    context_.metrics.connections_refused.fetch_add(1, std::memory_order_relaxed);
    return session.respond(
        host_json::error(503, "too_many_connections", "the server holds its maximum of viewers"));
  }
  SourceLimits::Slot slot;
  switch (context_.source_limits.admit(session.remote_address(), slot)) {
    case SourceLimits::Verdict::admitted:
      break;
    case SourceLimits::Verdict::too_many_connections:
      context_.metrics.count_limited(Limit::connections_per_source);
      return session.respond(
          host_json::error(429, "rate_limited", "too many connections from your address"));
    case SourceLimits::Verdict::too_fast:
      context_.metrics.count_limited(Limit::accepts_per_source);
      return session.respond(
          host_json::error(429, "rate_limited", "your address is connecting too fast; back off"));
  }
  std::visit(
      [&](auto&& stream) {
        using Stream = std::decay_t<decltype(stream)>;
        std::make_shared<WebsocketSession<Stream>>(std::move(stream), context_, hub_,
                                                   std::move(slot))
            ->start(session.take_request());
      },
      session.take_connection());
}

}  // namespace flashsale::gateway
