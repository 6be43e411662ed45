// See http_session.hpp.
#include "http_session.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "host_json.hpp"

namespace flashsale::gateway {

namespace beast = boost::beast;
namespace http = beast::http;

HttpSession::HttpSession(Connection&& connection, boost::asio::ip::address source,
                         SourceLimits* source_limits, const Limits& limits, Routes& routes,
                         Metrics& metrics)
    : stream_(std::move(connection)),
      deadline_(socket_of(stream_).get_executor()),
      source_(std::move(source)),
      source_limits_(source_limits),
      limits_(limits),
      routes_(routes),
      metrics_(metrics) {}

HttpSession::~HttpSession() {
  if (counted_) metrics_.http_connections_open.fetch_sub(1, std::memory_order_relaxed);
  if (waiting_) routes_.waiting_.erase(this);
}

void HttpSession::Routes::close_connections() {
  closing_ = true;
  for (HttpSession* session : std::vector(waiting_.begin(), waiting_.end())) {
    beast::error_code ignored;
    socket_of(session->stream_).close(ignored);  // its read ends, and with it the session
  }
}

void HttpSession::start() {
  boost::asio::dispatch(deadline_.get_executor(), [self = shared_from_this()] {
    TlsStream* tls = std::get_if<TlsStream>(&self->stream_);
    if (tls == nullptr) return self->do_read();
    self->expire_after(self->limits_.handshake_timeout);
    tls->async_handshake(boost::asio::ssl::stream_base::server,
                         beast::bind_front_handler(&HttpSession::on_handshake, self));
  });
}

void HttpSession::on_handshake(beast::error_code error) {
  if (error) {  // not TLS, a certificate the client refused, a timeout: nothing to say
    metrics_.tls_handshakes_failed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  do_read();
}

// The connection is closed if what is under way (a handshake, the next request, its answer)
// takes longer than `timeout`. The timer does not keep the session alive.
void HttpSession::expire_after(std::chrono::steady_clock::duration timeout) {
  deadline_.expires_after(timeout);
  deadline_.async_wait([weak = weak_from_this()](beast::error_code cancelled) {
    const auto self = weak.lock();
    if (cancelled || self == nullptr || self->taken_) return;
    beast::error_code ignored;
    socket_of(self->stream_).close(ignored);
  });
}

void HttpSession::do_read() {
  if (routes_.closing_) return end();
  routes_.waiting_.insert(this);
  waiting_ = true;
  parser_.emplace();
  parser_->body_limit(limits_.http_body_bytes_max);
  parser_->header_limit(16 * 1024);
  expire_after(first_request_ ? limits_.handshake_timeout : limits_.idle_timeout);
  first_request_ = false;
  std::visit(
      [&](auto& stream) {
        http::async_read(stream, buffer_, *parser_,
                         beast::bind_front_handler(&HttpSession::on_read, shared_from_this()));
      },
      stream_);
}

void HttpSession::on_read(beast::error_code error, std::size_t) {
  routes_.waiting_.erase(this);
  waiting_ = false;
  if (error == http::error::end_of_stream) return end();
  if (error == http::error::body_limit) {
    keep_alive_ = false;
    return respond(
        host_json::error(413, "too_large", "the body is over limits.http_body_bytes_max"));
  }
  if (error == http::error::header_limit) {
    keep_alive_ = false;
    return respond(host_json::error(431, "headers_too_large", "the headers are over 16 KiB"));
  }
  // A request Beast cannot read (a bad Content-Length, one beside Transfer-Encoding, a broken
  // line) is answered once, then the connection ends: what follows cannot be framed.
  if (error && error.category() == http::make_error_code(http::error::bad_method).category() &&
      error != http::error::partial_message) {
    keep_alive_ = false;
    return respond(host_json::error(400, "bad_request", "the request cannot be read as HTTP/1.1"));
  }
  if (error) return;  // timeouts, resets, a peer gone mid-request: the connection ends
  keep_alive_ = parser_->get().keep_alive() && !routes_.closing_ &&
                std::chrono::steady_clock::now() - opened_ < limits_.http_connection_max;
  if (!counted_ && !beast::websocket::is_upgrade(parser_->get()) && !count_in()) return;
  routes_.route(*this, parser_->get());
}

// The connection becomes an HTTP client's: counted, or refused with an answer if over a limit.
bool HttpSession::count_in() {
  if (metrics_.http_connections_open.fetch_add(1, std::memory_order_relaxed) >=
      limits_.http_connections_max) {
    metrics_.http_connections_open.fetch_sub(1, std::memory_order_relaxed);
    metrics_.count_limited(Limit::http_connections);
    keep_alive_ = false;
    respond(host_json::error(503, "too_many_connections",
                             "the server holds its maximum of HTTP connections"));
    return false;
  }
  counted_ = true;
  if (source_limits_ != nullptr && !source_limits_->admit_http(source_, source_slot_)) {
    metrics_.count_limited(Limit::http_connections_per_source);
    keep_alive_ = false;
    respond(host_json::error(429, "rate_limited", "too many HTTP connections from your address"));
    return false;
  }
  return true;
}

std::function<void(HostReply)> HttpSession::respond_later() {
  return [self = shared_from_this()](HostReply reply) {
    boost::asio::post(self->deadline_.get_executor(), [self, reply = std::move(reply)]() mutable {
      self->respond(std::move(reply));
    });
  };
}

Connection HttpSession::take_connection() {
  taken_ = true;
  deadline_.cancel();
  return std::move(stream_);
}

HttpRequest HttpSession::take_request() {
  return parser_->release();
}

void HttpSession::respond(HostReply reply, std::string_view content_type) {
  // Not an HTTP client yet (a refused upgrade): answered once, then the connection ends, so
  // that uncounted connections last no longer than their first request.
  if (!counted_) keep_alive_ = false;
  auto response = std::make_shared<http::response<http::string_body>>(
      static_cast<http::status>(reply.status), 11);
  response->set(http::field::server, "flashsale");
  response->set(http::field::content_type, content_type);
  response->set(http::field::cache_control, "no-store");
  response->keep_alive(keep_alive_);
  // A HEAD is told the length of what a GET would get, and sent no body (RFC 9110, 9.3.2):
  // a body here would be read as the start of the next response.
  const bool head = answering_head();
  const std::size_t length = reply.body.size();
  if (!head) response->body() = std::move(reply.body);
  response->prepare_payload();
  if (head) response->content_length(length);
  send(std::move(response));
}

bool HttpSession::answering_head() const {
  return parser_ && parser_->is_header_done() && parser_->get().method() == http::verb::head;
}

// Pages are revalidated on every load (no-cache with an ETag: a 304 costs a header), so a
// browser never runs a script older than the server it talks to.
void HttpSession::respond_asset(const WebAsset& asset, const HttpRequest& request) {
  if (!counted_) keep_alive_ = false;
  const bool unchanged = request[http::field::if_none_match] == asset.etag;
  auto response = std::make_shared<http::response<http::string_body>>(
      unchanged ? http::status::not_modified : http::status::ok, 11);
  response->set(http::field::server, "flashsale");
  response->set(http::field::content_type, asset.content_type);
  response->set(http::field::etag, asset.etag);
  response->set(http::field::cache_control, "no-cache");
  response->set("X-Content-Type-Options", "nosniff");
  if (asset.content_type.starts_with("text/html")) {
    // A stream's video is wherever its host put it (http(s), checked at the API), so frames and
    // media may come from anywhere; the page sandboxes the frame. Everything else is ours.
    response->set("Content-Security-Policy",
                  "default-src 'self'; connect-src 'self'; frame-src http: https:; "
                  "media-src http: https: blob:; base-uri 'none'; form-action 'none'; "
                  "frame-ancestors 'none'");
  }
  response->keep_alive(keep_alive_);
  if (!unchanged && request.method() == http::verb::get) response->body() = asset.body;
  response->prepare_payload();
  if (request.method() == http::verb::head) response->content_length(asset.body.size());
  send(std::move(response));
}

void HttpSession::send(std::shared_ptr<http::response<http::string_body>> response) {
  response_ = std::move(response);
  std::visit(
      [&](auto& stream) {
        http::async_write(stream, *response_,
                          beast::bind_front_handler(&HttpSession::on_write, shared_from_this(),
                                                    response_->keep_alive()));
      },
      stream_);
}

void HttpSession::on_write(bool keep_alive, beast::error_code error, std::size_t) {
  if (error) return;
  if (!keep_alive) return end();
  do_read();
}

// The last answer is out: TLS says close_notify first (within the deadline already running),
// then the socket stops sending.
void HttpSession::end() {
  if (TlsStream* tls = std::get_if<TlsStream>(&stream_))
    return tls->async_shutdown([self = shared_from_this()](beast::error_code) {
      beast::error_code ignored;
      socket_of(self->stream_).shutdown(boost::asio::ip::tcp::socket::shutdown_send, ignored);
    });
  beast::error_code ignored;
  socket_of(stream_).shutdown(boost::asio::ip::tcp::socket::shutdown_send, ignored);
}

}  // namespace flashsale::gateway
