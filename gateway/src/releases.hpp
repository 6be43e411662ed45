// Releases: what the engine thread decided, held until the events it depends on are durable
// (docs/durability.md: nothing acknowledged before it is durable). Every message is queued with
// the engine's last sequence when it was decided — 0 with ack = "async", which releases at
// once — and goes out, in the order decided, once the journal's durable sequence reaches it.
//
// Answers that name the journal's chain head (audits) wait for their batch whatever the ack
// mode, in a queue of their own so that they hold nothing else up. Cursor marks (an engine
// serving gateways) are released with the last event of the work that held them.
//
// Engine thread only, except released_mark().
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "courier.hpp"
#include "flashsale/engine/engine.hpp"
#include "flashsale/gateway/config.hpp"
#include "metrics.hpp"
#include "outbox.hpp"

namespace flashsale::gateway {

class Releases {
 public:
  // `metrics`: where order latencies are recorded as answers go out.
  Releases(const engine::Engine& engine, AckMode ack, std::vector<Fanout*> fanouts,
           Metrics& metrics);

  // To one connection; `tag`, if not 0, makes it the answer to that request of the connection's.
  void to_outbox(std::shared_ptr<Outbox> outbox, SharedFrame frame, FrameKind kind,
                 std::uint32_t drop = 0, std::uint64_t tag = 0);
  // An order's answer: as to_outbox, and timed from `received` (unless zero) and `decided`
  // when released (metrics.order_latency, order_durable_wait).
  void order_answer(std::shared_ptr<Outbox> outbox, SharedFrame frame, std::uint64_t tag,
                    std::chrono::steady_clock::time_point received,
                    std::chrono::steady_clock::time_point decided);
  // To every viewer of the drop, through every fanout; or of a stream: its index and topic
  // (topic.hpp) instead.
  void to_viewers(engine::DropIndex drop, std::string_view drop_id, SharedFrame frame,
                  FrameKind kind);
  // A host call's answer.
  void to_host(std::function<void()> answer);
  // Once the batch ending at `sequence` is written, whatever the ack mode.
  void at_chain_head(std::uint64_t sequence, std::function<void()> answer);
  // The commands up to `id` are answered once the engine's last event so far is durable: every
  // answer to them is queued by then with at most that sequence.
  void mark(std::string id);

  // Releases everything queued up to `durable`, in order.
  void release(std::uint64_t durable);
  // Gives up on everything still queued, unreleased: at shutdown, what never became durable is
  // never sent (docs/durability.md), and a host call whose change may or may not be in the
  // journal gets no answer either (a 503 would invite a retry that could apply it twice).
  // What is queued holds connections, and a connection's last reference may go here: call it
  // where their I/O side (io_context, hub, ServerContext) still exists and none of it runs.
  void discard();
  bool empty() const { return queue_.empty() && chain_.empty(); }
  std::size_t size() const { return queue_.size() + chain_.size(); }
  // Any thread: the last mark released, "" before the first.
  std::string released_mark() const;

 private:
  struct Release {
    std::uint64_t sequence = 0;
    std::shared_ptr<Outbox> outbox;  // to one connection, or
    std::uint32_t drop = 0;          // to every viewer of this drop (with drop_id), or
    std::string drop_id;
    std::function<void()> host;  // a host call's answer
    SharedFrame frame;
    FrameKind kind = FrameKind::reply;
    std::uint64_t tag = 0;  // the answer to this request of the outbox's (0: none)
    std::chrono::steady_clock::time_point received{};  // an order's, to time it (zero: not)
    std::chrono::steady_clock::time_point decided{};
  };
  std::uint64_t sequence() const;

  const engine::Engine& engine_;
  const AckMode ack_;
  const std::vector<Fanout*> fanouts_;
  Metrics& metrics_;
  std::deque<Release> queue_;
  std::deque<Release> chain_;
  std::deque<std::pair<std::uint64_t, std::string>> marks_;
  Courier courier_;  // a release's frames to connections, one post per I/O thread
  mutable std::mutex mark_mutex_;
  std::string released_mark_;  // under mark_mutex_
};

}  // namespace flashsale::gateway
