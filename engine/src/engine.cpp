// The engine's rules. Each command validates, decides, and then changes state only through
// `emit`, which applies an event and appends it to the output; `apply` (recovery) runs the same
// application code on events read back from the journal. Keeping decisions and mutations apart
// is what makes "replay the events" and "replay the commands" reach the same digest.
#include "flashsale/engine/engine.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <queue>
#include <random>
#include <type_traits>
#include <utility>

#include "arena.hpp"
#include "drop_book.hpp"

namespace flashsale::engine {

using detail::DropBook;
using detail::Order;
using detail::Record;

struct Engine::DropIds {
  boost::unordered_flat_map<std::string_view, DropIndex, detail::StringHash, std::equal_to<>> map;
};

// Earliest pending deadline per drop (opening instant or first hold expiry), min first; ties
// go to the lower drop index so the order of events never depends on anything but input.
struct Engine::Deadlines {
  using Entry = std::pair<TimeMs, DropIndex>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap;
  std::vector<Entry> due;  // scratch for advance_to, kept to reuse its capacity
};

const char* detail::validate_spec(const DropSpec& spec) {
  if (!is_valid_drop_id(spec.id)) return "id must be 1-64 characters of [A-Za-z0-9_.-]";
  if (spec.title.size() > title_length_max) return "title must be at most 200 bytes";
  if (spec.price_cents < 0 || spec.price_cents > price_cents_max)
    return "price_cents must be 0..10^12";
  if (spec.stock > stock_max) return "stock must be 0..10^9";
  if (spec.per_user_limit < 1 || spec.per_user_limit > per_user_limit_max)
    return "per_user_limit must be 1..10^6";
  if (spec.hold_ms < hold_ms_min || spec.hold_ms > hold_ms_max) return "hold must be 1 s .. 24 h";
  if (spec.waitlist_limit > waitlist_limit_max) return "waitlist_limit must be 0..10^7";
  if (spec.admission_window_ms < 0 || spec.admission_window_ms > admission_window_ms_max)
    return "admission_window must be 0 .. 60 s";
  if (spec.beneficiary.size() > beneficiary_length_max)
    return "beneficiary must be at most 100 bytes";
  if (spec.beneficiary_note.size() > beneficiary_note_length_max)
    return "beneficiary_note must be at most 300 bytes";
  if (spec.pledge_bps > pledge_bps_max) return "pledge_bps must be 0..10000";
  if (spec.pledge_bps > 0 && spec.beneficiary.empty()) return "a pledge needs a beneficiary";
  // Keeps the amount raised within 64 bits whatever the restocks: 10^9 cents × 10^9 units.
  if (spec.pledge_bps > 0 && spec.price_cents > charity_price_cents_max)
    return "a charity drop's price_cents must be at most 10^9";
  return nullptr;
}

namespace {

bool accepts_orders(DropState state) {
  return state == DropState::open || state == DropState::sold_out;
}

// The drop's next moment of interest: its opening instant, the end of its admission window
// (with orders to draw) or its first hold's expiry.
std::optional<TimeMs> next_deadline(DropBook& book) {
  book.prune_queues();
  std::optional<TimeMs> next;
  if (book.state == DropState::countdown) next = book.opens_at_ms;
  if (book.pending_orders > 0) next = book.admission_closes_at_ms();
  if (!book.holds.empty()) {
    const TimeMs expiry = book.order(book.holds.front()).hold_expires_at_ms;
    next = next ? std::min(*next, expiry) : expiry;
  }
  return next;
}

// Only a new opening instant, a new hold or a first order to draw can make a drop's next
// deadline earlier; every other change leaves the heap's entry at or before the real deadline,
// which is all it needs.
bool may_bring_deadline_forward(const DropBook& book, const EventBody& body) {
  if (std::holds_alternative<CountdownStarted>(body) || std::holds_alternative<OrderPromoted>(body))
    return true;
  const auto* decided = std::get_if<OrderDecided>(&body);
  return decided != nullptr &&
         (decided->outcome == OrderOutcome::reserved ||
          (decided->outcome == OrderOutcome::pending && book.pending_orders == 1));
}

bool legal_transition(DropState from, DropState to) {
  switch (to) {
    case DropState::open:
      return from == DropState::countdown || from == DropState::sold_out;
    case DropState::sold_out:
      return from == DropState::open;
    case DropState::closed:
      return from != DropState::closed;
    case DropState::scheduled:
    case DropState::countdown:
      return false;  // countdown is entered through CountdownStarted only
  }
  return false;
}

OrderResult result_of(const DropBook& book, std::uint32_t position, bool repeated) {
  const Record& record = book.decisions[position];
  OrderResult result;
  result.outcome = book.outcome_of(record);
  result.repeated = repeated;
  result.drop = book.index;
  result.qty = record.qty;
  result.order = record.order;
  if (record.order != 0) {
    const Order& order = book.order(record.order);
    result.status = order.status;
    result.waitlist_position = order.waitlist_position;
    // The original answer: a waitlisted order had no hold, whatever it got since.
    if (record.outcome == OrderOutcome::reserved)
      result.hold_expires_at_ms = order.hold_expires_at_ms;
  }
  return result;
}

OrderResult unrecorded(OrderOutcome outcome, const char* reason, DropIndex drop = 0) {
  OrderResult result;
  result.outcome = outcome;
  result.drop = drop;
  result.reason = reason;
  return result;
}

// Units that a buyer stops holding (cancel, expiry) no longer count toward their limit.
void release_user_units(DropBook& book, const Order& order) {
  detail::Buyer& buyer = book.buyer_of(order);
  FS_ASSERT(buyer.units >= order.qty);
  buyer.units -= order.qty;
}

void release_hold(DropBook& book, const Order& order) {
  FS_ASSERT(book.held >= order.qty);
  book.held -= order.qty;
  book.stock_left += order.qty;
}

// --- Applying events to a drop. Each asserts what the event claims about the state after. ---

// Records a new order in the book: reserved (held, queued for expiry) or waitlisted.
void add_order(DropBook& book, const OrderDecided& decided, std::uint32_t position,
               std::uint32_t buyer_position) {
  FS_ASSERT(decided.order == book.orders.size() + 1);
  if (decided.outcome == OrderOutcome::reserved) {
    FS_ASSERT(book.waitlist_orders == 0);
    FS_ASSERT(book.stock_left >= decided.qty);
    book.stock_left -= decided.qty;
    book.held += decided.qty;
    book.orders.push_back({position, buyer_position, decided.qty, decided.hold_expires_at_ms, 0,
                           OrderStatus::reserved});
    book.holds.push_back(decided.order);
  } else {
    book.waitlist_orders += 1;
    FS_ASSERT(book.waitlist_orders <= book.spec.waitlist_limit);
    FS_ASSERT(decided.waitlist_position == book.waitlist_orders);
    book.orders.push_back({position, buyer_position, decided.qty, 0, decided.waitlist_position,
                           OrderStatus::waitlisted});
    book.waitlist.push_back(decided.order);
  }
  FS_ASSERT(book.stock_left == decided.stock_left);
}

// The draw decides an order collected in the admission window: its pending record takes the
// outcome, and its units count toward the buyer's limit from now on if it got them (or a place
// in the queue).
[[gnu::cold]] void apply_drawn(DropBook& book, OrderDecided& decided) {
  FS_ASSERT(book.pending_orders >= 1 && !book.admission_closed);
  FS_ASSERT(decided.outcome == OrderOutcome::reserved ||
            decided.outcome == OrderOutcome::waitlisted ||
            decided.outcome == OrderOutcome::sold_out);
  DropBook::Collected collected{};
  if (book.drawn) {
    collected = *book.drawn;  // the draw knows where it is; replay has to look
    book.drawn.reset();
  } else {
    const auto tag = detail::BuyerIndex::tag_of(decided.user);
    collected.buyer = book.find_buyer(decided.user, tag);
    FS_ASSERT(collected.buyer != detail::BuyerIndex::not_found);
    const auto position = book.find_decision(book.buyers[collected.buyer], decided.client_order_id);
    FS_ASSERT(position.has_value());
    collected.decision = *position;
  }
  // The record is the one named by the event's (user, client_order_id): found by them on
  // replay, or the very record the draw took them from.
  Record& record = book.decisions[collected.decision];
  FS_ASSERT(record.outcome == OrderOutcome::pending && record.qty == decided.qty);
  decided.user = record.user();  // the arena's copies, as for every applied event
  decided.client_order_id = record.client_order_id();
  record.outcome = decided.outcome;
  record.order = decided.order;
  book.pending_orders -= 1;
  if (decided.outcome == OrderOutcome::sold_out) {
    FS_ASSERT(decided.order == 0);
    FS_ASSERT(book.stock_left == decided.stock_left);
    return;
  }
  detail::Buyer& buyer = book.buyers[collected.buyer];
  buyer.units += decided.qty;
  FS_ASSERT(buyer.units <= book.spec.per_user_limit);  // nobody above their limit
  add_order(book, decided, collected.decision, collected.buyer);
}

// An order arrived inside the admission window: it waits for the draw.
[[gnu::noinline]] void collect(DropBook& book, const OrderDecided& decided, std::uint32_t position,
                               std::uint32_t buyer_position) {
  FS_ASSERT(decided.order == 0 && book.spec.admission_window_ms > 0 && !book.admission_closed);
  FS_ASSERT(book.state == DropState::open || book.state == DropState::sold_out);
  FS_ASSERT(book.stock_left == decided.stock_left);
  // Nobody above their limit, counting what waits for the draw.
  const detail::Buyer& buyer = book.buyers[buyer_position];
  FS_ASSERT(buyer.units + book.pending_units_of(buyer) <= book.spec.per_user_limit);
  book.admission.push_back({position, buyer_position});
  book.pending_orders += 1;
}

void apply_to(DropBook& book, detail::Arena& arena, OrderDecided& decided) {
  FS_ASSERT(is_recorded(decided.outcome));
  if (decided.drawn) return apply_drawn(book, decided);
  const char* key = arena.copy(decided.user, decided.client_order_id);
  decided.user = {key, decided.user.size()};
  decided.client_order_id = {key + decided.user.size(), decided.client_order_id.size()};
  // Deciding just looked this buyer up; replay has to look.
  auto [tag, found] = book.decided_buyer.value_or(std::pair{detail::BuyerIndex::Tag{0}, 0u});
  if (!book.decided_buyer) {
    tag = detail::BuyerIndex::tag_of(decided.user);
    found = book.find_buyer(decided.user, tag);
  }
  book.decided_buyer.reset();
  if constexpr (FS_FULL_CHECKS_ENABLED) FS_ASSERT(found == book.find_buyer(decided.user, tag));
  std::uint32_t buyer_position = found;
  if (buyer_position == detail::BuyerIndex::not_found) {
    buyer_position = static_cast<std::uint32_t>(book.buyers.size());
    detail::Buyer& added = book.buyers.emplace_back();
    added.name = key;
    added.name_length = static_cast<std::uint8_t>(decided.user.size());
    book.buyer_index.insert(tag, buyer_position);
  }
  detail::Buyer& buyer = book.buyers[buyer_position];
  FS_ASSERT(!book.find_decision(buyer, decided.client_order_id));  // one outcome per key
  const auto position = static_cast<std::uint32_t>(book.decisions.size());
  // Filled in place, field by field: copying a record assembled on the stack stalls on
  // store forwarding, and this runs once per order.
  Record& record = book.decisions.emplace_back();
  record.key = key;
  record.user_length = static_cast<std::uint8_t>(decided.user.size());
  record.client_order_id_length = static_cast<std::uint8_t>(decided.client_order_id.size());
  record.outcome = decided.outcome;
  record.qty = decided.qty;
  record.order = decided.order;
  record.previous_of_buyer = buyer.last_decision;
  buyer.last_decision = position;
  buyer.decisions += 1;

  if (decided.outcome == OrderOutcome::pending)
    return collect(book, decided, position, buyer_position);
  if (decided.outcome != OrderOutcome::reserved && decided.outcome != OrderOutcome::waitlisted) {
    FS_ASSERT(decided.order == 0);
    return;
  }
  buyer.units += decided.qty;
  FS_ASSERT(buyer.units <= book.spec.per_user_limit);  // nobody above their limit
  add_order(book, decided, position, buyer_position);
}

void apply_to(DropBook& book, const AdmissionClosed& closed) {
  FS_ASSERT(!book.admission_closed && book.pending_orders == closed.sold_out);
  book.admission_closed = true;
  book.pending_orders = 0;
  book.admission.clear();  // the rest read as sold out through their records (outcome_of)
  book.admission.shrink_to_fit();
}

void apply_to(DropBook& book, const OrderPromoted& promoted) {
  book.prune_queues();
  FS_ASSERT(!book.waitlist.empty() && book.waitlist.front() == promoted.order);
  Order& order = book.order(promoted.order);
  FS_ASSERT(order.status == OrderStatus::waitlisted);
  FS_ASSERT(book.stock_left >= order.qty);
  book.stock_left -= order.qty;
  book.held += order.qty;
  book.waitlist_orders -= 1;
  order.status = OrderStatus::reserved;
  order.hold_expires_at_ms = promoted.hold_expires_at_ms;
  book.holds.push_back(promoted.order);
  FS_ASSERT(book.stock_left == promoted.stock_left);
}

void apply_to(DropBook& book, const OrderConfirmed& confirmed) {
  Order& order = book.order(confirmed.order);
  FS_ASSERT(order.status == OrderStatus::reserved);
  FS_ASSERT(book.held >= order.qty);
  book.held -= order.qty;
  book.sold += order.qty;
  order.status = OrderStatus::confirmed;
  book.orders_confirmed += 1;
  detail::Buyer& buyer = book.buyer_of(order);
  if (!buyer.supporter) {
    buyer.supporter = true;
    book.supporters += 1;
  }
}

void apply_to(DropBook& book, const OrderCancelled& cancelled) {
  Order& order = book.order(cancelled.order);
  if (order.status == OrderStatus::reserved) {
    FS_ASSERT(cancelled.reason == CancelReason::by_buyer);
    release_hold(book, order);
  } else {
    FS_ASSERT(order.status == OrderStatus::waitlisted);
    FS_ASSERT(book.waitlist_orders >= 1);
    book.waitlist_orders -= 1;
  }
  release_user_units(book, order);
  order.status = OrderStatus::cancelled;
  FS_ASSERT(book.stock_left == cancelled.stock_left);
}

void apply_to(DropBook& book, const HoldExpired& expired) {
  Order& order = book.order(expired.order);
  FS_ASSERT(order.status == OrderStatus::reserved);
  release_hold(book, order);
  release_user_units(book, order);
  order.status = OrderStatus::expired;
  FS_ASSERT(book.stock_left == expired.stock_left);
}

void apply_to(DropBook& book, const Restocked& restocked) {
  FS_ASSERT(book.state != DropState::closed);
  FS_ASSERT(restocked.added >= 1);
  book.stock_total += restocked.added;
  book.stock_left += restocked.added;
  FS_ASSERT(book.stock_total == restocked.stock_total && book.stock_left == restocked.stock_left);
}

void apply_to(DropBook& book, const CountdownStarted& started) {
  FS_ASSERT(book.state == DropState::scheduled || book.state == DropState::countdown);
  book.state = DropState::countdown;
  book.opens_at_ms = started.opens_at_ms;
  book.admission_seed = started.admission_seed;
}

void apply_to(DropBook& book, const StateChanged& changed) {
  FS_ASSERT(legal_transition(book.state, changed.state));
  FS_ASSERT(changed.state != DropState::closed || book.pending_orders == 0);  // drawn first
  book.state = changed.state;
}

}  // namespace

namespace detail {

void assert_failed(const char* expression, const char* file, int line) noexcept {
  std::fprintf(stderr, "flashsale: assertion failed: %s (%s:%d)\n", expression, file, line);
  std::fflush(stderr);
  std::abort();
}

}  // namespace detail

Engine::Engine(EngineLimits limits)
    : limits_(limits),
      arena_(std::make_unique<detail::Arena>()),
      drop_ids_(std::make_unique<DropIds>()),
      deadlines_(std::make_unique<Deadlines>()) {
  FS_ASSERT(limits_.drops_max >= 1);
  FS_ASSERT(limits_.decisions_per_drop_reserve <= limits_.decisions_per_drop_max);
  FS_ASSERT(limits_.decisions_per_buyer_max >= 1);
  drops_.reserve(limits_.drops_max);
  drop_ids_->map.reserve(limits_.drops_max);
}

Engine::~Engine() = default;

// Orders in a surge name the same drop again and again: the last one found is checked first.
DropBook* Engine::lookup(std::string_view id) const noexcept {
  if (last_found_ != nullptr && last_found_->spec.id == id) return last_found_;
  const auto found = drop_ids_->map.find(id);
  if (found == drop_ids_->map.end()) return nullptr;
  last_found_ = drops_[found->second].get();
  return last_found_;
}

void Engine::emit(DropIndex drop, EventBody body, Events& events) {
  next_event(drop, events).body = body;
  apply_last(events);
}

// Events are appended first and applied in place: applying rewrites the event's strings to
// the arena copies. A failed assertion ends the process, so no half-applied event is read.
Event& Engine::next_event(DropIndex drop, Events& events) {
  Event& event = events.emplace_back();
  event.sequence = sequence_ + 1;
  event.at_ms = now_ms_;
  event.drop = drop;
  return event;
}

void Engine::apply_last(Events& events) {
  Event& event = events.back();
  FS_ASSERT(event.sequence == sequence_ + 1);
  apply_body(event.drop, event.body);
  sequence_ += 1;
}

void Engine::apply_body(DropIndex drop, EventBody& body) {
  if (auto* created = std::get_if<DropCreated>(&body)) {
    FS_ASSERT(drop == drops_.size());
    FS_ASSERT(drops_.size() < limits_.drops_max);
    FS_ASSERT(created->spec != nullptr && detail::validate_spec(*created->spec) == nullptr);
    DropSpec spec = *created->spec;
    spec.id = arena_->intern(spec.id);
    spec.title = arena_->intern(spec.title);
    spec.beneficiary = arena_->intern(spec.beneficiary);
    spec.beneficiary_note = arena_->intern(spec.beneficiary_note);
    created->spec = std::make_shared<const DropSpec>(spec);
    drops_.push_back(std::make_unique<DropBook>(drop, spec, limits_.decisions_per_drop_reserve));
    // Room for the reserved decisions' keys at a typical 24 bytes each.
    arena_->reserve(std::size_t{limits_.decisions_per_drop_reserve} * 24);
    FS_ASSERT(drop_ids_->map.emplace(spec.id, drop).second);
    return;
  }
  FS_ASSERT(drop < drops_.size());
  DropBook& book = *drops_[drop];
  std::visit(
      [&]<typename Body>(Body& change) {
        if constexpr (std::is_same_v<Body, OrderDecided>) {
          apply_to(book, *arena_, change);
        } else if constexpr (!std::is_same_v<Body, DropCreated>) {
          apply_to(book, change);
        }
      },
      body);
  book.check_balance();
  if (may_bring_deadline_forward(book, body)) schedule(book);
}

void Engine::apply(const Event& event) {
  FS_ASSERT(event.sequence == sequence_ + 1);
  FS_ASSERT(event.at_ms >= now_ms_);
  now_ms_ = event.at_ms;
  EventBody body = event.body;
  apply_body(event.drop, body);
  sequence_ = event.sequence;
}

// Keeps the heap holding, for every drop with a deadline, an entry no later than it.
void Engine::schedule(DropBook& book) {
  const std::optional<TimeMs> next = next_deadline(book);
  if (next && (!book.scheduled_deadline || *next < *book.scheduled_deadline)) {
    book.scheduled_deadline = next;
    deadlines_->heap.emplace(*next, book.index);
  }
}

// Time passes: every drop whose next deadline has come is brought up to `now`, in order of
// that deadline (then drop index). The order depends only on the drops' state, never on the
// heap's history, so an engine rebuilt by `apply` continues exactly as the original would.
void Engine::advance_to(TimeMs now_ms, Events& events) {
  FS_ASSERT(now_ms >= 0 && now_ms <= time_ms_max);  // callers pass a clock's reading
  now_ms_ = std::max(now_ms_, now_ms);
  auto& heap = deadlines_->heap;
  if (heap.empty() || heap.top().first > now_ms_) return;
  auto& due = deadlines_->due;
  due.clear();
  while (!heap.empty() && heap.top().first <= now_ms_) {
    DropBook& book = *drops_[heap.top().second];
    heap.pop();
    if (!book.scheduled_deadline) continue;  // collected already in this pass
    book.scheduled_deadline.reset();
    const std::optional<TimeMs> next = next_deadline(book);
    if (next && *next <= now_ms_) {
      due.emplace_back(*next, book.index);
    } else {
      schedule(book);
    }
  }
  std::sort(due.begin(), due.end());
  for (const auto& [deadline, index] : due) {
    DropBook& book = *drops_[index];
    advance_drop(book, events);
    book.scheduled_deadline.reset();
    schedule(book);
  }
}

void Engine::advance_drop(DropBook& book, Events& events) {
  if (book.state == DropState::countdown && book.opens_at_ms <= now_ms_) {
    emit(book.index, StateChanged{DropState::open}, events);
    update_availability(book, events);
  }
  if (book.pending_orders > 0 && book.admission_closes_at_ms() <= now_ms_)
    draw_admission(book, events);
  book.prune_queues();
  while (!book.holds.empty()) {
    const OrderNumber number = book.holds.front();
    const Order& order = book.order(number);
    if (order.hold_expires_at_ms > now_ms_) break;
    emit(book.index, HoldExpired{number, book.stock_left + order.qty}, events);
    release_units(book, events);
    book.prune_queues();
  }
}

namespace {

// A uniform integer in [0, bound) from one 64-bit draw (Lemire's multiply-shift; its bias,
// under bound / 2^64, is far below anything a drop's audience could notice).
std::size_t below(std::uint64_t random, std::size_t bound) {
  __extension__ using Wide = unsigned __int128;  // GCC and Clang on 64-bit targets
  return static_cast<std::size_t>((static_cast<Wide>(random) * bound) >> 64);
}

}  // namespace

// The admission window has closed: its orders are decided in a uniformly random order — a
// Fisher-Yates shuffle of the arrival order, driven by std::mt19937_64 from the countdown's seed
// (the standard fixes that generator's output, so every build draws alike) — so arriving first
// inside the window is worth nothing. The shuffle is lazy: it draws one order at a time and
// stops once nobody left could get a unit or a waitlist place, and AdmissionClosed then makes
// the rest sold out at once; a window of 1M orders for 1,000 units costs 1,000 draws.
// An engine recovered from the journal holds the same arrivals and seed, so it draws the same
// winners; orders already decided (a draw cut short between journal batches) are skipped.
void Engine::draw_admission(DropBook& book, Events& events) {
  std::vector<DropBook::Collected>& draw = book.admission;
  const std::size_t count = draw.size();
  // Step i swaps draw[i] with draw[pick(i)]. pick depends only on the generator and i, so it is
  // computed `ahead` steps early, and the slots, records and buyers a large draw will touch are
  // fetched while earlier steps run (a guess: a swap in between makes it a wasted fetch).
  constexpr std::size_t ahead = 16;
  std::mt19937_64 random(book.admission_seed);
  std::array<std::size_t, ahead> picks{};
  std::size_t picked = 0;  // picks made so far
  const auto pick_next = [&] {
    if (picked < count) {
      picks[picked % ahead] = picked + below(random(), count - picked);
      __builtin_prefetch(&draw[picks[picked % ahead]]);
    }
    picked += 1;
  };
  while (picked < std::min(ahead, count)) pick_next();
  // Nobody left can be reserved (the waitlist goes first, or no stock) nor waitlisted (full).
  const auto nothing_left = [&book] {
    return book.waitlist_orders >= book.spec.waitlist_limit &&
           (book.waitlist_orders > 0 || book.stock_left == 0);
  };
  for (std::size_t index = 0; index < count && !nothing_left(); ++index) {
    std::swap(draw[index], draw[picks[index % ahead]]);
    pick_next();  // replaces the pick just used, `ahead` steps on
    // Written out here, not in a lambda: GCC 12 takes a lambda that only prefetches for a pure
    // function and drops the call. Every pick is a valid index, even a stale one.
    const DropBook::Collected next = draw[picks[(index + ahead / 2) % ahead]];
    __builtin_prefetch(book.decisions.data() + next.decision);
    __builtin_prefetch(book.buyers.data() + next.buyer);
    const DropBook::Collected collected = draw[index];
    const Record& record = book.decisions[collected.decision];
    if (record.outcome != OrderOutcome::pending) continue;
    OrderOutcome outcome = OrderOutcome::sold_out;
    if (book.waitlist_orders == 0 && book.stock_left >= record.qty) {
      outcome = OrderOutcome::reserved;
    } else if (book.waitlist_orders < book.spec.waitlist_limit) {
      outcome = OrderOutcome::waitlisted;
    }
    OrderDecided& decided =
        std::get<OrderDecided>(next_event(book.index, events).body =
                                   OrderDecided{record.user(), record.client_order_id()});
    decided.outcome = outcome;
    decided.qty = record.qty;
    decided.stock_left = book.stock_left;
    decided.drawn = true;
    if (outcome == OrderOutcome::reserved || outcome == OrderOutcome::waitlisted)
      decided.order = static_cast<OrderNumber>(book.orders.size() + 1);
    if (outcome == OrderOutcome::reserved) {
      decided.hold_expires_at_ms = now_ms_ + book.spec.hold_ms;
      decided.stock_left = book.stock_left - record.qty;
    }
    if (outcome == OrderOutcome::waitlisted) decided.waitlist_position = book.waitlist_orders + 1;
    book.drawn = collected;
    apply_last(events);
  }
  emit(book.index, AdmissionClosed{book.pending_orders}, events);
  update_availability(book, events);
}

// Units came back (cancel, expiry, restock): the waitlist's head takes them first, strictly
// in order; whatever it cannot use stays in stock.
void Engine::release_units(DropBook& book, Events& events) {
  if (accepts_orders(book.state)) {
    book.prune_queues();
    while (!book.waitlist.empty()) {
      const OrderNumber number = book.waitlist.front();
      const std::uint32_t qty = book.order(number).qty;
      if (qty > book.stock_left) break;
      emit(book.index, OrderPromoted{number, now_ms_ + book.spec.hold_ms, book.stock_left - qty},
           events);
      book.prune_queues();
    }
  }
  update_availability(book, events);
}

void Engine::update_availability(DropBook& book, Events& events) {
  if (book.state == DropState::open && book.stock_left == 0) {
    emit(book.index, StateChanged{DropState::sold_out}, events);
  } else if (book.state == DropState::sold_out && book.stock_left > 0) {
    emit(book.index, StateChanged{DropState::open}, events);
  }
}

void Engine::after_command() {
  commands_ += 1;
  if constexpr (FS_FULL_CHECKS_ENABLED) {
    if (commands_ % 64 == 0) check_invariants();
  }
}

CommandResult Engine::create_drop(const DropSpec& spec, TimeMs now_ms, Events& events) {
  advance_to(now_ms, events);
  CommandResult result;
  if (const char* problem = detail::validate_spec(spec)) {
    result.status = CommandStatus::invalid_argument;
    result.reason = problem;
  } else if (lookup(spec.id) != nullptr) {
    result.status = CommandStatus::already_exists;
    result.drop = *find_drop(spec.id);
    result.reason = "a drop with this id exists";
  } else if (drops_.size() >= limits_.drops_max) {
    result.status = CommandStatus::limit_reached;
    result.reason = "the engine holds its maximum number of drops";
  } else {
    result.drop = static_cast<DropIndex>(drops_.size());
    emit(result.drop, DropCreated{std::make_shared<const DropSpec>(spec)}, events);
  }
  after_command();
  return result;
}

CommandResult Engine::start_countdown(std::string_view drop, TimeMs opens_in_ms, TimeMs now_ms,
                                      Events& events, std::uint64_t admission_seed) {
  advance_to(now_ms, events);
  CommandResult result;
  DropBook* book = lookup(drop);
  if (opens_in_ms < 0 || opens_in_ms > countdown_ms_max) {
    result.status = CommandStatus::invalid_argument;
    result.reason = "the countdown must be 0 s .. 7 days";
  } else if (book == nullptr) {
    result.status = CommandStatus::unknown_drop;
  } else if (book->state != DropState::scheduled && book->state != DropState::countdown) {
    result.status = CommandStatus::wrong_state;
    result.drop = book->index;
    result.reason = "the drop has already opened";
  } else {
    result.drop = book->index;
    emit(book->index, CountdownStarted{now_ms_ + opens_in_ms, admission_seed}, events);
    advance_to(now_ms_, events);  // a zero countdown opens now
  }
  after_command();
  return result;
}

CommandResult Engine::restock(std::string_view drop, std::uint32_t added, TimeMs now_ms,
                              Events& events) {
  advance_to(now_ms, events);
  CommandResult result;
  DropBook* book = lookup(drop);
  if (added < 1 || added > stock_max) {
    result.status = CommandStatus::invalid_argument;
    result.reason = "add must be 1..10^9";
  } else if (book == nullptr) {
    result.status = CommandStatus::unknown_drop;
  } else if (book->state == DropState::closed) {
    result.status = CommandStatus::wrong_state;
    result.drop = book->index;
    result.reason = "the drop is closed";
  } else if (std::uint64_t{book->stock_total} + added > stock_max) {
    result.status = CommandStatus::invalid_argument;
    result.drop = book->index;
    result.reason = "total stock would pass 10^9";
  } else {
    result.drop = book->index;
    emit(book->index, Restocked{added, book->stock_total + added, book->stock_left + added},
         events);
    release_units(*book, events);
  }
  after_command();
  return result;
}

CommandResult Engine::close(std::string_view drop, TimeMs now_ms, Events& events) {
  advance_to(now_ms, events);
  CommandResult result;
  DropBook* book = lookup(drop);
  if (book == nullptr) {
    result.status = CommandStatus::unknown_drop;
  } else if (book->state == DropState::closed) {
    result.status = CommandStatus::wrong_state;
    result.drop = book->index;
    result.reason = "the drop is already closed";
  } else {
    result.drop = book->index;
    // Orders that arrived inside the admission window came before the close: drawn now.
    if (book->pending_orders > 0) draw_admission(*book, events);
    emit(book->index, StateChanged{DropState::closed}, events);
    book->prune_queues();
    // Copy: emitting mutates the queue's lazily deleted front.
    const std::vector<OrderNumber> waiting(book->waitlist.begin(), book->waitlist.end());
    for (const OrderNumber number : waiting) {
      if (book->order(number).status != OrderStatus::waitlisted) continue;
      emit(book->index, OrderCancelled{number, CancelReason::drop_closed, book->stock_left},
           events);
    }
  }
  after_command();
  return result;
}

OrderResult Engine::place_order(const PlaceOrder& request, TimeMs now_ms, Events& events) {
  advance_to(now_ms, events);
  return decide_order(request, detail::BuyerIndex::tag_of(request.user), events);
}

// Same answers and events as placing the orders one by one; faster, because while one order is
// decided the buyer slots of the orders `ahead` of it are already on their way into the cache.
void Engine::place_orders(std::span<const PlaceOrder> orders, TimeMs now_ms, Events& events,
                          std::span<OrderResult> results) {
  FS_ASSERT(results.size() >= orders.size());
  advance_to(now_ms, events);
  constexpr std::size_t ahead = 8;
  std::array<detail::BuyerIndex::Tag, ahead> tags{};
  const auto prefetch = [&](std::size_t index) {
    const PlaceOrder& order = orders[index];
    tags[index % ahead] = detail::BuyerIndex::tag_of(order.user);
    if (const DropBook* book = lookup(order.drop)) book->buyer_index.prefetch(tags[index % ahead]);
  };
  for (std::size_t index = 0; index < std::min(ahead, orders.size()); ++index) prefetch(index);
  for (std::size_t index = 0; index < orders.size(); ++index) {
    const detail::BuyerIndex::Tag tag = tags[index % ahead];
    if (index + ahead < orders.size()) prefetch(index + ahead);
    results[index] = decide_order(orders[index], tag, events);
  }
}

OrderResult Engine::decide_order(const PlaceOrder& request, std::uint32_t tag, Events& events) {
  after_command();
  if (request.qty < 1 || request.qty > order_qty_max)
    return unrecorded(OrderOutcome::invalid, "qty must be 1..10^6");
  if (!is_valid_name(request.user, user_length_max))
    return unrecorded(OrderOutcome::invalid, "user must be 1-64 printable ASCII bytes");
  if (!is_valid_name(request.client_order_id, client_order_id_length_max))
    return unrecorded(OrderOutcome::invalid, "client_order_id must be 1-64 printable ASCII bytes");
  DropBook* book = lookup(request.drop);
  if (book == nullptr) return unrecorded(OrderOutcome::invalid, "unknown drop");

  // The one hash lookup of the order: the buyer, their units and their earlier decisions.
  const std::uint32_t found = book->find_buyer(request.user, tag);
  const detail::Buyer* buyer =
      found == detail::BuyerIndex::not_found ? nullptr : &book->buyers[found];
  if (buyer != nullptr) {
    if (const auto position = book->find_decision(*buyer, request.client_order_id))
      return result_of(*book, *position, true);
  }
  if (book->state == DropState::scheduled || book->state == DropState::countdown)
    return unrecorded(OrderOutcome::not_open, "the drop has not opened yet", book->index);
  if (book->decisions.size() >= limits_.decisions_per_drop_max)
    return unrecorded(OrderOutcome::unavailable, "the drop's order table is full", book->index);
  if (buyer != nullptr && buyer->decisions >= limits_.decisions_per_buyer_max)
    return unrecorded(OrderOutcome::invalid, "too many client_order_ids for this buyer",
                      book->index);

  OrderOutcome outcome = OrderOutcome::sold_out;
  std::uint64_t units = buyer != nullptr ? buyer->units : 0;
  const bool collecting = book->collecting(now_ms_);
  if (collecting && buyer != nullptr) units += book->pending_units_of(*buyer);
  if (book->state == DropState::closed) {
    outcome = OrderOutcome::closed;
  } else if (units + request.qty > book->spec.per_user_limit) {
    outcome = OrderOutcome::limit_exceeded;
  } else if (collecting) {
    outcome = OrderOutcome::pending;
  } else if (book->waitlist_orders == 0 && book->stock_left >= request.qty) {
    outcome = OrderOutcome::reserved;
  } else if (book->waitlist_orders < book->spec.waitlist_limit) {
    outcome = OrderOutcome::waitlisted;
  }
  // The event is written straight into the output (see next_event).
  OrderDecided& decided = std::get<OrderDecided>(
      next_event(book->index, events).body = OrderDecided{request.user, request.client_order_id});
  decided.outcome = outcome;
  decided.qty = request.qty;
  decided.stock_left = book->stock_left;
  if (outcome == OrderOutcome::reserved || outcome == OrderOutcome::waitlisted)
    decided.order = static_cast<OrderNumber>(book->orders.size() + 1);
  if (outcome == OrderOutcome::reserved) {
    decided.hold_expires_at_ms = now_ms_ + book->spec.hold_ms;
    decided.stock_left = book->stock_left - request.qty;
  }
  if (outcome == OrderOutcome::waitlisted) decided.waitlist_position = book->waitlist_orders + 1;
  book->decided_buyer = {tag, found};  // spares applying a second lookup of the same buyer
  apply_last(events);
  if (outcome == OrderOutcome::reserved) update_availability(*book, events);
  OrderResult result =
      result_of(*book, static_cast<std::uint32_t>(book->decisions.size() - 1), false);
  result.waitlist_full = outcome == OrderOutcome::sold_out && book->spec.waitlist_limit > 0;
  return result;
}

ActionResult Engine::confirm(const OrderAction& action, TimeMs now_ms, Events& events) {
  advance_to(now_ms, events);
  after_command();
  ActionResult result;
  DropBook* book = lookup(action.drop);
  if (book == nullptr) {
    result.status = CommandStatus::unknown_drop;
    return result;
  }
  result.drop = book->index;
  if (action.order < 1 || action.order > book->orders.size()) {
    result.status = CommandStatus::unknown_order;
    return result;
  }
  const Order& order = book->order(action.order);
  result.client_order_id = book->decisions[order.decision].client_order_id();
  if (book->user_of(order) != action.user) {
    result.status = CommandStatus::not_owner;
    return result;
  }
  if (order.status == OrderStatus::reserved) {
    emit(book->index, OrderConfirmed{action.order}, events);
  } else if (order.status != OrderStatus::confirmed) {
    result.status = CommandStatus::wrong_state;
    result.reason = "only a reserved order can be confirmed";
  }
  result.order_status = order.status;
  return result;
}

ActionResult Engine::cancel(const OrderAction& action, TimeMs now_ms, Events& events) {
  advance_to(now_ms, events);
  after_command();
  ActionResult result;
  DropBook* book = lookup(action.drop);
  if (book == nullptr) {
    result.status = CommandStatus::unknown_drop;
    return result;
  }
  result.drop = book->index;
  if (action.order < 1 || action.order > book->orders.size()) {
    result.status = CommandStatus::unknown_order;
    return result;
  }
  const Order& order = book->order(action.order);
  result.client_order_id = book->decisions[order.decision].client_order_id();
  if (book->user_of(order) != action.user) {
    result.status = CommandStatus::not_owner;
    return result;
  }
  if (order.status == OrderStatus::reserved || order.status == OrderStatus::waitlisted) {
    const std::uint32_t returned = order.status == OrderStatus::reserved ? order.qty : 0;
    emit(book->index,
         OrderCancelled{action.order, CancelReason::by_buyer, book->stock_left + returned}, events);
    release_units(*book, events);
  } else if (order.status != OrderStatus::cancelled) {
    result.status = CommandStatus::wrong_state;
    result.reason = "a confirmed or expired order cannot be cancelled";
  }
  result.order_status = order.status;
  return result;
}

void Engine::advance_time(TimeMs now_ms, Events& events) {
  advance_to(now_ms, events);
  after_command();
}

std::int64_t pledged_cents(std::int64_t price_cents, std::uint64_t units,
                           std::uint32_t pledge_bps) {
  __extension__ using Wide = unsigned __int128;
  FS_ASSERT(price_cents >= 0 && pledge_bps <= pledge_bps_max);
  const Wide value = static_cast<Wide>(price_cents) * units * pledge_bps / pledge_bps_max;
  FS_ASSERT(value <= static_cast<Wide>(INT64_MAX));
  return static_cast<std::int64_t>(value);
}

std::optional<DropIndex> Engine::find_drop(std::string_view id) const noexcept {
  const auto found = drop_ids_->map.find(id);
  if (found == drop_ids_->map.end()) return std::nullopt;
  return found->second;
}

std::uint32_t Engine::drop_count() const noexcept {
  return static_cast<std::uint32_t>(drops_.size());
}

DropInfo Engine::drop_info(DropIndex drop) const {
  FS_ASSERT(drop < drops_.size());
  const DropBook& book = *drops_[drop];
  DropInfo info;
  info.index = drop;
  info.spec = book.spec;
  info.state = book.state;
  if (book.state != DropState::scheduled) info.opens_at_ms = book.opens_at_ms;
  info.stock_total = book.stock_total;
  info.stock_left = book.stock_left;
  info.held = book.held;
  info.sold = book.sold;
  info.waitlist_orders = book.waitlist_orders;
  info.pending_orders = book.pending_orders;
  info.orders_confirmed = book.orders_confirmed;
  info.supporters = book.supporters;
  info.raised_cents = pledged_cents(book.spec.price_cents, book.sold, book.spec.pledge_bps);
  info.orders = static_cast<std::uint32_t>(book.orders.size());
  info.decisions = static_cast<std::uint32_t>(book.decisions.size());
  return info;
}

namespace {

OrderInfo info_of(const DropBook& book, OrderNumber number) {
  const Order& order = book.order(number);
  const Record& record = book.decisions[order.decision];
  return OrderInfo{number,    record.user(), record.client_order_id(),
                   order.qty, order.status,  order.hold_expires_at_ms};
}

}  // namespace

std::optional<OrderInfo> Engine::order_info(DropIndex drop, OrderNumber order) const {
  FS_ASSERT(drop < drops_.size());
  const DropBook& book = *drops_[drop];
  if (order < 1 || order > book.orders.size()) return std::nullopt;
  return info_of(book, order);
}

std::vector<OrderInfo> Engine::orders_of(DropIndex drop, std::string_view user) const {
  FS_ASSERT(drop < drops_.size());
  const DropBook& book = *drops_[drop];
  std::vector<OrderInfo> found;
  const std::uint32_t buyer = book.find_buyer(user, detail::BuyerIndex::tag_of(user));
  if (buyer == detail::BuyerIndex::not_found) return found;
  for (std::uint32_t position = book.buyers[buyer].last_decision; position != detail::no_decision;
       position = book.decisions[position].previous_of_buyer) {
    if (book.decisions[position].order != 0)
      found.push_back(info_of(book, book.decisions[position].order));
  }
  std::sort(found.begin(), found.end(),
            [](const OrderInfo& a, const OrderInfo& b) { return a.order < b.order; });
  return found;
}

std::optional<OrderResult> Engine::find_decision(std::string_view drop, std::string_view user,
                                                 std::string_view client_order_id) const {
  const DropBook* book = lookup(drop);
  if (book == nullptr) return std::nullopt;
  const auto position = book->find_decision(user, client_order_id);
  if (!position) return std::nullopt;
  return result_of(*book, *position, true);
}

}  // namespace flashsale::engine
