// What the journal stores in Redis, byte for byte: sealed batches (one stream entry each) and
// the snapshot record. Both are versioned and end with a CRC-32 of everything before it, so a
// damaged or truncated value is refused instead of replayed.
//
//   batch    = version(1) number first_sequence event_count events… crc32
//   snapshot = version(1) covered_sequence covered_batch digest engine_snapshot… crc32
//
// (numbers as varints, the digest and the CRC as fixed 64-bit little-endian words). Pure
// functions: any thread, no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace flashsale::journal {

// 2: admission windows in events; 3: charity pledges in DropCreated
inline constexpr std::uint8_t record_version = 3;

struct BatchHeader {
  std::uint64_t number = 0;          // 1, 2, 3, … : also the stream entry id "<number>-0"
  std::uint64_t first_sequence = 0;  // of its first event; the rest follow without gaps
  std::uint32_t event_count = 0;
};

std::string seal_batch(const BatchHeader& header, std::string_view encoded_events);
// Checks version, CRC and header; on success fills `header` and `events` (a view into
// `stored`) and returns an empty string, else what is wrong.
std::string open_batch(std::string_view stored, BatchHeader& header, std::string_view& events);

struct SnapshotHeader {
  std::uint64_t covered_sequence = 0;  // the engine's last event in the snapshot
  std::uint64_t covered_batch = 0;     // the last batch number written when it was taken
  std::uint64_t digest = 0;            // Engine::digest() of the snapshotted state
};

std::string seal_snapshot(const SnapshotHeader& header, std::string_view engine_snapshot);
std::string open_snapshot(std::string_view stored, SnapshotHeader& header,
                          std::string_view& engine_snapshot);

}  // namespace flashsale::journal
