// DropBook: everything the engine knows about one drop. Plain data with small helpers; the
// rules that change it live in engine.cpp, so there is one place that decides and one place
// (the apply functions) that mutates.
//
// Tables and why they are shaped so:
// - `decisions` holds one Record per recorded outcome, in the order they were made (the
//   canonical order for digests and snapshots). `decision_index` is a flat hash set of
//   positions into it, keyed by (user, client_order_id) through a stateful hasher: 4 bytes a
//   slot, so a surge of a million sold-out answers costs ~30 bytes each with the key bytes.
// - `orders` holds accepted orders (reserved or waitlisted), numbered from 1 by position.
// - `units_by_user` counts held + confirmed + waitlisted units per buyer; only buyers who got
//   an order appear, so it stays about as small as the stock while rejections pour in.
// - `holds` and `waitlist` are FIFO queues of order numbers with lazy deletion: an order that
//   left them (paid, cancelled) is skipped when it reaches the front. Holds of one drop expire
//   in the order they were granted because hold_ms is fixed per drop and time never goes
//   backwards, so expiry is O(1) per hold.
#pragma once

#include <boost/container_hash/hash.hpp>
#include <boost/unordered/unordered_flat_map.hpp>
#include <boost/unordered/unordered_flat_set.hpp>
#include <cstdint>
#include <deque>
#include <optional>
#include <string_view>
#include <vector>

#include "flashsale/engine/assert.hpp"
#include "flashsale/engine/engine.hpp"

namespace flashsale::engine::detail {

// One recorded outcome. The key bytes (user then client_order_id) live in the arena.
struct Record {
  const char* key = nullptr;
  std::uint8_t user_length = 0;
  std::uint8_t client_order_id_length = 0;
  OrderOutcome outcome = OrderOutcome::invalid;
  std::uint32_t qty = 0;
  OrderNumber order = 0;  // reserved or waitlisted; 0 otherwise

  std::string_view user() const noexcept { return {key, user_length}; }
  std::string_view client_order_id() const noexcept {
    return {key + user_length, client_order_id_length};
  }
};
static_assert(sizeof(Record) == 24);

struct Order {
  std::uint32_t decision = 0;  // position in DropBook::decisions
  std::uint32_t qty = 0;
  TimeMs hold_expires_at_ms = 0;        // 0 while waitlisted
  std::uint32_t waitlist_position = 0;  // at entry; 0 if reserved at once
  OrderStatus status = OrderStatus::waitlisted;
};
static_assert(sizeof(Order) == 24);

struct DecisionKey {
  std::string_view user;
  std::string_view client_order_id;
};

inline std::size_t hash_decision_key(std::string_view user, std::string_view client_order_id) {
  std::size_t seed = user.size();
  boost::hash_range(seed, user.begin(), user.end());
  boost::hash_range(seed, client_order_id.begin(), client_order_id.end());
  return seed;
}

// Hash and equality over positions in `decisions`, transparent to DecisionKey so a lookup
// needs no copy of the key.
struct DecisionHash {
  using is_transparent = void;
  const std::vector<Record>* decisions = nullptr;

  std::size_t operator()(std::uint32_t position) const {
    const Record& record = (*decisions)[position];
    return hash_decision_key(record.user(), record.client_order_id());
  }
  std::size_t operator()(const DecisionKey& key) const {
    return hash_decision_key(key.user, key.client_order_id);
  }
};

struct DecisionEqual {
  using is_transparent = void;
  const std::vector<Record>* decisions = nullptr;

  bool operator()(std::uint32_t left, std::uint32_t right) const { return left == right; }
  bool operator()(const DecisionKey& key, std::uint32_t position) const {
    const Record& record = (*decisions)[position];
    return record.user() == key.user && record.client_order_id() == key.client_order_id;
  }
  bool operator()(std::uint32_t position, const DecisionKey& key) const {
    return (*this)(key, position);
  }
};

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const {
    return boost::hash_range(text.begin(), text.end());
  }
};

class DropBook {
 public:
  DropBook(DropIndex drop_index, const DropSpec& drop_spec, std::uint32_t decisions_reserve)
      : index(drop_index),
        spec(drop_spec),
        stock_total(drop_spec.stock),
        stock_left(drop_spec.stock),
        decision_index(decisions_reserve, DecisionHash{&decisions}, DecisionEqual{&decisions}) {
    decisions.reserve(decisions_reserve);
  }
  DropBook(const DropBook&) = delete;
  DropBook& operator=(const DropBook&) = delete;

  std::optional<std::uint32_t> find_decision(std::string_view user,
                                             std::string_view client_order_id) const {
    const auto found = decision_index.find(DecisionKey{user, client_order_id});
    if (found == decision_index.end()) return std::nullopt;
    return *found;
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

  std::uint32_t units_of(std::string_view user) const {
    const auto found = units_by_user.find(user);
    return found == units_by_user.end() ? 0 : found->second;
  }

  // The cheap invariant, checked after every change: no unit appears or vanishes.
  void check_balance() const {
    FS_ASSERT(stock_left <= stock_total);
    FS_ASSERT(held <= stock_total);
    FS_ASSERT(sold <= stock_total);
    FS_ASSERT(std::uint64_t{stock_left} + held + sold == stock_total);
  }

  // Drops queue fronts that no longer wait (paid, cancelled, expired, promoted).
  void prune_queues() {
    while (!holds.empty() && order(holds.front()).status != OrderStatus::reserved)
      holds.pop_front();
    while (!waitlist.empty() && order(waitlist.front()).status != OrderStatus::waitlisted)
      waitlist.pop_front();
  }

  const DropIndex index;
  const DropSpec spec;  // strings in the arena
  DropState state = DropState::scheduled;
  TimeMs opens_at_ms = 0;  // meaningful from countdown on
  std::uint32_t stock_total = 0;
  std::uint32_t stock_left = 0;
  std::uint32_t held = 0;
  std::uint32_t sold = 0;
  std::uint32_t waitlist_orders = 0;

  std::vector<Record> decisions;
  boost::unordered_flat_set<std::uint32_t, DecisionHash, DecisionEqual> decision_index;
  std::vector<Order> orders;
  boost::unordered_flat_map<std::string_view, std::uint32_t, StringHash, std::equal_to<>>
      units_by_user;
  std::deque<OrderNumber> holds;
  std::deque<OrderNumber> waitlist;
  // The deadline this drop has in the engine's deadline heap, or none.
  std::optional<TimeMs> scheduled_deadline;
};

}  // namespace flashsale::engine::detail
