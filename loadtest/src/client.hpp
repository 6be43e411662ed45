// The load tester's client side: WebSocket viewers that sign in and exchange frames, worker
// threads each with an io_context, and the few parsing helpers a generator needs. Shared by
// `bench` and `replay`. Internal to the loadtest target.
#pragma once

#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/resource.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <charconv>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace flashsale::loadtest {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using asio::ip::tcp;

struct WsTarget {
  std::string host;
  unsigned short port = 0;
  std::string path;
  bool tls = false;  // wss://
};

inline WsTarget parse_ws(std::string_view url) {
  const bool tls = url.starts_with("wss://");
  if (!tls && !url.starts_with("ws://"))
    throw std::invalid_argument("expected ws://HOST:PORT/PATH or wss://HOST:PORT/PATH");
  url.remove_prefix(tls ? 6 : 5);
  const auto slash = url.find('/');
  const std::string_view authority = url.substr(0, slash);
  const auto colon = authority.rfind(':');
  WsTarget target{std::string(authority.substr(0, colon)), 0,
                  slash == std::string_view::npos ? "/" : std::string(url.substr(slash)), tls};
  const std::string_view port = authority.substr(colon + 1);
  if (colon == std::string_view::npos ||
      std::from_chars(port.data(), port.data() + port.size(), target.port).ec != std::errc{})
    throw std::invalid_argument("bad port in " + std::string(url));
  return target;
}

// The value of a string field in a server message, found without a JSON parser (the load
// generator must stay cheaper than the server it measures).
inline std::string_view field(std::string_view message, std::string_view name) {
  const std::string key = fmt::format("\"{}\":", name);
  auto at = message.find(key);
  if (at == std::string_view::npos) return {};
  at += key.size();
  if (at < message.size() && message[at] == '"') {
    const auto end = message.find('"', at + 1);
    return message.substr(at + 1, end - at - 1);
  }
  const auto end = message.find_first_of(",}", at);
  return message.substr(at, end - at);
}

