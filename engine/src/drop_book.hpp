// DropBook: everything the engine knows about one drop. Plain data with small helpers; the
// rules that change it live in engine.cpp, so there is one place that decides and one place
// (the apply functions) that mutates.
//
// Tables and why they are shaped so. A surge is hundreds of thousands of distinct buyers, each
// costing one random memory access at best, so an order makes exactly one hash lookup:
// - `buyers` lists every buyer with their units (held + confirmed + waitlisted) and the newest
//   of their recorded decisions; older ones hang off it in a chain (`Record::previous_of_buyer`),
//   so a retry finds its (user, client_order_id) by walking a handful of records. The chain is
//   bounded by EngineLimits::decisions_per_buyer_max. `buyer_index` finds a buyer by name and
//   can prefetch ahead of a batch (buyer_index.hpp says why it is our own table).
// - `decisions` holds one Record per recorded outcome, in the order they were made (the
//   canonical order for digests and snapshots); key bytes live in the arena.
// - `orders` holds accepted orders (reserved or waitlisted), numbered from 1 by position.
// - `holds` and each variant's `waitlist` are FIFO queues of order numbers with lazy deletion:
//   an order that left them (paid, cancelled) is skipped when it reaches the front. Holds of one
//   drop expire in the order they were granted because hold_ms is fixed per drop and time never
//   goes backwards, so expiry is O(1) per hold; one queue serves all variants.
// - `variants` keeps each variant's stock and waitlist; the drop's counters are their sums,
//   kept alongside because the drop's state (open, sold out) and most readers want the sums.
// - `admission` lists the orders collected in the admission window (their records say
//   `pending`), in arrival order until the draw shuffles it; freed when the draw is over.
//   Their units are not in the buyer's `units` (the draw would have to visit every buyer to
//   take them out again): the limit check adds them from the buyer's chain while the window
//   collects. Once the draw is over (`admission_closed`) a record still saying `pending` is
//   read as sold_out (`outcome_of`).
#pragma once

#include <boost/container_hash/hash.hpp>
#include <boost/unordered/unordered_flat_map.hpp>
#include <cstdint>
#include <deque>
#include <optional>
#include <string_view>
#include <vector>

#include "buyer_index.hpp"
#include "flashsale/engine/assert.hpp"
#include "flashsale/engine/engine.hpp"

namespace flashsale::engine::detail {

inline constexpr std::uint32_t no_decision = 0xffffffff;

// Why `spec` cannot be a drop, or nullptr when it can.
const char* validate_spec(const DropSpec& spec);

// One recorded outcome. The key bytes (user then client_order_id) live in the arena.
struct Record {
  const char* key = nullptr;
  std::uint8_t user_length = 0;
  std::uint8_t client_order_id_length = 0;
  OrderOutcome outcome = OrderOutcome::invalid;
  std::uint8_t variant = 0;
  std::uint32_t qty = 0;
  OrderNumber order = 0;                          // reserved or waitlisted; 0 otherwise
  std::uint32_t previous_of_buyer = no_decision;  // the buyer's previous decision

  std::string_view user() const noexcept { return {key, user_length}; }
  std::string_view client_order_id() const noexcept {
    return {key + user_length, client_order_id_length};
  }
};
static_assert(sizeof(Record) == 24, "a record stays within 24 bytes");

struct Order {
  std::uint32_t decision = 0;  // position in DropBook::decisions
  std::uint32_t buyer = 0;     // position in DropBook::buyers
  std::uint32_t qty = 0;
  TimeMs hold_expires_at_ms = 0;        // 0 while waitlisted
  std::uint32_t waitlist_position = 0;  // at entry; 0 if reserved at once
  OrderStatus status = OrderStatus::waitlisted;
  std::uint8_t variant = 0;
};
static_assert(sizeof(Order) == 32, "an order stays within 32 bytes");

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const {
    return boost::hash_range(text.begin(), text.end());
  }
};

struct Buyer {
  const char* name = nullptr;  // in the arena: the user part of the buyer's first record
  std::uint8_t name_length = 0;
  bool supporter = false;       // has a confirmed order (a charity drop counts them)
  std::uint32_t units = 0;      // held + confirmed + waitlisted
  std::uint32_t decisions = 0;  // recorded outcomes, the length of the chain
  std::uint32_t last_decision = no_decision;

  std::string_view user() const noexcept { return {name, name_length}; }
};
static_assert(sizeof(Buyer) == 24, "a buyer stays within 24 bytes");

// How many variants a spec sells, and variant `position` of them: its own, or the one unnamed
// variant of a drop created without (the drop's price and stock). No copies: strings stay in
// the arena.
inline std::size_t variant_count(const DropSpec& spec) noexcept {
  return spec.variants.empty() ? 1 : spec.variants.size();
}
inline VariantSpec offered(const DropSpec& spec, std::size_t position) {
  if (!spec.variants.empty()) return spec.variants[position];
  return {.id = {},
          .label = {},
          .price_cents = spec.price_cents,
          .list_price_cents = spec.list_price_cents,
          .stock = spec.stock};
}

