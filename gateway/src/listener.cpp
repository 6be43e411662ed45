// See listener.hpp.
#include "listener.hpp"

#include <spdlog/spdlog.h>

namespace flashsale::gateway {

namespace asio = boost::asio;
using asio::ip::tcp;

Listener::Listener(std::vector<std::unique_ptr<asio::io_context>>& threads,
                   const tcp::endpoint& endpoint, const Limits& limits, Metrics& metrics,
                   Accepted accepted)
    : threads_(threads),
      limits_(limits),
      metrics_(metrics),
      accepted_(std::move(accepted)),
      acceptor_(*threads[0]),
      accepts_(TokenBucket::full(limits.accepts_burst)) {
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(asio::socket_base::max_listen_connections);
}

void Listener::stop() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

void Listener::do_accept() {
  next_ = (next_ + 1) % threads_.size();
  acceptor_.async_accept(
      *threads_[next_], [this, index = next_](boost::system::error_code error, tcp::socket socket) {
        if (error == asio::error::operation_aborted) return;
        if (!error && !accepts_.take(limits_.accepts_per_second, limits_.accepts_burst)) {
          metrics_.count_limited(Limit::accepts);
          socket.close(error);
        } else if (!error) {
          socket.set_option(tcp::no_delay(true), error);
          metrics_.connections_accepted.fetch_add(1, std::memory_order_relaxed);
          accepted_(std::move(socket), index);
        } else if (error == asio::error::no_descriptors) {
          spdlog::warn("accept: out of file descriptors");
        }
        do_accept();
      });
}

}  // namespace flashsale::gateway
