// The engine thread without Redis: an in-memory event log that can be made slow (durability
// only when the test says, appends that wait at a gate) or failing (refusing writes), a clock
// the test moves, and outboxes that record what they are sent. Every wait is on an event, with
// a deadline that fails the test rather than hanging it.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <condition_variable>
#include <map>
#include <mutex>

#include "sequencer.hpp"

namespace flashsale::gateway {
namespace {

using namespace std::chrono_literals;
using engine::TimeMs;
constexpr auto patience = 10s;

// Waits on `changed` under `mutex` until `ready()`; false at the deadline.
template <typename Ready>
bool await(std::mutex& mutex, std::condition_variable& changed, Ready ready) {
  std::unique_lock lock(mutex);
  return changed.wait_for(lock, patience, ready);
}

class MemoryLog final : public EventLog {
 public:
  // Durability as the test says: nothing is durable until make_durable().
  void hold_durability() {
    std::lock_guard lock(mutex_);
    automatic_ = false;
  }
  void make_durable() {
    std::function<void(const journal::DurableBatch&)> callback;
    std::uint64_t durable = 0;
    {
      std::lock_guard lock(mutex_);
      durable_ = appended_;
      durable = durable_;
      callback = on_durable_;
    }
    changed_.notify_all();
    if (callback) callback({durable, 0, std::nullopt});
  }
  // Appends of events wait at a closed gate until it opens: a journal too slow for the engine
  // thread.
  void close_gate() {
    std::lock_guard lock(mutex_);
    gate_open_ = false;
  }
  void open_gate() {
    {
      std::lock_guard lock(mutex_);
      gate_open_ = true;
    }
    changed_.notify_all();
  }
  bool wait_blocked_at_gate() {
    return await(mutex_, changed_, [&] { return at_gate_; });
  }
  void refuse_writes(bool refuse) { accepting_ = !refuse; }
  bool wait_appended(std::uint64_t sequence) {
    return await(mutex_, changed_, [&] { return appended_ >= sequence; });
  }
  std::uint64_t appended() const {
    std::lock_guard lock(mutex_);
    return appended_;
  }
  std::string last_cursor() const {
    std::lock_guard lock(mutex_);
    return cursor_;
  }
  std::size_t kept_replies() const {
    std::lock_guard lock(mutex_);
    return kept_;
  }
  // The order stream's records, once there are `count`.
  std::vector<journal::OrderRecord> wait_orders(std::size_t count) {
    EXPECT_TRUE(await(mutex_, changed_, [&] { return orders_.size() >= count; }));
    std::lock_guard lock(mutex_);
    return orders_;
  }

  void on_durable(std::function<void(const journal::DurableBatch&)> callback) override {
    std::lock_guard lock(mutex_);
    on_durable_ = std::move(callback);
  }
  journal::RecoveryStats recover(engine::Engine&) override { return {}; }
  void append(std::span<const engine::Event> events, std::string_view cursor,
              std::span<const journal::OrderRecord> orders,
              std::span<const journal::KeptReply> replies) override {
    std::function<void(const journal::DurableBatch&)> callback;
    std::uint64_t durable = 0;
    {
      std::unique_lock lock(mutex_);
      if (!events.empty() && !gate_open_) {
        at_gate_ = true;
        changed_.notify_all();
        changed_.wait(lock, [&] { return gate_open_; });
        at_gate_ = false;
      }
      if (!events.empty()) appended_ = events.back().sequence;
      if (!cursor.empty()) cursor_ = cursor;
      orders_.insert(orders_.end(), orders.begin(), orders.end());
      kept_ += replies.size();
      if (automatic_ && durable_ < appended_) {
        durable_ = appended_;
        durable = durable_;
        callback = on_durable_;
      }
    }
    changed_.notify_all();
    if (callback) callback({durable, 0, std::nullopt});
  }
  void cut() override {
    std::lock_guard lock(mutex_);
    cuts_.push_back(appended_);
  }
  std::optional<journal::ChainHead> chain_head(std::uint64_t sequence) const override {
    std::lock_guard lock(mutex_);
    if (durable_ < sequence || std::find(cuts_.begin(), cuts_.end(), sequence) == cuts_.end())
      return std::nullopt;
    journal::ChainHead head;
    head.batch = cuts_.size();
    head.last_sequence = sequence;
    return head;
  }
  bool snapshot_due() const override { return false; }
  void append_snapshot(const engine::Engine&) override {}
  std::uint64_t durable_sequence() const override {
    std::lock_guard lock(mutex_);
    return durable_;
  }
  bool wait_durable(std::uint64_t sequence, std::chrono::milliseconds timeout) const override {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return durable_ >= sequence; });
  }
  bool accepting() const override { return accepting_; }

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::function<void(const journal::DurableBatch&)> on_durable_;
  std::uint64_t appended_ = 0;
  std::uint64_t durable_ = 0;
  bool automatic_ = true;
  bool gate_open_ = true;
  bool at_gate_ = false;
  std::atomic<bool> accepting_{true};
  std::string cursor_;
  std::vector<journal::OrderRecord> orders_;
  std::size_t kept_ = 0;
  std::vector<std::uint64_t> cuts_;
};