// One variant's stock and queue (what it sells is the spec's: `offered`). Its units balance on
// their own: stock_left + held + sold == stock_total.
struct Variant {
  std::uint32_t stock_total = 0;
  std::uint32_t stock_left = 0;
  std::uint32_t held = 0;
  std::uint32_t sold = 0;
  std::uint32_t waitlist_orders = 0;
  std::deque<OrderNumber> waitlist;
};

inline constexpr int no_variant = -1;

// A variant id of up to 7 bytes as one word (its bytes, its length in the top byte), so the
// order path finds a variant with integer compares; 0 for longer ids.
inline std::uint64_t short_key(std::string_view id) noexcept {
  if (id.size() > 7) return 0;
  // Byte by byte: a memcpy of a run-time length is a library call.
  std::uint64_t key = std::uint64_t{id.size()} << 56;
  for (std::size_t index = 0; index < id.size(); ++index)
    key |= std::uint64_t{static_cast<unsigned char>(id[index])} << (8 * index);
  return key;
}

class DropBook {
 public:
  DropBook(DropIndex drop_index, const DropSpec& drop_spec, std::uint32_t decisions_reserve)
      : index(drop_index), spec(drop_spec), buyer_index(decisions_reserve) {
    for (std::size_t position = 0; position < variant_count(drop_spec); ++position) {
      const VariantSpec selling = offered(drop_spec, position);
      Variant& added = variants.emplace_back();
      variant_keys.push_back(short_key(selling.id));
      added.stock_total = selling.stock;
      added.stock_left = selling.stock;
      stock_total += selling.stock;
    }
    stock_left = stock_total;
    // Sized and touched now, when the host creates the drop, so the surge pays for neither
    // reallocation nor first-touch page faults.
    decisions.resize(decisions_reserve);
    decisions.clear();
    buyers.resize(decisions_reserve);
    buyers.clear();
    if (drop_spec.admission_window_ms > 0) {
      admission.resize(decisions_reserve);
      admission.clear();
    }
  }
  DropBook(const DropBook&) = delete;
  DropBook& operator=(const DropBook&) = delete;

  // A record's outcome as buyers see it: a pending one the draw passed over is sold out.
  OrderOutcome outcome_of(const Record& record) const noexcept {
    return record.outcome == OrderOutcome::pending && admission_closed ? OrderOutcome::sold_out
                                                                       : record.outcome;
  }
  // Units the buyer has waiting for the draw.
  std::uint64_t pending_units_of(const Buyer& buyer) const {
    std::uint64_t units = 0;
    if (admission_closed) return 0;
    for (std::uint32_t position = buyer.last_decision; position != no_decision;
         position = decisions[position].previous_of_buyer) {
      if (decisions[position].outcome == OrderOutcome::pending) units += decisions[position].qty;
    }
    return units;
  }

  // Units the buyer has in one variant — held, confirmed, waitlisted and, while the admission
  // window collects, pending — walking the buyer's chain (at most decisions_per_buyer_max).
  std::uint64_t variant_units_of(const Buyer& buyer, std::uint8_t variant) const {
    std::uint64_t units = 0;
    for (std::uint32_t position = buyer.last_decision; position != no_decision;
         position = decisions[position].previous_of_buyer) {
      const Record& record = decisions[position];
      if (record.variant != variant) continue;
      if (record.outcome == OrderOutcome::pending && !admission_closed) units += record.qty;
      if (record.order == 0) continue;
      const OrderStatus status = order(record.order).status;
      if (status == OrderStatus::reserved || status == OrderStatus::confirmed ||
          status == OrderStatus::waitlisted)
        units += record.qty;
    }
    return units;
  }

  // The variant an order names, or no_variant. A drop with one variant takes orders naming
  // none (protocol v1); the ids are few and short, so a scan beats hashing.
  int find_variant(std::string_view id) const noexcept {
    if (id.empty()) return variants.size() == 1 ? 0 : no_variant;
    if (const std::uint64_t key = short_key(id); key != 0) {
      for (std::size_t position = 0; position < variant_keys.size(); ++position) {
        if (variant_keys[position] == key) return static_cast<int>(position);
      }
      return no_variant;
    }
    for (std::size_t position = 0; position < spec.variants.size(); ++position) {
      if (spec.variants[position].id == id) return static_cast<int>(position);
    }
    return no_variant;
  }

  // The position of (buyer, client_order_id)'s decision, walking the buyer's chain.
  std::optional<std::uint32_t> find_decision(const Buyer& buyer,
                                             std::string_view client_order_id) const {
    for (std::uint32_t position = buyer.last_decision; position != no_decision;
         position = decisions[position].previous_of_buyer) {
      if (decisions[position].client_order_id() == client_order_id) return position;
    }
    return std::nullopt;
  }
  std::optional<std::uint32_t> find_decision(std::string_view user,
                                             std::string_view client_order_id) const {
    const std::uint32_t buyer = find_buyer(user, BuyerIndex::tag_of(user));
    if (buyer == BuyerIndex::not_found) return std::nullopt;
    return find_decision(buyers[buyer], client_order_id);
  }

