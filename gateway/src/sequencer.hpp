// Sequencer: the engine thread. I/O threads submit requests (requests.hpp) to a bounded queue;
// this thread takes everything queued at once, runs it through the engine (consecutive orders
// as one `place_orders` batch), hands the events to the event log, turns them into messages for
// buyers (Buyers) and viewers (ViewerFeed), and releases every message only once the log says
// the events it depends on are durable (Releases). The drops' gates for answers at the edge
// (EdgeGates) go out as soon as they are decided.
//
// It also keeps time moving: holds expire and drops open even when no request arrives, since
// the thread wakes at least every 50 ms and reads its clock.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "buyers.hpp"
#include "clock.hpp"
#include "edge_gates.hpp"
#include "event_log.hpp"
#include "flashsale/engine/engine.hpp"
#include "flashsale/gateway/config.hpp"
#include "flashsale/gateway/order_ids.hpp"
#include "metrics.hpp"
#include "releases.hpp"
#include "requests.hpp"
#include "viewer_feed.hpp"

namespace flashsale::gateway {

class Sequencer final : public GroupSink {
 public:
  // `fanouts` take the drop updates for viewers; `clock` is the time every command carries.
  Sequencer(const GatewayConfig& config, EventLog& log, std::vector<Fanout*> fanouts,
            Metrics& metrics, WallClock clock = wall_ms);
  ~Sequencer() override;  // stop()

  // Blocking, before start(): rebuilds the engine from the log.
  journal::RecoveryStats recover();
  void start();
  // Stops taking requests, finishes those queued, waits (up to `timeout`) for their outcomes
  // to become durable, releases them, and ends the thread. What is still not durable then
  // stays held, with the connections it is for, until discard_unreleased() or destruction.
  void stop(std::chrono::milliseconds timeout);
  // After stop(): gives up on what never became durable (Releases::discard), logging how much.
  // A connection may end here, so call it where no I/O thread runs and before the connections'
  // io_contexts, hubs and ServerContext are destroyed (Server::run).
  void discard_unreleased();

  // Any thread. False when the queue is full or stopping: answer `busy` yourself.
  bool submit(Request request) override;
  bool submit_all(std::vector<Request>& requests) override;
  std::string released_mark() const override { return releases_.released_mark(); }

 private:
  void run();
  void process(std::vector<Request>& work, engine::TimeMs now_ms, bool accepting);
  void place(std::vector<Request>& work, std::size_t first, std::size_t end, engine::TimeMs now_ms);
  void refuse_orders(std::vector<Request>& work, std::size_t first, std::size_t end);
  void handle(SubscribeRequest& request, engine::TimeMs now_ms);
  void handle(ActionRequest& request, engine::TimeMs now_ms);
  void handle(HostRequest& request, engine::TimeMs now_ms, bool accepting);
  void publish_events(engine::TimeMs now_ms);
  void tell_buyers(const engine::Event& event);
  void journal_events();

  const GatewayConfig& config_;
  EventLog& log_;
  Metrics& metrics_;
  const WallClock clock_;
  engine::Engine engine_;
  engine::Events events_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Request> queue_;
  bool stopping_ = false;
  bool durable_advanced_ = false;
  bool following_journal_ = false;  // waiting for the journal's batch: submit() wakes nobody
  std::thread thread_;

  // Engine thread only (released_mark() aside). The order ids' key is the journal's, set by
  // recover() before the thread starts.
  OrderIds order_ids_{OrderIds::random_key()};
  Releases releases_;
  ViewerFeed feed_;
  EdgeGates edge_;
  Buyers buyers_;
  std::vector<engine::OrderResult> results_;
  std::vector<engine::PlaceOrder> batch_;
  std::string cursor_;                               // the last CursorMark, for the next append
  std::vector<journal::OrderRecord> order_records_;  // for the downstream order stream
  std::vector<journal::KeptReply> kept_replies_;     // go with the cursor
};

}  // namespace flashsale::gateway