struct Sent {
  boost::json::object frame;
  FrameKind kind;
  std::uint64_t tag;
};

class RecordingOutbox final : public Outbox {
 public:
  void send(SharedFrame frame, FrameKind kind, std::uint32_t) override { record(*frame, kind, 0); }
  void send_answer(SharedFrame frame, FrameKind kind, std::uint64_t tag) override {
    record(*frame, kind, tag);
  }
  void send_here(const SharedFrame& frame, FrameKind kind, std::uint32_t) override {
    record(*frame, kind, 0);
  }
  void close_with(SharedFrame frame, std::uint16_t, std::string) override {
    record(*frame, FrameKind::reply, 0);
  }
  void forget_subscription(std::string) override {}
  void shut_down() override {}

  // The first `count` frames, once they have come.
  std::vector<Sent> wait_for(std::size_t count) {
    EXPECT_TRUE(await(mutex_, changed_, [&] { return sent_.size() >= count; }))
        << "only " << sent_.size() << " of " << count << " frames came";
    std::lock_guard lock(mutex_);
    return sent_;
  }
  std::size_t count() const {
    std::lock_guard lock(mutex_);
    return sent_.size();
  }

 private:
  void record(const std::string& frame, FrameKind kind, std::uint64_t tag) {
    {
      std::lock_guard lock(mutex_);
      sent_.push_back({boost::json::parse(frame).as_object(), kind, tag});
    }
    changed_.notify_all();
  }
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Sent> sent_;
};

// What the hubs would fan out to viewers: the drop updates, in order.
class RecordingFanout final : public Fanout {
 public:
  void publish(std::string topic, SharedFrame frame, FrameKind kind, std::uint32_t) override {
    {
      std::lock_guard lock(mutex_);
      published_.push_back({boost::json::parse(*frame).as_object(), kind, 0});
      topics_.push_back(std::move(topic));
    }
    changed_.notify_all();
  }
  void gate(std::shared_ptr<const EdgeGate>) override {}

  // The first frame from the `from`th on that `fits`, once it has come.
  template <typename Fits>
  std::optional<boost::json::object> wait_for(std::size_t from, Fits fits) {
    std::optional<boost::json::object> found;
    EXPECT_TRUE(await(mutex_, changed_,
                      [&] {
                        for (std::size_t index = from; index < published_.size() && !found; ++index)
                          if (fits(published_[index].frame)) found = published_[index].frame;
                        return found.has_value();
                      }))
        << "no such frame among " << published_.size();
    return found;
  }
  std::size_t count() const {
    std::lock_guard lock(mutex_);
    return published_.size();
  }
  // Every frame of `type` so far, and the topic each was published to.
  std::vector<std::pair<std::string, boost::json::object>> of_type(std::string_view type) const {
    std::lock_guard lock(mutex_);
    std::vector<std::pair<std::string, boost::json::object>> found;
    for (std::size_t index = 0; index < published_.size(); ++index)
      if (published_[index].frame.at("type").as_string() == type)
        found.emplace_back(topics_[index], published_[index].frame);
    return found;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Sent> published_;
  std::vector<std::string> topics_;  // by published_'s index
};

// A host call's reply, awaited.
class HostAnswer {
 public:
  std::function<void(HostReply)> done() {
    return [this](HostReply reply) {
      // Notified under the lock: the waiter may return and destroy this as soon as it is free.
      std::lock_guard lock(mutex_);
      reply_ = std::move(reply);
      changed_.notify_all();
    };
  }
  HostReply wait() {
    EXPECT_TRUE(await(mutex_, changed_, [&] { return reply_.has_value(); })) << "no host reply";
    std::lock_guard lock(mutex_);
    return reply_.value_or(HostReply{0, {}});
  }
  bool answered() const {
    std::lock_guard lock(mutex_);
    return reply_.has_value();
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::optional<HostReply> reply_;
};

class SequencerTest : public ::testing::Test {
 protected:
  SequencerTest() { config_.limits.engine_queue_max = 8; }
  ~SequencerTest() override {
    log_.open_gate();  // a test that failed at the gate must not hang the engine thread's stop
    sequencer_.reset();
  }

