// Sequencer: the engine thread. I/O threads submit requests to a bounded queue; this thread
// takes everything queued at once, runs it through the engine (consecutive orders as one
// `place_orders` batch), hands the events to the journal, turns them into messages for buyers
// and viewers, and releases every message only once the journal says the events it depends on
// are durable (or at once with ack = "async").
//
// It also keeps time moving: holds expire and drops open even when no request arrives, a
// countdown `tick` goes out every second, and `stock` updates are coalesced to at most 10 per
// second per drop — fewer for a large audience (limits.stock_deliveries_per_second) — with the
// value at sell-out and at the return of units always sent.
#pragma once

#include <atomic>
#include <boost/unordered/unordered_flat_map.hpp>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "flashsale/engine/engine.hpp"
#include "flashsale/gateway/config.hpp"
#include "flashsale/journal/journal.hpp"
#include "hub.hpp"
#include "metrics.hpp"
#include "outbox.hpp"

namespace flashsale::gateway {

struct HelloRequest {
  std::shared_ptr<Outbox> from;
  std::string user;
  // A gateway's connection seen by an engine: registered for order updates only; the gateway
  // already welcomed it and counted it against connections_per_user.
  bool quiet = false;
};
struct LeaveRequest {
  Outbox* from = nullptr;
  std::string user;
};
struct SubscribeRequest {
  std::shared_ptr<Outbox> from;
  std::string drop;
};
struct OrderRequest {
  std::shared_ptr<Outbox> from;
  std::string drop;
  std::string user;
  std::string client_order_id;
  std::uint32_t qty = 1;
  std::uint64_t tag = 0;  // the asker's number for this message, given back with its answer
};
struct ActionRequest {
  std::shared_ptr<Outbox> from;
  bool confirm = true;
  std::string order_id;
  std::string user;
};

// A host API call: `run` executes on the engine thread, `done` gets the reply once durable.
struct HostReply {
  unsigned status = 200;
  std::string body;  // JSON
};
struct HostContext {
  engine::Engine& engine;
  engine::Events& events;
  engine::TimeMs now_ms;
  bool accepting;  // false: the journal cannot take writes; refuse changes with 503
};
struct HostRequest {
  std::function<HostReply(HostContext&)> run;
  std::function<void(HostReply)> done;  // called on the engine thread: post to your own
  // The answer commits to the state `run` saw: the journal ends a batch there, and the reply
  // (a JSON object) gets that batch's "head", "batch" and "sequence" once it is written.
  bool with_chain_head = false;
  // Not empty: the reply is kept under this key with the cursor that completes the call
  // (journal::KeptReply, encoded by encode_kept_reply), for a successor to send again.
  std::string keep_reply_as;
};

// A kept host reply: "<status> <body>".
std::string encode_kept_reply(const HostReply& reply);
std::optional<HostReply> decode_kept_reply(std::string_view kept);

// An engine serving gateways (docs/scaling.md): the requests before this came from its command
// stream up to entry `id`, which the journal stores with their events — unless `journal` is
// false: a predecessor did those commands and stored a position past them already. Either way
// released_mark() reaches `id` once every answer to those requests has gone to its outbox.
struct CursorMark {
  std::string id;
  bool journal = true;
};

using Request = std::variant<HelloRequest, LeaveRequest, SubscribeRequest, OrderRequest,
                             ActionRequest, HostRequest, CursorMark>;

// What sessions hand their requests to: the engine thread of this process, or (a gateway) the
// link that carries them to the engine owning the drop.
class RequestSink {
 public:
  virtual ~RequestSink() = default;
  // Any thread. False when the request cannot be queued now: answer `busy` yourself.
  virtual bool submit(Request request) = 0;
};

class Sequencer final : public RequestSink {
 public:
  Sequencer(const GatewayConfig& config, journal::Journal& journal, std::vector<Fanout*> fanouts,
            Metrics& metrics);
  ~Sequencer();  // stop()

