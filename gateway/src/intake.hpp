// Intake: an accepted connection on its way to HTTP. From a trusted proxy
// (server.proxy_protocol_from) its PROXY header is read first, to learn whose connection it is;
// with TLS (server.tls_certificate) the stream is wrapped in TLS; then an HttpSession takes
// it, knowing the client's address.
//
// The PROXY header is read without reading past it, so that what follows (HTTP, or a TLS
// ClientHello) is still in the socket for the session: peeked, parsed, and only then consumed.
// A header must arrive whole within limits.handshake_timeout; a trusted proxy's connection
// without one is closed (counted in flashsale_proxy_headers_refused_total).
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <functional>

#include "address_set.hpp"
#include "connection.hpp"
#include "flashsale/gateway/config.hpp"
#include "metrics.hpp"
#include "tls.hpp"

namespace flashsale::gateway {

class Intake {
 public:
  // Runs on the listener's thread, or (after a PROXY header) the connection's I/O thread.
  using Ready = std::function<void(Connection&& connection, boost::asio::ip::address source,
                                   std::size_t index)>;

  // `tls`: null for a plain port. Both outlive the Intake and every connection it starts.
  Intake(const GatewayConfig& config, const ServerTls* tls, Metrics& metrics, Ready ready);

  // The listener's thread; `socket` belongs to I/O thread `index`.
  void take(boost::asio::ip::tcp::socket socket, std::size_t index);

 private:
  void admit(boost::asio::ip::tcp::socket socket, boost::asio::ip::address source,
             std::size_t index);

  const Limits& limits_;
  const AddressSet proxies_;
  const ServerTls* const tls_;
  Metrics& metrics_;
  const Ready ready_;
};

}  // namespace flashsale::gateway
