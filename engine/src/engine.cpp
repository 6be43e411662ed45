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
#include <new>
#include <queue>
#include <random>
#include <type_traits>
#include <utility>

#include "arena.hpp"
#include "drop_book.hpp"
#include "stream_book.hpp"

namespace flashsale::engine {

using detail::DropBook;
using detail::Order;
using detail::Record;
using detail::StreamBook;

struct Engine::DropIds {
  boost::unordered_flat_map<std::string_view, DropIndex, detail::StringHash, std::equal_to<>> map;
};

struct Engine::StreamIds {
  boost::unordered_flat_map<std::string_view, StreamIndex, detail::StringHash, std::equal_to<>> map;
};

// Earliest pending deadline per drop (opening instant or first hold expiry), min first; ties
// go to the lower drop index so the order of events never depends on anything but input.
struct Engine::Deadlines {
  using Entry = std::pair<TimeMs, DropIndex>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap;
  std::vector<Entry> due;  // scratch for advance_to, kept to reuse its capacity
};

namespace {

const char* validate_prices(std::int64_t price_cents, std::int64_t list_price_cents,
                            std::uint32_t pledge_bps) {
  if (price_cents < 0 || price_cents > price_cents_max) return "price_cents must be 0..10^12";
  if (list_price_cents != 0 &&
      (list_price_cents < price_cents || list_price_cents > price_cents_max))
    return "list_price_cents must be at least price_cents (and at most 10^12), or absent";
  // Keeps the amount raised within 64 bits whatever the restocks: 10^9 cents × 10^9 units.
  if (pledge_bps > 0 && price_cents > charity_price_cents_max)
    return "a charity drop's price_cents must be at most 10^9";
  return nullptr;
}

const char* validate_variants(const DropSpec& spec) {
  if (spec.variants.empty()) {
    if (spec.stock > stock_max) return "stock must be 0..10^9";
    return validate_prices(spec.price_cents, spec.list_price_cents, spec.pledge_bps);
  }
  if (spec.variants.size() > variants_max) return "a drop has at most 64 variants";
  if (spec.price_cents != 0 || spec.list_price_cents != 0 || spec.stock != 0)
    return "a drop with variants sets price and stock per variant";
  std::uint64_t stock = 0;
  for (std::size_t position = 0; position < spec.variants.size(); ++position) {
    const VariantSpec& variant = spec.variants[position];
    if (!is_valid_variant_id(variant.id))
      return "a variant id must be 1-32 characters of [A-Za-z0-9_.-]";
    for (std::size_t earlier = 0; earlier < position; ++earlier) {
      if (spec.variants[earlier].id == variant.id) return "variant ids must be unique";
    }
    if (variant.label.size() > variant_label_length_max)
      return "a variant label must be at most 100 bytes";
    if (const char* problem =
            validate_prices(variant.price_cents, variant.list_price_cents, spec.pledge_bps))
      return problem;
    stock += variant.stock;
  }
  if (stock > stock_max) return "the variants' stock must total 0..10^9";
  return nullptr;
}

}  // namespace

const char* detail::validate_spec(const DropSpec& spec) {
  if (!is_valid_drop_id(spec.id))
    return "id must be 1-64 characters of [A-Za-z0-9_.-], or <stream>~<name> in a stream";
  if (!spec.host.empty() && !is_valid_host_id(spec.host))
    return "host must be 1-32 characters of [A-Za-z0-9_.-]";
  if (stream_of_drop(spec.id) != spec.stream)
    return spec.stream.empty() ? "an id with '~' names a stream: create the drop in it"
                               : "a drop in a stream has the id <stream>~<name>";
  if (!spec.stream.empty() && spec.host.empty()) return "a drop in a stream has the stream's host";
  if (spec.title.size() > title_length_max) return "title must be at most 200 bytes";
  if (const char* problem = validate_variants(spec)) return problem;
  if (spec.per_user_limit < 1 || spec.per_user_limit > per_user_limit_max)
    return "per_user_limit must be 1..10^6";
  if (spec.per_variant_limit > spec.per_user_limit)
    return "per_variant_limit must be 0 (none) .. per_user_limit";
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
  if (spec.duration_ms != 0 &&
      (spec.duration_ms < sale_duration_ms_min || spec.duration_ms > sale_duration_ms_max))
    return "duration must be 1 s .. 7 days";
  if (spec.duration_ms != 0 && spec.duration_ms <= spec.admission_window_ms)
    return "the duration must be longer than the admission window";
  return nullptr;
}

const char* detail::validate_stream(const StreamSpec& spec) {
  if (!is_valid_stream_id(spec.id)) return "id must be 1-32 characters of [A-Za-z0-9_.-]";
  if (!is_valid_host_id(spec.host)) return "host must be 1-32 characters of [A-Za-z0-9_.-]";
  if (spec.title.size() > stream_title_length_max) return "title must be at most 200 bytes";
  if (spec.video_url.size() > video_url_length_max) return "video_url must be at most 500 bytes";
  return nullptr;
}

namespace {

bool accepts_orders(DropState state) {
  return state == DropState::open || state == DropState::sold_out;
}

// The drop's next moment of interest: its opening instant, the end of its admission window
// (with orders to draw) or its first hold's expiry.
std::optional<TimeMs> next_deadline(DropBook& book) {
  book.prune_holds();
  std::optional<TimeMs> next;
  const auto consider = [&next](TimeMs deadline) {
    next = next ? std::min(*next, deadline) : deadline;
  };
  if (book.state == DropState::countdown) consider(book.opens_at_ms);
  if (book.pending_orders > 0) consider(book.admission_closes_at_ms());
  if (!book.holds.empty()) consider(book.order(book.holds.front()).hold_expires_at_ms);
  if (const auto closes_at = book.closes_at_ms(); closes_at && book.state != DropState::closed)
    consider(*closes_at);
  return next;
}

// Only a new opening instant, a new hold or a first order to draw can make a drop's next
// deadline earlier; every other change leaves the heap's entry at or before the real deadline,
// which is all it needs. A new hold expires no earlier than any other (hold_ms is fixed per
// drop, time only grows), so it matters only if the heap's entry is later than it: the common
// case in a surge — an entry at the first hold's expiry or earlier — costs one compare, not a
// look at the queues.
bool may_bring_deadline_forward(const DropBook& book, const EventBody& body) {
  const auto before = [&book](TimeMs expiry) {
    return !book.scheduled_deadline || expiry < *book.scheduled_deadline;
  };
  if (std::holds_alternative<CountdownStarted>(body)) return true;
  if (const auto* promoted = std::get_if<OrderPromoted>(&body))
    return before(promoted->hold_expires_at_ms);
  const auto* decided = std::get_if<OrderDecided>(&body);
  if (decided == nullptr) return false;
  if (decided->outcome == OrderOutcome::reserved) return before(decided->hold_expires_at_ms);
  return decided->outcome == OrderOutcome::pending && book.pending_orders == 1;
}

// The stream events, applied apart from the drops' (apply_stream_body).
template <typename Body>
constexpr bool about_a_stream =
    std::is_same_v<Body, StreamCreated> || std::is_same_v<Body, StreamStateChanged> ||
    std::is_same_v<Body, StreamPinned>;

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

// `waitlist_full`: a new sold_out because the waitlist is at its limit. Every order's answer is
// built here and returned as is, so that it is written once, where the caller keeps it (see
// place_orders).
OrderResult result_of(const DropBook& book, std::uint32_t position, bool repeated,
                      bool waitlist_full = false) {
  const Record& record = book.decisions[position];
  OrderResult result;
  result.outcome = book.outcome_of(record);
  result.repeated = repeated;
  result.waitlist_full = waitlist_full;
  result.drop = book.index;
  result.qty = record.qty;
  result.order = record.order;
  result.variant = record.variant;
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

detail::Variant& variant_of(DropBook& book, const Order& order) {
  FS_ASSERT(order.variant < book.variants.size());
  return book.variants[order.variant];
}

// Nobody above the per-variant limit: checked as each order is applied.
void check_variant_limit(const DropBook& book, const detail::Buyer& buyer, std::uint8_t variant) {
  if (book.spec.per_variant_limit > 0)
    FS_ASSERT(book.variant_units_of(buyer, variant) <= book.spec.per_variant_limit);
}

// --- Applying events to a drop. Each asserts what the event claims about the state after. ---

// Records a new order in the book: reserved (held, queued for expiry) or waitlisted.
void add_order(DropBook& book, const OrderDecided& decided, std::uint32_t position,
               std::uint32_t buyer_position) {
  FS_ASSERT(decided.order == book.orders.size() + 1);
  FS_ASSERT(decided.variant < book.variants.size());
  detail::Variant& variant = book.variants[decided.variant];
  if (decided.outcome == OrderOutcome::reserved) {
    FS_ASSERT(variant.waitlist_orders == 0);
    book.hold_units(variant, decided.qty);
    book.orders.push_back({position, buyer_position, decided.qty, decided.hold_expires_at_ms, 0,
                           OrderStatus::reserved, decided.variant});
    book.holds.push_back(decided.order);
  } else {
    variant.waitlist_orders += 1;
    book.waitlist_orders += 1;
    FS_ASSERT(variant.waitlist_orders <= book.spec.waitlist_limit);
    FS_ASSERT(decided.waitlist_position == variant.waitlist_orders);
    book.orders.push_back({position, buyer_position, decided.qty, 0, decided.waitlist_position,
                           OrderStatus::waitlisted, decided.variant});
    variant.waitlist.push_back(decided.order);
  }
  FS_ASSERT(variant.stock_left == decided.stock_left);
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
  FS_ASSERT(record.outcome == OrderOutcome::pending && record.qty == decided.qty &&
            record.variant == decided.variant);
  decided.user = record.user();  // the arena's copies, as for every applied event
  decided.client_order_id = record.client_order_id();
  record.outcome = decided.outcome;
  record.order = decided.order;
  book.pending_orders -= 1;
  if (decided.outcome == OrderOutcome::sold_out) {
    FS_ASSERT(decided.order == 0);
    FS_ASSERT(book.variants[decided.variant].stock_left == decided.stock_left);
    return;
  }
  detail::Buyer& buyer = book.buyers[collected.buyer];
  buyer.units += decided.qty;
  FS_ASSERT(buyer.units <= book.spec.per_user_limit);  // nobody above their limit
  add_order(book, decided, collected.decision, collected.buyer);
  check_variant_limit(book, buyer, decided.variant);
}

// An order arrived inside the admission window: it waits for the draw.
[[gnu::noinline]] void collect(DropBook& book, const OrderDecided& decided, std::uint32_t position,
                               std::uint32_t buyer_position) {
  FS_ASSERT(decided.order == 0 && book.spec.admission_window_ms > 0 && !book.admission_closed);
  FS_ASSERT(book.state == DropState::open || book.state == DropState::sold_out);
  FS_ASSERT(book.variants[decided.variant].stock_left == decided.stock_left);
  // Nobody above their limits, counting what waits for the draw.
  const detail::Buyer& buyer = book.buyers[buyer_position];
  FS_ASSERT(buyer.units + book.pending_units_of(buyer) <= book.spec.per_user_limit);
  check_variant_limit(book, buyer, decided.variant);
  book.admission.push_back({position, buyer_position});
  book.pending_orders += 1;
}

void apply_to(DropBook& book, detail::Arena& arena, OrderDecided& decided) {
  FS_ASSERT(is_recorded(decided.outcome));
  FS_ASSERT(decided.variant < book.variants.size());
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
  record.variant = decided.variant;
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
  check_variant_limit(book, buyer, decided.variant);
}

void apply_to(DropBook& book, const AdmissionClosed& closed) {
  FS_ASSERT(!book.admission_closed && book.pending_orders == closed.sold_out);
  book.admission_closed = true;
  book.pending_orders = 0;
  book.admission.clear();  // the rest read as sold out through their records (outcome_of)
  book.admission.shrink_to_fit();
}

void apply_to(DropBook& book, const OrderPromoted& promoted) {
  Order& order = book.order(promoted.order);
  detail::Variant& variant = variant_of(book, order);
  book.prune_waitlist(variant);
  FS_ASSERT(!variant.waitlist.empty() && variant.waitlist.front() == promoted.order);
  FS_ASSERT(order.status == OrderStatus::waitlisted);
  book.hold_units(variant, order.qty);
  variant.waitlist_orders -= 1;
  book.waitlist_orders -= 1;
  order.status = OrderStatus::reserved;
  order.hold_expires_at_ms = promoted.hold_expires_at_ms;
  book.holds.push_back(promoted.order);
  FS_ASSERT(variant.stock_left == promoted.stock_left);
}

void apply_to(DropBook& book, const OrderConfirmed& confirmed) {
  Order& order = book.order(confirmed.order);
  FS_ASSERT(order.status == OrderStatus::reserved);
  book.sell_units(variant_of(book, order), order.qty);
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
  detail::Variant& variant = variant_of(book, order);
  if (order.status == OrderStatus::reserved) {
    FS_ASSERT(cancelled.reason == CancelReason::by_buyer);
    book.unhold_units(variant, order.qty);
  } else {
    FS_ASSERT(order.status == OrderStatus::waitlisted);
    FS_ASSERT(variant.waitlist_orders >= 1 && book.waitlist_orders >= 1);
    variant.waitlist_orders -= 1;
    book.waitlist_orders -= 1;
  }
  release_user_units(book, order);
  order.status = OrderStatus::cancelled;
  FS_ASSERT(variant.stock_left == cancelled.stock_left);
}

void apply_to(DropBook& book, const HoldExpired& expired) {
  Order& order = book.order(expired.order);
  FS_ASSERT(order.status == OrderStatus::reserved);
  detail::Variant& variant = variant_of(book, order);
  book.unhold_units(variant, order.qty);
  release_user_units(book, order);
  order.status = OrderStatus::expired;
  FS_ASSERT(variant.stock_left == expired.stock_left);
}

void apply_to(DropBook& book, const Restocked& restocked) {
  FS_ASSERT(book.state != DropState::closed);
  FS_ASSERT(restocked.added >= 1 && restocked.variant < book.variants.size());
  FS_ASSERT(std::uint64_t{book.stock_total} + restocked.added <= stock_max);
  detail::Variant& variant = book.variants[restocked.variant];
  variant.stock_total += restocked.added;
  variant.stock_left += restocked.added;
  book.stock_total += restocked.added;
  book.stock_left += restocked.added;
  FS_ASSERT(variant.stock_total == restocked.stock_total &&
            variant.stock_left == restocked.stock_left);
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
      stream_ids_(std::make_unique<StreamIds>()),
      deadlines_(std::make_unique<Deadlines>()) {
  FS_ASSERT(limits_.drops_max >= 1);
  FS_ASSERT(limits_.streams_max >= 1 && limits_.drops_per_stream_max >= 1 &&
            limits_.streams_per_host_max >= 1);
  FS_ASSERT(limits_.decisions_per_drop_reserve <= limits_.decisions_per_drop_max);
  FS_ASSERT(limits_.decisions_per_buyer_max >= 1);
  drops_.reserve(limits_.drops_max);
  drop_ids_->map.reserve(limits_.drops_max);
  streams_.reserve(limits_.streams_max);
  stream_ids_->map.reserve(limits_.streams_max);
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

StreamBook* Engine::lookup_stream(std::string_view id) const noexcept {
  const auto found = stream_ids_->map.find(id);
  return found == stream_ids_->map.end() ? nullptr : streams_[found->second].get();
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
  if (is_stream_event(body)) {
    FS_ASSERT(drop == 0);
    return apply_stream_body(body);
  }
  if (auto* created = std::get_if<DropCreated>(&body)) {
    FS_ASSERT(drop == drops_.size());
    FS_ASSERT(drops_.size() < limits_.drops_max);
    FS_ASSERT(created->spec != nullptr && detail::validate_spec(*created->spec) == nullptr);
    DropSpec spec = *created->spec;
    spec.id = arena_->intern(spec.id);
    spec.host = arena_->intern(spec.host);
    if (!spec.stream.empty()) {
      StreamBook* stream = lookup_stream(spec.stream);
      FS_ASSERT(stream != nullptr && stream->state != StreamState::ended);
      FS_ASSERT(stream->spec.host == spec.host);
      FS_ASSERT(stream->drops.size() < limits_.drops_per_stream_max);
      spec.stream = stream->spec.id;
      stream->drops.push_back(drop);
    }
    spec.title = arena_->intern(spec.title);
    spec.beneficiary = arena_->intern(spec.beneficiary);
    spec.beneficiary_note = arena_->intern(spec.beneficiary_note);
    for (VariantSpec& variant : spec.variants) {
      variant.id = arena_->intern(variant.id);
      variant.label = arena_->intern(variant.label);
    }
    created->spec = std::make_shared<const DropSpec>(spec);
    drops_.push_back(std::make_unique<DropBook>(drop, spec, limits_.decisions_per_drop_reserve));
    // Room for the reserved decisions' keys at a typical 24 bytes each.
    arena_->reserve(std::size_t{limits_.decisions_per_drop_reserve} * 24);
    FS_ASSERT(drop_ids_->map.emplace(spec.id, drop).second);
    return;
  }
  FS_ASSERT(drop < drops_.size());
  DropBook& book = *drops_[drop];
  std::uint8_t touched = 0;  // the variant whose units the change moved
  std::visit(
      [&]<typename Body>(Body& change) {
        if constexpr (std::is_same_v<Body, OrderDecided>) {
          apply_to(book, *arena_, change);
          touched = change.variant;
        } else if constexpr (!std::is_same_v<Body, DropCreated> && !about_a_stream<Body>) {
          apply_to(book, change);
          if constexpr (std::is_same_v<Body, Restocked>) {
            touched = change.variant;
          } else if constexpr (requires { change.order; }) {
            touched = book.order(change.order).variant;
          }
        }
      },
      body);
  book.check_balance(book.variants[touched]);
  if (may_bring_deadline_forward(book, body)) schedule(book);
}

void Engine::apply_stream_body(EventBody& body) {
  if (auto* created = std::get_if<StreamCreated>(&body)) {
    FS_ASSERT(streams_.size() < limits_.streams_max);
    FS_ASSERT(created->spec != nullptr && detail::validate_stream(*created->spec) == nullptr);
    StreamSpec spec = *created->spec;
    spec.id = arena_->intern(spec.id);
    spec.host = arena_->intern(spec.host);
    spec.title = arena_->intern(spec.title);
    spec.video_url = arena_->intern(spec.video_url);
    created->spec = std::make_shared<const StreamSpec>(spec);
    const auto index = static_cast<StreamIndex>(streams_.size());
    streams_.push_back(std::make_unique<StreamBook>(index, spec));
    FS_ASSERT(stream_ids_->map.emplace(spec.id, index).second);
    return;
  }
  if (const auto* changed = std::get_if<StreamStateChanged>(&body)) {
    FS_ASSERT(changed->stream < streams_.size());
    StreamBook& stream = *streams_[changed->stream];
    if (changed->state == StreamState::live) {
      FS_ASSERT(stream.state == StreamState::scheduled);
    } else {
      // Ended after its drops were closed and its pin taken off (end_stream).
      FS_ASSERT(changed->state == StreamState::ended && stream.state != StreamState::ended);
      FS_ASSERT(!stream.pinned);
      for (const DropIndex index : stream.drops)
        FS_ASSERT(drops_[index]->state == DropState::closed);
    }
    stream.state = changed->state;
    return;
  }
  const auto& pinned = std::get<StreamPinned>(body);
  FS_ASSERT(pinned.stream < streams_.size());
  StreamBook& stream = *streams_[pinned.stream];
  FS_ASSERT(stream.state != StreamState::ended);
  if (pinned.pinned) {
    FS_ASSERT(pinned.drop < drops_.size() && drops_[pinned.drop]->spec.stream == stream.spec.id);
    FS_ASSERT(stream.pinned != pinned.drop);  // an event only for a change
    stream.pinned = pinned.drop;
  } else {
    FS_ASSERT(stream.pinned.has_value() && pinned.drop == 0);
    stream.pinned.reset();
  }
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

// In the order the deadlines fell: the opening, the draw, the holds that expired before the
// sale's end (their units could still go to the waitlist), the end, the later holds.
void Engine::advance_drop(DropBook& book, Events& events) {
  if (book.state == DropState::countdown && book.opens_at_ms <= now_ms_) {
    emit(book.index, StateChanged{DropState::open}, events);
    update_availability(book, events);
  }
  if (book.pending_orders > 0 && book.admission_closes_at_ms() <= now_ms_)
    draw_admission(book, events);
  const std::optional<TimeMs> closes_at = book.closes_at_ms();
  if (closes_at && *closes_at <= now_ms_ && accepts_orders(book.state)) {
    expire_holds(book, *closes_at, events);
    end_sale(book, events);
  }
  expire_holds(book, now_ms_, events);
}

void Engine::expire_holds(DropBook& book, TimeMs until_ms, Events& events) {
  book.prune_holds();
  while (!book.holds.empty()) {
    const OrderNumber number = book.holds.front();
    const Order& order = book.order(number);
    if (order.hold_expires_at_ms > until_ms) break;
    const std::uint8_t variant = order.variant;
    emit(book.index, HoldExpired{number, book.variants[variant].stock_left + order.qty}, events);
    release_units(book, variant, events);
    book.prune_holds();
  }
}

// The sale stops, by a host's close or at the end of its duration: orders collected in the
// admission window came before it and are drawn first; waitlist entries are cancelled (variant
// by variant, each in queue order); holds stay payable.
void Engine::end_sale(DropBook& book, Events& events) {
  if (book.pending_orders > 0) draw_admission(book, events);
  emit(book.index, StateChanged{DropState::closed}, events);
  for (detail::Variant& variant : book.variants) {
    book.prune_waitlist(variant);
    // Copy: emitting mutates the queue's lazily deleted front.
    const std::vector<OrderNumber> waiting(variant.waitlist.begin(), variant.waitlist.end());
    for (const OrderNumber number : waiting) {
      if (book.order(number).status != OrderStatus::waitlisted) continue;
      emit(book.index, OrderCancelled{number, CancelReason::drop_closed, variant.stock_left},
           events);
    }
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
  // Somebody could still be reserved (no waitlist and some stock) or waitlisted, in some
  // variant. Only a decision that takes units or a place can change the answer.
  const auto room_left = [&book] {
    return std::any_of(book.variants.begin(), book.variants.end(), [&book](const auto& variant) {
      return variant.waitlist_orders < book.spec.waitlist_limit ||
             (variant.waitlist_orders == 0 && variant.stock_left > 0);
    });
  };
  bool room = room_left();
  for (std::size_t index = 0; index < count && room; ++index) {
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
    const detail::Variant& variant = book.variants[record.variant];
    OrderOutcome outcome = OrderOutcome::sold_out;
    if (variant.waitlist_orders == 0 && variant.stock_left >= record.qty) {
      outcome = OrderOutcome::reserved;
    } else if (variant.waitlist_orders < book.spec.waitlist_limit) {
      outcome = OrderOutcome::waitlisted;
    }
    OrderDecided& decided =
        std::get<OrderDecided>(next_event(book.index, events).body =
                                   OrderDecided{record.user(), record.client_order_id()});
    decided.outcome = outcome;
    decided.variant = record.variant;
    decided.qty = record.qty;
    decided.stock_left = variant.stock_left;
    decided.drawn = true;
    if (outcome == OrderOutcome::reserved || outcome == OrderOutcome::waitlisted)
      decided.order = static_cast<OrderNumber>(book.orders.size() + 1);
    if (outcome == OrderOutcome::reserved) {
      decided.hold_expires_at_ms = now_ms_ + book.spec.hold_ms;
      decided.stock_left = variant.stock_left - record.qty;
    }
    if (outcome == OrderOutcome::waitlisted)
      decided.waitlist_position = variant.waitlist_orders + 1;
    book.drawn = collected;
    apply_last(events);
    if (outcome != OrderOutcome::sold_out) room = room_left();
  }
  emit(book.index, AdmissionClosed{book.pending_orders}, events);
  update_availability(book, events);
}

// Units came back (cancel, expiry, restock): the waitlist's head takes them first, strictly
// in order; whatever it cannot use stays in stock.
void Engine::release_units(DropBook& book, std::uint8_t variant_index, Events& events) {
  if (accepts_orders(book.state)) {
    detail::Variant& variant = book.variants[variant_index];
    book.prune_waitlist(variant);
    while (!variant.waitlist.empty()) {
      const OrderNumber number = variant.waitlist.front();
      const std::uint32_t qty = book.order(number).qty;
      if (qty > variant.stock_left) break;
      emit(book.index, OrderPromoted{number, now_ms_ + book.spec.hold_ms, variant.stock_left - qty},
           events);
      book.prune_waitlist(variant);
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

namespace {

const char* validate_opening(TimeMs opens_at_ms, TimeMs now_ms) {
  if (opens_at_ms < 0 || opens_at_ms > now_ms + countdown_ms_max)
    return "the opening instant must be at most 7 days ahead";
  return nullptr;
}

}  // namespace

CommandResult Engine::create_drop(const DropSpec& spec, TimeMs now_ms, Events& events,
                                  std::optional<TimeMs> opens_at_ms, std::uint64_t admission_seed) {
  advance_to(now_ms, events);
  CommandResult result;
  const char* problem = detail::validate_spec(spec);
  if (problem == nullptr && opens_at_ms) problem = validate_opening(*opens_at_ms, now_ms_);
  if (problem != nullptr) {
    result.status = CommandStatus::invalid_argument;
    result.reason = problem;
  } else if (lookup(spec.id) != nullptr) {
    result.status = CommandStatus::already_exists;
    result.drop = *find_drop(spec.id);
    result.reason = "a drop with this id exists";
  } else if (drops_.size() >= limits_.drops_max) {
    result.status = CommandStatus::limit_reached;
    result.reason = "the engine holds its maximum number of drops";
  } else if (!refused_by_stream(spec, result)) {
    result.drop = static_cast<DropIndex>(drops_.size());
    emit(result.drop, DropCreated{std::make_shared<const DropSpec>(spec)}, events);
    if (opens_at_ms) {
      emit(result.drop, CountdownStarted{std::max(*opens_at_ms, now_ms_), admission_seed}, events);
      advance_to(now_ms_, events);  // an instant already past opens now
    }
  }
  after_command();
  return result;
}

// The checks of a drop created in a stream, after the drop's own: true, with `result` saying
// why, when the stream refuses it.
bool Engine::refused_by_stream(const DropSpec& spec, CommandResult& result) const {
  if (spec.stream.empty()) return false;
  const StreamBook* stream = lookup_stream(spec.stream);
  if (stream == nullptr) {
    result.status = CommandStatus::unknown_stream;
    return true;
  }
  result.stream = stream->index;
  if (spec.host != stream->spec.host) {
    result.status = CommandStatus::invalid_argument;
    result.reason = "a drop in a stream has the stream's host";
  } else if (stream->state == StreamState::ended) {
    result.status = CommandStatus::wrong_state;
    result.reason = "the stream has ended";
  } else if (stream->drops.size() >= limits_.drops_per_stream_max) {
    result.status = CommandStatus::limit_reached;
    result.reason = "the stream holds its maximum number of drops";
  } else {
    return false;
  }
  return true;
}

CommandResult Engine::start_countdown(std::string_view drop, TimeMs opens_in_ms, TimeMs now_ms,
                                      Events& events, std::uint64_t admission_seed) {
  if (opens_in_ms < 0 || opens_in_ms > countdown_ms_max) {
    advance_to(now_ms, events);
    after_command();
    return {CommandStatus::invalid_argument, 0, "the countdown must be 0 s .. 7 days"};
  }
  return start_countdown_at(drop, std::max(now_ms, now_ms_) + opens_in_ms, now_ms, events,
                            admission_seed);
}

CommandResult Engine::start_countdown_at(std::string_view drop, TimeMs opens_at_ms, TimeMs now_ms,
                                         Events& events, std::uint64_t admission_seed) {
  advance_to(now_ms, events);
  CommandResult result;
  DropBook* book = lookup(drop);
  if (const char* problem = validate_opening(opens_at_ms, now_ms_)) {
    result.status = CommandStatus::invalid_argument;
    result.reason = problem;
  } else if (book == nullptr) {
    result.status = CommandStatus::unknown_drop;
  } else if (book->state != DropState::scheduled && book->state != DropState::countdown) {
    result.status = CommandStatus::wrong_state;
    result.drop = book->index;
    result.reason = "the drop has already opened";
  } else {
    result.drop = book->index;
    emit(book->index, CountdownStarted{std::max(opens_at_ms, now_ms_), admission_seed}, events);
    advance_to(now_ms_, events);  // a zero countdown opens now
  }
  after_command();
  return result;
}

CommandResult Engine::restock(std::string_view drop, std::uint32_t added, TimeMs now_ms,
                              Events& events, std::string_view variant) {
  advance_to(now_ms, events);
  CommandResult result;
  DropBook* book = lookup(drop);
  const int variant_index = book != nullptr ? book->find_variant(variant) : detail::no_variant;
  if (added < 1 || added > stock_max) {
    result.status = CommandStatus::invalid_argument;
    result.reason = "add must be 1..10^9";
  } else if (book == nullptr) {
    result.status = CommandStatus::unknown_drop;
  } else if (variant_index == detail::no_variant) {
    result.status = CommandStatus::unknown_variant;
    result.drop = book->index;
    result.reason = variant.empty() ? "the drop has several variants: name one"
                                    : "the drop has no such variant";
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
    const auto index = static_cast<std::uint8_t>(variant_index);
    const detail::Variant& restocked = book->variants[index];
    emit(book->index,
         Restocked{added, restocked.stock_total + added, restocked.stock_left + added, index},
         events);
    release_units(*book, index, events);
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
    end_sale(*book, events);
  }
  after_command();
  return result;
}

CommandResult Engine::create_stream(const StreamSpec& spec, TimeMs now_ms, Events& events) {
  advance_to(now_ms, events);
  CommandResult result;
  if (const char* problem = detail::validate_stream(spec)) {
    result.status = CommandStatus::invalid_argument;
    result.reason = problem;
  } else if (const StreamBook* existing = lookup_stream(spec.id)) {
    result.status = CommandStatus::already_exists;
    result.stream = existing->index;
    result.reason = "a stream with this id exists";
  } else if (streams_.size() >= limits_.streams_max) {
    result.status = CommandStatus::limit_reached;
    result.reason = "the engine holds its maximum number of streams";
  } else if (std::count_if(streams_.begin(), streams_.end(), [&](const auto& stream) {
               return stream->spec.host == spec.host;
             }) >= limits_.streams_per_host_max) {
    result.status = CommandStatus::limit_reached;
    result.reason = "the host holds its maximum number of streams";
  } else {
    result.stream = static_cast<StreamIndex>(streams_.size());
    emit(0, StreamCreated{std::make_shared<const StreamSpec>(spec)}, events);
  }
  after_command();
  return result;
}

CommandResult Engine::go_live(std::string_view stream, TimeMs now_ms, Events& events) {
  advance_to(now_ms, events);
  CommandResult result;
  const StreamBook* book = lookup_stream(stream);
  if (book == nullptr) {
    result.status = CommandStatus::unknown_stream;
  } else if (book->state != StreamState::scheduled) {
    result.status = CommandStatus::wrong_state;
    result.stream = book->index;
    result.reason =
        book->state == StreamState::live ? "the stream is already live" : "the stream has ended";
  } else {
    result.stream = book->index;
    emit(0, StreamStateChanged{book->index, StreamState::live}, events);
  }
  after_command();
  return result;
}

CommandResult Engine::pin(std::string_view stream, std::string_view drop, TimeMs now_ms,
                          Events& events) {
  advance_to(now_ms, events);
  CommandResult result;
  const StreamBook* book = lookup_stream(stream);
  const DropBook* pinned = drop.empty() ? nullptr : lookup(drop);
  if (book == nullptr) {
    result.status = CommandStatus::unknown_stream;
  } else if (!drop.empty() && (pinned == nullptr || pinned->spec.stream != book->spec.id)) {
    result.status = CommandStatus::unknown_drop;
    result.stream = book->index;
    result.reason = "the stream has no such drop";
  } else if (book->state == StreamState::ended) {
    result.status = CommandStatus::wrong_state;
    result.stream = book->index;
    result.reason = "the stream has ended";
  } else {
    result.stream = book->index;
    if (pinned != nullptr) {
      result.drop = pinned->index;
      if (book->pinned != pinned->index)
        emit(0, StreamPinned{book->index, true, pinned->index}, events);
    } else if (book->pinned) {
      emit(0, StreamPinned{book->index, false, 0}, events);
    }
  }
  after_command();
  return result;
}

CommandResult Engine::end_stream(std::string_view stream, TimeMs now_ms, Events& events) {
  advance_to(now_ms, events);
  CommandResult result;
  const StreamBook* book = lookup_stream(stream);
  if (book == nullptr) {
    result.status = CommandStatus::unknown_stream;
  } else if (book->state == StreamState::ended) {
    result.status = CommandStatus::wrong_state;
    result.stream = book->index;
    result.reason = "the stream has already ended";
  } else {
    result.stream = book->index;
    for (const DropIndex index : book->drops) {
      DropBook& dropped = *drops_[index];
      if (dropped.state != DropState::closed) end_sale(dropped, events);
    }
    if (book->pinned) emit(0, StreamPinned{book->index, false, 0}, events);
    emit(0, StreamStateChanged{book->index, StreamState::ended}, events);
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
    // Built in place (a prvalue into placement new is never copied): assigning would copy a
    // result just written field by field on the stack, and reading it back stalls on store
    // forwarding — a fifth of a sold-out order's time, measured.
    ::new (&results[index]) OrderResult(decide_order(orders[index], tag, events));
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
  const int variant_index = book->find_variant(request.variant);
  if (variant_index == detail::no_variant)
    return unrecorded(OrderOutcome::unknown_variant,
                      request.variant.empty() ? "the drop has several variants: name one"
                                              : "the drop has no such variant",
                      book->index);
  const auto variant_at = static_cast<std::uint8_t>(variant_index);
  const detail::Variant& variant = book->variants[variant_at];
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
  } else if (book->spec.per_variant_limit > 0 &&
             (buyer != nullptr ? book->variant_units_of(*buyer, variant_at) : 0) + request.qty >
                 book->spec.per_variant_limit) {
    outcome = OrderOutcome::limit_exceeded;
  } else if (collecting) {
    outcome = OrderOutcome::pending;
  } else if (variant.waitlist_orders == 0 && variant.stock_left >= request.qty) {
    outcome = OrderOutcome::reserved;
  } else if (variant.waitlist_orders < book->spec.waitlist_limit) {
    outcome = OrderOutcome::waitlisted;
  }
  // The event is written straight into the output (see next_event).
  OrderDecided& decided = std::get<OrderDecided>(
      next_event(book->index, events).body = OrderDecided{request.user, request.client_order_id});
  decided.outcome = outcome;
  decided.variant = variant_at;
  decided.qty = request.qty;
  decided.stock_left = variant.stock_left;
  if (outcome == OrderOutcome::reserved || outcome == OrderOutcome::waitlisted)
    decided.order = static_cast<OrderNumber>(book->orders.size() + 1);
  if (outcome == OrderOutcome::reserved) {
    decided.hold_expires_at_ms = now_ms_ + book->spec.hold_ms;
    decided.stock_left = variant.stock_left - request.qty;
  }
  if (outcome == OrderOutcome::waitlisted) decided.waitlist_position = variant.waitlist_orders + 1;
  book->decided_buyer = {tag, found};  // spares applying a second lookup of the same buyer
  apply_last(events);
  if (outcome == OrderOutcome::reserved) update_availability(*book, events);
  return result_of(*book, static_cast<std::uint32_t>(book->decisions.size() - 1), false,
                   outcome == OrderOutcome::sold_out && book->spec.waitlist_limit > 0);
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
    const std::uint8_t variant = order.variant;
    emit(book->index,
         OrderCancelled{action.order, CancelReason::by_buyer,
                        book->variants[variant].stock_left + returned},
         events);
    release_units(*book, variant, events);
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

std::int64_t pledged_cents(std::int64_t sales_cents, std::uint32_t pledge_bps) {
  __extension__ using Wide = unsigned __int128;
  FS_ASSERT(sales_cents >= 0 && pledge_bps <= pledge_bps_max);
  return static_cast<std::int64_t>(static_cast<Wide>(sales_cents) * pledge_bps / pledge_bps_max);
}

namespace {

// Σ sold × price over the variants. Exact for a charity drop (prices within 10^9, units within
// 10^9); any other drop's value saturates at 2^63 - 1 cents, far past anything sold.
std::int64_t sales_of(const DropBook& book) {
  __extension__ using Wide = unsigned __int128;
  Wide total = 0;
  for (std::size_t position = 0; position < book.variants.size(); ++position) {
    total += static_cast<Wide>(detail::offered(book.spec, position).price_cents) *
             book.variants[position].sold;
  }
  return total > static_cast<Wide>(INT64_MAX) ? INT64_MAX : static_cast<std::int64_t>(total);
}

}  // namespace

std::optional<DropIndex> Engine::find_drop(std::string_view id) const noexcept {
  const auto found = drop_ids_->map.find(id);
  if (found == drop_ids_->map.end()) return std::nullopt;
  return found->second;
}

std::uint32_t Engine::drop_count() const noexcept {
  return static_cast<std::uint32_t>(drops_.size());
}

std::optional<StreamIndex> Engine::find_stream(std::string_view id) const noexcept {
  const StreamBook* book = lookup_stream(id);
  if (book == nullptr) return std::nullopt;
  return book->index;
}

std::uint32_t Engine::stream_count() const noexcept {
  return static_cast<std::uint32_t>(streams_.size());
}

StreamInfo Engine::stream_info(StreamIndex stream) const {
  FS_ASSERT(stream < streams_.size());
  const StreamBook& book = *streams_[stream];
  return {book.index, book.spec, book.state, book.pinned, book.drops};
}

DropInfo Engine::drop_info(DropIndex drop) const {
  FS_ASSERT(drop < drops_.size());
  const DropBook& book = *drops_[drop];
  DropInfo info;
  info.index = drop;
  info.spec = book.spec;
  info.state = book.state;
  if (book.state != DropState::scheduled) info.opens_at_ms = book.opens_at_ms;
  info.closes_at_ms = book.closes_at_ms();
  info.variants.reserve(book.variants.size());
  for (std::size_t position = 0; position < book.variants.size(); ++position) {
    const VariantSpec sold = detail::offered(book.spec, position);
    const detail::Variant& variant = book.variants[position];
    info.variants.push_back({sold.id, sold.label, sold.price_cents, sold.list_price_cents,
                             variant.stock_total, variant.stock_left, variant.held, variant.sold,
                             variant.waitlist_orders});
  }
  info.stock_total = book.stock_total;
  info.stock_left = book.stock_left;
  info.held = book.held;
  info.sold = book.sold;
  info.waitlist_orders = book.waitlist_orders;
  info.pending_orders = book.pending_orders;
  info.orders_confirmed = book.orders_confirmed;
  info.supporters = book.supporters;
  info.sales_cents = sales_of(book);
  info.raised_cents = pledged_cents(info.sales_cents, book.spec.pledge_bps);
  info.orders = static_cast<std::uint32_t>(book.orders.size());
  info.decisions = static_cast<std::uint32_t>(book.decisions.size());
  return info;
}

namespace {

OrderInfo info_of(const DropBook& book, OrderNumber number) {
  const Order& order = book.order(number);
  const Record& record = book.decisions[order.decision];
  return OrderInfo{number,
                   record.user(),
                   record.client_order_id(),
                   order.qty,
                   order.status,
                   order.hold_expires_at_ms,
                   order.variant,
                   detail::offered(book.spec, order.variant).price_cents};
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
