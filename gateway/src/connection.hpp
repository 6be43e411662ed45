// Connection: what a viewer's or host's TCP connection is, once accepted — plain, or TLS over
// it (server.tls_certificate). HTTP sessions hold either and visit it (a request is not worth
// a template); WebSocket sessions, on the order path, are compiled for each.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <variant>

namespace flashsale::gateway {

using PlainStream = boost::asio::ip::tcp::socket;
// beast::ssl_stream coalesces a WebSocket frame's header and payload into one TLS record.
using TlsStream = boost::beast::ssl_stream<boost::asio::ip::tcp::socket>;
using Connection = std::variant<PlainStream, TlsStream>;

inline boost::asio::ip::tcp::socket& socket_of(Connection& connection) {
  return std::visit(
      [](auto& stream) -> boost::asio::ip::tcp::socket& {
        return boost::beast::get_lowest_layer(stream);
      },
      connection);
}

}  // namespace flashsale::gateway
