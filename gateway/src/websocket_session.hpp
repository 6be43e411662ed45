// WebsocketSession: one viewer's connection at /ws (protocol v1, docs/protocol.md).
//
// Reads one message at a time and answers or forwards it to the engine thread; writes with one
// write in flight and a queue bounded in bytes. A viewer that cannot keep up first loses stale
// `tick`, `stock` and `stream` frames (a newer one replaces the older of the same drop or
// stream), and is closed with 1013 if still over its bound; order messages are never the ones
// dropped. Everything runs on the session's own I/O thread; Outbox calls from other threads are
// posted there.
//
// Compiled for a plain and a TLS stream (connection.hpp; both instantiated in the .cpp), so
// the plain order path pays nothing for TLS being possible.
#pragma once

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/container/devector.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "connection.hpp"
#include "context.hpp"
#include "flashsale/gateway/protocol.hpp"
#include "hub.hpp"
#include "outbox.hpp"
#include "token_bucket.hpp"

namespace flashsale::gateway {

template <class Stream>  // PlainStream or TlsStream
class WebsocketSession : public Outbox,
                         public std::enable_shared_from_this<WebsocketSession<Stream>> {
 public:
  WebsocketSession(Stream&& stream, ServerContext& context, Hub& hub,
                   SourceLimits::Slot source_slot);
  ~WebsocketSession() override;

  // Completes the upgrade the HTTP session read.
  void start(boost::beast::http::request<boost::beast::http::string_body> upgrade);
  void send(SharedFrame frame, FrameKind kind, std::uint32_t drop) override;
  boost::asio::io_context* loop() noexcept override { return &hub_.io(); }
  void send_here(const SharedFrame& frame, FrameKind kind, std::uint32_t drop) override;
  void close_with(SharedFrame frame, std::uint16_t code, std::string reason) override;
  void forget_subscription(std::string topic) override;
  void shut_down() override;
  void sweep() override;

 private:
  struct Outgoing {
    SharedFrame frame;
    FrameKind kind;
    std::uint32_t drop;
  };

  void on_accept(boost::beast::error_code error);
  void do_read();
  void on_read(boost::beast::error_code error, std::size_t bytes);
  void handle(const protocol::ClientMessage& message);
  void hello(const protocol::ClientMessage& message);
  void reply(std::string frame);
  void refuse(protocol::ErrorCode code, std::string_view message, std::string_view ref);
  std::optional<std::string_view> engine_refusal(std::chrono::steady_clock::time_point now);
  const EdgeGate* edge_gate(const protocol::ClientMessage& order,
                            std::chrono::steady_clock::time_point now);
  void enqueue(const SharedFrame& frame, FrameKind kind, std::uint32_t drop);
  void do_write();
  void on_write(boost::beast::error_code error, std::size_t bytes);
  void begin_close(std::uint16_t code, std::string reason);
  void finish();

  // Straight on the socket: the websocket stream keeps the handshake timeout and the hub's
  // sweep the idle one, so no read or write arms and cancels a timer (a beast::tcp_stream, or
  // the stream's own idle timeout, would around every one: docs/benchmarks.md, the order path).
  boost::beast::websocket::stream<Stream> ws_;
  ServerContext& context_;
  Hub& hub_;
  SourceLimits::Slot source_slot_;  // this connection's place in its address's share
  boost::beast::flat_buffer buffer_;
  boost::asio::steady_timer deadline_;  // hello, then a stuck close
  std::string user_;
  std::uint64_t user_hash_ = 0;  // user_hash(user_), for the drops' edge gates
  bool signed_in_ = false;
  bool heard_ = true;    // a frame (data or control) came in since the last sweep
  bool pinged_ = false;  // silent through one sweep: a ping is out
  std::vector<std::string> subscriptions_;  // topics (topic.hpp)
  TokenBucket orders_;                      // limits.orders_per_second
  TokenBucket requests_;                    // limits.requests_per_second: everything for the engine
  TokenBucket overruns_;                  // the same budget for refusals past it; past both: closed
  std::atomic<std::uint32_t> queued_{0};  // requests in the engine's queue (QueueSlot)
  // devector: no allocation while empty (std::deque allocates ~600 bytes up front), and an
  // idle connection's queue is empty.
  boost::container::devector<Outgoing> queue_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool closing_ = false;  // a close is wanted once the queue drains
  bool closed_ = false;
  bool finished_ = false;  // left the hub and the engine's user list
  boost::beast::websocket::close_reason close_reason_;
};

}  // namespace flashsale::gateway
