// "HOST:PORT" (an IPv6 host in brackets) as an endpoint to listen on; throws
// std::runtime_error naming what is wrong.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <charconv>
#include <stdexcept>
#include <string>

namespace flashsale::gateway {

inline boost::asio::ip::tcp::endpoint parse_endpoint(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("listen must be HOST:PORT: " + text);
  unsigned short port = 0;
  const auto [end, problem] =
      std::from_chars(text.data() + colon + 1, text.data() + text.size(), port);
  if (problem != std::errc{} || end != text.data() + text.size())
    throw std::runtime_error("bad port in listen address " + text);
  std::string host = text.substr(0, colon);
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return {boost::asio::ip::make_address(host), port};
}

}  // namespace flashsale::gateway
