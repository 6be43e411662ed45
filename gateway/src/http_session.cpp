// See http_session.hpp.
#include "http_session.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/websocket.hpp>

#include "cluster_gateway.hpp"
#include "websocket_session.hpp"

namespace flashsale::gateway {

namespace beast = boost::beast;
namespace http = beast::http;

HttpSession::HttpSession(boost::asio::ip::tcp::socket&& socket, ServerContext& context, Hub& hub)
    : stream_(std::move(socket)), context_(context), hub_(hub) {}

void HttpSession::start() {
  boost::asio::dispatch(stream_.get_executor(),
                        beast::bind_front_handler(&HttpSession::do_read, shared_from_this()));
}

void HttpSession::do_read() {
  parser_.emplace();
  parser_->body_limit(context_.config.limits.http_body_bytes_max);
  parser_->header_limit(16 * 1024);
  stream_.expires_after(first_request_ ? context_.config.limits.handshake_timeout
                                       : context_.config.limits.idle_timeout);
  first_request_ = false;
  http::async_read(stream_, buffer_, *parser_,
                   beast::bind_front_handler(&HttpSession::on_read, shared_from_this()));
}

void HttpSession::on_read(beast::error_code error, std::size_t) {
  if (error == http::error::end_of_stream) {
    stream_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send, error);
    return;
  }
  if (error == http::error::body_limit) {
    keep_alive_ = false;
    return respond(http_error(413, "too_large", "the body is over limits.http_body_bytes_max"));
  }
  if (error) return;  // timeouts, resets, garbage: the connection ends
  HttpRequest& request = parser_->get();
  keep_alive_ = request.keep_alive();
  const std::string_view target = request.target();
  if (beast::websocket::is_upgrade(request)) {
    if (target != "/ws") return respond(http_error(404, "not_found", "WebSocket is at /ws"));
    if (context_.shutting_down)
      return respond(http_error(503, "shutting_down", "the server is stopping"));
    // Counted here rather than at accept, so the host API stays reachable at capacity.
    if (context_.metrics.connections_open.load(std::memory_order_relaxed) >=
        context_.config.limits.connections_max) {
      context_.metrics.connections_refused.fetch_add(1, std::memory_order_relaxed);
      return respond(
          http_error(503, "too_many_connections", "the server holds its maximum of viewers"));
    }
    boost::system::error_code ignored;
    const auto source = stream_.socket().remote_endpoint(ignored).address();
    SourceLimits::Slot slot;
    switch (context_.source_limits.admit(source, slot)) {
      case SourceLimits::Verdict::admitted:
        break;
      case SourceLimits::Verdict::too_many_connections:
        context_.metrics.count_limited(Limit::connections_per_source);
        return respond(http_error(429, "rate_limited", "too many connections from your address"));
      case SourceLimits::Verdict::too_fast:
        context_.metrics.count_limited(Limit::accepts_per_source);
        return respond(
            http_error(429, "rate_limited", "your address is connecting too fast; back off"));
    }
    std::make_shared<WebsocketSession>(stream_.release_socket(), context_, hub_, std::move(slot))
        ->start(parser_->release());
    return;
  }
  if (target == "/healthz") return respond(health());
  if (const WebAsset* asset = find_web_asset(target.substr(0, target.find('?')))) {
    if (request.method() != http::verb::get && request.method() != http::verb::head)
      return respond(http_error(405, "method_not_allowed", "use GET"));
    return respond_asset(*asset, request);
  }
  if (target == "/drops") {
    auto done = [self = shared_from_this()](HostReply reply) {
      boost::asio::post(self->stream_.get_executor(), [self, reply = std::move(reply)]() mutable {
        self->respond(std::move(reply));
      });
    };
    if (auto reply = public_drops(context_, std::move(done))) respond(std::move(*reply));
    return;
  }
  if (target == "/metrics") {
    std::optional<journal::JournalStatus> status;
    if (context_.journal != nullptr) status = context_.journal->status();
    return respond({200, context_.metrics.render(status ? &*status : nullptr)},
                   "text/plain; version=0.0.4");
  }
  if (target.starts_with("/api/")) {
    auto done = [self = shared_from_this()](HostReply reply) {
      boost::asio::post(self->stream_.get_executor(), [self, reply = std::move(reply)]() mutable {
        self->respond(std::move(reply));
      });
    };
    if (context_.cluster != nullptr && target != "/api/tokens") {
      // A gateway: checked here, answered by the engine that owns the drop.
      if (auto refused = check_host_key(request, context_.config))
        return respond(std::move(*refused));
      context_.cluster->forward(request, std::move(done));
      return;
    }
    if (auto reply = route_api(request, context_, std::move(done))) respond(std::move(*reply));
    return;
  }
  respond(http_error(404, "not_found", "no such page"));
}

HostReply HttpSession::health() const {
  if (context_.shutting_down) return http_error(503, "shutting_down", "the server is stopping");
  if (context_.cluster != nullptr) return context_.cluster->health();
  const journal::JournalStatus status = context_.journal->status();
  if (status.state != journal::JournalState::ok)
    return http_error(503, journal::to_string(status.state),
                      status.detail.empty() ? "journal not writable" : status.detail);
  return {200, "{\"status\":\"ok\",\"durable_sequence\":" +
                   std::to_string(status.durable_sequence) + "}"};
}

void HttpSession::respond(HostReply reply, std::string_view content_type) {
  response_ = std::make_shared<http::response<http::string_body>>(
      static_cast<http::status>(reply.status), 11);
  response_->set(http::field::server, "flashsale");
  response_->set(http::field::content_type, content_type);
  response_->set(http::field::cache_control, "no-store");
  response_->keep_alive(keep_alive_);
  response_->body() = std::move(reply.body);
  response_->prepare_payload();
  send(response_);
}

// Pages are revalidated on every load (no-cache with an ETag: a 304 costs a header), so a
// browser never runs a script older than the server it talks to.
void HttpSession::respond_asset(const WebAsset& asset, const HttpRequest& request) {
  const bool unchanged = request[http::field::if_none_match] == asset.etag;
  auto response = std::make_shared<http::response<http::string_body>>(
      unchanged ? http::status::not_modified : http::status::ok, 11);
  response->set(http::field::server, "flashsale");
  response->set(http::field::content_type, asset.content_type);
  response->set(http::field::etag, asset.etag);
  response->set(http::field::cache_control, "no-cache");
  response->set("X-Content-Type-Options", "nosniff");
  if (asset.content_type.starts_with("text/html")) {
    response->set("Content-Security-Policy",
                  "default-src 'self'; connect-src 'self' ws: wss:; frame-ancestors 'none'");
  }
  response->keep_alive(keep_alive_);
  if (!unchanged && request.method() == http::verb::get) response->body() = asset.body;
  response->prepare_payload();
  if (request.method() == http::verb::head) response->content_length(asset.body.size());
  send(std::move(response));
}

void HttpSession::send(std::shared_ptr<http::response<http::string_body>> response) {
  response_ = std::move(response);
  http::async_write(stream_, *response_,
                    beast::bind_front_handler(&HttpSession::on_write, shared_from_this(),
                                              response_->keep_alive()));
}

void HttpSession::on_write(bool keep_alive, beast::error_code error, std::size_t) {
  if (error) return;
  if (!keep_alive) {
    stream_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send, error);
    return;
  }
  do_read();
}

}  // namespace flashsale::gateway
