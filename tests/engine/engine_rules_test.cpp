// One test per rule of the engine: outcome precedence, idempotency, holds, the waitlist,
// restock and close, confirm/cancel ownership, and the events each produces.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "flashsale/engine/engine.hpp"
#include "printers.hpp"

namespace flashsale::engine {
namespace {

constexpr TimeMs t0 = 1'000'000;  // the opening instant in every test
constexpr TimeMs hold_ms = 60'000;

class EngineRules : public ::testing::Test {
 protected:
  // Creates drop `id` opening at t0 (countdown started at t0 - 10 s).
  void open_drop(std::string_view id, std::uint32_t stock, std::uint32_t limit = 1,
                 std::uint32_t waitlist = 0) {
    DropSpec spec{id, "Chestnuts", 1990, stock, limit, hold_ms, waitlist};
    ASSERT_EQ(engine.create_drop(spec, t0 - 20'000, events).status, CommandStatus::ok);
    ASSERT_EQ(engine.start_countdown(id, 10'000, t0 - 10'000, events).status, CommandStatus::ok);
  }
  OrderResult order(std::string_view user, std::string_view client_order_id, TimeMs at,
                    std::uint32_t qty = 1, std::string_view drop = "d") {
    OrderResult result = engine.place_order({drop, user, client_order_id, qty}, at, events);
    engine.check_invariants();
    return result;
  }
  ActionResult confirm(std::string_view user, OrderNumber number, TimeMs at) {
    return engine.confirm({"d", number, user}, at, events);
  }
  ActionResult cancel(std::string_view user, OrderNumber number, TimeMs at) {
    return engine.cancel({"d", number, user}, at, events);
  }
  DropInfo info(std::string_view drop = "d") { return engine.drop_info(*engine.find_drop(drop)); }
  template <typename Body>
  std::vector<Body> events_of() const {
    std::vector<Body> found;
    for (const Event& event : events)
      if (const auto* body = std::get_if<Body>(&event.body)) found.push_back(*body);
    return found;
  }

  Engine engine;
  Events events;
};

TEST_F(EngineRules, ReservesWhileStockLastsThenSoldOut) {
  open_drop("d", 2);
  const OrderResult first = order("alice", "a1", t0);
  EXPECT_EQ(first.outcome, OrderOutcome::reserved);
  EXPECT_EQ(first.order, 1u);
  EXPECT_EQ(first.hold_expires_at_ms, t0 + hold_ms);
  EXPECT_EQ(order("bob", "b1", t0 + 1).outcome, OrderOutcome::reserved);
  EXPECT_EQ(info().state, DropState::sold_out);
  EXPECT_EQ(order("carol", "c1", t0 + 2).outcome, OrderOutcome::sold_out);
  EXPECT_EQ(info().stock_left, 0u);
  EXPECT_EQ(info().held, 2u);
}

TEST_F(EngineRules, EarlyClickNeverWinsAndIsNotRecorded) {
  open_drop("d", 5);
  EXPECT_EQ(order("alice", "a1", t0 - 1).outcome, OrderOutcome::not_open);
  EXPECT_EQ(info().decisions, 0u);
  // The same client order id, retried at T-0, is a fresh attempt.
  const OrderResult retry = order("alice", "a1", t0);
  EXPECT_EQ(retry.outcome, OrderOutcome::reserved);
  EXPECT_FALSE(retry.repeated);
}

TEST_F(EngineRules, ScheduledDropIsNotOpen) {
  DropSpec spec{"d", "t", 100, 5, 1, hold_ms, 0};
  engine.create_drop(spec, t0, events);
  EXPECT_EQ(order("alice", "a1", t0 + 1'000'000).outcome, OrderOutcome::not_open);
}

TEST_F(EngineRules, OrderAtTheOpeningInstantFindsTheDropOpen) {
  open_drop("d", 1);
  const auto opened = [&] {
    for (const Event& event : events)
      if (const auto* changed = std::get_if<StateChanged>(&event.body);
          changed && changed->state == DropState::open)
        return event.at_ms;
    return TimeMs{-1};
  };
  EXPECT_EQ(opened(), -1);
  EXPECT_EQ(order("alice", "a1", t0).outcome, OrderOutcome::reserved);
  EXPECT_EQ(opened(), t0);
}

TEST_F(EngineRules, InvalidInputIsRejectedFirstAndNotRecorded) {
  open_drop("d", 5);
  EXPECT_EQ(order("alice", "a1", t0, 0).outcome, OrderOutcome::invalid);
  EXPECT_EQ(order("alice", "a1", t0, order_qty_max + 1).outcome, OrderOutcome::invalid);
  EXPECT_EQ(order("", "a1", t0).outcome, OrderOutcome::invalid);
  EXPECT_EQ(order("alice", "", t0).outcome, OrderOutcome::invalid);
  EXPECT_EQ(order("alice", std::string(65, 'x'), t0).outcome, OrderOutcome::invalid);
  EXPECT_EQ(order("al ice", "a1", t0).outcome, OrderOutcome::invalid);
  EXPECT_EQ(order("alice", "a1", t0, 1, "nope").outcome, OrderOutcome::invalid);
  EXPECT_EQ(info().decisions, 0u);
  EXPECT_EQ(order("alice", std::string(64, 'x'), t0).outcome, OrderOutcome::reserved);
}

TEST_F(EngineRules, LimitCountsHeldConfirmedAndWaitlistedUnits) {
  open_drop("d", 3, /*limit=*/2, /*waitlist=*/5);
  EXPECT_EQ(order("alice", "a1", t0, 3).outcome, OrderOutcome::limit_exceeded);
  const OrderResult held = order("alice", "a2", t0, 1);
  ASSERT_EQ(held.outcome, OrderOutcome::reserved);
  EXPECT_EQ(confirm("alice", held.order, t0 + 1).status, CommandStatus::ok);
  EXPECT_EQ(order("alice", "a3", t0 + 2, 1).outcome, OrderOutcome::reserved);
  EXPECT_EQ(order("alice", "a4", t0 + 3, 1).outcome, OrderOutcome::limit_exceeded);
  // Bob fills stock, then queues; the waitlisted unit counts toward his limit.
  EXPECT_EQ(order("bob", "b1", t0 + 4, 1).outcome, OrderOutcome::reserved);
  EXPECT_EQ(order("bob", "b2", t0 + 5, 1).outcome, OrderOutcome::waitlisted);
  EXPECT_EQ(order("bob", "b3", t0 + 6, 1).outcome, OrderOutcome::limit_exceeded);
}

TEST_F(EngineRules, CancelledAndExpiredUnitsStopCounting) {
  open_drop("d", 5, /*limit=*/1);
  const OrderResult first = order("alice", "a1", t0);
  EXPECT_EQ(cancel("alice", first.order, t0 + 1).status, CommandStatus::ok);
  const OrderResult second = order("alice", "a2", t0 + 2);
  EXPECT_EQ(second.outcome, OrderOutcome::reserved);
  engine.advance_time(second.hold_expires_at_ms, events);
  EXPECT_EQ(engine.order_info(0, second.order)->status, OrderStatus::expired);
  EXPECT_EQ(order("alice", "a3", second.hold_expires_at_ms + 1).outcome, OrderOutcome::reserved);
}

TEST_F(EngineRules, RepeatReturnsOriginalOutcomeAfterSoldOut) {
  open_drop("d", 1);
  const OrderResult won = order("alice", "a1", t0);
  const OrderResult lost = order("bob", "b1", t0 + 1);
  ASSERT_EQ(lost.outcome, OrderOutcome::sold_out);
  const std::uint32_t decisions = info().decisions;
  const std::size_t event_count = events.size();
  const OrderResult won_again = order("alice", "a1", t0 + 2);
  EXPECT_TRUE(won_again.repeated);
  EXPECT_EQ(won_again.outcome, OrderOutcome::reserved);
  EXPECT_EQ(won_again.order, won.order);
  EXPECT_EQ(won_again.hold_expires_at_ms, won.hold_expires_at_ms);
  // Units come back, but a sold-out answer stays a sold-out answer.
  cancel("alice", won.order, t0 + 3);
  const OrderResult lost_again = order("bob", "b1", t0 + 4);
  EXPECT_TRUE(lost_again.repeated);
  EXPECT_EQ(lost_again.outcome, OrderOutcome::sold_out);
  EXPECT_EQ(info().decisions, decisions);
  // A repeat changes nothing, so it emits nothing beyond the cancel's own events.
  for (std::size_t index = event_count; index < events.size(); ++index)
    EXPECT_FALSE(std::holds_alternative<OrderDecided>(events[index].body));
}

TEST_F(EngineRules, RepeatAfterExpiryAndCancelNeverReservesTwice) {
  open_drop("d", 10, /*limit=*/3);
  const OrderResult expiring = order("alice", "a1", t0);
  const OrderResult cancelled = order("alice", "a2", t0);
  cancel("alice", cancelled.order, t0 + 1);
  engine.advance_time(t0 + hold_ms, events);
  const OrderResult after_expiry = order("alice", "a1", t0 + hold_ms + 1);
  const OrderResult after_cancel = order("alice", "a2", t0 + hold_ms + 1);
  EXPECT_EQ(after_expiry.outcome, OrderOutcome::reserved);
  EXPECT_EQ(after_expiry.order, expiring.order);
  EXPECT_EQ(after_expiry.status, OrderStatus::expired);
  EXPECT_EQ(after_cancel.order, cancelled.order);
  EXPECT_EQ(after_cancel.status, OrderStatus::cancelled);
  EXPECT_EQ(info().orders, 2u);
  EXPECT_EQ(info().stock_left, 10u);
}

TEST_F(EngineRules, ClientOrderIdsAreScopedToTheBuyer) {
  open_drop("d", 5);
  EXPECT_EQ(order("alice", "c-1", t0).outcome, OrderOutcome::reserved);
  const OrderResult bob = order("bob", "c-1", t0);
  EXPECT_EQ(bob.outcome, OrderOutcome::reserved);
  EXPECT_FALSE(bob.repeated);
}

TEST_F(EngineRules, HoldExpiresExactlyAtItsDeadline) {
  open_drop("d", 1);
  open_drop("e", 1);
  const OrderResult held = order("alice", "a1", t0);
  engine.advance_time(held.hold_expires_at_ms - 1, events);
  EXPECT_EQ(confirm("alice", held.order, held.hold_expires_at_ms - 1).status, CommandStatus::ok);
  EXPECT_EQ(info().sold, 1u);

  const OrderResult late = order("bob", "b1", t0, 1, "e");
  const ActionResult too_late =
      engine.confirm({"e", late.order, "bob"}, late.hold_expires_at_ms, events);
  EXPECT_EQ(too_late.status, CommandStatus::wrong_state);
  EXPECT_EQ(too_late.order_status, OrderStatus::expired);
  EXPECT_EQ(info("e").stock_left, 1u);
  EXPECT_EQ(info("e").state, DropState::open);
}

TEST_F(EngineRules, ConfirmAndCancelOnlyByTheBuyer) {
  open_drop("d", 2);
  const OrderResult held = order("alice", "a1", t0);
  EXPECT_EQ(confirm("mallory", held.order, t0 + 1).status, CommandStatus::not_owner);
  EXPECT_EQ(cancel("mallory", held.order, t0 + 1).status, CommandStatus::not_owner);
  EXPECT_EQ(confirm("alice", 99, t0 + 1).status, CommandStatus::unknown_order);
  EXPECT_EQ(engine.confirm({"nope", 1, "alice"}, t0 + 1, events).status,
            CommandStatus::unknown_drop);
  const ActionResult paid = confirm("alice", held.order, t0 + 2);
  EXPECT_EQ(paid.status, CommandStatus::ok);
  EXPECT_EQ(paid.client_order_id, "a1");
  EXPECT_EQ(confirm("alice", held.order, t0 + 3).status, CommandStatus::ok);          // idempotent
  EXPECT_EQ(cancel("alice", held.order, t0 + 4).status, CommandStatus::wrong_state);  // final
  EXPECT_EQ(info().sold, 1u);
  EXPECT_EQ(events_of<OrderConfirmed>().size(), 1u);
}

TEST_F(EngineRules, WaitlistIsFirstInFirstOutAndHeadWaitsForItsQty) {
  open_drop("d", 2, /*limit=*/3, /*waitlist=*/3);
  const OrderResult alice = order("alice", "a1", t0, 2);
  const OrderResult bob = order("bob", "b1", t0 + 1, 2);
  const OrderResult carol = order("carol", "c1", t0 + 2, 1);
  ASSERT_EQ(bob.outcome, OrderOutcome::waitlisted);
  EXPECT_EQ(bob.waitlist_position, 1u);
  EXPECT_EQ(carol.waitlist_position, 2u);
  EXPECT_EQ(order("dave", "d1", t0 + 3).waitlist_position, 3u);
  EXPECT_EQ(order("erin", "e1", t0 + 4).outcome, OrderOutcome::sold_out);  // waitlist full
  // Restock one unit: bob (head, needs 2) waits, and carol may not jump ahead of him.
  engine.restock("d", 1, t0 + 5, events);
  EXPECT_TRUE(events_of<OrderPromoted>().empty());
  EXPECT_EQ(info().stock_left, 1u);
  EXPECT_EQ(info().state, DropState::open);
  // A new buyer cannot take the free unit either: the queue comes first.
  EXPECT_EQ(order("frank", "f1", t0 + 6).outcome, OrderOutcome::sold_out);
  // Alice cancels her 2: bob gets 2, then carol 1; dave keeps waiting.
  cancel("alice", alice.order, t0 + 7);
  const auto promoted = events_of<OrderPromoted>();
  ASSERT_EQ(promoted.size(), 2u);
  EXPECT_EQ(promoted[0].order, bob.order);
  EXPECT_EQ(promoted[1].order, carol.order);
  EXPECT_EQ(promoted[0].hold_expires_at_ms, t0 + 7 + hold_ms);
  EXPECT_EQ(engine.order_info(0, bob.order)->status, OrderStatus::reserved);
  EXPECT_EQ(info().waitlist_orders, 1u);
  EXPECT_EQ(info().state, DropState::sold_out);
}

TEST_F(EngineRules, ExpiredHoldGoesToTheWaitlistHead) {
  open_drop("d", 1, 1, 2);
  const OrderResult alice = order("alice", "a1", t0);
  const OrderResult bob = order("bob", "b1", t0 + 10);
  engine.advance_time(alice.hold_expires_at_ms, events);
  EXPECT_EQ(engine.order_info(0, alice.order)->status, OrderStatus::expired);
  EXPECT_EQ(engine.order_info(0, bob.order)->status, OrderStatus::reserved);
  EXPECT_EQ(engine.order_info(0, bob.order)->hold_expires_at_ms,
            alice.hold_expires_at_ms + hold_ms);
  // Bob's retry still answers "waitlisted" (the original outcome) and says where he is now.
  const OrderResult retry = order("bob", "b1", t0 + hold_ms + 1);
  EXPECT_EQ(retry.outcome, OrderOutcome::waitlisted);
  EXPECT_EQ(retry.status, OrderStatus::reserved);
  EXPECT_EQ(retry.hold_expires_at_ms, 0);  // the original answer had no hold
}

TEST_F(EngineRules, CancellingTheWaitlistHeadLetsTheNextOneIn) {
  open_drop("d", 2, 3, 5);
  order("alice", "a1", t0, 1);
  const OrderResult bob = order("bob", "b1", t0, 3);  // 1 unit left: bob heads the queue
  ASSERT_EQ(bob.outcome, OrderOutcome::waitlisted);
  const OrderResult carol = order("carol", "c1", t0, 1);
  ASSERT_EQ(carol.outcome, OrderOutcome::waitlisted);
  cancel("bob", bob.order, t0 + 1);
  EXPECT_EQ(engine.order_info(0, carol.order)->status, OrderStatus::reserved);
  EXPECT_EQ(info().stock_left, 0u);
}

TEST_F(EngineRules, RestockReopensASoldOutDrop) {
  open_drop("d", 1);
  order("alice", "a1", t0);
  EXPECT_EQ(info().state, DropState::sold_out);
  EXPECT_EQ(engine.restock("d", 2, t0 + 1, events).status, CommandStatus::ok);
  EXPECT_EQ(info().state, DropState::open);
  EXPECT_EQ(info().stock_total, 3u);
  EXPECT_EQ(order("bob", "b1", t0 + 2).outcome, OrderOutcome::reserved);
  const auto changes = events_of<StateChanged>();
  ASSERT_GE(changes.size(), 3u);
  EXPECT_EQ(changes[changes.size() - 1].state, DropState::open);
  EXPECT_EQ(changes[changes.size() - 2].state, DropState::sold_out);
}

TEST_F(EngineRules, CloseKeepsHoldsAndCancelsTheWaitlist) {
  open_drop("d", 1, 1, 5);
  const OrderResult alice = order("alice", "a1", t0);
  const OrderResult bob = order("bob", "b1", t0);
  EXPECT_EQ(engine.close("d", t0 + 1, events).status, CommandStatus::ok);
  EXPECT_EQ(engine.order_info(0, bob.order)->status, OrderStatus::cancelled);
  EXPECT_EQ(events_of<OrderCancelled>().back().reason, CancelReason::drop_closed);
  EXPECT_EQ(order("carol", "c1", t0 + 2).outcome, OrderOutcome::closed);
  EXPECT_EQ(order("carol", "c1", t0 + 3).outcome, OrderOutcome::closed);  // recorded
  EXPECT_EQ(confirm("alice", alice.order, t0 + 4).status, CommandStatus::ok);
  EXPECT_EQ(info().sold, 1u);
  EXPECT_EQ(engine.close("d", t0 + 5, events).status, CommandStatus::wrong_state);
  EXPECT_EQ(engine.restock("d", 1, t0 + 5, events).status, CommandStatus::wrong_state);
}

TEST_F(EngineRules, ExpiryAfterCloseReturnsUnitsToStockOnly) {
  open_drop("d", 1, 1, 5);
  const OrderResult alice = order("alice", "a1", t0);
  engine.close("d", t0 + 1, events);
  engine.advance_time(alice.hold_expires_at_ms, events);
  EXPECT_EQ(info().stock_left, 1u);
  EXPECT_EQ(info().state, DropState::closed);
}

TEST_F(EngineRules, HostCommandsValidateAndReport) {
  DropSpec spec{"d", "t", 100, 5, 1, hold_ms, 0};
  EXPECT_EQ(engine.create_drop(spec, t0, events).status, CommandStatus::ok);
  EXPECT_EQ(engine.create_drop(spec, t0, events).status, CommandStatus::already_exists);
  DropSpec bad = spec;
  bad.id = "bad id";
  EXPECT_EQ(engine.create_drop(bad, t0, events).status, CommandStatus::invalid_argument);
  bad = spec;
  bad.id = "e";
  bad.hold_ms = 999;
  EXPECT_EQ(engine.create_drop(bad, t0, events).status, CommandStatus::invalid_argument);
  bad.hold_ms = hold_ms;
  bad.per_user_limit = 0;
  EXPECT_EQ(engine.create_drop(bad, t0, events).status, CommandStatus::invalid_argument);
  EXPECT_EQ(engine.start_countdown("nope", 0, t0, events).status, CommandStatus::unknown_drop);
  EXPECT_EQ(engine.start_countdown("d", -1, t0, events).status, CommandStatus::invalid_argument);
  EXPECT_EQ(engine.restock("d", 0, t0, events).status, CommandStatus::invalid_argument);
  EXPECT_EQ(engine.start_countdown("d", 5'000, t0, events).status, CommandStatus::ok);
  EXPECT_EQ(engine.start_countdown("d", 1'000, t0 + 1, events).status, CommandStatus::ok);  // moved
  EXPECT_EQ(info().opens_at_ms, t0 + 1 + 1'000);
  engine.advance_time(t0 + 1'001, events);
  EXPECT_EQ(info().state, DropState::open);
  EXPECT_EQ(engine.start_countdown("d", 0, t0 + 2'000, events).status, CommandStatus::wrong_state);
}

TEST_F(EngineRules, ZeroCountdownOpensAtOnceAndEmptyStockSellsOut) {
  DropSpec spec{"d", "t", 100, 0, 1, hold_ms, 0};
  engine.create_drop(spec, t0, events);
  engine.start_countdown("d", 0, t0, events);
  EXPECT_EQ(info().state, DropState::sold_out);
  EXPECT_EQ(order("alice", "a1", t0).outcome, OrderOutcome::sold_out);
}

TEST_F(EngineRules, DropLimitAndDecisionTableLimitHold) {
  EngineLimits limits;
  limits.drops_max = 1;
  limits.decisions_per_drop_max = 2;
  limits.decisions_per_drop_reserve = 2;
  Engine small(limits);
  DropSpec spec{"d", "t", 100, 5, 1, hold_ms, 0};
  EXPECT_EQ(small.create_drop(spec, t0 - 1, events).status, CommandStatus::ok);
  spec.id = "e";
  EXPECT_EQ(small.create_drop(spec, t0 - 1, events).status, CommandStatus::limit_reached);
  small.start_countdown("d", 0, t0, events);
  EXPECT_EQ(small.place_order({"d", "a", "1", 1}, t0, events).outcome, OrderOutcome::reserved);
  EXPECT_EQ(small.place_order({"d", "b", "1", 1}, t0, events).outcome, OrderOutcome::reserved);
  EXPECT_EQ(small.place_order({"d", "c", "1", 1}, t0, events).outcome, OrderOutcome::unavailable);
  EXPECT_EQ(small.place_order({"d", "a", "1", 1}, t0, events).outcome, OrderOutcome::reserved);
}

TEST_F(EngineRules, EventsAreSequencedWithoutGaps) {
  open_drop("d", 2, 1, 1);
  order("alice", "a1", t0);
  order("bob", "b1", t0);
  order("carol", "c1", t0);
  engine.advance_time(t0 + hold_ms, events);
  for (std::size_t index = 0; index < events.size(); ++index)
    EXPECT_EQ(events[index].sequence, index + 1);
  EXPECT_EQ(engine.last_sequence(), events.size());
}

TEST_F(EngineRules, TimeNeverGoesBackwards) {
  open_drop("d", 2);
  order("alice", "a1", t0 + 500);
  const OrderResult late = order("bob", "b1", t0 - 5'000);  // a stale clock
  EXPECT_EQ(late.outcome, OrderOutcome::reserved);
  EXPECT_EQ(late.hold_expires_at_ms, t0 + 500 + hold_ms);
}

TEST_F(EngineRules, OrdersOfListsABuyersOrders) {
  open_drop("d", 5, 3);
  order("alice", "a1", t0);
  order("bob", "b1", t0);
  order("alice", "a2", t0, 2);
  const auto mine = engine.orders_of(0, "alice");
  ASSERT_EQ(mine.size(), 2u);
  EXPECT_EQ(mine[0].client_order_id, "a1");
  EXPECT_EQ(mine[1].qty, 2u);
  EXPECT_TRUE(engine.find_decision("d", "bob", "b1").has_value());
  EXPECT_FALSE(engine.find_decision("d", "bob", "b2").has_value());
}

}  // namespace
}  // namespace flashsale::engine
