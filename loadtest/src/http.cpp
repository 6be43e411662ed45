// See http.hpp.
#include "flashsale/loadtest/http.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>
#include <stdexcept>

namespace flashsale::loadtest {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::asio::ip::tcp;

// A server too busy to answer makes a call fail, not hang its caller (the replay's progress
// line samples /metrics of a server under the load it measures).
constexpr std::chrono::seconds call_timeout{10};

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

template <class Stream>
asio::awaitable<HttpReply> exchange(Stream& stream, const HttpTarget& target,
                                    std::string_view method, std::string_view path,
                                    std::string_view body, std::string_view host_key) {
  http::request<http::string_body> request(http::string_to_verb(method), std::string(path), 11);
  request.set(http::field::host, target.host);
  if (!host_key.empty()) request.set(http::field::authorization, "Bearer " + std::string(host_key));
  if (!body.empty()) {
    request.set(http::field::content_type, "application/json");
    request.body() = std::string(body);
  }
  request.prepare_payload();
  co_await http::async_write(stream, request, asio::use_awaitable);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  co_await http::async_read(stream, buffer, response, asio::use_awaitable);
  beast::error_code ignored;
  beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
  co_return HttpReply{response.result_int(), response.body()};
}

asio::awaitable<HttpReply> call(const HttpTarget& target, std::string_view method,
                                std::string_view path, std::string_view body,
                                std::string_view host_key) {
  const auto executor = co_await asio::this_coro::executor;
  const tcp::endpoint endpoint(asio::ip::make_address(target.host), target.port);
  if (!target.tls) {
    beast::tcp_stream stream(executor);
    stream.expires_after(call_timeout);
    co_await stream.async_connect(endpoint, asio::use_awaitable);
    co_return co_await exchange(stream, target, method, path, body, host_key);
  }
  asio::ssl::context context(asio::ssl::context::tls_client);
  context.set_verify_mode(asio::ssl::verify_none);
  beast::ssl_stream<beast::tcp_stream> stream(executor, context);
  beast::get_lowest_layer(stream).expires_after(call_timeout);
  co_await beast::get_lowest_layer(stream).async_connect(endpoint, asio::use_awaitable);
  co_await stream.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
  co_return co_await exchange(stream, target, method, path, body, host_key);
}

}  // namespace

HttpReply http_call(const HttpTarget& target, std::string_view method, std::string_view path,
                    std::string_view body, std::string_view host_key) {
  asio::io_context io;
  auto reply = asio::co_spawn(io, call(target, method, path, body, host_key), asio::use_future);
  io.run();
  return reply.get();
}

}  // namespace flashsale::loadtest
