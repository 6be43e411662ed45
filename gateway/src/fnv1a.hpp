// FNV-1a, 64 bits, over a name's bytes: the same in every process and build, for what must
// agree across a cluster (a drop's shard, a buyer in an edge gate).
#pragma once

#include <cstdint>
#include <string_view>

namespace flashsale::gateway {

inline std::uint64_t fnv1a64(std::string_view bytes) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (const char byte : bytes) {
    hash ^= static_cast<unsigned char>(byte);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

}  // namespace flashsale::gateway
