// Events: the engine's only output, an ordered, sequence-numbered record of every state change.
//
// One stream serves three readers: the journal persists it (an outcome counts once its event is
// durable), the gateway turns it into messages for buyers and viewers, and `Engine::apply`
// rebuilds identical state from it after a crash. So an event carries every value the change
// depends on: applying it never decides anything.
//
// Lifetime: the string_views point into the engine's arena, which never moves or frees bytes
// while the engine lives. They may be read from another thread once the event has been handed
// over through a synchronising queue (bytes are written before the event is published).
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <variant>
#include <vector>

#include "flashsale/engine/types.hpp"

namespace flashsale::engine {

// One thing a drop sells: a size, a colour, a bag weight. Each has its own stock, price and
// waitlist; orders name it by id.
struct VariantSpec {
  std::string_view id;                // 1-32 of [A-Za-z0-9_.-], unique within the drop
  std::string_view label;             // 0-100 bytes shown to buyers; UTF-8 is the caller's
  std::int64_t price_cents = 0;       // the deal price, 0 .. 10^12
  std::int64_t list_price_cents = 0;  // the price before the deal, for display: 0 or >= price
  std::uint32_t stock = 0;            // units at creation

  friend bool operator==(const VariantSpec&, const VariantSpec&) = default;
};

// What a host sets when creating a live stream. Validated by `Engine::create_stream`.
struct StreamSpec {
  std::string_view id;         // 1-32 of [A-Za-z0-9_.-]
  std::string_view host;       // the owning host's id, 1-32 of [A-Za-z0-9_.-]
  std::string_view title;      // 0-200 bytes, UTF-8 is the caller's business
  std::string_view video_url;  // 0-500 bytes, shown to viewers as given

  friend bool operator==(const StreamSpec&, const StreamSpec&) = default;
};

// What a host sets when creating a drop. Validated by `Engine::create_drop`.
struct DropSpec {
  std::string_view id;               // see is_valid_drop_id: `S~N` in stream S, else no '~'
  std::string_view title;            // 0-200 bytes, UTF-8 is the caller's business
  std::int64_t price_cents = 0;      // 0 .. 10^12; see `variants`
  std::uint32_t stock = 0;           // units at creation, 0 .. 10^9; see `variants`
  std::uint32_t per_user_limit = 1;  // units per buyer across all variants, 1 .. 10^6
  TimeMs hold_ms = 0;                // how long a reservation waits for payment, 1 s .. 24 h
  std::uint32_t waitlist_limit = 0;  // waiting orders per variant at most; 0 = no waitlist
  // Fair admission: orders arriving in the first `admission_window_ms` after the opening instant
  // are collected, then decided in a random order when the window closes; later orders are
  // first come, first served. 0 (the default) serves everyone on arrival. 0 .. 60 s.
  TimeMs admission_window_ms = 0;
  // A charity drop: `pledge_bps` basis points (0-10,000) of every confirmed sale go to
  // `beneficiary` (1-100 bytes when pledging; `beneficiary_note`, 0-300 bytes, says who they
  // are). See DropInfo::raised_cents for the arithmetic.
  std::string_view beneficiary = {};
  std::string_view beneficiary_note = {};
  std::uint32_t pledge_bps = 0;
  // An automatic end: the sale closes itself `duration_ms` after its opening instant, exactly
  // as a host's close would. 0 = open until closed; else 1 s .. 7 days, and longer than the
  // admission window.
  TimeMs duration_ms = 0;
  // A drop sells 1-64 variants. Without `variants` it sells one unnamed variant priced
  // `price_cents` (shown beside `list_price_cents`) with `stock` units, and orders name no
  // variant — protocol v1's drop. With them, those three stay 0. The drop's total stock, all
  // variants and restocks together, stays within 10^9.
  std::vector<VariantSpec> variants = {};
  std::int64_t list_price_cents = 0;  // 0 or >= price_cents
  // Units per buyer in any one variant, 1 .. per_user_limit; 0 = only per_user_limit applies.
  std::uint32_t per_variant_limit = 0;
  // The owning host's id (is_valid_host_id); empty: journaled before hosts, the operator's.
  std::string_view host = {};
  // The stream the drop is created in (its id's part before '~'); empty: in no stream.
  std::string_view stream = {};

  friend bool operator==(const DropSpec&, const DropSpec&) = default;
};

// The spec is shared rather than held: it is by far the largest body, and every event (one
// per order in a surge) is as large as the largest body. Strings point into the arena.
struct DropCreated {
  std::shared_ptr<const DropSpec> spec;

  friend bool operator==(const DropCreated& a, const DropCreated& b) { return *a.spec == *b.spec; }
};

struct CountdownStarted {
  TimeMs opens_at_ms = 0;
  // Orders the admission window's draw. Chosen by whoever starts the countdown (the gateway
  // draws it from a CSPRNG) and kept from buyers; journaled, so a recovered engine draws the
  // same winners.
  std::uint64_t admission_seed = 0;