  // Blocking, before start(): rebuilds the engine from the journal.
  journal::RecoveryStats recover();
  void start();
  // Stops taking requests, finishes those queued, waits (up to `timeout`) for their outcomes
  // to become durable, releases them, and ends the thread.
  void stop(std::chrono::milliseconds timeout);

  // Any thread. False when the queue is full or stopping: answer `busy` yourself.
  bool submit(Request request) override;
  // Any thread: the last CursorMark whose requests' answers were all handed to their outboxes
  // (their events durable), "" before the first: the commands up to it may be acknowledged.
  std::string released_mark() const;
  // All of them or none (false: no room now), with nothing queued between them.
  bool submit_all(std::vector<Request>& requests);

 private:
  struct Release;
  struct DropView;
  void run();
  void process(std::vector<Request>& work, engine::TimeMs now_ms, bool accepting);
  void place(std::vector<Request>& work, std::size_t first, std::size_t end, engine::TimeMs now_ms);
  void handle(HelloRequest& request);
  void handle(LeaveRequest& request);
  void handle(SubscribeRequest& request, engine::TimeMs now_ms);
  void handle(ActionRequest& request, engine::TimeMs now_ms);
  void handle(HostRequest& request, engine::TimeMs now_ms, bool accepting);
  void publish_events(engine::TimeMs now_ms);
  void journal_events();
  void flush_stock_and_ticks(engine::TimeMs now_ms);
  engine::TimeMs stock_interval() const;
  void push_to_user(std::string_view user, SharedFrame frame);
  static std::string waiting_key(engine::DropIndex drop, std::string_view user,
                                 std::string_view client_order_id);
  void answer_waiting(engine::DropIndex drop, std::string_view user,
                      std::string_view client_order_id, const engine::OrderResult& result);
  void to_outbox(std::shared_ptr<Outbox> outbox, SharedFrame frame, FrameKind kind,
                 std::uint32_t drop = 0, std::uint64_t tag = 0);
  void to_viewers(engine::DropIndex drop, SharedFrame frame, FrameKind kind);
  void release_durable();
  DropView& view(engine::DropIndex drop);

  const GatewayConfig& config_;
  journal::Journal& journal_;
  std::vector<Fanout*> fanouts_;
  Metrics& metrics_;
  engine::Engine engine_;
  engine::Events events_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Request> queue_;
  bool stopping_ = false;
  bool durable_advanced_ = false;
  std::thread thread_;

  // Engine thread only.
  std::deque<Release> releases_;
  // Answers that name the journal's chain head wait for their batch even with ack = "async":
  // queued apart, so that they hold nothing else up.
  std::deque<Release> chain_releases_;
  std::vector<DropView> views_;
  // Each signed-in user's connections, for pushing order updates to wherever they are.
  boost::unordered_flat_map<std::string, std::vector<std::weak_ptr<Outbox>>> users_;
  // Orders collected in an admission window, by drop, user and client_order_id: the
  // connections that asked and how many answers each is owed — one per order message, retries
  // included — when the draw decides them. Bounded by the window's orders.
  struct Waiter {
    std::weak_ptr<Outbox> outbox;
    std::vector<std::uint64_t> tags;  // one per order message: the answers owed
  };
  boost::unordered_flat_map<std::string, std::vector<Waiter>> waiting_;
  std::vector<engine::OrderResult> results_;
  std::string cursor_;  // the last CursorMark, for the next append
  // Marks processed, with the last event of the work that held them: released with it.
  std::deque<std::pair<std::uint64_t, std::string>> marks_;
  std::string released_mark_;                        // under mutex_
  std::vector<journal::OrderRecord> order_records_;  // for the downstream order stream
  std::vector<journal::KeptReply> kept_replies_;     // go with the cursor
  std::vector<engine::PlaceOrder> batch_;
};

}  // namespace flashsale::gateway
