// See intake.hpp.
#include "intake.hpp"

#include <array>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>

#include "flashsale/engine/assert.hpp"
#include "proxy_protocol.hpp"

namespace flashsale::gateway {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// Reads one PROXY header off a socket: waits until bytes arrive, peeks at them, and consumes
// only what the parser has seen to be header. Bytes that are a valid but unfinished header
// are consumed too (they can be nothing else), so waiting for more never spins.
class ProxyHeaderRead : public std::enable_shared_from_this<ProxyHeaderRead> {
 public:
  using Done = std::function<void(tcp::socket socket, asio::ip::address source)>;

  ProxyHeaderRead(tcp::socket socket, Metrics& metrics, Done done)
      : socket_(std::move(socket)),
        deadline_(socket_.get_executor()),
        metrics_(metrics),
        done_(std::move(done)) {}

  void start(std::chrono::steady_clock::duration timeout) {
    asio::post(socket_.get_executor(), [self = shared_from_this(), timeout] {
      boost::system::error_code ignored;
      self->socket_.non_blocking(true, ignored);
      self->deadline_.expires_after(timeout);
      self->deadline_.async_wait([weak = self->weak_from_this()](boost::system::error_code error) {
        if (const auto reader = weak.lock(); reader && !error) reader->refuse();
      });
      self->wait();
    });
  }

 private:
  void wait() {
    socket_.async_wait(tcp::socket::wait_read,
                       [self = shared_from_this()](boost::system::error_code error) {
                         if (!error) self->on_readable();
                       });
  }

  void on_readable() {
    boost::system::error_code error;
    const std::size_t seen =
        socket_.receive(asio::buffer(bytes_.data() + consumed_, bytes_.size() - consumed_),
                        tcp::socket::message_peek, error);
    if (error == asio::error::would_block) return wait();
    if (error || seen == 0) return close();  // gone before saying anything
    const auto result = proxy_protocol::parse({bytes_.data(), consumed_ + seen});
    if (std::holds_alternative<proxy_protocol::NeedMore>(result)) {
      if (!consume(seen)) return close();
      return wait();
    }
    const auto* header = std::get_if<proxy_protocol::Header>(&result);
    if (header == nullptr) return refuse();
    FS_ASSERT(header->length > consumed_ && header->length <= consumed_ + seen);
    if (!consume(header->length - consumed_)) return close();
    deadline_.cancel();
    socket_.non_blocking(false, error);
    const asio::ip::address peer = socket_.remote_endpoint(error).address();
    if (error) return close();
    done_(std::move(socket_), header->source.value_or(peer));
  }

  // Takes `count` bytes already peeked at off the socket.
  bool consume(std::size_t count) {
    boost::system::error_code error;
    const std::size_t taken =
        socket_.receive(asio::buffer(bytes_.data() + consumed_, count), 0, error);
    consumed_ += taken;
    return !error && taken == count;
  }

  void refuse() {
    metrics_.proxy_headers_refused.fetch_add(1, std::memory_order_relaxed);
    close();
  }

  void close() {
    boost::system::error_code ignored;
    deadline_.cancel();
    socket_.close(ignored);
  }

  tcp::socket socket_;
  asio::steady_timer deadline_;
  Metrics& metrics_;
  const Done done_;
  std::array<std::uint8_t, proxy_protocol::header_bytes_max> bytes_{};
  std::size_t consumed_ = 0;
};

}  // namespace

Intake::Intake(const GatewayConfig& config, const ServerTls* tls, Metrics& metrics, Ready ready)
    : limits_(config.limits),
      proxies_(config.proxy_protocol_from),
      tls_(tls),
      metrics_(metrics),
      ready_(std::move(ready)) {}

void Intake::take(tcp::socket socket, std::size_t index) {
  boost::system::error_code error;
  const asio::ip::address peer = socket.remote_endpoint(error).address();
  if (error) return;  // reset between accept and now
  if (!proxies_.contains(peer)) return admit(std::move(socket), peer, index);
  std::make_shared<ProxyHeaderRead>(std::move(socket), metrics_,
                                    [this, index](tcp::socket read, asio::ip::address source) {
                                      admit(std::move(read), source, index);
                                    })
      ->start(limits_.handshake_timeout);
}

void Intake::admit(tcp::socket socket, asio::ip::address source, std::size_t index) {
  if (tls_ == nullptr) return ready_(Connection(std::move(socket)), std::move(source), index);
  // The context current now: a reload on its way changes the next connection's, not this one's.
  const auto context = tls_->context();
  ready_(Connection(std::in_place_type<TlsStream>, std::move(socket), *context), std::move(source),
         index);
}

}  // namespace flashsale::gateway
