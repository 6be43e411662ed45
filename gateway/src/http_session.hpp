// HttpSession: one HTTP connection, whatever it serves. Keep-alive, one request at a time;
// bodies bounded by limits.http_body_bytes_max; a request must arrive within the handshake
// timeout, the next one within the idle timeout, and a connection ends after
// limits.http_connection_ms_max however busy (a request every 29 s held one forever). What each
// request gets is its Routes' business: the gateway's (gateway_routes.hpp) or an engine's status
// (engine_status.hpp).
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>

#include "flashsale/gateway/config.hpp"
#include "metrics.hpp"
#include "requests.hpp"
#include "web_assets.hpp"

namespace flashsale::gateway {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  class Routes {
   public:
    virtual ~Routes() = default;
    // The session's thread. Answers with respond(), respond_later(), respond_asset(), or takes
    // the connection over (take_socket()).
    virtual void route(HttpSession& session, HttpRequest& request) = 0;
  };

  // Counted in metrics.http_connections_open while it lives; past limits.http_connections_max
  // a new connection is closed at once (counted as limit "http_connections").
  HttpSession(boost::asio::ip::tcp::socket&& socket, const Limits& limits, Routes& routes,
              Metrics& metrics);
  ~HttpSession();
  void start();

  // For routes.
  void respond(HostReply reply, std::string_view content_type = "application/json");
  // A reply to come from another thread: posted to the session's own.
  std::function<void(HostReply)> respond_later();
  void respond_asset(const WebAsset& asset, const HttpRequest& request);
  boost::asio::ip::address remote_address() const;
  // The connection leaves HTTP (a WebSocket upgrade): its socket, and the request that asked.
  boost::asio::ip::tcp::socket take_socket();
  HttpRequest take_request();

 private:
  void do_read();
  void on_read(boost::beast::error_code error, std::size_t bytes);
  void send(
      std::shared_ptr<boost::beast::http::response<boost::beast::http::string_body>> response);
  void on_write(bool keep_alive, boost::beast::error_code error, std::size_t bytes);

  boost::beast::tcp_stream stream_;
  const Limits& limits_;
  Routes& routes_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  std::shared_ptr<boost::beast::http::response<boost::beast::http::string_body>> response_;
  Metrics& metrics_;
  const std::chrono::steady_clock::time_point opened_ = std::chrono::steady_clock::now();
  bool keep_alive_ = false;
  bool first_request_ = true;
};

}  // namespace flashsale::gateway
