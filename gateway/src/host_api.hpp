// The host HTTP API (docs/protocol.md, "Host API"): drops are created, counted down,
// restocked, closed and watched here. A request is checked on the I/O thread — the host key
// once, the body against the engine's spec limits — and becomes a typed host command
// (requests.hpp), submitted to the engine thread (or, in a gateway, to the engine that owns the
// drop). Its reply comes back once durable, like every other outcome.
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

// 401 unless the request carries `Authorization: Bearer <host_key>`; 429 without looking
// while `source` has sent too many wrong keys lately (limits.host_key_failures_per_minute).
std::optional<HostReply> check_host_key(const HttpRequest& request, ServerContext& context,
                                        const boost::asio::ip::address& source);

// One route of the host API: its method and path, where "{drop}" stands for a drop's id.
struct ApiRoute {
  boost::beast::http::verb method{};
  std::string_view path;
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
