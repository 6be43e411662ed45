// The order-matching core: the authoritative state of every drop — stock, holds, per-user
// limits, idempotency records and the waitlist — changed only by commands.
//
// Contract for every member function:
// - Thread: one thread owns an Engine; nothing here is synchronised.
// - Time: commands carry `now_ms`. The engine never reads a clock. Time never goes backwards:
//   a `now_ms` earlier than the engine's time is taken as the engine's time. Before a command
//   acts, time advances to `now_ms` (holds due by then expire, drops due by then open), so an
//   order arriving exactly at the opening instant finds the drop open.
// - Output: every state change is appended to `events` as an Event (see event.hpp), in the
//   order it happened. Nothing else is output. The same commands always give the same events.
// - Allocation: none per command, except amortised growth of pre-sized tables (record and
//   order tables, the arena that keeps ids, the event vector the caller passes in).
// - Failure: business failures are returned as outcomes/statuses; a broken invariant is a bug
//   and stops the process (FS_ASSERT).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "flashsale/engine/event.hpp"
#include "flashsale/engine/types.hpp"

namespace flashsale::engine {

namespace detail {
class DropBook;
class Arena;
struct StreamBook;
}  // namespace detail

using Events = std::vector<Event>;

// Bounds on what the engine holds, so memory stays bounded whatever clients send.
struct EngineLimits {
  std::uint32_t drops_max = 256;
  // Recorded outcomes per drop (one per distinct (user, client_order_id)). Past it, new
  // orders for that drop get `unavailable`; repeats still get their original outcome.
  std::uint32_t decisions_per_drop_max = 16'000'000;
  // Each new drop's record table is pre-sized for this many decisions, so a surge does not
  // pay for rehashing.
  std::uint32_t decisions_per_drop_reserve = 1u << 15;
  // Distinct client_order_ids one buyer may use on one drop. Past it, new ones get `invalid`:
  // a real buyer retries with the same id, and this keeps each buyer's records short.
  std::uint32_t decisions_per_buyer_max = 64;
  std::uint32_t streams_max = 4096;
  // Streams one host may hold in this engine, ended ones included: no host fills the engine's
  // table and leaves the others none.
  std::uint32_t streams_per_host_max = 256;
  // Drops created in one stream, whatever became of them.
  std::uint32_t drops_per_stream_max = 64;
};

struct PlaceOrder {
  std::string_view drop;
  std::string_view user;
  std::string_view client_order_id;
  std::uint32_t qty = 0;
  // The variant's id; may be empty on a drop with one variant.
  std::string_view variant = {};
};

inline constexpr std::uint32_t order_qty_max = 1'000'000;

struct OrderResult {
  OrderOutcome outcome = OrderOutcome::invalid;
  bool repeated = false;  // the original outcome of an earlier identical (user, client_order_id)
  DropIndex drop = 0;     // meaningful unless outcome is invalid
  OrderNumber order = 0;  // reserved or waitlisted
  std::uint32_t qty = 0;
  TimeMs hold_expires_at_ms = 0;                 // reserved
  std::uint32_t waitlist_position = 0;           // waitlisted
  OrderStatus status = OrderStatus::waitlisted;  // where the order stands now (with `order`)
  bool waitlist_full = false;  // a new sold_out because the drop's waitlist is at its limit
  std::uint8_t variant = 0;    // meaningful when recorded; here it fills padding
  std::string_view reason;     // for humans; static text
};
static_assert(sizeof(OrderResult) == 48, "a result is written per order: keep it small");

// A buyer acting on their own order: confirm (paid) or cancel.
struct OrderAction {
  std::string_view drop;
  OrderNumber order = 0;
  std::string_view user;
};

struct ActionResult {
  CommandStatus status = CommandStatus::ok;
  DropIndex drop = 0;
  OrderStatus order_status = OrderStatus::waitlisted;  // valid unless unknown drop/order
  std::string_view client_order_id;                    // valid unless unknown drop/order
  std::string_view reason;
};

struct CommandResult {
  CommandStatus status = CommandStatus::ok;
  DropIndex drop = 0;  // valid when status is ok (and for wrong_state/already_exists)
  std::string_view reason;
  // Stream commands and a drop created in a stream: when ok (and for wrong_state/already_exists).
  StreamIndex stream = 0;
};

// One variant's numbers; the drop's are their sums.
struct VariantInfo {
  std::string_view id;  // empty for the unnamed variant of a drop created without variants
  std::string_view label;
  std::int64_t price_cents = 0;
  std::int64_t list_price_cents = 0;
  std::uint32_t stock_total = 0;
  std::uint32_t stock_left = 0;
  std::uint32_t held = 0;
  std::uint32_t sold = 0;
  std::uint32_t waitlist_orders = 0;
};

struct DropInfo {
  DropIndex index = 0;
  DropSpec spec;
  DropState state = DropState::scheduled;
  std::optional<TimeMs> opens_at_ms;   // set once a countdown starts
  std::optional<TimeMs> closes_at_ms;  // with spec.duration_ms, once a countdown starts
  std::vector<VariantInfo> variants;   // at least one, in the spec's order
  std::uint32_t stock_total = 0;       // creation stock plus restocks
  std::uint32_t stock_left = 0;
  std::uint32_t held = 0;              // units reserved, awaiting payment
  std::uint32_t sold = 0;              // units confirmed
  std::uint32_t waitlist_orders = 0;   // orders waiting
  std::uint32_t pending_orders = 0;    // collected in the admission window, not yet drawn
  std::uint32_t orders = 0;            // orders ever accepted (reserved or waitlisted)
  std::uint32_t decisions = 0;         // recorded outcomes
  std::uint32_t orders_confirmed = 0;  // paid orders
  std::uint32_t supporters = 0;        // distinct buyers with a paid order
  // The value of the confirmed units: Σ over variants of sold × price_cents.
  std::int64_t sales_cents = 0;
  // What a charity drop has raised: pledge_bps of sales_cents, in whole cents, rounded down
  // once on the total — ⌊Σ sold × price_cents × pledge_bps / 10,000⌋ — so it never overstates
  // and never drifts with the number of orders. Cancelled and expired holds raise nothing; a
  // confirmed sale is final.
  std::int64_t raised_cents = 0;
};

struct StreamInfo {
  StreamIndex index = 0;
  StreamSpec spec;
  StreamState state = StreamState::scheduled;
  std::optional<DropIndex> pinned;  // the drop on screen, if any
  std::vector<DropIndex> drops;     // created in the stream, in creation order
};

// The pledge arithmetic of DropInfo::raised_cents, exact in 128 bits.
std::int64_t pledged_cents(std::int64_t sales_cents, std::uint32_t pledge_bps);

struct OrderInfo {
  OrderNumber order = 0;
  std::string_view user;
  std::string_view client_order_id;
  std::uint32_t qty = 0;
  OrderStatus status = OrderStatus::waitlisted;
  TimeMs hold_expires_at_ms = 0;  // 0 while waitlisted
  std::uint8_t variant = 0;
  std::int64_t price_cents = 0;  // per unit: its variant's deal price
};

class Engine {
 public:
  explicit Engine(EngineLimits limits = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Host commands. Precedence of failures: invalid_argument, already_exists/limit_reached
  // (create), unknown_stream, unknown_drop, unknown_variant, wrong_state. The engine does not
  // authenticate: callers decide who may act on which host's stream or drop.
  //
  // Creates a drop. With `opens_at_ms` it is scheduled at once: in countdown from its creation,
  // as if start_countdown_at followed (same bounds, same seed). With `spec.stream` it is created
  // in that stream: its id is `<stream>~<name>` and its host the stream's. Precedence:
  // invalid_argument (the spec: its fields, an id whose stream part is not spec.stream, a host
  // that is not a host id), already_exists, limit_reached (drops_max), unknown_stream,
  // invalid_argument (spec.host is not the stream's host), wrong_state (the stream has ended),
  // limit_reached (drops_per_stream_max).
  CommandResult create_drop(const DropSpec& spec, TimeMs now_ms, Events& events,
                            std::optional<TimeMs> opens_at_ms = {},
                            std::uint64_t admission_seed = 0);
  // Opens the drop at now + opens_in_ms (0 opens it now). From scheduled or countdown (a
  // countdown may be moved); 0 <= opens_in_ms <= 7 days. `admission_seed` orders the draw of
  // the admission window (DropSpec::admission_window_ms); it only matters for drops with one.
  CommandResult start_countdown(std::string_view drop, TimeMs opens_in_ms, TimeMs now_ms,
                                Events& events, std::uint64_t admission_seed = 0);
  // The same with an absolute opening instant, at most 7 days ahead. An instant already
  // past opens the drop now: a host's "at 20:00" that reaches us at 20:00:00.050 still opens.
  CommandResult start_countdown_at(std::string_view drop, TimeMs opens_at_ms, TimeMs now_ms,
                                   Events& events, std::uint64_t admission_seed = 0);
  // Adds units to one variant (`variant` may be empty on a drop with one); they serve that
  // variant's waitlist first. Any state but closed; 1 <= added, the drop's total <= 10^9.
  CommandResult restock(std::string_view drop, std::uint32_t added, TimeMs now_ms, Events& events,
                        std::string_view variant = {});
  // Stops the sale: new orders get `closed`, waitlist entries are cancelled. Holds stay valid
  // until paid, cancelled or expired: a winner never loses a reservation to a close. A drop
  // with a duration closes itself the same way at its instant.
  CommandResult close(std::string_view drop, TimeMs now_ms, Events& events);

  // Stream commands; `.stream` of the result names the stream when found.
  //
  // Creates a stream, scheduled. Precedence: invalid_argument (id or host not an id, title
  // over 200 bytes, video_url over 500), already_exists, limit_reached (streams_max, then
  // streams_per_host_max).
  CommandResult create_stream(const StreamSpec& spec, TimeMs now_ms, Events& events);
  // scheduled -> live. unknown_stream; wrong_state from live or ended.
  CommandResult go_live(std::string_view stream, TimeMs now_ms, Events& events);
  // Puts `drop` on screen (replacing any other), whatever the drop's state; an empty `drop`
  // takes the pin off. Scheduled and live streams. Precedence: unknown_stream, unknown_drop
  // (no such drop, or not one of this stream's), wrong_state (ended). Pinning the drop already
  // pinned, or unpinning with nothing pinned, is ok and changes nothing (no event). When
  // pinning, `.drop` is the pinned drop.
  CommandResult pin(std::string_view stream, std::string_view drop, TimeMs now_ms, Events& events);
  // Ends the stream: every drop of it not yet closed is closed exactly as `close` closes it
  // (holds stay payable), in creation order; then the pin comes off; then ended, for good.
  // unknown_stream; wrong_state when already ended.
  CommandResult end_stream(std::string_view stream, TimeMs now_ms, Events& events);

  // A buyer's order. Outcome precedence: invalid, (repeat: the original outcome),
  // unknown_variant, not_open, unavailable (table full), invalid (buyer over
  // decisions_per_buyer_max), closed, limit_exceeded (the drop's limit, then the variant's),
  // pending (inside the admission window), reserved, waitlisted, sold_out. Reserved needs an
  // empty waitlist and enough stock in the variant: nobody jumps the queue. A pending order's
  // units count toward the buyer's limits until it is drawn. A repeat is found by (user,
  // client_order_id) alone, whatever variant it names.
  OrderResult place_order(const PlaceOrder& request, TimeMs now_ms, Events& events);
  // Places `orders` in order, all at `now_ms`, writing results[i] for orders[i]: exactly the
  // answers and events of calling place_order for each, but faster for large batches (the
  // buyer lookups of later orders are prefetched). Precondition: results.size() >= orders.size().
  void place_orders(std::span<const PlaceOrder> orders, TimeMs now_ms, Events& events,
                    std::span<OrderResult> results);
  // Confirm (paid): reserved -> confirmed, final. Confirming a confirmed order is ok.
  ActionResult confirm(const OrderAction& action, TimeMs now_ms, Events& events);
  // Cancel: reserved or waitlisted -> cancelled; held units go to the waitlist, then to stock.
  ActionResult cancel(const OrderAction& action, TimeMs now_ms, Events& events);
  // Expires due holds, opens due drops, draws admission windows that have closed and ends
  // sales whose duration is up.
  void advance_time(TimeMs now_ms, Events& events);

  // Recovery: applies one event produced by another engine, in sequence order (asserted).
  // Decides nothing; afterwards this engine is identical to the producer at that point.
  void apply(const Event& event);

  // The whole state as bytes: versioned and canonical (equal engines give equal bytes), with
  // the clock and the sequence. O(state); allocates the string it returns.
  std::string snapshot() const;
  // Loads a snapshot into this engine, which must be fresh (no streams, no drops, no events).
  // Returns an empty string on success, else what is wrong with the bytes; the engine is then
  // unusable. Afterwards `digest()` equals the snapshotted engine's. Reads this version's
  // snapshots and version 4's (before streams), whose digest is the one it was written with.
  std::string restore(std::string_view bytes);

  // Queries: pure reads, any time on the owning thread.
  std::optional<DropIndex> find_drop(std::string_view id) const noexcept;
  std::uint32_t drop_count() const noexcept;
  DropInfo drop_info(DropIndex drop) const;  // precondition: drop < drop_count()
  std::optional<OrderInfo> order_info(DropIndex drop, OrderNumber order) const;
  std::optional<StreamIndex> find_stream(std::string_view id) const noexcept;
  std::uint32_t stream_count() const noexcept;
  StreamInfo stream_info(StreamIndex stream) const;  // precondition: stream < stream_count()
  // The buyer's orders in a drop, oldest first. O(the buyer's decisions, at most 64 distinct
  // client_order_ids): cheap enough for every subscribe of a signed-in buyer.
  std::vector<OrderInfo> orders_of(DropIndex drop, std::string_view user) const;
  // The recorded outcome of (user, client_order_id) without placing anything.
  std::optional<OrderResult> find_decision(std::string_view drop, std::string_view user,
                                           std::string_view client_order_id) const;
  TimeMs now_ms() const noexcept { return now_ms_; }
  std::uint64_t last_sequence() const noexcept { return sequence_; }
  const EngineLimits& limits() const noexcept { return limits_; }

  // A hash over a canonical encoding of the whole state (streams, drops, decisions, orders,
  // queues, sequence; not the clock). Equal digests mean equal engines. O(state).
  std::uint64_t digest() const;
  // Full scan of every invariant (stock_left + held + sold == total, per-user units within the
  // limit and equal to their orders, queue and table consistency, each stream's drops and pin);
  // FS_ASSERTs on a breach.
  void check_invariants() const;

 private:
  detail::DropBook* lookup(std::string_view id) const noexcept;
  detail::StreamBook* lookup_stream(std::string_view id) const noexcept;
  // Applies a change, then appends it as the next event: deciding code never mutates state
  // except through here, so replaying events takes exactly the same path.
  void emit(DropIndex drop, EventBody body, Events& events);
  Event& next_event(DropIndex drop, Events& events);  // appends, not yet applied
  void apply_last(Events& events);
  void apply_body(DropIndex drop, EventBody& body);
  void apply_stream_body(EventBody& body);
  bool refused_by_stream(const DropSpec& spec, CommandResult& result) const;
  void advance_to(TimeMs now_ms, Events& events);
  OrderResult decide_order(const PlaceOrder& request, std::uint32_t tag, Events& events);
  void advance_drop(detail::DropBook& book, Events& events);
  void expire_holds(detail::DropBook& book, TimeMs until_ms, Events& events);
  void end_sale(detail::DropBook& book, Events& events);
  void draw_admission(detail::DropBook& book, Events& events);
  void release_units(detail::DropBook& book, std::uint8_t variant, Events& events);
  void update_availability(detail::DropBook& book, Events& events);
  void schedule(detail::DropBook& book);
  void after_command();

  EngineLimits limits_;
  std::unique_ptr<detail::Arena> arena_;
  std::vector<std::unique_ptr<detail::DropBook>> drops_;
  struct DropIds;
  std::unique_ptr<DropIds> drop_ids_;
  std::vector<std::unique_ptr<detail::StreamBook>> streams_;
  struct StreamIds;
  std::unique_ptr<StreamIds> stream_ids_;
  struct StreamRestore;                             // restore's help with streams (snapshot.cpp)
  mutable detail::DropBook* last_found_ = nullptr;  // lookup's one-entry cache
  struct Deadlines;
  std::unique_ptr<Deadlines> deadlines_;
  TimeMs now_ms_ = 0;
  std::uint64_t sequence_ = 0;
  std::uint64_t commands_ = 0;
};

}  // namespace flashsale::engine
