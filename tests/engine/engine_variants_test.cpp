// The rules of variants, list prices, scheduled starts and automatic ends, one test each; the
// model test covers their interplay with everything else at random.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "flashsale/engine/engine.hpp"
#include "printers.hpp"

namespace flashsale::engine {
namespace {

constexpr TimeMs t0 = 1'000'000;
constexpr TimeMs hold_ms = 60'000;

// Sneaker sizes 41-43 with their own stock, prices and list prices.
DropSpec sneaker(std::uint32_t stock_41 = 1, std::uint32_t stock_42 = 2,
                 std::uint32_t stock_43 = 3) {
  DropSpec spec{"shoe", "Runner", 0, 0, 2, hold_ms, 0};
  spec.variants = {{"41", "EU 41", 5900, 8900, stock_41},
                   {"42", "EU 42", 5900, 8900, stock_42},
                   {"43", "EU 43", 6400, 0, stock_43}};
  return spec;
}

class EngineVariants : public ::testing::Test {
 protected:
  CommandResult create(const DropSpec& spec, std::optional<TimeMs> opens_at = t0) {
    const CommandResult result = engine.create_drop(spec, t0 - 10'000, events, opens_at, 7);
    engine.check_invariants();
    return result;
  }
  OrderResult order(std::string_view user, std::string_view client_order_id,
                    std::string_view variant, TimeMs at = t0, std::uint32_t qty = 1) {
    OrderResult result =
        engine.place_order({"shoe", user, client_order_id, qty, variant}, at, events);
    engine.check_invariants();
    return result;
  }
  DropInfo info() { return engine.drop_info(*engine.find_drop("shoe")); }

  Engine engine;
  Events events;
};

TEST_F(EngineVariants, EachVariantSellsItsOwnStock) {
  ASSERT_EQ(create(sneaker()).status, CommandStatus::ok);
  EXPECT_EQ(order("ann", "a", "41").outcome, OrderOutcome::reserved);
  // Size 41 is gone; 42 still sells, and the drop stays open.
  EXPECT_EQ(order("bob", "b", "41").outcome, OrderOutcome::sold_out);
  const OrderResult bob = order("bob", "b2", "42");
  EXPECT_EQ(bob.outcome, OrderOutcome::reserved);
  EXPECT_EQ(bob.variant, 1);
  const DropInfo drop = info();
  EXPECT_EQ(drop.state, DropState::open);
  ASSERT_EQ(drop.variants.size(), 3u);
  EXPECT_EQ(drop.variants[0].stock_left, 0u);
  EXPECT_EQ(drop.variants[1].stock_left, 1u);
  EXPECT_EQ(drop.variants[2].stock_left, 3u);
  EXPECT_EQ(drop.stock_left, 4u);
  EXPECT_EQ(drop.held, 2u);
  // The events say the variant and its own stock left.
  const auto& decided = std::get<OrderDecided>(events.back().body);
  EXPECT_EQ(decided.variant, 1);
  EXPECT_EQ(decided.stock_left, 1u);
}

TEST_F(EngineVariants, TheDropSellsOutWhenEveryVariantHas) {
  ASSERT_EQ(create(sneaker(1, 1, 1)).status, CommandStatus::ok);
  order("a", "1", "41");
  order("b", "1", "42");
  EXPECT_EQ(info().state, DropState::open);
  order("c", "1", "43");
  EXPECT_EQ(info().state, DropState::sold_out);
}

TEST_F(EngineVariants, AnOrderMustNameAVariantTheDropSells) {
  ASSERT_EQ(create(sneaker()).status, CommandStatus::ok);
  const OrderResult unnamed = order("ann", "a", "");
  EXPECT_EQ(unnamed.outcome, OrderOutcome::unknown_variant);
  EXPECT_EQ(order("ann", "a", "44").outcome, OrderOutcome::unknown_variant);
  EXPECT_EQ(order("ann", "a", "a-very-long-variant-id-not-sold").outcome,
            OrderOutcome::unknown_variant);
  // Not recorded: the same client_order_id then succeeds with a real size.
  EXPECT_EQ(info().decisions, 0u);
  EXPECT_EQ(order("ann", "a", "43").outcome, OrderOutcome::reserved);
}

TEST_F(EngineVariants, OneVariantDropsTakeOrdersNamingNone) {
  DropSpec spec = sneaker();
  spec.variants.resize(1);
  ASSERT_EQ(create(spec).status, CommandStatus::ok);
  EXPECT_EQ(order("ann", "a", "").outcome, OrderOutcome::reserved);
  // A protocol v1 drop (no variants) has one unnamed variant and refuses a named one.
  DropSpec plain{"plain", "Chestnuts", 1990, 5, 1, hold_ms, 0};
  plain.list_price_cents = 2590;
  ASSERT_EQ(engine.create_drop(plain, t0, events, t0).status, CommandStatus::ok);
  EXPECT_EQ(engine.place_order({"plain", "ann", "a", 1, ""}, t0, events).outcome,
            OrderOutcome::reserved);
  EXPECT_EQ(engine.place_order({"plain", "bob", "b", 1, "42"}, t0, events).outcome,
            OrderOutcome::unknown_variant);
  const DropInfo drop = engine.drop_info(*engine.find_drop("plain"));
  ASSERT_EQ(drop.variants.size(), 1u);
  EXPECT_EQ(drop.variants[0].id, "");
  EXPECT_EQ(drop.variants[0].list_price_cents, 2590);
}

TEST_F(EngineVariants, TheLimitCountsUnitsAcrossTheDrop) {
  ASSERT_EQ(create(sneaker(5, 5, 5)).status, CommandStatus::ok);  // per_user_limit 2
  EXPECT_EQ(order("ann", "a", "41").outcome, OrderOutcome::reserved);
  EXPECT_EQ(order("ann", "b", "42").outcome, OrderOutcome::reserved);
  EXPECT_EQ(order("ann", "c", "43").outcome, OrderOutcome::limit_exceeded);
}

TEST_F(EngineVariants, APerVariantLimitHoldsWithinEachVariant) {
  DropSpec spec = sneaker(5, 5, 5);
  spec.per_user_limit = 3;
  spec.per_variant_limit = 1;
  ASSERT_EQ(create(spec).status, CommandStatus::ok);
  EXPECT_EQ(order("ann", "a", "41").outcome, OrderOutcome::reserved);
  EXPECT_EQ(order("ann", "b", "41").outcome, OrderOutcome::limit_exceeded);
  EXPECT_EQ(order("ann", "c", "42", t0, 2).outcome, OrderOutcome::limit_exceeded);
  EXPECT_EQ(order("ann", "d", "42").outcome, OrderOutcome::reserved);
  // A cancelled unit no longer counts.
  ASSERT_EQ(engine.cancel({"shoe", 1, "ann"}, t0 + 1, events).status, CommandStatus::ok);
  EXPECT_EQ(order("ann", "e", "41", t0 + 2).outcome, OrderOutcome::reserved);
}

TEST_F(EngineVariants, WaitlistsAndRestocksArePerVariant) {
  DropSpec spec = sneaker(1, 1, 1);
  spec.waitlist_limit = 1;
  ASSERT_EQ(create(spec).status, CommandStatus::ok);
  order("ann", "a", "41");
  const OrderResult waiting = order("bob", "b", "41");
  EXPECT_EQ(waiting.outcome, OrderOutcome::waitlisted);
  EXPECT_EQ(waiting.waitlist_position, 1u);
  // Size 42's queue is its own: empty, and its stock still sells.
  EXPECT_EQ(order("cat", "c", "42").outcome, OrderOutcome::reserved);
  EXPECT_EQ(order("dan", "d", "42").outcome, OrderOutcome::waitlisted);
  EXPECT_EQ(order("eve", "e", "41").outcome, OrderOutcome::sold_out);  // 41's queue is full
  // Restocking 42 serves 42's queue, not 41's.
  EXPECT_EQ(engine.restock("shoe", 1, t0 + 1, events, "42").status, CommandStatus::ok);
  EXPECT_EQ(engine.order_info(0, 4)->status, OrderStatus::reserved);    // dan
  EXPECT_EQ(engine.order_info(0, 2)->status, OrderStatus::waitlisted);  // bob
  const auto& restocked = std::get<Restocked>(events[events.size() - 2].body);
  EXPECT_EQ(restocked.variant, 1);
  EXPECT_EQ(restocked.stock_total, 2u);
  // A restock must name a variant the drop sells.
  EXPECT_EQ(engine.restock("shoe", 1, t0 + 2, events).status, CommandStatus::unknown_variant);
  EXPECT_EQ(engine.restock("shoe", 1, t0 + 2, events, "44").status, CommandStatus::unknown_variant);
  engine.check_invariants();
}

TEST_F(EngineVariants, ConfirmedSalesAreValuedAtEachVariantsPrice) {
  DropSpec spec = sneaker(5, 5, 5);
  spec.per_user_limit = 3;
  spec.beneficiary = "School";
  spec.pledge_bps = 1'000;
  ASSERT_EQ(create(spec).status, CommandStatus::ok);
  order("ann", "a", "41");
  order("ann", "b", "43", t0, 2);
  engine.confirm({"shoe", 1, "ann"}, t0 + 1, events);
  engine.confirm({"shoe", 2, "ann"}, t0 + 1, events);
  EXPECT_EQ(info().sales_cents, 5900 + 2 * 6400);
  EXPECT_EQ(info().raised_cents, (5900 + 2 * 6400) / 10);
}

TEST_F(EngineVariants, BadSpecsAreRefusedAndNothingChanges) {
  const auto refused = [this](DropSpec spec, std::optional<TimeMs> opens_at = std::nullopt) {
    const CommandResult result = create(spec, opens_at);
    EXPECT_EQ(result.status, CommandStatus::invalid_argument);
    EXPECT_FALSE(result.reason.empty());
    EXPECT_EQ(engine.drop_count(), 0u);
    EXPECT_TRUE(events.empty());
    return std::string(result.reason);
  };
  DropSpec duplicate = sneaker();
  duplicate.variants[2].id = "41";
  EXPECT_EQ(refused(duplicate), "variant ids must be unique");
  DropSpec below = sneaker();
  below.variants[0].list_price_cents = 5000;
  EXPECT_NE(refused(below).find("list_price_cents"), std::string::npos);
  DropSpec plain_below{"shoe", "t", 1990, 5, 1, hold_ms, 0};
  plain_below.list_price_cents = 1000;
  EXPECT_NE(refused(plain_below).find("list_price_cents"), std::string::npos);
  DropSpec both = sneaker();
  both.stock = 5;
  EXPECT_EQ(refused(both), "a drop with variants sets price and stock per variant");
  DropSpec bad_id = sneaker();
  bad_id.variants[0].id = "size 41";
  EXPECT_NE(refused(bad_id).find("variant id"), std::string::npos);
  DropSpec too_many = sneaker();
  too_many.variants.clear();
  std::vector<std::string> ids;
  for (int index = 0; index < 65; ++index) ids.push_back("s" + std::to_string(index));
  for (const std::string& id : ids) too_many.variants.push_back({id, "", 100, 0, 1});
  EXPECT_EQ(refused(too_many), "a drop has at most 64 variants");
  DropSpec variant_limit = sneaker();
  variant_limit.per_variant_limit = 3;  // above per_user_limit 2
  EXPECT_NE(refused(variant_limit).find("per_variant_limit"), std::string::npos);
  DropSpec short_sale = sneaker();
  short_sale.duration_ms = 999;
  EXPECT_EQ(refused(short_sale), "duration must be 1 s .. 7 days");
  DropSpec inside_window = sneaker();
  inside_window.admission_window_ms = 2'000;
  inside_window.duration_ms = 2'000;
  EXPECT_NE(refused(inside_window).find("admission window"), std::string::npos);
  EXPECT_NE(refused(sneaker(), t0 - 10'000 + countdown_ms_max + 1).find("7 days"),
            std::string::npos);
}

TEST_F(EngineVariants, AScheduledDropCountsDownFromCreation) {
  ASSERT_EQ(create(sneaker(), t0).status, CommandStatus::ok);
  EXPECT_EQ(info().state, DropState::countdown);
  EXPECT_EQ(info().opens_at_ms, t0);
  EXPECT_EQ(order("ann", "a", "41", t0 - 1).outcome, OrderOutcome::not_open);
  EXPECT_EQ(order("ann", "a", "41", t0).outcome, OrderOutcome::reserved);
  // An instant already past opens the drop at once.
  DropSpec late = sneaker();
  late.id = "late";
  ASSERT_EQ(engine.create_drop(late, t0, events, t0 - 5'000).status, CommandStatus::ok);
  EXPECT_EQ(engine.drop_info(1).state, DropState::open);
  EXPECT_EQ(engine.drop_info(1).opens_at_ms, t0);
  // start_countdown_at moves it like start_countdown.
  DropSpec moved = sneaker();
  moved.id = "moved";
  ASSERT_EQ(engine.create_drop(moved, t0, events).status, CommandStatus::ok);
  ASSERT_EQ(engine.start_countdown_at("moved", t0 + 60'000, t0, events).status, CommandStatus::ok);
  EXPECT_EQ(engine.drop_info(2).opens_at_ms, t0 + 60'000);
  EXPECT_EQ(engine.start_countdown_at("moved", t0 + countdown_ms_max + 1, t0, events).status,
            CommandStatus::invalid_argument);
}

TEST_F(EngineVariants, TheSaleEndsByItselfAtItsInstant) {
  DropSpec spec = sneaker(1, 2, 3);
  spec.waitlist_limit = 5;
  spec.duration_ms = 20'000;
  ASSERT_EQ(create(spec, t0).status, CommandStatus::ok);
  EXPECT_EQ(info().closes_at_ms, t0 + 20'000);
  order("ann", "a", "41");
  EXPECT_EQ(order("bob", "b", "41").outcome, OrderOutcome::waitlisted);
  events.clear();
  EXPECT_EQ(order("cat", "c", "42", t0 + 19'999).outcome, OrderOutcome::reserved);
  // At the instant exactly: closed, the waitlist cancelled, the holds still payable.
  EXPECT_EQ(order("dan", "d", "43", t0 + 20'000).outcome, OrderOutcome::closed);
  EXPECT_EQ(info().state, DropState::closed);
  EXPECT_EQ(engine.order_info(0, 2)->status, OrderStatus::cancelled);
  EXPECT_EQ(engine.confirm({"shoe", 1, "ann"}, t0 + 20'001, events).status, CommandStatus::ok);
  // The same events a host's close gives.
  std::vector<DropState> states;
  std::vector<CancelReason> reasons;
  for (const Event& event : events) {
    if (const auto* changed = std::get_if<StateChanged>(&event.body))
      states.push_back(changed->state);
    if (const auto* cancelled = std::get_if<OrderCancelled>(&event.body))
      reasons.push_back(cancelled->reason);
  }
  EXPECT_EQ(states, std::vector<DropState>{DropState::closed});
  EXPECT_EQ(reasons, std::vector<CancelReason>{CancelReason::drop_closed});
  engine.check_invariants();
}

TEST_F(EngineVariants, HoldsThatExpiredBeforeTheEndStillServeTheWaitlist) {
  DropSpec spec = sneaker(1, 0, 0);
  spec.waitlist_limit = 5;
  spec.hold_ms = 5'000;
  spec.duration_ms = 20'000;
  ASSERT_EQ(create(spec, t0).status, CommandStatus::ok);
  order("ann", "a", "41", t0 + 10'000);  // expires at t0 + 15 s, before the end
  order("bob", "b", "41", t0 + 10'000);  // waits
  // Nothing happens until long after both instants: the expiry still comes first.
  engine.advance_time(t0 + 60'000, events);
  EXPECT_EQ(engine.order_info(0, 1)->status, OrderStatus::expired);
  // Bob got the units before the end, with a hold of his own that outlives the sale.
  EXPECT_EQ(engine.order_info(0, 2)->status, OrderStatus::reserved);
  EXPECT_EQ(engine.order_info(0, 2)->hold_expires_at_ms, t0 + 65'000);
  EXPECT_EQ(info().state, DropState::closed);
  engine.check_invariants();
}

TEST_F(EngineVariants, SnapshotsAndReplayKeepVariantsAndTheEnd) {
  DropSpec spec = sneaker(2, 2, 2);
  spec.waitlist_limit = 2;
  spec.per_variant_limit = 1;
  spec.duration_ms = 30'000;
  ASSERT_EQ(create(spec, t0).status, CommandStatus::ok);
  order("ann", "a", "41");
  order("bob", "b", "41");
  order("cat", "c", "41");
  order("dan", "d", "43");
  Engine replayed;
  for (const Event& event : events) replayed.apply(event);
  EXPECT_EQ(replayed.digest(), engine.digest());
  Engine restored;
  ASSERT_EQ(restored.restore(engine.snapshot()), "");
  EXPECT_EQ(restored.digest(), engine.digest());
  // All three end the sale at the same instant with the same events.
  Events original_end;
  Events restored_end;
  engine.advance_time(t0 + 30'000, original_end);
  restored.advance_time(t0 + 30'000, restored_end);
  EXPECT_EQ(original_end, restored_end);
  EXPECT_EQ(restored.drop_info(0).state, DropState::closed);
  EXPECT_EQ(restored.digest(), engine.digest());
}

}  // namespace
}  // namespace flashsale::engine