  // The buyer's position in `buyers`, or BuyerIndex::not_found.
  std::uint32_t find_buyer(std::string_view user, BuyerIndex::Tag tag) const {
    return buyer_index.find(user, tag,
                            [this](std::uint32_t position) { return buyers[position].user(); });
  }

  Order& order(OrderNumber number) {
    FS_ASSERT(number >= 1 && number <= orders.size());
    return orders[number - 1];
  }
  const Order& order(OrderNumber number) const {
    FS_ASSERT(number >= 1 && number <= orders.size());
    return orders[number - 1];
  }
  std::string_view user_of(const Order& order) const { return decisions[order.decision].user(); }

  Buyer& buyer_of(const Order& order) {
    FS_ASSERT(order.buyer < buyers.size());
    return buyers[order.buyer];
  }

  // The cheap invariant, checked after every change: no unit appears or vanishes, in the drop
  // and in the variant the change touched.
  void check_balance(const Variant& variant) const {
    FS_ASSERT(std::uint64_t{variant.stock_left} + variant.held + variant.sold ==
              variant.stock_total);
    FS_ASSERT(stock_left <= stock_total);
    FS_ASSERT(held <= stock_total);
    FS_ASSERT(sold <= stock_total);
    FS_ASSERT(std::uint64_t{stock_left} + held + sold == stock_total);
  }

  // Units move between a variant's stock, holds and sales; the drop's sums move with them.
  void hold_units(Variant& variant, std::uint32_t qty) {
    FS_ASSERT(variant.stock_left >= qty);
    variant.stock_left -= qty;
    variant.held += qty;
    stock_left -= qty;
    held += qty;
  }
  void unhold_units(Variant& variant, std::uint32_t qty) {
    FS_ASSERT(variant.held >= qty);
    variant.held -= qty;
    variant.stock_left += qty;
    held -= qty;
    stock_left += qty;
  }
  void sell_units(Variant& variant, std::uint32_t qty) {
    FS_ASSERT(variant.held >= qty);
    variant.held -= qty;
    variant.sold += qty;
    held -= qty;
    sold += qty;
  }

  // Drops queue fronts that no longer wait (paid, cancelled, expired, promoted).
  void prune_holds() {
    while (!holds.empty() && order(holds.front()).status != OrderStatus::reserved)
      holds.pop_front();
  }
  void prune_waitlist(Variant& variant) {
    while (!variant.waitlist.empty() &&
           order(variant.waitlist.front()).status != OrderStatus::waitlisted)
      variant.waitlist.pop_front();
  }

  const DropIndex index;
  const DropSpec spec;  // strings in the arena
  std::vector<Variant> variants;
  std::vector<std::uint64_t> variant_keys;  // short_key of each variant's id
  DropState state = DropState::scheduled;
  TimeMs opens_at_ms = 0;  // meaningful from countdown on
  std::uint32_t stock_total = 0;
  std::uint32_t stock_left = 0;
  std::uint32_t held = 0;
  std::uint32_t sold = 0;
  std::uint32_t waitlist_orders = 0;  // all variants'
  std::uint32_t orders_confirmed = 0;
  std::uint32_t supporters = 0;      // buyers with `supporter` set
  std::uint64_t admission_seed = 0;  // from the countdown
  std::uint32_t pending_orders = 0;  // records still `pending`, until the draw is over
  bool admission_closed = false;     // the draw is over

  // Orders arriving before this instant are collected for the draw (with a window at all).
  TimeMs admission_closes_at_ms() const noexcept { return opens_at_ms + spec.admission_window_ms; }
  // With a duration, the sale ends by itself at this instant (from countdown on).
  std::optional<TimeMs> closes_at_ms() const noexcept {
    if (spec.duration_ms == 0 || state == DropState::scheduled) return std::nullopt;
    return opens_at_ms + spec.duration_ms;
  }
  bool collecting(TimeMs now_ms) const noexcept {
    return spec.admission_window_ms > 0 && !admission_closed &&
           (state == DropState::open || state == DropState::sold_out) &&
           now_ms < admission_closes_at_ms();
  }

  std::vector<Record> decisions;
  std::vector<Buyer> buyers;
  BuyerIndex buyer_index;
  std::vector<Order> orders;
  std::deque<OrderNumber> holds;
  struct Collected {
    std::uint32_t decision = 0;
    std::uint32_t buyer = 0;
  };
  std::vector<Collected> admission;
  // (tag, position or not_found) of the buyer of the OrderDecided being emitted, set by
  // place_order just before emitting and consumed by applying it.
  std::optional<std::pair<BuyerIndex::Tag, std::uint32_t>> decided_buyer;
  // The same for a drawn OrderDecided: the collected order it decides.
  std::optional<Collected> drawn;
  // The deadline this drop has in the engine's deadline heap, or none.
  std::optional<TimeMs> scheduled_deadline;
};

}  // namespace flashsale::engine::detail
