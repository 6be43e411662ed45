// Listener: accepts on the first I/O thread and deals connections to the I/O threads in turn;
// each connection then lives on one thread only. Over limits.accepts_per_second (bursts of
// accepts_burst) a connection is closed at once: a reconnect storm must not starve the
// connections already up.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "flashsale/gateway/config.hpp"
#include "metrics.hpp"
#include "token_bucket.hpp"

namespace flashsale::gateway {

class Listener {
 public:
  // `accepted` runs on the first I/O thread, with a socket of I/O thread `index`.
  using Accepted = std::function<void(boost::asio::ip::tcp::socket socket, std::size_t index)>;

  Listener(std::vector<std::unique_ptr<boost::asio::io_context>>& threads,
           const boost::asio::ip::tcp::endpoint& endpoint, const Limits& limits, Metrics& metrics,
           Accepted accepted);
  boost::asio::ip::tcp::endpoint endpoint() const { return acceptor_.local_endpoint(); }
  void start() { do_accept(); }
  void stop();

 private:
  void do_accept();

  std::vector<std::unique_ptr<boost::asio::io_context>>& threads_;
  const Limits& limits_;
  Metrics& metrics_;
  const Accepted accepted_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::size_t next_ = 0;
  TokenBucket accepts_;
};

}  // namespace flashsale::gateway
