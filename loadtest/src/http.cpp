// See http.hpp.
#include "flashsale/loadtest/http.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>
#include <optional>
#include <stdexcept>

namespace flashsale::loadtest {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::asio::ip::tcp;

HttpTarget HttpTarget::parse(std::string_view url) {
  const bool tls = url.starts_with("https://");
  if (!tls && !url.starts_with("http://"))
    throw std::invalid_argument("expected http://HOST:PORT or https://HOST:PORT, got " +
                                std::string(url));
  url.remove_prefix(tls ? 8 : 7);
  if (url.ends_with('/')) url.remove_suffix(1);
  const auto colon = url.rfind(':');
  if (colon == std::string_view::npos) throw std::invalid_argument("expected http://HOST:PORT");
  HttpTarget target;
  target.tls = tls;
  target.host = std::string(url.substr(0, colon));
  const std::string_view port = url.substr(colon + 1);
  if (std::from_chars(port.data(), port.data() + port.size(), target.port).ec != std::errc{})
    throw std::invalid_argument("bad port in " + std::string(url));
  return target;
}

namespace {

// A server too busy to answer makes a call fail, not hang its caller (the replay's progress
// line samples /metrics of a server under the load it measures).
constexpr std::chrono::seconds call_timeout{10};

// One request and its response over `stream`, connected (and its TLS handshake done) when
// `ready` runs, all asynchronous so that the stream's timeout applies. Callbacks, not
// coroutines: clang 14 cannot emit line tables for coroutines in the sanitizer build.
template <class Stream>
class Exchange {
 public:
  Exchange(Stream& stream, const HttpTarget& target, std::string_view method, std::string_view path,
           std::string_view body, std::string_view host_key)
      : stream_(stream), request_(http::string_to_verb(method), std::string(path), 11) {
    request_.set(http::field::host, target.host);
    if (!host_key.empty())
      request_.set(http::field::authorization, "Bearer " + std::string(host_key));
    if (!body.empty()) {
      request_.set(http::field::content_type, "application/json");
      request_.body() = std::string(body);
    }
    request_.prepare_payload();
  }
  void send() {
    http::async_write(stream_, request_, [this](beast::error_code error, std::size_t) {
      if (error) return fail(error);
      http::async_read(stream_, buffer_, response_, [this](beast::error_code failed, std::size_t) {
        if (failed) return fail(failed);
        beast::error_code ignored;
        beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
        reply_ = HttpReply{response_.result_int(), response_.body()};
      });
    });
  }
  void fail(beast::error_code error) { error_ = error; }
  // After the io_context ran out of work.
  HttpReply result() const {
    if (error_) throw beast::system_error(error_);
    if (!reply_) throw std::runtime_error("the HTTP call ended without an answer");
    return *reply_;
  }

 private:
  Stream& stream_;
  http::request<http::string_body> request_;
  beast::flat_buffer buffer_;
  http::response<http::string_body> response_;
  beast::error_code error_;
  std::optional<HttpReply> reply_;
};

}  // namespace

HttpReply http_call(const HttpTarget& target, std::string_view method, std::string_view path,
                    std::string_view body, std::string_view host_key) {
  asio::io_context io;
  const tcp::endpoint endpoint(asio::ip::make_address(target.host), target.port);
  if (!target.tls) {
    beast::tcp_stream stream(io);
    stream.expires_after(call_timeout);
    Exchange exchange(stream, target, method, path, body, host_key);
    stream.async_connect(endpoint, [&exchange](beast::error_code error) {
      if (error) return exchange.fail(error);
      exchange.send();
    });
    io.run();
    return exchange.result();
  }
  asio::ssl::context context(asio::ssl::context::tls_client);
  context.set_verify_mode(asio::ssl::verify_none);
  beast::ssl_stream<beast::tcp_stream> stream(io, context);
  beast::get_lowest_layer(stream).expires_after(call_timeout);
  Exchange exchange(stream, target, method, path, body, host_key);
  beast::get_lowest_layer(stream).async_connect(endpoint, [&stream,
                                                           &exchange](beast::error_code error) {
    if (error) return exchange.fail(error);
    stream.async_handshake(asio::ssl::stream_base::client, [&exchange](beast::error_code failed) {
      if (failed) return exchange.fail(failed);
      exchange.send();
    });
  });
  io.run();
  return exchange.result();
}

}  // namespace flashsale::loadtest
