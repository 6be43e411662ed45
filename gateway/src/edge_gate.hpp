// EdgeGate: what the servers that hold the viewers' connections need to answer an order
// `sold_out` themselves, without a round trip to the engine or Redis (docs/decisions.md,
// "Answers at the edge").
//
// The engine thread publishes one per drop whenever the drop cannot give a new buyer anything —
// open, no units left in any variant, no waitlist place in any, nothing collected in an
// admission window — and again when that ends (`sold_out` false) or when a buyer gets an order
// in it meanwhile. Each hub keeps the latest for `valid_for` from its arrival; the engine renews
// a standing gate every `renew_every`, so a gate nobody renews (its engine died, a message was
// lost) lapses by itself.
//
// Such an answer is not recorded: a retry is a fresh attempt. So that it never contradicts a
// recorded one, the gate lists every buyer who has an order in the drop (reserved, waitlisted,
// paid, cancelled or expired: everyone whose client_order_id may hold an outcome other than
// sold_out), and their orders still go to the engine, which repeats the original outcome.
// Buyers are 64-bit hashes of the user name: a collision only sends an order to the engine.
//
// Immutable once published: every hub shares the one copy.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fnv1a.hpp"

namespace flashsale::gateway {

struct EdgeGate {
  static constexpr std::chrono::milliseconds renew_every{1000};
  static constexpr std::chrono::milliseconds valid_for{2500};

  std::string drop;
  bool sold_out = false;  // false: every order goes to the engine
  // Larger quantities go to the engine (limit_exceeded): the drop's limit per buyer, or its
  // limit per variant where that is lower.
  std::uint32_t per_user_limit = 0;
  bool waitlist_full = false;         // the drop has a waitlist, at its cap in every variant
  std::vector<std::uint64_t> buyers;  // sorted user_hash() of every buyer with an order
  // The ids of a drop's named variants; none for a drop without. An order naming another (or
  // none, where there are several) goes to the engine, whose answer is unknown_variant.
  std::vector<std::string> variants{};

  // Whether an order of `qty` units of `variant` by the user hashed `user` is answered
  // sold_out here.
  bool answers(std::uint64_t user, std::uint32_t qty, std::string_view variant) const {
    return sold_out && qty >= 1 && qty <= per_user_limit && names_a_variant(variant) &&
           !std::binary_search(buyers.begin(), buyers.end(), user);
  }
  bool names_a_variant(std::string_view variant) const {
    if (variant.empty()) return variants.size() <= 1;
    return std::find(variants.begin(), variants.end(), variant) != variants.end();
  }

  friend bool operator==(const EdgeGate&, const EdgeGate&) = default;
};

// A buyer as gates list them: the same in every process of a cluster.
inline std::uint64_t user_hash(std::string_view user) {
  return fnv1a64(user);
}

}  // namespace flashsale::gateway