  void start() {
    sequencer_.emplace(config_, log_, std::vector<Fanout*>{&viewers_}, metrics_,
                       [this] { return now_.load(); });
    sequencer_->recover();
    sequencer_->start();
  }

  HostReply host(host::Command command) {
    HostAnswer answer;
    EXPECT_TRUE(sequencer_->submit(
        HostRequest{std::move(command), host::Caller::operator_(), answer.done(), {}}));
    return answer.wait();
  }

  // A drop open now, unless it has an admission window (then it opens now and collects).
  void open_drop(std::string id, std::uint32_t stock, TimeMs window_ms = 0) {
    host::CreateDrop create;
    create.id = id;
    create.title = "t";
    create.price_cents = 100;
    create.stock = stock;
    create.per_user_limit = 1;
    create.hold_ms = 60'000;
    create.admission_window_ms = window_ms;
    ASSERT_EQ(host(create).status, 201u);
    ASSERT_EQ(host(host::StartCountdown{id, 0, 42}).status, 200u);
  }

  // Submits a host call whose answer the test awaits later.
  void submit_host(host::Command command, HostAnswer& answer) {
    EXPECT_TRUE(sequencer_->submit(
        HostRequest{std::move(command), host::Caller::operator_(), answer.done(), {}}));
  }

  OrderRequest order(std::shared_ptr<Outbox> from, std::string user, std::string client_order_id,
                     std::uint64_t tag, std::string drop = "d", std::string variant = {}) {
    return OrderRequest{.from = std::move(from),
                        .drop = std::move(drop),
                        .user = std::move(user),
                        .client_order_id = std::move(client_order_id),
                        .variant = std::move(variant),
                        .qty = 1,
                        .tag = tag};
  }

