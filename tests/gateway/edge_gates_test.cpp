// The engine thread's gates for answers at the edge (gateway/src/edge_gates.hpp), against a real
// engine: a gate stands exactly while a drop can give a new buyer nothing, lists every buyer
// with an order, is renewed while it stands, falls when units or waitlist places come back, and
// is rebuilt from the engine's orders after a recovery.
#include <gtest/gtest.h>

#include "edge_gates.hpp"

namespace flashsale::gateway {
namespace {

using engine::TimeMs;
constexpr TimeMs t0 = 1'700'000'000'000;

// What the hubs would receive.
class RecordingFanout final : public Fanout {
 public:
  void publish(std::string, SharedFrame, FrameKind, std::uint32_t) override {}
  void gate(std::shared_ptr<const EdgeGate> gate) override { gates.push_back(std::move(gate)); }
  std::vector<std::shared_ptr<const EdgeGate>> gates;
};

class EdgeGatesTest : public ::testing::Test {
 protected:
  // Drop "d": `stock` units, one per buyer, a waitlist of `waitlist`; open at t0.
  void open_drop(std::uint32_t stock, std::uint32_t waitlist) {
    const engine::DropSpec spec{.id = "d",
                                .title = "Chestnuts",
                                .price_cents = 1990,
                                .stock = stock,
                                .per_user_limit = 1,
                                .hold_ms = 60'000,
                                .waitlist_limit = waitlist};
    ASSERT_EQ(engine.create_drop(spec, t0 - 1'000, events).status, engine::CommandStatus::ok);
    ASSERT_EQ(engine.start_countdown("d", 0, t0, events).status, engine::CommandStatus::ok);
    settle(t0);
  }
  engine::OrderResult order(std::string_view user, std::string_view client_order_id, TimeMs at,
                            std::string_view variant = {}) {
    const auto result = engine.place_order({.drop = "d",
                                            .user = user,
                                            .client_order_id = client_order_id,
                                            .qty = 1,
                                            .variant = variant},
                                           at, events);
    settle(at);
    return result;
  }
  // One round of the engine thread: the events, then the flush.
  void settle(TimeMs now_ms) {
    for (const engine::Event& event : events) gates.on_event(event);
    events.clear();
    gates.flush(now_ms);
  }

  engine::Engine engine;
  engine::Events events;
  RecordingFanout fanout;
  EdgeGates gates{engine, {&fanout}};
};

TEST_F(EdgeGatesTest, AGateStandsOnlyWhileNothingIsLeftForANewBuyer) {
  open_drop(1, 1);
  EXPECT_EQ(order("alice", "a", t0).outcome, engine::OrderOutcome::reserved);
  EXPECT_TRUE(fanout.gates.empty()) << "a waitlist place is left";
  EXPECT_EQ(order("bob", "b", t0).outcome, engine::OrderOutcome::waitlisted);
  ASSERT_EQ(fanout.gates.size(), 1u);
  const EdgeGate& standing = *fanout.gates.back();
  EXPECT_EQ(standing.drop, "d");
  EXPECT_TRUE(standing.sold_out);
  EXPECT_EQ(standing.per_user_limit, 1u);
  EXPECT_TRUE(standing.waitlist_full);
  EXPECT_FALSE(standing.answers(user_hash("alice"), 1, ""))
      << "her order is the engine's to repeat";
  EXPECT_FALSE(standing.answers(user_hash("bob"), 1, ""));
  EXPECT_TRUE(standing.answers(user_hash("carol"), 1, ""));
  EXPECT_FALSE(standing.answers(user_hash("carol"), 2, "")) << "over the limit: the engine says so";

  // A sold_out the engine records changes nothing; the gate is renewed once a second.
  EXPECT_EQ(order("carol", "c", t0 + 10).outcome, engine::OrderOutcome::sold_out);
  EXPECT_EQ(fanout.gates.size(), 1u);
  settle(t0 + 999);
  EXPECT_EQ(fanout.gates.size(), 1u);
  settle(t0 + 1'000);
  ASSERT_EQ(fanout.gates.size(), 2u);
  EXPECT_EQ(fanout.gates.back(), fanout.gates.front()) << "the same gate, renewed";

  // Alice cancels: Bob gets her unit, the waitlist has room again, the gate falls.
  ASSERT_EQ(engine.cancel({"d", 1, "alice"}, t0 + 1'100, events).status, engine::CommandStatus::ok);
  settle(t0 + 1'100);
  ASSERT_EQ(fanout.gates.size(), 3u);
  EXPECT_FALSE(fanout.gates.back()->sold_out);
  EXPECT_FALSE(fanout.gates.back()->answers(user_hash("dave"), 1, ""));
  settle(t0 + 5'000);
  EXPECT_EQ(fanout.gates.size(), 3u) << "a fallen gate is not renewed";

  // Dave takes the waitlist place: the gate stands again, with Dave among the buyers.
  EXPECT_EQ(order("dave", "d", t0 + 5'100).outcome, engine::OrderOutcome::waitlisted);
  ASSERT_EQ(fanout.gates.size(), 4u);
  EXPECT_TRUE(fanout.gates.back()->sold_out);
  EXPECT_FALSE(fanout.gates.back()->answers(user_hash("dave"), 1, ""));
  EXPECT_FALSE(fanout.gates.back()->answers(user_hash("alice"), 1, ""))
      << "cancelled, still listed";
  EXPECT_TRUE(fanout.gates.back()->answers(user_hash("erin"), 1, ""));
}

// Each variant has its own units and its own waitlist: the gate stands once every one is out of
// both, names the variants, and lets through what the engine must answer itself — a variant the
// drop does not have, none where there are several, more than the limit per variant.
TEST_F(EdgeGatesTest, ADropWithVariantsIsClosedOnlyWhenEveryVariantIs) {
  engine::DropSpec spec{.id = "d",
                        .title = "Tee",
                        .per_user_limit = 2,
                        .hold_ms = 60'000,
                        .waitlist_limit = 1,
                        .per_variant_limit = 1};
  spec.variants = {{"S", "Small", 1500, 0, 1}, {"M", "Medium", 1500, 0, 1}};
  ASSERT_EQ(engine.create_drop(spec, t0 - 1'000, events).status, engine::CommandStatus::ok);
  ASSERT_EQ(engine.start_countdown("d", 0, t0, events).status, engine::CommandStatus::ok);
  settle(t0);
  EXPECT_EQ(order("alice", "a", t0, "S").outcome, engine::OrderOutcome::reserved);
  EXPECT_EQ(order("bob", "b", t0, "M").outcome, engine::OrderOutcome::reserved);
  EXPECT_EQ(engine.drop_info(0).state, engine::DropState::sold_out);
  EXPECT_TRUE(fanout.gates.empty()) << "both waitlists have room";
  EXPECT_EQ(order("carol", "c", t0, "S").outcome, engine::OrderOutcome::waitlisted);
  EXPECT_TRUE(fanout.gates.empty()) << "M's waitlist has room";
  EXPECT_EQ(order("dave", "d", t0, "M").outcome, engine::OrderOutcome::waitlisted);
  ASSERT_EQ(fanout.gates.size(), 1u);
  const EdgeGate& standing = *fanout.gates.back();
  EXPECT_EQ(standing.variants, (std::vector<std::string>{"S", "M"}));
  EXPECT_EQ(standing.per_user_limit, 1u) << "the limit per variant is the lower";
  EXPECT_TRUE(standing.answers(user_hash("erin"), 1, "S"));
  EXPECT_TRUE(standing.answers(user_hash("erin"), 1, "M"));
  EXPECT_FALSE(standing.answers(user_hash("erin"), 1, "XL"));
  EXPECT_FALSE(standing.answers(user_hash("erin"), 1, "")) << "two variants: it must name one";
  EXPECT_FALSE(standing.answers(user_hash("erin"), 2, "S"));
  EXPECT_FALSE(standing.answers(user_hash("carol"), 1, "M")) << "a buyer with an order";
  // The engine agrees with what the gate would have answered, and with what it would not.
  EXPECT_EQ(order("erin", "e", t0 + 1, "S").outcome, engine::OrderOutcome::sold_out);
  EXPECT_EQ(order("frank", "f", t0 + 1, "XL").outcome, engine::OrderOutcome::unknown_variant);
  EXPECT_EQ(order("frank", "f", t0 + 1).outcome, engine::OrderOutcome::unknown_variant);

  // A unit of M comes back: M's waitlist takes it, which makes room on that waitlist.
  ASSERT_EQ(engine.cancel({"d", 2, "bob"}, t0 + 10, events).status, engine::CommandStatus::ok);
  settle(t0 + 10);
  EXPECT_FALSE(fanout.gates.back()->sold_out);
}

// An unnamed drop's gate answers an order that names no variant, and only that; a drop with
// one named variant may be ordered without naming it.
TEST(EdgeGate, AnOrderNamesAVariantTheDropHasOrNoneWhereItHasOne) {
  EdgeGate unnamed{"d", true, 1, false, {}};
  EXPECT_TRUE(unnamed.answers(1, 1, ""));
  EXPECT_FALSE(unnamed.answers(1, 1, "S"));
  EdgeGate one{"d", true, 1, false, {}, {"S"}};
  EXPECT_TRUE(one.answers(1, 1, ""));
  EXPECT_TRUE(one.answers(1, 1, "S"));
  EXPECT_FALSE(one.answers(1, 1, "s")) << "ids are compared exactly";
}

TEST_F(EdgeGatesTest, ARestockOrACloseBringsTheGateDown) {
  open_drop(1, 0);
  order("alice", "a", t0);
  ASSERT_EQ(fanout.gates.size(), 1u);
  ASSERT_EQ(engine.restock("d", 1, t0 + 10, events).status, engine::CommandStatus::ok);
  settle(t0 + 10);
  ASSERT_EQ(fanout.gates.size(), 2u);
  EXPECT_FALSE(fanout.gates.back()->sold_out);
  order("bob", "b", t0 + 20);
  ASSERT_EQ(fanout.gates.size(), 3u);
  EXPECT_TRUE(fanout.gates.back()->sold_out);
  ASSERT_EQ(engine.close("d", t0 + 30, events).status, engine::CommandStatus::ok);
  settle(t0 + 30);
  ASSERT_EQ(fanout.gates.size(), 4u);
  EXPECT_FALSE(fanout.gates.back()->sold_out) << "a closed drop answers `closed`, the engine's";
}

TEST_F(EdgeGatesTest, ARecoveredEngineGivesTheSameGateWithEveryBuyer) {
  open_drop(2, 0);
  order("alice", "a", t0);
  order("bob", "b", t0);
  ASSERT_EQ(fanout.gates.size(), 1u);

  engine::Engine recovered;
  recovered.restore(engine.snapshot());
  RecordingFanout after;
  EdgeGates rebuilt(recovered, {&after});
  rebuilt.recovered();
  rebuilt.flush(t0 + 100);
  ASSERT_EQ(after.gates.size(), 1u);
  EXPECT_EQ(*after.gates.front(), *fanout.gates.front());
}

}  // namespace
}  // namespace flashsale::gateway
