// Outbox: what the engine thread and the hubs may hand a viewer's connection. Frames are
// serialized once and shared (`shared_ptr<const std::string>`) by every connection that gets
// them. Every call may come from any thread: the connection posts it to its own I/O thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "edge_gate.hpp"

namespace boost::asio {
class io_context;
}

namespace flashsale::gateway {

using SharedFrame = std::shared_ptr<const std::string>;

// How a frame may be treated by a connection that cannot keep up.
enum class FrameKind : std::uint8_t {
  reply,  // to this connection's own request: never dropped
  order,  // order_result / order_update: never dropped
  drop,   // full state of a drop: never dropped
  state,  // a drop's state changed: never dropped
  stock,  // superseded by a newer stock frame of the same drop
  tick,   // superseded by a newer tick of the same drop
  // A stream's full state (its `drop` number is the stream's index): each one tells all there
  // is, so a newer one of the same stream supersedes it.
  stream,
};

inline bool supersedable(FrameKind kind) {
  return kind == FrameKind::stock || kind == FrameKind::tick || kind == FrameKind::stream;
}

class Outbox {
 public:
  virtual ~Outbox() = default;
  // `drop` tells supersedable frames of different drops (streams) apart.
  virtual void send(SharedFrame frame, FrameKind kind, std::uint32_t drop = 0) = 0;
  // The answer to request `tag` of this connection (an order_result). A connection whose
  // requests are forwarded to an engine elsewhere passes the tag back with the answer, so that
  // its gateway delivers each answer once though a failover may send it twice.
  virtual void send_answer(SharedFrame frame, FrameKind kind, std::uint64_t /*tag*/) {
    send(std::move(frame), kind);
  }
  // The event loop send() posts to (then send_here() there does the same), or nullptr: a
  // Courier hands many frames to one loop in a single post.
  virtual boost::asio::io_context* loop() noexcept { return nullptr; }
  // The same as send(), called on the connection's own thread (by its hub or a Courier). Never
  // closes synchronously, so a hub may call it while iterating its subscribers.
  virtual void send_here(const SharedFrame& frame, FrameKind kind, std::uint32_t drop) = 0;
  // Sends `frame` (if any), then closes with a WebSocket close code and reason.
  virtual void close_with(SharedFrame frame, std::uint16_t code, std::string reason) = 0;
  // The engine knows no drop or stream by this name (a topic, topic.hpp): forget the
  // subscription.
  virtual void forget_subscription(std::string topic) = 0;
  // Own thread: the server is stopping; close (1001) once queued frames are out.
  virtual void shut_down() = 0;
  // Own thread, from its hub every half idle timeout: ping a viewer silent since the last
  // sweep, drop one still silent at the next. Never leaves the hub synchronously. Only a socket
  // of this process has anything to do.
  virtual void sweep() {}
};

// Where the updates of a drop or a stream go to reach its viewers: this process's hubs, or (an
// engine serving gateways) Redis Pub/Sub. Any thread.
class Fanout {
 public:
  virtual ~Fanout() = default;
  // `drop` is the topic (topic.hpp): the drop's id, or a stream's. `drop_index` tells
  // supersedable frames of different drops (streams) apart.
  virtual void publish(std::string drop, SharedFrame frame, FrameKind kind,
                       std::uint32_t drop_index) = 0;
  // A drop's gate for answers at the edge (edge_gate.hpp), to every hub, never paced.
  virtual void gate(std::shared_ptr<const EdgeGate> gate) = 0;
};

inline SharedFrame share(std::string text) {
  return std::make_shared<const std::string>(std::move(text));
}

}  // namespace flashsale::gateway
