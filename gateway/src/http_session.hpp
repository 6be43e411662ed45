// HttpSession: one HTTP connection. Serves the host API (/api/…), /healthz, /metrics, and
// hands a WebSocket upgrade at /ws over to a WebsocketSession. Keep-alive; one request at a
// time; bodies bounded by limits.http_body_bytes_max; a request must arrive within the
// handshake timeout, the next one within the idle timeout.
#pragma once

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <optional>

#include "context.hpp"
#include "host_api.hpp"
#include "web_assets.hpp"

namespace flashsale::gateway {

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(boost::asio::ip::tcp::socket&& socket, ServerContext& context, Hub& hub);
  void start();

 private:
  void do_read();
  void on_read(boost::beast::error_code error, std::size_t bytes);
  void respond(HostReply reply, std::string_view content_type = "application/json");
  void respond_asset(const WebAsset& asset, const HttpRequest& request);
  void send(
      std::shared_ptr<boost::beast::http::response<boost::beast::http::string_body>> response);
  void on_write(bool keep_alive, boost::beast::error_code error, std::size_t bytes);
  HostReply health() const;

  boost::beast::tcp_stream stream_;
  ServerContext& context_;
  Hub& hub_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  std::shared_ptr<boost::beast::http::response<boost::beast::http::string_body>> response_;
  bool keep_alive_ = false;
  bool first_request_ = true;
};

}  // namespace flashsale::gateway
