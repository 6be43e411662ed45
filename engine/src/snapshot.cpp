// Snapshots: the engine's whole state in a canonical byte form, so recovery can start from a
// recent point instead of replaying every event since the first drop.
//
// Only what cannot be derived is written: streams (spec, state, pin), drops, their decisions in
// order and their orders. Restoring rebuilds the rest — each stream's list of drops from the
// drops' specs, buyers and their decision chains, units per buyer, the hold and
// waitlist queues, the deadline heap — and then checks every invariant, so a snapshot is also a
// compact proof that the derived state was right. Holds are restored in grant order, which is
// (hold deadline, order number): hold_ms is fixed per drop, time only grows, and an order can be
// reserved outright only while the waitlist is empty, so nobody granted later has a lower number
// at the same deadline.
#include <algorithm>
#include <array>
#include <queue>

#include "arena.hpp"
#include "drop_book.hpp"
#include "flashsale/engine/bytes.hpp"
#include "flashsale/engine/engine.hpp"
#include "flashsale/engine/event_codec.hpp"
#include "stream_book.hpp"

namespace flashsale::engine {

using detail::DropBook;
using detail::Order;
using detail::Record;
using detail::StreamBook;

namespace {

constexpr std::uint64_t snapshot_magic = 0x31534e5353414c46ULL;  // "FLASSNS1"
// 2: admission windows; 3: charity pledges; 4: variants, list prices, durations; 5: streams
// (before the drops), a drop's host and stream. Version 4 is still read: no streams.
constexpr std::uint64_t snapshot_version = 5;
constexpr std::uint64_t snapshot_version_min = 4;

void write_stream(const StreamBook& stream, ByteWriter& out) {
  out.string(stream.spec.id);
  out.string(stream.spec.host);
  out.string(stream.spec.title);
  out.string(stream.spec.video_url);
  out.byte(static_cast<std::uint8_t>(stream.state));
  out.varint(stream.pinned ? std::uint64_t{*stream.pinned} + 1 : 0);  // 0: nothing pinned
}

void write_drop(const DropBook& book, ByteWriter& out) {
  encode_spec(book.spec, out);
  out.byte(static_cast<std::uint8_t>(book.state));
  out.signed_varint(book.opens_at_ms);
  out.fixed64(book.admission_seed);
  out.byte(book.admission_closed ? 1 : 0);
  for (const detail::Variant& variant : book.variants) {
    out.varint(variant.stock_total);
    out.varint(variant.stock_left);
    out.varint(variant.held);
    out.varint(variant.sold);
  }
  out.varint(book.decisions.size());
  for (const Record& record : book.decisions) {
    out.string(record.user());
    out.string(record.client_order_id());
    out.byte(static_cast<std::uint8_t>(record.outcome));
    out.byte(record.variant);
    out.varint(record.qty);
    out.varint(record.order);
  }
  out.varint(book.orders.size());
  for (const Order& order : book.orders) {
    out.varint(order.decision);
    out.signed_varint(order.hold_expires_at_ms);
    out.varint(order.waitlist_position);
    out.byte(static_cast<std::uint8_t>(order.status));
  }
}

}  // namespace

std::string Engine::snapshot() const {
  std::string bytes;
  ByteWriter out(bytes);
  out.fixed64(snapshot_magic);
  out.varint(snapshot_version);
  out.signed_varint(now_ms_);
  out.varint(sequence_);
  out.varint(streams_.size());
  for (const auto& stream : streams_) write_stream(*stream, out);
  out.varint(drops_.size());
  for (const auto& book : drops_) write_drop(*book, out);
  return bytes;
}

// Streams are read before the drops, which join them as they are restored, and take their
// state and pin after: a drop can only be created in a stream that has not ended.
struct Engine::StreamRestore {
  Engine& engine;
  std::vector<std::pair<std::uint8_t, std::uint64_t>> states;  // (state, pinned drop + 1 or 0)

