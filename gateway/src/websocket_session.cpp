// See websocket_session.hpp. Handlers come in do_/on_ pairs; each on_ starts with the error.
#include "websocket_session.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include "clock.hpp"
#include "flashsale/gateway/tokens.hpp"
#include "topic.hpp"

namespace flashsale::gateway {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
using protocol::ClientType;
using protocol::ErrorCode;

namespace {

// The JSON tree of the frame being handled; one per I/O thread, as handling is synchronous.
thread_local protocol::ParseBuffer parse_buffer;

// What a subscribe or unsubscribe follows (topic.hpp).
std::string subscription_topic(const protocol::ClientMessage& message) {
  return message.stream.empty() ? std::string(message.drop) : topic::of_stream(message.stream);
}

}  // namespace

template <class Stream>
WebsocketSession<Stream>::WebsocketSession(Stream&& stream, ServerContext& context, Hub& hub,
                                           SourceLimits::Slot source_slot)
    : ws_(std::move(stream)),
      context_(context),
      hub_(hub),
      source_slot_(std::move(source_slot)),
      deadline_(ws_.get_executor()),
      orders_(TokenBucket::full(context.config.limits.orders_burst)),
      requests_(TokenBucket::full(context.config.limits.requests_burst, orders_.at)),
      overruns_(TokenBucket::full(context.config.limits.requests_burst, orders_.at)) {
  context_.metrics.connections_open.fetch_add(1, std::memory_order_relaxed);
}

template <class Stream>
WebsocketSession<Stream>::~WebsocketSession() {
  finish();  // normally done already; not when the server stops with the connection open
  source_slot_ = SourceLimits::Slot();  // its address's place is free before the gauge says so
  context_.metrics.connections_open.fetch_sub(1, std::memory_order_relaxed);
}

template <class Stream>
void WebsocketSession<Stream>::start(beast::http::request<beast::http::string_body> upgrade) {
  const Limits& limits = context_.config.limits;
  // The idle timeout is the hub's sweep (sweep()); Beast keeps the handshake's and the close's.
  websocket::stream_base::timeout timeouts{limits.handshake_timeout, websocket::stream_base::none(),
                                           false};
  ws_.set_option(timeouts);
  // Pongs (and pings) are read inside Beast's read; they count as hearing from the viewer.
  ws_.control_callback([this](websocket::frame_type, beast::string_view) { heard_ = true; });
  ws_.read_message_max(limits.frame_bytes_max);
  ws_.auto_fragment(false);
  ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& response) {
    response.set(beast::http::field::server, "flashsale");
  }));
  hub_.join(this);
  ws_.async_accept(upgrade, beast::bind_front_handler(&WebsocketSession<Stream>::on_accept,
                                                      this->shared_from_this()));
}

template <class Stream>
void WebsocketSession<Stream>::on_accept(beast::error_code error) {
  if (error) return finish();
  // A viewer has handshake_timeout to say hello.
  deadline_.expires_after(context_.config.limits.handshake_timeout);
  deadline_.async_wait([self = this->shared_from_this()](beast::error_code cancelled) {
    if (!cancelled && !self->signed_in_ && !self->closing_)
      self->close_with(share(protocol::error(ErrorCode::unauthenticated, "say hello first")), 1008,
                       "no hello in time");
  });
  do_read();
}

template <class Stream>
void WebsocketSession<Stream>::do_read() {
  ws_.async_read(buffer_, beast::bind_front_handler(&WebsocketSession<Stream>::on_read,
                                                    this->shared_from_this()));
}

template <class Stream>
void WebsocketSession<Stream>::on_read(beast::error_code error, std::size_t) {
  if (error == websocket::error::message_too_big) {
    // Beast fails the connection with close code 1009 (too big) itself.
    context_.metrics.protocol_errors.fetch_add(1, std::memory_order_relaxed);
    return finish();
  }
  if (error) return finish();
  heard_ = true;
  context_.metrics.messages_in.fetch_add(1, std::memory_order_relaxed);
  const std::string_view frame(static_cast<const char*>(buffer_.data().data()), buffer_.size());
  if (!ws_.got_text() && !signed_in_) {
    close_with(share(protocol::error(ErrorCode::unauthenticated, "say hello first")), 1008,
               "unauthenticated");
  } else if (!ws_.got_text()) {
    refuse(ErrorCode::bad_json, "frames must be text (JSON)", {});
  } else {
    protocol::ClientMessage message;
    if (auto problem = protocol::parse(frame, parse_buffer, message)) {
      if (!signed_in_) {
        close_with(share(protocol::error(ErrorCode::unauthenticated, "say hello first")), 1008,
                   "unauthenticated");
      } else {
        refuse(problem->code, problem->message, problem->ref);
      }
    } else {
      handle(message);
    }
  }
  buffer_.consume(buffer_.size());
  if (!closing_) do_read();
}

