// AddressSet: addresses and networks named in the config ("10.0.0.5", "10.0.0.0/8",
// "fd00::/8"), for server.proxy_protocol_from: whom to believe about a connection's source.
// Built at start-up, then read-only, so any thread may ask.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>
#include <string>
#include <vector>

namespace flashsale::gateway {

class AddressSet {
 public:
  // Throws std::invalid_argument naming the entry that is neither an address nor a network.
  explicit AddressSet(const std::vector<std::string>& entries);

  bool empty() const noexcept { return v4_.empty() && v6_.empty(); }
  // An IPv4 client of a dual-stack socket (::ffff:10.0.0.5) is matched as 10.0.0.5.
  bool contains(const boost::asio::ip::address& address) const noexcept;

 private:
  std::vector<boost::asio::ip::network_v4> v4_;
  std::vector<boost::asio::ip::network_v6> v6_;
};

}  // namespace flashsale::gateway