  friend bool operator==(const CountdownStarted&, const CountdownStarted&) = default;
};

struct StateChanged {
  DropState state = DropState::scheduled;

  friend bool operator==(const StateChanged&, const StateChanged&) = default;
};

// A recorded order outcome: reserved, waitlisted, sold_out, limit_exceeded, closed or pending.
// For reserved and waitlisted, `order` is the new order's number; otherwise 0. With `drawn`,
// it decides an order collected earlier as pending (the admission window closed): reserved,
// waitlisted or sold_out replaces the pending record.
struct OrderDecided {
  std::string_view user;
  std::string_view client_order_id;
  OrderOutcome outcome = OrderOutcome::invalid;
  bool drawn = false;        // next to `outcome`: an event is written per order, so its size counts
  std::uint8_t variant = 0;  // the variant's position in the drop's spec
  std::uint32_t qty = 0;
  OrderNumber order = 0;
  TimeMs hold_expires_at_ms = 0;        // reserved only
  std::uint32_t waitlist_position = 0;  // waitlisted only; 1 = next in line in the variant
  std::uint32_t stock_left = 0;         // the variant's, after the decision

  friend bool operator==(const OrderDecided&, const OrderDecided&) = default;
};

// A waitlisted order got its units: it is now reserved with its own hold.
// In this and the events below, `stock_left` is the order's variant's.
struct OrderPromoted {
  OrderNumber order = 0;
  TimeMs hold_expires_at_ms = 0;
  std::uint32_t stock_left = 0;

  friend bool operator==(const OrderPromoted&, const OrderPromoted&) = default;
};

struct OrderConfirmed {
  OrderNumber order = 0;

  friend bool operator==(const OrderConfirmed&, const OrderConfirmed&) = default;
};

struct OrderCancelled {
  OrderNumber order = 0;
  CancelReason reason = CancelReason::by_buyer;
  std::uint32_t stock_left = 0;  // after any units came back

  friend bool operator==(const OrderCancelled&, const OrderCancelled&) = default;
};

struct HoldExpired {
  OrderNumber order = 0;
  std::uint32_t stock_left = 0;

  friend bool operator==(const HoldExpired&, const HoldExpired&) = default;
};

// Units added to one variant; the totals are the variant's, after the restock.
struct Restocked {
  std::uint32_t added = 0;
  std::uint32_t stock_total = 0;
  std::uint32_t stock_left = 0;
  std::uint8_t variant = 0;

  friend bool operator==(const Restocked&, const Restocked&) = default;
};

// The admission window's draw has decided everything it could: every order it leaves pending
// (`sold_out` of them) is sold out. The draw stops as soon as nobody left could get a unit or a
// waitlist place, so a window of a million orders for a thousand units costs a thousand
// OrderDecided events and this one, not a million.
struct AdmissionClosed {
  std::uint32_t sold_out = 0;

  friend bool operator==(const AdmissionClosed&, const AdmissionClosed&) = default;
};

// Stream events. They name their stream in the body; their Event::drop is 0 and means nothing
// (a consumer of drop events skips them: see is_stream_event).
struct StreamCreated {
  std::shared_ptr<const StreamSpec> spec;  // shared for the reason DropCreated's is

  friend bool operator==(const StreamCreated& a, const StreamCreated& b) {
    return *a.spec == *b.spec;
  }
};

struct StreamStateChanged {
  StreamIndex stream = 0;
  StreamState state = StreamState::scheduled;

  friend bool operator==(const StreamStateChanged&, const StreamStateChanged&) = default;
};

// The drop on screen: `drop` is pinned (replacing any other), or with `pinned` false the
// stream's pin is taken off (`drop` is then 0).
struct StreamPinned {
  StreamIndex stream = 0;
  bool pinned = false;
  DropIndex drop = 0;

  friend bool operator==(const StreamPinned&, const StreamPinned&) = default;
};

using EventBody =
    std::variant<DropCreated, CountdownStarted, StateChanged, OrderDecided, OrderPromoted,
                 OrderConfirmed, OrderCancelled, HoldExpired, Restocked, AdmissionClosed,
                 StreamCreated, StreamStateChanged, StreamPinned>;

// True for the events about a stream rather than a drop (their Event::drop means nothing).
constexpr bool is_stream_event(const EventBody& body) noexcept {
  return std::holds_alternative<StreamCreated>(body) ||
         std::holds_alternative<StreamStateChanged>(body) ||
         std::holds_alternative<StreamPinned>(body);
}

static_assert(sizeof(OrderDecided) == 64, "an order's event stays within 64 bytes");

struct Event {
  std::uint64_t sequence = 0;  // 1, 2, 3, ... without gaps over the engine's life
  TimeMs at_ms = 0;            // engine time of the command that caused it
  DropIndex drop = 0;          // 0 and meaningless for a stream event
  EventBody body;

  friend bool operator==(const Event&, const Event&) = default;
};
static_assert(sizeof(Event) <= 96, "an event is written per order: keep it small");

}  // namespace flashsale::engine