template <class Stream>
void WebsocketSession<Stream>::handle(const protocol::ClientMessage& message) {
  if (!signed_in_) {
    if (message.type == ClientType::hello) return hello(message);
    return close_with(share(protocol::error(ErrorCode::unauthenticated, "say hello first")), 1008,
                      "unauthenticated");
  }
  RequestSink& requests = context_.requests;
  const auto self = this->shared_from_this();
  switch (message.type) {
    case ClientType::hello:
      return refuse(ErrorCode::bad_field, "already signed in", "hello");
    case ClientType::time:
      return reply(protocol::time(wall_ms()));
    case ClientType::subscribe: {
      // A drop or a stream, followed by its topic; refusals name it by its id.
      const std::string_view ref = message.stream.empty() ? message.drop : message.stream;
      const std::string topic = subscription_topic(message);
      // Answered here: the engine is not asked twice for what this connection already gets.
      if (std::find(subscriptions_.begin(), subscriptions_.end(), topic) != subscriptions_.end())
        return refuse(ErrorCode::bad_field, "already subscribed; unsubscribe first to start over",
                      ref);
      if (subscriptions_.size() >= context_.config.limits.subscriptions_max) {
        context_.metrics.count_limited(Limit::subscriptions_per_connection);
        return refuse(ErrorCode::rate_limited, "too many subscriptions on this connection", ref);
      }
      if (const auto refusal = engine_refusal(std::chrono::steady_clock::now()))
        return refuse(ErrorCode::rate_limited, *refusal, ref);
      subscriptions_.push_back(topic);
      hub_.subscribe(topic, this);
      if (!requests.submit(SubscribeRequest{self, topic, user_, QueueSlot(queued_)})) {
        // Not followed: subscribing again must reach the engine.
        std::erase(subscriptions_, topic);
        hub_.unsubscribe(topic, this);
        refuse(ErrorCode::rate_limited, "the server is busy; subscribe again", ref);
      }
      return;
    }
    case ClientType::unsubscribe: {
      const std::string topic = subscription_topic(message);
      std::erase(subscriptions_, topic);
      hub_.unsubscribe(topic, this);
      return;
    }
    case ClientType::order: {
      const Limits& limits = context_.config.limits;
      const auto now = std::chrono::steady_clock::now();
      std::optional<std::string_view> refusal;
      if (!orders_.take(limits.orders_per_second, limits.orders_burst, now)) {
        context_.metrics.count_limited(Limit::orders_per_connection);
        refusal = "too many orders from this connection";
      } else if (const EdgeGate* gate = edge_gate(message, now)) {
        if (gate->waitlist_full) context_.metrics.count_limited(Limit::waitlist_full);
        context_.metrics.count_order(protocol::GatewayStatus::sold_out);
        context_.metrics.orders_at_edge.fetch_add(1, std::memory_order_relaxed);
        return reply(protocol::order_result_status(
            message.drop, message.client_order_id, protocol::GatewayStatus::sold_out,
            "sold out; a retry may get units that come back"));
      } else {
        refusal = engine_refusal(now);
      }
      if (refusal) {
        context_.metrics.count_order(protocol::GatewayStatus::rate_limited);
        return reply(protocol::order_result_status(message.drop, message.client_order_id,
                                                   protocol::GatewayStatus::rate_limited,
                                                   *refusal));
      }
      if (!requests.submit(OrderRequest{
              self, std::string(message.drop), user_, std::string(message.client_order_id),
              std::string(message.variant), message.qty, 0, QueueSlot(queued_), now})) {
        context_.metrics.count_order(protocol::GatewayStatus::busy);
        reply(protocol::order_result_status(
            message.drop, message.client_order_id, protocol::GatewayStatus::busy,
            "the server is busy; retry with the same client_order_id"));
      }
      return;
    }
    case ClientType::confirm:
    case ClientType::cancel:
      if (const auto refusal = engine_refusal(std::chrono::steady_clock::now()))
        return refuse(ErrorCode::rate_limited, *refusal, message.order_id);
      if (!requests.submit(ActionRequest{self, message.type == ClientType::confirm,
                                         std::string(message.order_id), user_, QueueSlot(queued_)}))
        refuse(ErrorCode::rate_limited, "the server is busy; retry", message.order_id);
      return;
  }
}

