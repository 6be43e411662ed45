// The engine thread without Redis: an in-memory event log that can be made slow (durability
// only when the test says, appends that wait at a gate) or failing (refusing writes), a clock
// the test moves, and outboxes that record what they are sent. Every wait is on an event, with
// a deadline that fails the test rather than hanging it.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <condition_variable>
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

  void on_durable(std::function<void(const journal::DurableBatch&)> callback) override {
    std::lock_guard lock(mutex_);
    on_durable_ = std::move(callback);
  }
  journal::RecoveryStats recover(engine::Engine&) override { return {}; }
  void append(std::span<const engine::Event> events, std::string_view cursor,
              std::span<const journal::OrderRecord>,
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
    sequencer_.emplace(config_, log_, std::vector<Fanout*>{}, metrics_,
                       [this] { return now_.load(); });
    sequencer_->recover();
    sequencer_->start();
  }

  HostReply host(host::Command command) {
    HostAnswer answer;
    EXPECT_TRUE(sequencer_->submit(HostRequest{std::move(command), answer.done(), {}}));
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
    EXPECT_TRUE(sequencer_->submit(HostRequest{std::move(command), answer.done(), {}}));
  }

  OrderRequest order(std::shared_ptr<Outbox> from, std::string user, std::string client_order_id,
                     std::uint64_t tag, std::string drop = "d") {
    return OrderRequest{
        std::move(from), std::move(drop), std::move(user), std::move(client_order_id), 1, tag};
  }

  GatewayConfig config_;
  MemoryLog log_;
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
  ASSERT_TRUE(sequencer_->submit(HostRequest{host::ReadAudit{"d"}, audit.done(), {}}));
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

TEST_F(SequencerTest, AHostReplyIsKeptWithTheCursorWhenAsked) {
  start();
  HostAnswer created;
  host::CreateDrop create;
  create.id = "kept";
  create.title = "t";
  create.hold_ms = 60'000;
  std::vector<Request> group;
  group.push_back(HostRequest{create, created.done(), "gw:1"});
  group.push_back(CursorMark{"5-0", true});
  ASSERT_TRUE(sequencer_->submit_all(group));
  EXPECT_EQ(created.wait().status, 201u);
  EXPECT_EQ(log_.kept_replies(), 1u);
  EXPECT_EQ(log_.last_cursor(), "5-0");
}

}  // namespace
}  // namespace flashsale::gateway