  GatewayConfig config_;
  MemoryLog log_;
  RecordingFanout viewers_;
  Metrics metrics_;
  std::atomic<TimeMs> now_{1'000'000};
  std::optional<Sequencer> sequencer_;
};

TEST_F(SequencerTest, AnswersWaitUntilTheirEventsAreDurable) {
  start();
  open_drop("d", 5);
  log_.hold_durability();
  const auto buyer = std::make_shared<RecordingOutbox>();
  const auto bystander = std::make_shared<RecordingOutbox>();
  const std::uint64_t before = log_.appended();
  ASSERT_TRUE(sequencer_->submit(order(buyer, "u1", "c1", 7)));
  ASSERT_TRUE(log_.wait_appended(before + 1));
  // A later request answered at once proves the order's turn of the loop has ended.
  ASSERT_TRUE(sequencer_->submit(SubscribeRequest{bystander, "no-such-drop"}));
  bystander->wait_for(1);
  EXPECT_EQ(buyer->count(), 0u) << "answered before its reservation was durable";

  log_.make_durable();
  const auto sent = buyer->wait_for(1);
  EXPECT_EQ(sent[0].frame.at("status"), "reserved");
  EXPECT_EQ(sent[0].tag, 7u);
  EXPECT_EQ(sent[0].kind, FrameKind::order);
}

TEST_F(SequencerTest, AGroupIsOneBatchAndItsMarkIsReleasedAfterItsAnswers) {
  start();
  open_drop("d", 3);
  log_.hold_durability();
  const auto buyer = std::make_shared<RecordingOutbox>();
  std::vector<Request> group;
  for (int index = 1; index <= 5; ++index)
    group.push_back(order(buyer, "u" + std::to_string(index), "c", index));
  group.push_back(CursorMark{"17-0", true});
  const auto batches = metrics_.engine_batches.load();
  const std::uint64_t before = log_.appended();
  ASSERT_TRUE(sequencer_->submit_all(group));
  ASSERT_TRUE(log_.wait_appended(before + 5));  // three reserved, two sold out: all recorded
  EXPECT_EQ(sequencer_->released_mark(), "") << "the mark went out before the answers";
  EXPECT_EQ(log_.last_cursor(), "17-0") << "the cursor travels with the group's events";

  log_.make_durable();
  const auto sent = buyer->wait_for(5);
  EXPECT_EQ(metrics_.engine_batches.load(), batches + 1) << "the group was split";
  // The turn that released the answers has ended once a later request is answered.
  const auto bystander = std::make_shared<RecordingOutbox>();
  ASSERT_TRUE(sequencer_->submit(SubscribeRequest{bystander, "no-such-drop"}));
  bystander->wait_for(1);
  for (std::size_t index = 0; index < 5; ++index) {
    EXPECT_EQ(sent[index].tag, index + 1) << "answers out of order";
    EXPECT_EQ(sent[index].frame.at("status"), index < 3 ? "reserved" : "sold_out");
  }
  // Released with the answers it covers.
  EXPECT_EQ(sequencer_->released_mark(), "17-0");
}

TEST_F(SequencerTest, TheAdmissionDrawAnswersEveryOrderMessageThatWaited) {
  start();
  open_drop("d", 1, 1'000);  // one unit, drawn among the orders of the first second
  const auto first = std::make_shared<RecordingOutbox>();
  const auto second = std::make_shared<RecordingOutbox>();
  ASSERT_TRUE(sequencer_->submit(order(first, "u1", "c1", 1)));
  ASSERT_TRUE(sequencer_->submit(order(first, "u1", "c1", 2)));  // a retry: answered too
  ASSERT_TRUE(sequencer_->submit(order(second, "u2", "c2", 3)));
  const auto bystander = std::make_shared<RecordingOutbox>();
  ASSERT_TRUE(sequencer_->submit(SubscribeRequest{bystander, "no-such-drop"}));
  bystander->wait_for(1);
  EXPECT_EQ(first->count() + second->count(), 0u) << "answered before the draw";

  now_ += 1'001;  // the window closes; the thread wakes by itself within 50 ms
  const auto to_first = first->wait_for(2);
  const auto to_second = second->wait_for(1);
  EXPECT_EQ(to_first[0].frame.at("status"), to_first[1].frame.at("status"));
  EXPECT_EQ(to_first[0].tag + to_first[1].tag, 3u);
  const bool first_won = to_first[0].frame.at("status") == "reserved";
  EXPECT_EQ(to_second[0].frame.at("status"), first_won ? "sold_out" : "reserved");
  EXPECT_EQ(to_second[0].tag, 3u);
}

TEST_F(SequencerTest, AFullQueueRefusesAndLosesNothingItTook) {
  start();
  open_drop("d", 100);
  log_.close_gate();
  const auto buyer = std::make_shared<RecordingOutbox>();
  ASSERT_TRUE(sequencer_->submit(order(buyer, "u0", "c", 100)));
  ASSERT_TRUE(log_.wait_blocked_at_gate());  // the engine thread waits on a slow journal
  std::size_t taken = 0;
  for (std::uint64_t tag = 1; tag <= config_.limits.engine_queue_max + 4; ++tag)
    taken += sequencer_->submit(order(buyer, "u" + std::to_string(tag), "c", tag)) ? 1 : 0;
  EXPECT_EQ(taken, config_.limits.engine_queue_max) << "the queue is not bounded";

  log_.open_gate();
  const auto sent = buyer->wait_for(taken + 1);
  for (const Sent& answer : sent) EXPECT_EQ(answer.frame.at("status"), "reserved");
}

TEST_F(SequencerTest, AJournalThatCannotWriteRefusesChangesAtOnce) {
  start();
  open_drop("d", 5);
  log_.refuse_writes(true);
  const auto buyer = std::make_shared<RecordingOutbox>();
  ASSERT_TRUE(sequencer_->submit(order(buyer, "u1", "c1", 9)));
  ASSERT_TRUE(sequencer_->submit(ActionRequest{buyer, true, "d:1", "u1"}));
  const auto sent = buyer->wait_for(2);
  EXPECT_EQ(sent[0].frame.at("status"), "unavailable");
  EXPECT_EQ(sent[0].tag, 9u);
  EXPECT_EQ(sent[1].frame.at("type"), "error");
  EXPECT_EQ(sent[1].frame.at("code"), "unavailable");
  EXPECT_EQ(host(host::Restock{"d", 1}).status, 503u);
  EXPECT_EQ(host(host::ReadDrop{"d"}).status, 200u) << "reads need no journal";

  log_.refuse_writes(false);
  ASSERT_TRUE(sequencer_->submit(order(buyer, "u1", "c1", 10)));
  EXPECT_EQ(buyer->wait_for(3)[2].frame.at("status"), "reserved");
}

// The journal lost Redis with an order's batch on its way: the order's fate is unknown until
// Redis is back, so its answer and a read of the state it changed wait; refusals, which decide
// nothing, do not wait behind it — a host call's no more than an order's.
TEST_F(SequencerTest, RefusalsDoNotWaitForABatchWhoseFateIsUnknown) {
  start();
  open_drop("d", 5);
  log_.hold_durability();
  const auto buyer = std::make_shared<RecordingOutbox>();
  const std::uint64_t before = log_.appended();
  ASSERT_TRUE(sequencer_->submit(order(buyer, "u1", "c1", 7)));
  ASSERT_TRUE(log_.wait_appended(before + 1));
  log_.refuse_writes(true);
  HostAnswer read;
  submit_host(host::ReadDrop{"d"}, read);
  EXPECT_EQ(host(host::Restock{"d", 1}).status, 503u) << "the refusal waited for the batch";
  const auto retry = std::make_shared<RecordingOutbox>();
  ASSERT_TRUE(sequencer_->submit(order(retry, "u1", "c1", 8)));
  EXPECT_EQ(retry->wait_for(1)[0].frame.at("status"), "unavailable");
  EXPECT_EQ(buyer->count(), 0u) << "answered before its reservation was durable";
  EXPECT_FALSE(read.answered()) << "a read of a state not yet durable was answered";

  log_.refuse_writes(false);  // Redis is back and the batch is written
  log_.make_durable();
  EXPECT_EQ(buyer->wait_for(1)[0].frame.at("status"), "reserved");
  EXPECT_EQ(read.wait().status, 200u);
}

// Stopped while the journal cannot make the last batch durable: nothing of it is sent, and once
// discarded nothing holds the connections it was for any more (the server then ends them while
// their I/O side still exists).
TEST_F(SequencerTest, WhatNeverBecameDurableIsDiscardedUnsentAfterStop) {
  start();
  open_drop("d", 5);
  log_.hold_durability();
  const auto buyer = std::make_shared<RecordingOutbox>();
  ASSERT_TRUE(sequencer_->submit(order(buyer, "u1", "c1", 7)));
  HostAnswer read;
  submit_host(host::ReadDrop{"d"}, read);
  sequencer_->stop(10ms);  // takes what was queued, then waits in vain for the journal
  EXPECT_GT(buyer.use_count(), 1) << "the order's answer should still be held";
  sequencer_->discard_unreleased();
  EXPECT_EQ(buyer.use_count(), 1) << "still held after the discard";
  EXPECT_EQ(metrics_.releases_pending.load(), 0u);
  EXPECT_EQ(buyer->count(), 0u);
  EXPECT_FALSE(read.answered());
}

TEST_F(SequencerTest, AnAuditNamesTheBatchThatEndsAtItsState) {
  config_.ack = AckMode::async;  // audits wait for their batch all the same
  start();
  open_drop("d", 5);
  log_.hold_durability();
  const auto buyer = std::make_shared<RecordingOutbox>();
  ASSERT_TRUE(sequencer_->submit(order(buyer, "u1", "c1", 1)));
  EXPECT_EQ(buyer->wait_for(1)[0].frame.at("status"), "reserved") << "async acks at once";
  const std::uint64_t state = log_.appended();  // the audit's state: the reservation's
  HostAnswer audit;
  ASSERT_TRUE(sequencer_->submit(
      HostRequest{host::ReadAudit{"d"}, host::Caller::operator_(), audit.done(), {}}));
  const auto bystander = std::make_shared<RecordingOutbox>();
  ASSERT_TRUE(sequencer_->submit(SubscribeRequest{bystander, "no-such-drop"}));
  bystander->wait_for(1);
  EXPECT_FALSE(audit.answered()) << "the audit named a batch not yet written";

  log_.make_durable();
  const auto reply = audit.wait();
  ASSERT_EQ(reply.status, 200u) << reply.body;
  const auto body = boost::json::parse(reply.body).as_object();
  EXPECT_EQ(body.at("sequence").to_number<std::uint64_t>(), state);
  EXPECT_EQ(body.at("units_sold"), 0);
  EXPECT_EQ(body.at("drop"), "d");
}

// A drop of sizes S and M, two units each, open now.
host::CreateDrop two_sizes() {
  host::CreateDrop create;
  create.id = "tee";
  create.title = "Tee";
  create.per_user_limit = 2;
  create.hold_ms = 60'000;
  create.variants = {{"S", "Small", 1'500, 2'000, 2}, {"M", "Medium", 1'200, 0, 2}};
  return create;
}

// Answers name the variant an order is for; a variant the drop lacks is refused, and nothing
// is recorded for it, so the same client_order_id then buys.
TEST_F(SequencerTest, OrdersAndTheirAnswersNameTheirVariant) {
  start();
  ASSERT_EQ(host(two_sizes()).status, 201u);
  ASSERT_EQ(host(host::StartCountdown{"tee", 0, 42}).status, 200u);
  const auto buyer = std::make_shared<RecordingOutbox>();
  ASSERT_TRUE(sequencer_->submit(order(buyer, "u1", "c1", 1, "tee", "XL")));
  ASSERT_TRUE(sequencer_->submit(order(buyer, "u1", "c1", 2, "tee")));
  ASSERT_TRUE(sequencer_->submit(order(buyer, "u1", "c1", 3, "tee", "M")));
  std::map<std::uint64_t, boost::json::object> by_tag;
  for (const Sent& answer : buyer->wait_for(3)) by_tag[answer.tag] = answer.frame;
  for (const std::uint64_t tag : {1, 2}) {
    EXPECT_EQ(by_tag[tag].at("status"), "unknown_variant");
    EXPECT_FALSE(by_tag[tag].contains("variant"));
    EXPECT_TRUE(by_tag[tag].contains("reason"));
  }
  EXPECT_EQ(by_tag[3].at("status"), "reserved");
  EXPECT_EQ(by_tag[3].at("variant"), "M");
  EXPECT_EQ(metrics_.orders[order_status_index(engine::OrderOutcome::unknown_variant)].load(), 2u);

  const auto restocked = host(host::Restock{"tee", 1, "XL"});
  EXPECT_EQ(restocked.status, 400u);
  EXPECT_EQ(boost::json::parse(restocked.body).at("error").at("code"), "unknown_variant");
  EXPECT_EQ(host(host::Restock{"tee", 1}).status, 400u) << "two variants: name one";
  const auto drop = boost::json::parse(host(host::ReadDrop{"tee"}).body).as_object();
  EXPECT_EQ(drop.at("stock_total"), 4) << "a refused restock added nothing";
  const auto listed = boost::json::parse(host(host::ReadOrders{"tee", "u1"}).body).as_object();
  ASSERT_EQ(listed.at("orders").as_array().size(), 1u);
  EXPECT_EQ(listed.at("orders").as_array()[0].at("variant"), "M");

  // A buyer who subscribes is told of the order, and which variant it is for.
  const auto again = std::make_shared<RecordingOutbox>();
  ASSERT_TRUE(sequencer_->submit(SubscribeRequest{again, "tee", "u1"}));
  const auto told = again->wait_for(2);
  EXPECT_EQ(told[0].frame.at("type"), "drop");
  EXPECT_EQ(told[1].frame.at("type"), "order_update");
  EXPECT_EQ(told[1].frame.at("variant"), "M");
}

// A unit of one variant comes back as one of another goes: the drop's total is unchanged, but
// viewers are told, since each variant's stock is in the frame.
TEST_F(SequencerTest, StockGoesOutWhenAVariantChangesThoughTheTotalDoesNot) {
  start();
  ASSERT_EQ(host(two_sizes()).status, 201u);
  ASSERT_EQ(host(host::StartCountdown{"tee", 0, 42}).status, 200u);
  const auto alice = std::make_shared<RecordingOutbox>();
  ASSERT_TRUE(sequencer_->submit(order(alice, "alice", "a", 1, "tee", "S")));
  const auto held = alice->wait_for(1)[0].frame;
  ASSERT_EQ(held.at("status"), "reserved");
  const auto stock_of = [](const boost::json::object& frame, std::string_view variant) {
    for (const auto& item : frame.at("variants").as_array())
      if (item.at("id").as_string() == variant) return item.at("left").to_number<int>();
    return -1;
  };
  now_ += 1'000;  // past the stock interval: the coalesced update goes out
  const auto after_alice = viewers_.wait_for(0, [&](const boost::json::object& frame) {
    return frame.at("type") == "stock" && stock_of(frame, "S") == 1;
  });
  ASSERT_TRUE(after_alice);
  EXPECT_EQ(after_alice->at("left"), 3);

  const std::size_t seen = viewers_.count();
  std::vector<Request> together;
  together.push_back(
      ActionRequest{alice, false, std::string(held.at("order_id").as_string()), "alice"});
  const auto bob = std::make_shared<RecordingOutbox>();
  together.push_back(order(bob, "bob", "b", 2, "tee", "M"));
  ASSERT_TRUE(sequencer_->submit_all(together));
  ASSERT_EQ(bob->wait_for(1)[0].frame.at("status"), "reserved");
  now_ += 1'000;
  const auto moved = viewers_.wait_for(
      seen, [](const boost::json::object& frame) { return frame.at("type") == "stock"; });
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->at("left"), 3);
  EXPECT_EQ(stock_of(*moved, "S"), 2);
  EXPECT_EQ(stock_of(*moved, "M"), 1);
}

// Downstream, an order names its variant and is priced as that variant is; an order on a drop
// without variants names none and has the drop's price.
TEST_F(SequencerTest, TheOrderStreamCarriesEachOrdersVariantAndItsPrice) {
  start();
  ASSERT_EQ(host(two_sizes()).status, 201u);
  ASSERT_EQ(host(host::StartCountdown{"tee", 0, 42}).status, 200u);
  open_drop("d", 5);
  const auto buyer = std::make_shared<RecordingOutbox>();
  ASSERT_TRUE(sequencer_->submit(order(buyer, "u1", "small", 1, "tee", "S")));
  ASSERT_TRUE(sequencer_->submit(order(buyer, "u1", "medium", 2, "tee", "M")));
  ASSERT_TRUE(sequencer_->submit(order(buyer, "u1", "plain", 3)));
  std::map<std::uint64_t, std::string> order_ids;
  for (const Sent& answer : buyer->wait_for(3)) {
    ASSERT_EQ(answer.frame.at("status"), "reserved") << answer.frame;
    order_ids[answer.tag] = answer.frame.at("order_id").as_string();
  }
  ASSERT_TRUE(sequencer_->submit(ActionRequest{buyer, true, order_ids[1], "u1"}));
  ASSERT_TRUE(sequencer_->submit(ActionRequest{buyer, false, order_ids[2], "u1"}));
  ASSERT_TRUE(sequencer_->submit(ActionRequest{buyer, true, order_ids[3], "u1"}));
  std::map<std::string, journal::OrderRecord> by_client;
  for (const journal::OrderRecord& record : log_.wait_orders(3))
    by_client[record.client_order_id] = record;
  ASSERT_EQ(by_client.size(), 3u);
  EXPECT_EQ(by_client["small"].event, "confirmed");
  EXPECT_EQ(by_client["small"].variant, "S");
  EXPECT_EQ(by_client["small"].price_cents, 1'500);
  EXPECT_EQ(by_client["medium"].event, "cancelled");
  EXPECT_EQ(by_client["medium"].variant, "M");
  EXPECT_EQ(by_client["medium"].price_cents, 1'200);
  EXPECT_EQ(by_client["plain"].event, "confirmed");
  EXPECT_EQ(by_client["plain"].variant, "");
  EXPECT_EQ(by_client["plain"].price_cents, 100);
}

TEST_F(SequencerTest, AHostReplyIsKeptWithTheCursorWhenAsked) {
  start();
  HostAnswer created;
  host::CreateDrop create;
  create.id = "kept";
  create.title = "t";
  create.hold_ms = 60'000;
  std::vector<Request> group;
  group.push_back(HostRequest{create, host::Caller::operator_(), created.done(), "gw:1"});
  group.push_back(CursorMark{"5-0", true});
  ASSERT_TRUE(sequencer_->submit_all(group));
  EXPECT_EQ(created.wait().status, 201u);
  EXPECT_EQ(log_.kept_replies(), 1u);
  EXPECT_EQ(log_.last_cursor(), "5-0");
}

// A stream's viewers get one frame for everything a batch changed, published once for all of
// them; stock alone moves it at most once a second; a new subscriber gets the last frame while
// only stock moved since and it is under a second old.
TEST_F(SequencerTest, AStreamIsToldOnceAChangeAndItsStockAtMostOnceASecond) {
  start();
  ASSERT_EQ(host(host::CreateStream{"show", "anna", "Friday show", ""}).status, 201u);
  host::CreateDrop create;
  create.id = "show~mug";
  create.stream = "show";
  create.title = "Mug";
  create.price_cents = 900;
  create.stock = 5;
  create.per_user_limit = 1;
  create.hold_ms = 60'000;
  ASSERT_EQ(host(create).status, 201u);
  // Once its reply is in, every frame of the work before it has been published.
  const auto streams_told = [&] {
    EXPECT_EQ(host(host::ReadStream{"show"}).status, 200u);
    return viewers_.of_type("stream");
  };
  const auto shelf = [](const boost::json::object& frame) {
    return frame.at("drops").as_array().at(0).as_object();
  };
  auto told = streams_told();
  ASSERT_EQ(told.size(), 1u) << "a drop created in it";
  EXPECT_EQ(told[0].first, "~show");
  EXPECT_EQ(shelf(told[0].second).at("drop"), "show~mug");

  const auto viewer = std::make_shared<RecordingOutbox>();
  ASSERT_TRUE(sequencer_->submit(SubscribeRequest{viewer, "~show"}));
  const Sent subscribed = viewer->wait_for(1)[0];
  EXPECT_EQ(subscribed.kind, FrameKind::stream);
  EXPECT_EQ(subscribed.frame.at("stream"), "show");
  EXPECT_EQ(subscribed.frame.at("state"), "scheduled");
  EXPECT_TRUE(subscribed.frame.at("pinned").is_null());
  EXPECT_EQ(shelf(subscribed.frame).at("state"), "scheduled");
  const auto stranger = std::make_shared<RecordingOutbox>();
  ASSERT_TRUE(sequencer_->submit(SubscribeRequest{stranger, "~nope"}));
  const Sent refused = stranger->wait_for(1)[0];
  EXPECT_EQ(refused.frame.at("code"), "unknown_stream");
  EXPECT_EQ(refused.frame.at("ref"), "nope");

  ASSERT_EQ(host(host::Pin{"show", "show~mug"}).status, 200u);
  ASSERT_EQ(host(host::GoLive{"show"}).status, 200u);
  told = streams_told();
  ASSERT_EQ(told.size(), 3u);
  EXPECT_EQ(told[1].second.at("pinned"), "show~mug");
  EXPECT_EQ(told[2].second.at("state"), "live");
  // Its countdown and its opening are one batch: one frame.
  ASSERT_EQ(host(host::StartCountdown{"show~mug", 0, 42}).status, 200u);
  told = streams_told();
  ASSERT_EQ(told.size(), 4u);
  EXPECT_EQ(shelf(told[3].second).at("state"), "open");
  EXPECT_EQ(shelf(told[3].second).at("stock_left"), 5);

  // An order moves the stock: its drop's viewers hear within the stock interval, the stream's a
  // second after its last frame.
  const auto buyer = std::make_shared<RecordingOutbox>();
  ASSERT_TRUE(sequencer_->submit(order(buyer, "bob", "b1", 1, "show~mug")));
  ASSERT_EQ(buyer->wait_for(1)[0].frame.at("status"), "reserved");
  now_ += 100;
  ASSERT_TRUE(viewers_.wait_for(0, [](const boost::json::object& frame) {
    return frame.at("type") == "stock" && frame.at("left") == 4;
  }));
  EXPECT_EQ(streams_told().size(), 4u);
  now_ += 899;
  EXPECT_EQ(streams_told().size(), 4u);
  now_ += 1;
  const auto refreshed = viewers_.wait_for(0, [&](const boost::json::object& frame) {
    return frame.at("type") == "stream" && shelf(frame).at("stock_left") == 4;
  });
  ASSERT_TRUE(refreshed);
  EXPECT_EQ(refreshed->at("server_time_ms"), now_.load());

  // Within the second, a new viewer gets that frame as it is, though stock moved since.
  ASSERT_TRUE(sequencer_->submit(order(buyer, "carol", "c1", 2, "show~mug")));
  ASSERT_TRUE(viewers_.wait_for(0, [](const boost::json::object& frame) {
    return frame.at("type") == "stock" && frame.at("left") == 3;
  }));
  now_ += 500;
  const auto late = std::make_shared<RecordingOutbox>();
  ASSERT_TRUE(sequencer_->submit(SubscribeRequest{late, "~show"}));
  EXPECT_EQ(late->wait_for(1)[0].frame, *refreshed);
  EXPECT_EQ(streams_told().size(), 5u);
  now_ += 500;
  ASSERT_TRUE(viewers_.wait_for(0, [&](const boost::json::object& frame) {
    return frame.at("type") == "stream" && shelf(frame).at("stock_left") == 3;
  }));
  EXPECT_EQ(streams_told().size(), 6u);

  // The end closes the drop and takes the pin off: one frame tells it all.
  ASSERT_EQ(host(host::EndStream{"show"}).status, 200u);
  told = streams_told();
  ASSERT_EQ(told.size(), 7u);
  EXPECT_EQ(told[6].second.at("state"), "ended");
  EXPECT_TRUE(told[6].second.at("pinned").is_null());
  EXPECT_EQ(shelf(told[6].second).at("state"), "closed");
  // A second later, a new viewer gets a frame written for it.
  now_ += 1'000;
  const auto last = std::make_shared<RecordingOutbox>();
  ASSERT_TRUE(sequencer_->submit(SubscribeRequest{last, "~show"}));
  const auto ended = last->wait_for(1)[0].frame;
  EXPECT_EQ(ended.at("state"), "ended");
  EXPECT_EQ(ended.at("server_time_ms"), now_.load());
}

}  // namespace
}  // namespace flashsale::gateway
