// BuyerIndex: the per-drop map from a user name to its position in the drop's buyer list.
//
// Why not boost::unordered_flat_map, which the engine uses elsewhere: in a surge nearly every
// order comes from a buyer never seen before, so each one costs a probe into a table of up to
// millions of entries. On this machine a dependent cache miss costs ~145 ns while independent
// misses overlap to ~20 ns (docs/benchmarks.md), so the engine looks up the buyers of later
// orders in a batch ahead of time — and that needs a table that can prefetch a key's home slot
// from its hash, which Boost 1.81's containers do not expose.
//
// Layout: open addressing with linear probing over 8-byte slots, each (32-bit hash tag,
// position + 1), 0 meaning empty. The home slot is derived from the tag alone, so growing
// needs no names and no rehashing of strings. At most half the slots are used.
#pragma once

#include <bit>
#include <cstdint>
#include <string_view>
#include <vector>

#include <boost/container_hash/hash.hpp>

#include "flashsale/engine/assert.hpp"

namespace flashsale::engine::detail {

class BuyerIndex {
 public:
  using Tag = std::uint32_t;
  static constexpr std::uint32_t not_found = 0xffffffff;

  explicit BuyerIndex(std::uint32_t expected) {
    resize(std::bit_ceil(std::max(16u, expected) * 2u));
  }

  static Tag tag_of(std::string_view user) noexcept {
    const std::size_t hash = boost::hash_range(user.begin(), user.end());
    return static_cast<Tag>(hash ^ (hash >> 32));
  }

  // A hint: start loading the cache line where `tag`'s probe begins.
  void prefetch(Tag tag) const noexcept { __builtin_prefetch(&slots_[home(tag)]); }

  // The position whose name (given by `name_at(position)`) equals `user`, or not_found.
  template <typename NameAt>
  std::uint32_t find(std::string_view user, Tag tag, const NameAt& name_at) const {
    for (std::size_t slot = home(tag);; slot = (slot + 1) & mask_) {
      const std::uint64_t entry = slots_[slot];
      if (entry == 0) return not_found;
      if (static_cast<Tag>(entry >> 32) == tag) {
        const auto position = static_cast<std::uint32_t>(entry) - 1;
        if (name_at(position) == user) return position;
      }
    }
  }

  // Precondition: no entry for this name yet (find returned not_found).
  void insert(Tag tag, std::uint32_t position) {
    FS_ASSERT(position < not_found - 1);
    if ((size_ + 1) * 2 > slots_.size()) resize(slots_.size() * 2);
    place((std::uint64_t{tag} << 32) | (position + 1));
    size_ += 1;
  }

  std::size_t size() const noexcept { return size_; }

 private:
  // Fibonacci hashing of the tag spreads neighbouring tags over the table.
  std::size_t home(Tag tag) const noexcept {
    return static_cast<std::size_t>((std::uint64_t{tag} * 0x9e3779b97f4a7c15ULL) >> shift_);
  }

  void place(std::uint64_t entry) {
    std::size_t slot = home(static_cast<Tag>(entry >> 32));
    while (slots_[slot] != 0) slot = (slot + 1) & mask_;
    slots_[slot] = entry;
  }

  void resize(std::size_t capacity) {
    FS_ASSERT(std::has_single_bit(capacity) && capacity <= (std::size_t{1} << 32));
    std::vector<std::uint64_t> old(capacity, 0);
    old.swap(slots_);
    mask_ = capacity - 1;
    shift_ = 64 - std::countr_zero(capacity);
    for (const std::uint64_t entry : old) {
      if (entry != 0) place(entry);
    }
  }

  std::vector<std::uint64_t> slots_;
  std::size_t mask_ = 0;
  int shift_ = 64;
  std::size_t size_ = 0;
};

}  // namespace flashsale::engine::detail
