// The whole-state checks: `check_invariants` rescans everything the engine keeps incrementally
// and asserts they agree; `digest` hashes a canonical encoding so tests and recovery can prove
// two engines hold the same state. Both are O(state) and stay off the order path.
#include <algorithm>
#include <boost/container_hash/hash.hpp>
#include <boost/unordered/unordered_flat_map.hpp>

#include "drop_book.hpp"
#include "flashsale/engine/engine.hpp"
#include "stream_book.hpp"

namespace flashsale::engine {

using detail::DropBook;
using detail::Order;
using detail::Record;

namespace {

// Feeds values into one running hash in a fixed order. Strings carry their length so that
// ("ab","c") and ("a","bc") differ.
class DigestWriter {
 public:
  void add(std::uint64_t value) { boost::hash_combine(seed_, value); }
  void add(std::string_view text) {
    add(text.size());
    boost::hash_range(seed_, text.begin(), text.end());
  }
  std::uint64_t value() const { return seed_; }

 private:
  std::size_t seed_ = 0x666c61736873616cULL;  // "flashsal"
};

void digest_drop(const DropBook& book, DigestWriter& writer) {
  writer.add(book.spec.id);
  writer.add(book.spec.title);
  writer.add(book.spec.variants.size());
  for (const VariantSpec& variant : book.spec.variants) {
    writer.add(variant.id);
    writer.add(variant.label);
    writer.add(static_cast<std::uint64_t>(variant.price_cents));
    writer.add(static_cast<std::uint64_t>(variant.list_price_cents));
    writer.add(variant.stock);
  }
  writer.add(static_cast<std::uint64_t>(book.spec.price_cents));
  writer.add(static_cast<std::uint64_t>(book.spec.list_price_cents));
  writer.add(book.spec.stock);
  writer.add(book.spec.per_user_limit);
  writer.add(book.spec.per_variant_limit);
  writer.add(static_cast<std::uint64_t>(book.spec.duration_ms));
  writer.add(static_cast<std::uint64_t>(book.spec.hold_ms));
  writer.add(book.spec.waitlist_limit);
  writer.add(static_cast<std::uint64_t>(book.spec.admission_window_ms));
  writer.add(book.admission_seed);
  writer.add(book.admission_closed ? 1u : 0u);
  writer.add(book.spec.beneficiary);
  writer.add(book.spec.beneficiary_note);
  writer.add(book.spec.pledge_bps);
  // Only when set, so that a state from before hosts and streams keeps its digest: a version 4
  // snapshot record is checked against the digest it was written with.
  if (!book.spec.host.empty() || !book.spec.stream.empty()) {
    writer.add(book.spec.host);
    writer.add(book.spec.stream);
  }
  writer.add(static_cast<std::uint64_t>(book.state));
  writer.add(static_cast<std::uint64_t>(book.opens_at_ms));
  writer.add(book.stock_total);
  writer.add(book.stock_left);
  writer.add(book.held);
  writer.add(book.sold);
  writer.add(book.waitlist_orders);
  for (const detail::Variant& variant : book.variants) {
    writer.add(variant.stock_total);
    writer.add(variant.stock_left);
    writer.add(variant.held);
    writer.add(variant.sold);
    writer.add(variant.waitlist_orders);
    // Queue order matters (who is next); entries already gone from the queue do not.
    for (const OrderNumber number : variant.waitlist) {
      if (book.order(number).status == OrderStatus::waitlisted) writer.add(number);
    }
    writer.add(std::uint64_t{0});
  }
  writer.add(book.decisions.size());
  for (const Record& record : book.decisions) {
    writer.add(record.user());
    writer.add(record.client_order_id());
    writer.add(static_cast<std::uint64_t>(record.outcome));
    writer.add(record.variant);
    writer.add(record.qty);
    writer.add(record.order);
  }
  writer.add(book.orders.size());
  for (const Order& order : book.orders) {
    writer.add(order.decision);
    writer.add(order.qty);
    writer.add(static_cast<std::uint64_t>(order.hold_expires_at_ms));
    writer.add(order.waitlist_position);
    writer.add(static_cast<std::uint64_t>(order.status));
    writer.add(order.variant);
  }
  for (const OrderNumber number : book.holds) {
    if (book.order(number).status == OrderStatus::reserved) writer.add(number);
  }
}

// Per variant, recounted from the orders.
struct VariantCount {
  std::uint64_t held = 0;
  std::uint64_t sold = 0;
  std::uint32_t waitlisted = 0;
};

void check_variants(const DropBook& book, const std::vector<VariantCount>& counts) {
  FS_ASSERT(!book.variants.empty() && book.variants.size() <= variants_max);
  FS_ASSERT(book.variants.size() == detail::variant_count(book.spec));
  std::uint64_t total = 0, left = 0, held = 0, sold = 0, waitlisted = 0;
  for (std::size_t position = 0; position < book.variants.size(); ++position) {
    const detail::Variant& variant = book.variants[position];
    book.check_balance(variant);  // stock left + held + sold == total, per variant
    FS_ASSERT(counts[position].held == variant.held && counts[position].sold == variant.sold);
    FS_ASSERT(counts[position].waitlisted == variant.waitlist_orders);
    FS_ASSERT(variant.waitlist_orders <= book.spec.waitlist_limit);
    total += variant.stock_total;
    left += variant.stock_left;
    held += variant.held;
    sold += variant.sold;
    waitlisted += variant.waitlist_orders;
    // The waitlist lists every waiting order of this variant, first in, first out.
    std::uint32_t queued = 0;
    OrderNumber previous = 0;
    for (const OrderNumber number : variant.waitlist) {
      FS_ASSERT(number > previous);
      previous = number;
      const Order& order = book.order(number);
      FS_ASSERT(order.variant == position);
      if (order.status == OrderStatus::waitlisted) queued += 1;
    }
    FS_ASSERT(queued == variant.waitlist_orders);
  }
  // The drop's counters are the sums of its variants'.
  FS_ASSERT(total == book.stock_total && left == book.stock_left && held == book.held &&
            sold == book.sold && waitlisted == book.waitlist_orders);
}

void check_drop(const DropBook& book) {
  std::uint64_t held = 0;
  std::uint64_t sold = 0;
  std::uint32_t waitlisted = 0;
  std::vector<VariantCount> counts(book.variants.size());
  boost::unordered_flat_map<std::string_view, std::uint64_t, detail::StringHash, std::equal_to<>>
      units;
  // (user, variant) -> units, for the per-variant limit.
  boost::unordered_flat_map<std::pair<std::string_view, std::uint8_t>, std::uint64_t,
                            boost::hash<std::pair<std::string_view, std::uint8_t>>>
      variant_units;
  for (OrderNumber number = 1; number <= book.orders.size(); ++number) {
    const Order& order = book.order(number);
    const Record& record = book.decisions[order.decision];
    // Every order belongs to exactly one decision and back: order numbers are unique.
    FS_ASSERT(record.order == number);
    FS_ASSERT(book.buyers[order.buyer].user() == record.user());
    FS_ASSERT(record.qty == order.qty && record.variant == order.variant);
    FS_ASSERT(order.variant < book.variants.size());
    FS_ASSERT(record.outcome == OrderOutcome::reserved ||
              record.outcome == OrderOutcome::waitlisted);
    VariantCount& count = counts[order.variant];
    switch (order.status) {
      case OrderStatus::reserved:
        held += order.qty;
        count.held += order.qty;
        units[record.user()] += order.qty;
        variant_units[{record.user(), order.variant}] += order.qty;
        break;
      case OrderStatus::confirmed:
        sold += order.qty;
        count.sold += order.qty;
        units[record.user()] += order.qty;
        variant_units[{record.user(), order.variant}] += order.qty;
        break;
      case OrderStatus::waitlisted:
        waitlisted += 1;
        count.waitlisted += 1;
        units[record.user()] += order.qty;
        variant_units[{record.user(), order.variant}] += order.qty;
        break;
      case OrderStatus::cancelled:
      case OrderStatus::expired:
        break;
    }
  }
  FS_ASSERT(held == book.held);
  FS_ASSERT(sold == book.sold);
  check_variants(book, counts);
  // Supporters: the distinct buyers of the confirmed orders.
  std::uint32_t confirmed_orders = 0;
  boost::unordered_flat_map<std::uint32_t, bool> paying;
  for (const Order& order : book.orders) {
    if (order.status != OrderStatus::confirmed) continue;
    confirmed_orders += 1;
    paying[order.buyer] = true;
  }
  FS_ASSERT(confirmed_orders == book.orders_confirmed);
  FS_ASSERT(paying.size() == book.supporters);
  for (std::uint32_t position = 0; position < book.buyers.size(); ++position)
    FS_ASSERT(book.buyers[position].supporter == paying.contains(position));
  FS_ASSERT(waitlisted == book.waitlist_orders);
  // Orders collected in the admission window count toward their buyer's limit until drawn;
  // once the draw is over, those it passed over are sold out and count for nothing.
  std::uint32_t pending = 0;
  boost::unordered_flat_map<std::string_view, std::uint64_t, detail::StringHash, std::equal_to<>>
      waiting;
  for (const Record& record : book.decisions) {
    FS_ASSERT(record.variant < book.variants.size());
    if (record.outcome != OrderOutcome::pending) continue;
    FS_ASSERT(record.order == 0 && book.spec.admission_window_ms > 0);
    pending += 1;
    waiting[record.user()] += record.qty;
    if (!book.admission_closed) variant_units[{record.user(), record.variant}] += record.qty;
  }
  if (book.admission_closed) {
    FS_ASSERT(book.pending_orders == 0 && book.admission.empty());
  } else {
    FS_ASSERT(pending == book.pending_orders);
    FS_ASSERT(book.admission.size() == pending);
    for (const auto& [user, count] : waiting) {
      const auto found = units.find(user);
      FS_ASSERT(count + (found != units.end() ? found->second : 0) <= book.spec.per_user_limit);
    }
  }
  for (const DropBook::Collected& collected : book.admission) {
    FS_ASSERT(collected.decision < book.decisions.size());
    FS_ASSERT(book.decisions[collected.decision].user() == book.buyers[collected.buyer].user());
  }
  if (book.spec.per_variant_limit > 0) {
    for (const auto& [key, count] : variant_units)
      FS_ASSERT(count <= book.spec.per_variant_limit);  // nobody above the variant's limit
  }
  for (const auto& [user, count] : units) {
    FS_ASSERT(count <= book.spec.per_user_limit);  // nobody above their limit
    const std::uint32_t buyer = book.find_buyer(user, detail::BuyerIndex::tag_of(user));
    FS_ASSERT(buyer != detail::BuyerIndex::not_found && book.buyers[buyer].units == count);
  }
  FS_ASSERT(book.buyer_index.size() == book.buyers.size());
  std::uint64_t chained = 0;
  for (std::uint32_t position = 0; position < book.buyers.size(); ++position) {
    const detail::Buyer& buyer = book.buyers[position];
    const std::string_view user = buyer.user();
    FS_ASSERT(book.find_buyer(user, detail::BuyerIndex::tag_of(user)) == position);
    FS_ASSERT(buyer.units == 0 || units.contains(user));
    std::uint32_t length = 0;
    for (std::uint32_t decision = buyer.last_decision; decision != detail::no_decision;
         decision = book.decisions[decision].previous_of_buyer) {
      FS_ASSERT(decision < book.decisions.size());
      FS_ASSERT(book.decisions[decision].user() == user);
      length += 1;
    }
    FS_ASSERT(length == buyer.decisions);
    chained += length;
  }
  FS_ASSERT(chained == book.decisions.size());  // every decision is reachable from its buyer
  for (std::uint32_t position = 0; position < book.decisions.size(); ++position) {
    const Record& record = book.decisions[position];
    const auto found = book.find_decision(record.user(), record.client_order_id());
    FS_ASSERT(found && *found == position);  // one outcome per (user, client_order_id)
  }
  // The holds list every held order, in order of expiry.
  std::uint64_t queued_held = 0;
  TimeMs previous_expiry = 0;
  for (const OrderNumber number : book.holds) {
    const Order& order = book.order(number);
    if (order.status != OrderStatus::reserved) continue;
    FS_ASSERT(order.hold_expires_at_ms >= previous_expiry);
    previous_expiry = order.hold_expires_at_ms;
    queued_held += order.qty;
  }
  FS_ASSERT(queued_held == held);
  // State follows stock: an open drop has units, a sold-out one has none.
  if (book.state == DropState::open) FS_ASSERT(book.stock_left > 0);
  if (book.state == DropState::sold_out) FS_ASSERT(book.stock_left == 0);
  if (book.state != DropState::open && book.state != DropState::sold_out) {
    FS_ASSERT(book.waitlist_orders == 0);
  }
  // The deadline heap holds an entry no later than the drop's next deadline.
  const bool ends = book.closes_at_ms().has_value() && book.state != DropState::closed;
  if (book.state == DropState::countdown || held > 0 || book.pending_orders > 0 || ends) {
    FS_ASSERT(book.scheduled_deadline.has_value());
    if (book.state == DropState::countdown) FS_ASSERT(*book.scheduled_deadline <= book.opens_at_ms);
  }
}

}  // namespace

std::uint64_t Engine::digest() const {
  DigestWriter writer;
  writer.add(sequence_);
  writer.add(drops_.size());
  for (const auto& book : drops_) digest_drop(*book, writer);
  // Streams last and only if any, for the reason a drop's host is added only when set. Their
  // drop lists are the drops' specs, digested above.
  if (!streams_.empty()) {
    writer.add(streams_.size());
    for (const auto& stream : streams_) {
      writer.add(stream->spec.id);
      writer.add(stream->spec.host);
      writer.add(stream->spec.title);
      writer.add(stream->spec.video_url);
      writer.add(static_cast<std::uint64_t>(stream->state));
      writer.add(stream->pinned ? std::uint64_t{*stream->pinned} + 1 : 0);
    }
  }
  return writer.value();
}

void Engine::check_invariants() const {
  std::uint64_t in_streams = 0;
  for (DropIndex index = 0; index < drops_.size(); ++index) {
    const DropBook& book = *drops_[index];
    FS_ASSERT(book.index == index);
    FS_ASSERT(find_drop(book.spec.id) == index);
    FS_ASSERT(detail::validate_spec(book.spec) == nullptr);
    in_streams += book.spec.stream.empty() ? 0 : 1;
    check_drop(book);
  }
  FS_ASSERT(streams_.size() <= limits_.streams_max);
  std::uint64_t listed = 0;
  for (StreamIndex index = 0; index < streams_.size(); ++index) {
    const detail::StreamBook& stream = *streams_[index];
    FS_ASSERT(stream.index == index);
    FS_ASSERT(find_stream(stream.spec.id) == index);
    FS_ASSERT(detail::validate_stream(stream.spec) == nullptr);
    FS_ASSERT(stream.drops.size() <= limits_.drops_per_stream_max);
    // Its drops, in creation order, each naming it and owned by its host.
    for (std::size_t position = 0; position < stream.drops.size(); ++position) {
      const DropIndex drop = stream.drops[position];
      FS_ASSERT(drop < drops_.size());
      FS_ASSERT(position == 0 || drop > stream.drops[position - 1]);
      FS_ASSERT(drops_[drop]->spec.stream == stream.spec.id);
      FS_ASSERT(drops_[drop]->spec.host == stream.spec.host);
      // An ended stream's drops are all closed: end_stream closed them, none can join after.
      if (stream.state == StreamState::ended) FS_ASSERT(drops_[drop]->state == DropState::closed);
    }
    listed += stream.drops.size();
    if (stream.pinned) {
      FS_ASSERT(stream.state != StreamState::ended);
      FS_ASSERT(std::find(stream.drops.begin(), stream.drops.end(), *stream.pinned) !=
                stream.drops.end());
    }
  }
  FS_ASSERT(listed == in_streams);  // every drop in a stream is on its stream's list
}

}  // namespace flashsale::engine