// The gate by which the drop's hub answers this order sold_out itself (edge_gate.hpp), or null.
// A malformed client_order_id is the engine's to call invalid.
template <class Stream>
const EdgeGate* WebsocketSession<Stream>::edge_gate(const protocol::ClientMessage& order,
                                                    std::chrono::steady_clock::time_point now) {
  const EdgeGate* gate =
      hub_.answers_at_edge(order.drop, user_hash_, order.qty, order.variant, now);
  return gate != nullptr &&
                 engine::is_valid_name(order.client_order_id, engine::client_order_id_length_max)
             ? gate
             : nullptr;
}

template <class Stream>
void WebsocketSession<Stream>::hello(const protocol::ClientMessage& message) {
  std::string user;
  if (!message.token.empty()) {
    TokenCheck check = verify_token(context_.config.token_secret, message.token, wall_ms() / 1000,
                                    context_.config.token_lifetime_max_s);
    if (check.user.empty())
      return close_with(share(protocol::error(ErrorCode::unauthenticated, check.problem, "hello")),
                        1008, "unauthenticated");
    user = std::move(check.user);
  } else if (context_.config.auth == AuthMode::dev &&
             engine::is_valid_name(message.user, engine::user_length_max)) {
    user = std::string(message.user);
  } else {
    return close_with(
        share(protocol::error(ErrorCode::unauthenticated, "a valid token is required", "hello")),
        1008, "unauthenticated");
  }
  signed_in_ = true;
  user_ = user;
  user_hash_ = user_hash(user_);
  deadline_.cancel();
  if (!context_.requests.submit(HelloRequest{this->shared_from_this(), std::move(user)}))
    close_with(
        share(protocol::error(ErrorCode::rate_limited, "the server is busy; reconnect", "hello")),
        1013, "busy");
}

template <class Stream>
void WebsocketSession<Stream>::reply(std::string frame) {
  enqueue(share(std::move(frame)), FrameKind::reply, 0);
}

template <class Stream>
void WebsocketSession<Stream>::refuse(ErrorCode code, std::string_view message,
                                      std::string_view ref) {
  context_.metrics.protocol_errors.fetch_add(1, std::memory_order_relaxed);
  reply(protocol::error(code, message, ref));
}

// This connection's share of the engine (docs/protocol.md, "Limits"): at most queue_share()
// of its requests waiting in the engine's queue, and a budget of requests_per_second (bursts
// of requests_burst). Refusals, for either reason, have a budget of their own: a connection
// that keeps sending past it is closed with 1008 — however slow the engine is, so a flood that
// keeps its share of the queue full is closed too. Nothing if the engine may be asked; else why
// not.
template <class Stream>
std::optional<std::string_view> WebsocketSession<Stream>::engine_refusal(
    std::chrono::steady_clock::time_point now) {
  const Limits& limits = context_.config.limits;
  const auto refused = [&](Limit limit, std::string_view why) {
    context_.metrics.count_limited(limit);
    if (!overruns_.take(limits.requests_per_second, limits.requests_burst, now) && !closing_) {
      spdlog::info("closing viewer {}: requests far past its budget", user_);
      begin_close(websocket::close_code::policy_error, "too many requests");
    }
    return std::optional<std::string_view>(why);
  };
  if (queued_.load(std::memory_order_relaxed) >= limits.queue_share())
    return refused(Limit::queue_share,
                   "too many requests from this connection are waiting; wait for their answers");
  if (requests_.take(limits.requests_per_second, limits.requests_burst, now)) return std::nullopt;
  return refused(Limit::requests_per_connection,
                 "too many requests from this connection; slow down");
}

template <class Stream>
void WebsocketSession<Stream>::send(SharedFrame frame, FrameKind kind, std::uint32_t drop) {
  boost::asio::post(ws_.get_executor(), [self = this->shared_from_this(), frame = std::move(frame),
                                         kind, drop] { self->send_here(frame, kind, drop); });
}

template <class Stream>
void WebsocketSession<Stream>::send_here(const SharedFrame& frame, FrameKind kind,
                                         std::uint32_t drop) {
  enqueue(frame, kind, drop);
}

template <class Stream>
void WebsocketSession<Stream>::close_with(SharedFrame frame, std::uint16_t code,
                                          std::string reason) {
  boost::asio::post(ws_.get_executor(), [self = this->shared_from_this(), frame = std::move(frame),
                                         code, reason = std::move(reason)]() mutable {
    if (frame) self->enqueue(frame, FrameKind::reply, 0);
    self->begin_close(code, std::move(reason));
  });
}

template <class Stream>
void WebsocketSession<Stream>::forget_subscription(std::string topic) {
  boost::asio::post(ws_.get_executor(),
                    [self = this->shared_from_this(), topic = std::move(topic)] {
                      std::erase(self->subscriptions_, topic);
                      self->hub_.unsubscribe(topic, self.get());
                    });
}