template <typename Number>
inline Number number(std::string_view text) {
  Number value{};
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

inline std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline void raise_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

// One signed-in viewer, over ws:// or wss://. Writes are queued, one in flight.
class Connection {
 public:
  using Handler = std::function<void(std::string_view)>;

  // A connection for `target` (plain or TLS), not yet open.
  static std::shared_ptr<Connection> make(asio::io_context& io, const WsTarget& target,
                                          Handler on_message);
  virtual ~Connection() = default;

  // Connects from `source`, upgrades, says hello as `user`; `ready` gets whether it worked.
  virtual void open(const WsTarget& target, const std::string& source, std::string user,
                    std::function<void(bool)> ready) = 0;
  virtual void send(std::string frame) = 0;
  virtual void close() = 0;
};

// The load tester checks no certificate: it measures a server, it does not trust one.
inline asio::ssl::context& client_tls() {
  static asio::ssl::context context = [] {
    asio::ssl::context made(asio::ssl::context::tls_client);
    made.set_verify_mode(asio::ssl::verify_none);
    return made;
  }();
  return context;
}

template <class Stream>  // beast::tcp_stream, or beast::ssl_stream over one
class ConnectionOver final : public Connection,
                             public std::enable_shared_from_this<ConnectionOver<Stream>> {
 public:
  static constexpr bool tls = !std::is_same_v<Stream, beast::tcp_stream>;

  ConnectionOver(asio::io_context& io, Handler on_message)
      : ws_(make_stream(io)), on_message_(std::move(on_message)) {}

  void open(const WsTarget& target, const std::string& source, std::string user,
            std::function<void(bool)> ready) override {
    user_ = std::move(user);
    ready_ = std::move(ready);
    tcp::socket& socket = beast::get_lowest_layer(ws_).socket();
    beast::error_code error;
    socket.open(tcp::v4(), error);
    // Choose the source port at connect time, per destination: binding to port 0 would search
    // the whole range for a port free for every destination, slower with every socket open.
    const int one = 1;
    setsockopt(socket.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    socket.bind(tcp::endpoint(asio::ip::make_address(source), 0), error);
    if (error) return fail();
    beast::get_lowest_layer(ws_).async_connect(
        tcp::endpoint(asio::ip::make_address(target.host), target.port),
        [self = this->shared_from_this(), target](beast::error_code connect_error) {
          if (connect_error) return self->fail();
          if constexpr (tls) {
            self->ws_.next_layer().async_handshake(asio::ssl::stream_base::client,
                                                   [self, target](beast::error_code tls_error) {
                                                     if (tls_error) return self->fail();
                                                     self->upgrade(target);
                                                   });
          } else {
            self->upgrade(target);
          }
        });
  }

  void send(std::string frame) override {
    out_.push_back(std::move(frame));
    if (!writing_) write();
  }
  void close() override {
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

 private:
  static Stream make_stream(asio::io_context& io) {
    if constexpr (tls) {
      return Stream(io, client_tls());
    } else {
      return Stream(io);
    }
  }
  void upgrade(const WsTarget& target) {
    ws_.async_handshake(target.host, target.path,
                        [self = this->shared_from_this()](beast::error_code handshake_error) {
                          if (handshake_error) return self->fail();
                          self->send(fmt::format(R"({{"type":"hello","user":"{}"}})", self->user_));
                          self->read();
                        });
  }
  void fail() {
    if (ready_) std::exchange(ready_, nullptr)(false);
  }
  void read() {
    ws_.async_read(
        buffer_, [self = this->shared_from_this()](beast::error_code error, std::size_t) {
          if (error) return self->fail();
          const std::string_view text(static_cast<const char*>(self->buffer_.data().data()),
                                      self->buffer_.size());
          if (self->ready_ && field(text, "type") == "welcome") {
            std::exchange(self->ready_, nullptr)(true);
          } else {
            self->on_message_(text);
          }
          self->buffer_.consume(self->buffer_.size());
          self->read();
        });
  }
  void write() {
    writing_ = true;
    ws_.text(true);
    ws_.async_write(asio::buffer(out_.front()),
                    [self = this->shared_from_this()](beast::error_code error, std::size_t) {
                      self->writing_ = false;
                      if (error) return;
                      self->out_.pop_front();
                      if (!self->out_.empty()) self->write();
                    });
  }

  websocket::stream<Stream> ws_;
  beast::flat_buffer buffer_;
  std::deque<std::string> out_;
  bool writing_ = false;
  std::string user_;
  Handler on_message_;
  std::function<void(bool)> ready_;
};

inline std::shared_ptr<Connection> Connection::make(asio::io_context& io, const WsTarget& target,
                                                    Handler on_message) {
  if (target.tls)
    return std::make_shared<ConnectionOver<beast::ssl_stream<beast::tcp_stream>>>(
        io, std::move(on_message));
  return std::make_shared<ConnectionOver<beast::tcp_stream>>(io, std::move(on_message));
}

// Worker threads, each with an io_context and its connections.
class Workers {
 public:
  explicit Workers(unsigned count) {
    for (unsigned index = 0; index < count; ++index) {
      contexts_.push_back(std::make_unique<asio::io_context>(1));
      guards_.emplace_back(contexts_.back()->get_executor());
    }
  }
  ~Workers() { join(); }
  asio::io_context& io(std::size_t index) { return *contexts_[index % contexts_.size()]; }
  std::size_t size() const { return contexts_.size(); }
  void start() {
    for (auto& context : contexts_) threads_.emplace_back([io = context.get()] { io->run(); });
  }
  void join() {
    guards_.clear();
    for (auto& context : contexts_) context->stop();
    for (auto& thread : threads_) thread.join();
    threads_.clear();
  }

 private:
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
};

// Runs `action` on every connection, each on its own worker thread (connection i lives on
// worker i mod threads).
inline void on_each(Workers& workers, const std::vector<std::shared_ptr<Connection>>& connections,
                    const std::function<void(Connection&)>& action) {
  for (std::size_t index = 0; index < connections.size(); ++index)
    asio::post(workers.io(index),
               [connection = connections[index], action] { action(*connection); });
}

}  // namespace flashsale::loadtest
