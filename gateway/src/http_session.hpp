// HttpSession: one HTTP connection, plain or TLS, whatever it serves. A TLS connection's
// handshake must finish within the handshake timeout. Keep-alive, one request at a time;
// bodies bounded by limits.http_body_bytes_max; a request must arrive within the handshake
// timeout, the next one within the idle timeout, and a connection ends after
// limits.http_connection_ms_max however busy (a request every 29 s held one forever). What each
// request gets is its Routes' business: the gateway's (gateway_routes.hpp) or an engine's status
// (engine_status.hpp).
#pragma once

#include <boost/asio/ip/address.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_set>

#include "connection.hpp"
#include "flashsale/gateway/config.hpp"
#include "metrics.hpp"
#include "requests.hpp"
#include "source_limits.hpp"
#include "web_assets.hpp"

namespace flashsale::gateway {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  // One per I/O thread, used on it alone.
  class Routes {
   public:
    virtual ~Routes() = default;
    // The session's thread. Answers with respond(), respond_later(), respond_asset(), or takes
    // the connection over (take_socket()).
    virtual void route(HttpSession& session, HttpRequest& request) = 0;
    // A stopping server's, on the routes' thread: the sessions waiting for a request (idle
    // keep-alive clients, a health checker's) end now, and the others after their answer, so
    // that stopping does not wait for clients to leave by themselves.
    void close_connections();

   private:
    friend class HttpSession;
    std::unordered_set<HttpSession*> waiting_;  // for their next request, an async read pending
    bool closing_ = false;
  };

  // A connection is counted as HTTP (metrics.http_connections_open, and its source's share
  // in `source_limits` unless that is null) from its first request that is not a WebSocket
  // upgrade: until then it is an opening connection, bounded by the accept limits and the
  // handshake timeout, and a surge of viewers connecting at once (each an HTTP session until
  // it upgrades; with TLS, for a whole handshake) must not be mistaken for HTTP clients
  // holding connections. Past limits.http_connections_max the request is answered 503, past
  // limits.http_connections_per_source 429, and the connection ends. `source`: the client's
  // address (the peer's, or what a trusted proxy said it is).
  HttpSession(Connection&& connection, boost::asio::ip::address source, SourceLimits* source_limits,
              const Limits& limits, Routes& routes, Metrics& metrics);
  ~HttpSession();
  void start();

  // For routes.
  void respond(HostReply reply, std::string_view content_type = "application/json");
  // A reply to come from another thread: posted to the session's own.
  std::function<void(HostReply)> respond_later();
  void respond_asset(const WebAsset& asset, const HttpRequest& request);
  const boost::asio::ip::address& remote_address() const { return source_; }
  // The connection leaves HTTP (a WebSocket upgrade): its stream, and the request that asked.
  Connection take_connection();
  HttpRequest take_request();

 private:
  void on_handshake(boost::beast::error_code error);
  void expire_after(std::chrono::steady_clock::duration timeout);
  void do_read();
  void on_read(boost::beast::error_code error, std::size_t bytes);
  void send(
      std::shared_ptr<boost::beast::http::response<boost::beast::http::string_body>> response);
  void on_write(bool keep_alive, boost::beast::error_code error, std::size_t bytes);
  void end();
  bool count_in();
  bool answering_head() const;

  // Timed by deadline_ rather than a beast::tcp_stream, whose timer could not come along into
  // the WebSocket session an upgrade hands the stream to.
  Connection stream_;
  boost::asio::steady_timer deadline_;
  const boost::asio::ip::address source_;
  SourceLimits* const source_limits_;
  SourceLimits::Slot source_slot_;
  bool counted_ = false;  // in http_connections_open
  bool taken_ = false;    // the stream left with an upgrade
  const Limits& limits_;
  Routes& routes_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  std::shared_ptr<boost::beast::http::response<boost::beast::http::string_body>> response_;
  Metrics& metrics_;
  const std::chrono::steady_clock::time_point opened_ = std::chrono::steady_clock::now();
  bool keep_alive_ = false;
  bool first_request_ = true;
  // In routes_.waiting_: only while a read is pending, which holds the session, so a destructor
  // that finds it set runs where the routes' thread has stopped (an io_context's destruction).
  bool waiting_ = false;
};

}  // namespace flashsale::gateway