template <class Stream>
void WebsocketSession<Stream>::shut_down() {
  begin_close(websocket::close_code::going_away, "server shutting down");
}

// Keep-alive as Beast's own idle timeout does it (a ping after half the idle timeout of
// silence, the socket closed after the whole of it), only timed by the hub: a viewer is pinged
// after one to two sweep periods of silence and dropped one period later. Before hello the
// hello deadline rules; a closing connection has its own.
template <class Stream>
void WebsocketSession<Stream>::sweep() {
  if (!signed_in_ || closing_ || finished_) return;
  if (heard_) {
    heard_ = false;
    pinged_ = false;
    return;
  }
  if (!pinged_) {
    pinged_ = true;
    ws_.async_ping({}, [self = this->shared_from_this()](beast::error_code) {});
    return;
  }
  context_.metrics.idle_viewers_closed.fetch_add(1, std::memory_order_relaxed);
  boost::system::error_code ignored;
  beast::get_lowest_layer(ws_).close(
      ignored);  // the read fails, and finish() follows on its own turn
}

template <class Stream>
void WebsocketSession<Stream>::enqueue(const SharedFrame& frame, FrameKind kind,
                                       std::uint32_t drop) {
  if (closed_ || (closing_ && kind != FrameKind::reply)) return;
  if (supersedable(kind)) {
    for (Outgoing& queued : queue_) {
      // The one at the front may be being written; only replace what is still waiting.
      if (&queued == &queue_.front() && writing_) continue;
      if (queued.kind == kind && queued.drop == drop) {
        queued_bytes_ = queued_bytes_ - queued.frame->size() + frame->size();
        queued.frame = frame;
        context_.metrics.frames_superseded.fetch_add(1, std::memory_order_relaxed);
        return;
      }
    }
  }
  queue_.push_back({frame, kind, drop});
  queued_bytes_ += frame->size();
  if (queued_bytes_ > context_.config.limits.queue_bytes_max) {
    context_.metrics.slow_viewers_closed.fetch_add(1, std::memory_order_relaxed);
    spdlog::info("closing slow viewer {} ({} bytes queued)", user_, queued_bytes_);
    // Keep only what is being written; a viewer this far behind gets nothing more.
    while (queue_.size() > (writing_ ? 1u : 0u)) {
      queued_bytes_ -= queue_.back().frame->size();
      queue_.pop_back();
    }
    begin_close(websocket::close_code::try_again_later, "too slow: messages were piling up");
    return;
  }
  if (!writing_) do_write();
}

template <class Stream>
void WebsocketSession<Stream>::do_write() {
  if (queue_.empty()) {
    if (closing_ && !closed_) {
      closed_ = true;
      ws_.async_close(close_reason_,
                      [self = this->shared_from_this()](beast::error_code) { self->finish(); });
    }
    return;
  }
  writing_ = true;
  ws_.text(true);
  ws_.async_write(
      boost::asio::buffer(*queue_.front().frame),
      beast::bind_front_handler(&WebsocketSession<Stream>::on_write, this->shared_from_this()));
}

template <class Stream>
void WebsocketSession<Stream>::on_write(beast::error_code error, std::size_t) {
  writing_ = false;
  if (error) return finish();
  context_.metrics.messages_out.fetch_add(1, std::memory_order_relaxed);
  queued_bytes_ -= queue_.front().frame->size();
  queue_.pop_front();
  do_write();
}

template <class Stream>
void WebsocketSession<Stream>::begin_close(std::uint16_t code, std::string reason) {
  if (closing_) return;
  closing_ = true;
  close_reason_ =
      websocket::close_reason(static_cast<websocket::close_code>(code), std::move(reason));
  // A viewer that stopped reading may never let the close through: give it a moment, then
  // drop the connection.
  deadline_.expires_after(std::chrono::seconds(2));
  deadline_.async_wait([self = this->shared_from_this()](beast::error_code cancelled) {
    boost::system::error_code ignored;
    if (!cancelled) beast::get_lowest_layer(self->ws_).close(ignored);
  });
  if (!writing_) do_write();
}

// The connection is over: leave the hub and the engine's user list. Idempotent.
template <class Stream>
void WebsocketSession<Stream>::finish() {
  if (finished_) return;
  finished_ = true;
  closed_ = true;
  deadline_.cancel();
  for (const std::string& topic : subscriptions_) hub_.unsubscribe(topic, this);
  subscriptions_.clear();
  hub_.leave(this);
  // Signed in or not: a gateway forgets the connection's id, which a subscription gave it.
  context_.requests.submit(LeaveRequest{this, signed_in_ ? user_ : std::string()});
}

template class WebsocketSession<PlainStream>;
template class WebsocketSession<TlsStream>;

}  // namespace flashsale::gateway