  std::string read(ByteReader& in, std::uint64_t version);
  std::string settle();
};

std::string Engine::StreamRestore::read(ByteReader& in, std::uint64_t version) {
  if (version < 5) return {};
  const EngineLimits& limits = engine.limits_;
  const std::uint64_t count = in.bounded(limits.streams_max);
  for (std::uint64_t index = 0; index < count && in.ok(); ++index) {
    StreamSpec spec;
    spec.id = in.string(stream_id_length_max);
    spec.host = in.string(host_id_length_max);
    spec.title = in.string(stream_title_length_max);
    spec.video_url = in.string(video_url_length_max);
    const std::uint8_t state = in.byte();
    states.emplace_back(state, in.bounded(limits.drops_max));
    if (!in.ok()) break;
    if (const char* problem = detail::validate_stream(spec))
      return "invalid stream: " + std::string(problem);
    if (engine.find_stream(spec.id)) return "duplicate stream " + std::string(spec.id);
    EventBody created = StreamCreated{std::make_shared<const StreamSpec>(spec)};
    engine.apply_body(0, created);
  }
  if (!in.ok()) return "truncated stream";
  return {};
}

std::string Engine::StreamRestore::settle() {
  for (std::size_t index = 0; index < states.size(); ++index) {
    StreamBook& stream = *engine.streams_[index];
    const auto [state, pinned] = states[index];
    if (state > static_cast<std::uint8_t>(StreamState::ended)) return "bad stream state";
    stream.state = static_cast<StreamState>(state);
    if (pinned != 0) {
      if (pinned > engine.drops_.size() || engine.drops_[pinned - 1]->spec.stream != stream.spec.id)
        return "a stream pins a drop not its own";
      stream.pinned = static_cast<DropIndex>(pinned - 1);
    }
    if (stream.state == StreamState::ended) {
      if (stream.pinned) return "an ended stream pins a drop";
      for (const DropIndex drop : stream.drops) {
        if (engine.drops_[drop]->state != DropState::closed)
          return "an ended stream with a drop not closed";
      }
    }
  }
  return {};
}

std::string Engine::restore(std::string_view bytes) {
  FS_ASSERT(drops_.empty() && streams_.empty() && sequence_ == 0);
  ByteReader in(bytes);
  if (in.fixed64() != snapshot_magic) return "not a flashsale snapshot";
  const std::uint64_t version = in.varint();
  if (version < snapshot_version_min || version > snapshot_version)
    return "unknown snapshot version";
  now_ms_ = in.signed_varint();
  sequence_ = in.varint();
  if (now_ms_ < 0 || now_ms_ > time_ms_max) return "snapshot time out of range";
  StreamRestore streams{*this, {}};
  if (std::string problem = streams.read(in, version); !problem.empty()) return problem;
  const std::uint64_t drop_count = in.bounded(limits_.drops_max);
  if (!in.ok()) return "bad snapshot header";
  for (DropIndex index = 0; index < drop_count; ++index) {
    const DropSpec spec = decode_spec(in, static_cast<std::uint8_t>(version));
    if (!in.ok()) return "truncated drop";
    if (const char* problem = detail::validate_spec(spec))
      return "invalid drop: " + std::string(problem);
    if (find_drop(spec.id)) return "duplicate drop " + std::string(spec.id);
    if (!spec.stream.empty()) {
      const StreamBook* stream = lookup_stream(spec.stream);
      if (stream == nullptr || stream->spec.host != spec.host)
        return "a drop not in its stream, or not of its host";
      if (stream->drops.size() >= limits_.drops_per_stream_max) return "too many drops in a stream";
    }
    EventBody created = DropCreated{std::make_shared<const DropSpec>(spec)};
    apply_body(index, created);
    DropBook& book = *drops_.back();
    const std::uint8_t state = in.byte();
    if (state > static_cast<std::uint8_t>(DropState::closed)) return "bad drop state";
    book.state = static_cast<DropState>(state);
    book.opens_at_ms = in.signed_varint();
    book.admission_seed = in.fixed64();
    const std::uint8_t admission_closed = in.byte();
    if (admission_closed > 1) return "bad admission flag";
    book.admission_closed = admission_closed == 1;
    // Each variant's stock as written; its held and sold units are recounted from the orders
    // and must agree.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> written;  // (held, sold)
    book.stock_total = 0;
    book.stock_left = 0;
    for (detail::Variant& variant : book.variants) {
      variant.stock_total = static_cast<std::uint32_t>(in.bounded(stock_max));
      variant.stock_left = static_cast<std::uint32_t>(in.bounded(variant.stock_total));
      const auto variant_held = in.bounded(variant.stock_total);
      const auto variant_sold = in.bounded(variant.stock_total);
      written.emplace_back(variant_held, variant_sold);
      book.stock_total += variant.stock_total;
      book.stock_left += variant.stock_left;
      if (book.stock_total > stock_max) return "a drop's stock beyond 10^9";
    }
    if (book.opens_at_ms < 0 || book.opens_at_ms > time_ms_max) return "opening time out of range";
    if ((book.state == DropState::open && book.stock_left == 0) ||
        (book.state == DropState::sold_out && book.stock_left != 0))
      return "drop state does not match its stock";

    const std::uint64_t decision_count = in.bounded(limits_.decisions_per_drop_max);
    if (!in.ok()) return "truncated drop";
    // Each record takes at least 6 bytes: no reservation beyond what the input can hold.
    book.decisions.reserve(std::min<std::uint64_t>(decision_count, in.rest().size() / 6));
    for (std::uint64_t position = 0; position < decision_count; ++position) {
      const std::string_view user = in.string(user_length_max);
      const std::string_view client_order_id = in.string(client_order_id_length_max);
      const std::uint8_t outcome = in.byte();
      const std::uint8_t variant = in.byte();
      const auto qty = static_cast<std::uint32_t>(in.bounded(order_qty_max));
      const auto order = static_cast<OrderNumber>(in.bounded(0xffffffff));
      const auto recorded = static_cast<OrderOutcome>(outcome);
      const bool accepted =
          recorded == OrderOutcome::reserved || recorded == OrderOutcome::waitlisted;
      if (!in.ok() || !is_valid_name(user, user_length_max) ||
          !is_valid_name(client_order_id, client_order_id_length_max) ||
          outcome > static_cast<std::uint8_t>(OrderOutcome::pending) || !is_recorded(recorded) ||
          qty == 0 || accepted != (order != 0) || variant >= book.variants.size())
        return "bad decision";
      const char* key = arena_->copy(user, client_order_id);
      const std::string_view stored_user{key, user.size()};
      const detail::BuyerIndex::Tag tag = detail::BuyerIndex::tag_of(stored_user);
      std::uint32_t buyer = book.find_buyer(stored_user, tag);
      if (buyer == detail::BuyerIndex::not_found) {
        buyer = static_cast<std::uint32_t>(book.buyers.size());
        detail::Buyer& added = book.buyers.emplace_back();
        added.name = key;
        added.name_length = static_cast<std::uint8_t>(user.size());
        book.buyer_index.insert(tag, buyer);
      }
      detail::Buyer& owner = book.buyers[buyer];
      if (book.find_decision(owner, client_order_id)) return "duplicate decision";
      Record& record = book.decisions.emplace_back();
      record.key = key;
      record.user_length = static_cast<std::uint8_t>(user.size());
      record.client_order_id_length = static_cast<std::uint8_t>(client_order_id.size());
      record.outcome = static_cast<OrderOutcome>(outcome);
      record.variant = variant;
      record.qty = qty;
      record.order = order;
      record.previous_of_buyer = owner.last_decision;
      owner.last_decision = static_cast<std::uint32_t>(position);
      owner.decisions += 1;
      if (record.outcome == OrderOutcome::pending && !book.admission_closed) {
        // Collected in the admission window; arrival order is decision order.
        if (!book.collecting(now_ms_)) return "a pending order outside an admission window";
        book.admission.push_back({static_cast<std::uint32_t>(position), buyer});
        book.pending_orders += 1;
      }
    }

    const std::uint64_t order_count = in.bounded(decision_count);
    if (!in.ok()) return "truncated drop";
    book.orders.reserve(std::min<std::uint64_t>(order_count, in.rest().size() / 4));
    std::vector<OrderNumber> reserved;
    for (OrderNumber number = 1; number <= order_count; ++number) {
      Order& order = book.orders.emplace_back();
      order.decision = static_cast<std::uint32_t>(in.bounded(decision_count - 1));
      order.hold_expires_at_ms = in.signed_varint();
      order.waitlist_position = static_cast<std::uint32_t>(in.bounded(0xffffffff));
      const std::uint8_t status = in.byte();
      if (!in.ok() || status > static_cast<std::uint8_t>(OrderStatus::expired)) return "bad order";
      order.status = static_cast<OrderStatus>(status);
      const Record& record = book.decisions[order.decision];
      if (record.order != number) return "order and decision disagree";
      if (order.status == OrderStatus::waitlisted && record.outcome != OrderOutcome::waitlisted)
        return "an order reserved outright cannot be waitlisted";
      if (order.hold_expires_at_ms < 0 || order.hold_expires_at_ms > time_ms_max)
        return "hold out of range";
      order.qty = record.qty;
      order.variant = record.variant;
      order.buyer = book.find_buyer(record.user(), detail::BuyerIndex::tag_of(record.user()));
      detail::Buyer& owner = book.buyers[order.buyer];
      detail::Variant& variant = book.variants[order.variant];
      const bool counts = order.status == OrderStatus::reserved ||
                          order.status == OrderStatus::confirmed ||
                          order.status == OrderStatus::waitlisted;
      if (counts && std::uint64_t{owner.units} + order.qty > book.spec.per_user_limit)
        return "a buyer above the limit";
      if (std::uint64_t{variant.held} + variant.sold + order.qty > variant.stock_total &&
          (order.status == OrderStatus::reserved || order.status == OrderStatus::confirmed))
        return "more units held and sold than the variant has";
      if (order.status == OrderStatus::waitlisted && book.state != DropState::open &&
          book.state != DropState::sold_out)
        return "a waitlist on a drop that does not sell";
      switch (order.status) {
        case OrderStatus::reserved:
          variant.held += order.qty;
          book.held += order.qty;
          owner.units += order.qty;
          reserved.push_back(number);
          break;
        case OrderStatus::confirmed:
          variant.sold += order.qty;
          book.sold += order.qty;
          owner.units += order.qty;
          book.orders_confirmed += 1;
          if (!owner.supporter) {
            owner.supporter = true;
            book.supporters += 1;
          }
          break;
        case OrderStatus::waitlisted:
          variant.waitlist_orders += 1;
          book.waitlist_orders += 1;
          owner.units += order.qty;
          variant.waitlist.push_back(number);
          break;
        case OrderStatus::cancelled:
        case OrderStatus::expired:
          break;
      }
    }
    for (std::size_t position = 0; position < book.variants.size(); ++position) {
      const detail::Variant& variant = book.variants[position];
      if (variant.held != written[position].first || variant.sold != written[position].second)
        return "variant counters disagree with its orders";
      if (std::uint64_t{variant.stock_left} + variant.held + variant.sold != variant.stock_total)
        return "variant stock does not balance";
      if (variant.waitlist_orders > book.spec.waitlist_limit) return "waitlist over its limit";
    }
    for (std::uint32_t position = 0; position < book.decisions.size(); ++position) {
      const OrderNumber order = book.decisions[position].order;
      if (order != 0 && (order > book.orders.size() || book.orders[order - 1].decision != position))
        return "a decision names an order that is not its own";
    }
    if (book.pending_orders > 0) {
      for (const detail::Buyer& owner : book.buyers) {
        if (owner.units + book.pending_units_of(owner) > book.spec.per_user_limit)
          return "a buyer above the limit";
      }
    }
    if (book.spec.per_variant_limit > 0) {
      std::array<std::uint64_t, variants_max> per_variant{};
      for (const detail::Buyer& owner : book.buyers) {
        per_variant.fill(0);
        for (std::uint32_t position = owner.last_decision; position != detail::no_decision;
             position = book.decisions[position].previous_of_buyer) {
          const Record& record = book.decisions[position];
          const bool waits = record.outcome == OrderOutcome::pending && !book.admission_closed;
          const bool counts = record.order != 0 &&
                              book.order(record.order).status != OrderStatus::cancelled &&
                              book.order(record.order).status != OrderStatus::expired;
          if (waits || counts) per_variant[record.variant] += record.qty;
          if (per_variant[record.variant] > book.spec.per_variant_limit)
            return "a buyer above the variant's limit";
        }
      }
    }
    std::sort(reserved.begin(), reserved.end(), [&book](OrderNumber a, OrderNumber b) {
      const TimeMs a_at = book.order(a).hold_expires_at_ms;
      const TimeMs b_at = book.order(b).hold_expires_at_ms;
      return a_at < b_at || (a_at == b_at && a < b);
    });
    book.holds.assign(reserved.begin(), reserved.end());
    if (std::uint64_t{book.stock_left} + book.held + book.sold != book.stock_total)
      return "drop stock does not balance";
    schedule(book);
  }
  if (!in.done()) return "trailing bytes after the snapshot";
  if (std::string problem = streams.settle(); !problem.empty()) return problem;
  check_invariants();
  return {};
}

}  // namespace flashsale::engine
