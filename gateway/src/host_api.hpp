// The host HTTP API (docs/protocol.md, "Host API"): streams and drops are created, pinned,
// counted down, restocked, closed and watched here, and the operator manages host accounts. A
// request is checked on the I/O thread — the host key once, the body against the engine's spec
// limits — and becomes a typed host command (requests.hpp), submitted to the engine thread (or, in
// a gateway, to the engine that owns the drop). Its reply comes back once durable, like every other
// outcome.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <variant>

#include "context.hpp"
#include "requests.hpp"

namespace flashsale::gateway {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;

// Whom `Authorization: Bearer <key>` names: the operator (auth.admin_key), the configured host
// (auth.host_key), or a host account (HostDirectory). Else 401; 429 without looking while
// `source` has sent too many wrong keys lately (limits.host_key_failures_per_minute). The key
// goes no further than this: what follows knows only the Caller.
std::variant<host::Caller, HostReply> authenticate(const HttpRequest& request,
                                                   ServerContext& context,
                                                   const boost::asio::ip::address& source);

// One route of the host API: its method and path, where one "{drop}", "{stream}" or "{host}"
// stands for an id, and who may call it. Within `host` routes, a host acts only on its own
// streams and drops (host_commands.hpp); the operator on all.
struct ApiRoute {
  enum class Access : std::uint8_t { host, operator_only };
  boost::beast::http::verb method{};
  std::string_view path;
  Access access = Access::host;
};

// Every route route_api serves, in the order it tries them. contracts/openapi.json documents
// each (tests/gateway/contract_test.cpp holds the two to each other).
std::span<const ApiRoute> api_routes();

// Handles one request under /api/. Returns the reply at once, or nullopt when `done` will be
// called with it later, from the engine's side (post it to your own thread).
std::optional<HostReply> route_api(const HttpRequest& request, ServerContext& context,
                                   const boost::asio::ip::address& source,
                                   std::function<void(HostReply)> done);

// GET /drops, no key: what a viewer may see of every drop, to choose one. Shared by every
// caller for DropListCache::fresh_for.
std::optional<HostReply> public_drops(ServerContext& context, std::function<void(HostReply)> done);

}  // namespace flashsale::gateway
