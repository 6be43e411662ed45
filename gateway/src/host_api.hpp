// The host HTTP API (docs/protocol.md, "Host API"): drops are created, counted down,
// restocked, closed and watched here. Requests are parsed and checked on the I/O thread; what
// touches the engine runs on the engine thread as a HostRequest, and its reply is released once
// durable like every other outcome.
#pragma once

#include <boost/beast/http.hpp>
#include <functional>
#include <optional>

#include "context.hpp"

namespace flashsale::gateway {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;

// An error body: {"error":{"code":"…","message":"…"}}.
HostReply http_error(unsigned status, std::string_view code, std::string_view message);

// Handles one request under /api/. Returns the reply at once, or nullopt when the engine
// thread will call `done` with it later (from its own thread).
// GET /drops, no key: what a viewer may see of every drop, to choose one.
std::optional<HostReply> public_drops(ServerContext& context, std::function<void(HostReply)> done);

// 401 unless the request carries `Authorization: Bearer <host_key>`.
std::optional<HostReply> check_host_key(const HttpRequest& request, const GatewayConfig& config);

std::optional<HostReply> route_api(const HttpRequest& request, ServerContext& context,
                                   std::function<void(HostReply)> done);

}  // namespace flashsale::gateway
