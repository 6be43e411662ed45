// Arena: append-only storage for the engine's strings (drop ids, titles, users, client order
// ids). Bytes never move and are never freed while the engine lives, so string_views into it
// stay valid in events and in table keys, and recording a decision costs a bump of a pointer
// instead of a heap node. Chunks are fixed-size; a string never spans two chunks.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "flashsale/engine/assert.hpp"

namespace flashsale::engine::detail {

class Arena {
 public:
  static constexpr std::size_t chunk_bytes = std::size_t{256} * 1024;

  // Copies `first` and `second` next to each other and returns where they start.
  // Precondition: first.size() + second.size() <= chunk_bytes. Allocates a chunk when full.
  const char* copy(std::string_view first, std::string_view second = {}) {
    const std::size_t size = first.size() + second.size();
    FS_ASSERT(size <= chunk_bytes);
    if (size > chunk_left_) {
      if (spare_.empty()) {
        chunks_.push_back(std::make_unique_for_overwrite<char[]>(chunk_bytes));
      } else {
        chunks_.push_back(std::move(spare_.back()));
        spare_.pop_back();
      }
      next_ = chunks_.back().get();
      chunk_left_ = chunk_bytes;
    }
    char* start = next_;
    if (!first.empty()) std::memcpy(start, first.data(), first.size());
    if (!second.empty()) std::memcpy(start + first.size(), second.data(), second.size());
    next_ += size;
    chunk_left_ -= size;
    return start;
  }

  std::string_view intern(std::string_view text) { return {copy(text), text.size()}; }

  // Makes sure `bytes` more can be copied without allocating or faulting in a page: chunks
  // are allocated and written now, so a surge that follows runs on memory already mapped.
  void reserve(std::size_t bytes) {
    std::size_t ready = chunk_left_ + spare_.size() * chunk_bytes;
    while (ready < bytes) {
      spare_.push_back(std::make_unique<char[]>(chunk_bytes));  // zeroed: pages touched
      ready += chunk_bytes;
    }
  }

  std::size_t bytes_reserved() const noexcept {
    return (chunks_.size() + spare_.size()) * chunk_bytes;
  }

 private:
  std::vector<std::unique_ptr<char[]>> chunks_;
  std::vector<std::unique_ptr<char[]>> spare_;  // reserved, not yet used
  char* next_ = nullptr;
  std::size_t chunk_left_ = 0;
};

}  // namespace flashsale::engine::detail
