// See address_set.hpp.
#include "address_set.hpp"

#include <stdexcept>

namespace flashsale::gateway {

namespace ip = boost::asio::ip;

AddressSet::AddressSet(const std::vector<std::string>& entries) {
  for (const std::string& entry : entries) {
    boost::system::error_code error;
    const bool network = entry.find('/') != std::string::npos;
    if (entry.find(':') == std::string::npos) {
      v4_.push_back(network ? ip::make_network_v4(entry, error)
                            : ip::network_v4(ip::make_address_v4(entry, error), 32));
    } else {
      v6_.push_back(network ? ip::make_network_v6(entry, error)
                            : ip::network_v6(ip::make_address_v6(entry, error), 128));
    }
    if (error) throw std::invalid_argument("\"" + entry + "\" is not an address or network");
  }
}

bool AddressSet::contains(const ip::address& address) const noexcept {
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    return contains(ip::make_address_v4(ip::v4_mapped, address.to_v6()));
  if (address.is_v4()) {
    const ip::address_v4 v4 = address.to_v4();
    for (const ip::network_v4& network : v4_)
      if (ip::network_v4(v4, network.prefix_length()).canonical() == network.canonical())
        return true;
    return false;
  }
  const ip::address_v6 v6 = address.to_v6();
  for (const ip::network_v6& network : v6_)
    if (ip::network_v6(v6, network.prefix_length()).canonical() == network.canonical()) return true;
  return false;
}

}  // namespace flashsale::gateway
