// What the journal stores in Redis, byte for byte: sealed batches (one stream entry each) and
// the snapshot record. Both are versioned and end with a CRC-32 of everything before it, so a
// damaged or truncated value is refused instead of replayed.
//
//   batch    = version(1) number first_sequence event_count previous(32) flags(1)
//              [checkpoint(32)] events… crc32
//   snapshot = version(1) covered_sequence covered_batch digest chain_batch chain_head(32)
//              engine_snapshot… crc32
//
// (numbers as varints, the digest and the CRC as fixed 64-bit little-endian words, hashes as
// 32 raw bytes). Pure functions: any thread, no I/O.
//
// The hash chain (docs/audit.md): a batch's hash is the SHA-256 of its stored bytes, and each
// batch carries the hash of the batch before it (zeros for batch 1), so changing, removing or
// reordering any batch breaks every link after it. A snapshot records the chain's head when
// it was written, so the stream can be trimmed and still be checked from the snapshot on; the
// first batch written after a snapshot carries the snapshot record's own hash (`checkpoint`),
// so the snapshot is bound to the chain too.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flashsale/engine/event_codec.hpp"

namespace flashsale::journal {

// 2: admission windows in events; 3: charity pledges in DropCreated, the hash chain;
// 4: variants, list prices and durations in DropCreated, the variant in OrderDecided and Restocked;
// 5: streams (their events, a drop's host and stream). A batch's events are in the event format
// of its version. Version 4 is still read (an engine snapshot of that time too): it has the same
// layout, and its events are decoded as version 4's.
inline constexpr std::uint8_t record_version = 5;
inline constexpr std::uint8_t record_version_min = 4;
static_assert(record_version == engine::event_format_version &&
              record_version_min == engine::event_format_version_min);

using Hash = std::array<std::uint8_t, 32>;

// A batch and its place in the hash chain.
struct ChainHead {
  std::uint64_t batch = 0;
  std::uint64_t last_sequence = 0;  // its last event
  Hash hash{};
};
Hash sha256(std::string_view bytes);
std::string to_hex(const Hash& hash);
std::optional<Hash> from_hex(std::string_view text);

struct BatchHeader {
  std::uint64_t number = 0;               // 1, 2, 3, … : also the stream entry id "<number>-0"
  std::uint64_t first_sequence = 0;       // of its first event; the rest follow without gaps
  std::uint32_t event_count = 0;          // 0 for a batch that only carries a checkpoint
  Hash previous{};                        // the hash of batch number - 1
  std::optional<Hash> checkpoint;         // the hash of the snapshot record written just before
  std::uint8_t version = record_version;  // read from the batch; sealing writes record_version
};

std::string seal_batch(const BatchHeader& header, std::string_view encoded_events);
// Checks version, CRC and header; on success fills `header` and `events` (a view into
// `stored`) and returns an empty string, else what is wrong.
std::string open_batch(std::string_view stored, BatchHeader& header, std::string_view& events);

struct SnapshotHeader {
  std::uint64_t covered_sequence = 0;  // the engine's last event in the snapshot
  std::uint64_t covered_batch = 0;     // the last batch number written when it was taken
  std::uint64_t digest = 0;            // Engine::digest() of the snapshotted state
  std::uint64_t chain_batch = 0;       // the chain's head when the snapshot was written:
  Hash chain_head{};                   // the last batch written, and its hash
};

std::string seal_snapshot(const SnapshotHeader& header, std::string_view engine_snapshot);
std::string open_snapshot(std::string_view stored, SnapshotHeader& header,
                          std::string_view& engine_snapshot);

// Follows the hash chain through a journal read in order (recovery and flashsale-audit).
class ChainCheck {
 public:
  // From the journal's first batch; or from a snapshot, whose head vouches for the batch it
  // names (those before it may have been trimmed).
  ChainCheck() = default;
  explicit ChainCheck(const SnapshotHeader& snapshot);

  // The next batch, opened: an empty string, or which link is broken.
  std::string next(const BatchHeader& header, std::string_view stored);
  // After the last batch: an empty string, or what is missing.
  std::string finish() const;

  std::uint64_t batch() const noexcept { return batch_; }  // the last one checked
  const Hash& head() const noexcept { return head_; }      // its hash
  // Whether some batch carried this checkpoint.
  bool checkpointed(const Hash& snapshot_record) const noexcept;
  // The batches checked, oldest first: number, last event, hash (the last `recent_kept`).
  static constexpr std::size_t recent_kept = 4'096;
  const std::deque<ChainHead>& recent() const noexcept { return recent_; }

 private:
  std::uint64_t batch_ = 0;
  Hash head_{};
  bool linked_ = true;  // head_ is the hash of batch_ (false before the first after a trim)
  std::optional<SnapshotHeader> snapshot_;
  bool reached_snapshot_head_ = false;
  std::vector<Hash> checkpoints_;
  std::deque<ChainHead> recent_;
};

}  // namespace flashsale::journal
