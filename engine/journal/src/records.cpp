// See records.hpp for the formats.
#include "flashsale/journal/records.hpp"

#include <openssl/sha.h>

#include <boost/crc.hpp>

#include "flashsale/engine/bytes.hpp"

#include <algorithm>

namespace flashsale::journal {

namespace {

using engine::ByteReader;
using engine::ByteWriter;

std::uint64_t crc_of(std::string_view bytes) {
  boost::crc_32_type crc;
  crc.process_bytes(bytes.data(), bytes.size());
  return crc.checksum();
}

void seal(std::string& stored) {
  const std::uint64_t crc = crc_of(stored);
  ByteWriter(stored).fixed64(crc);
}

// Splits off and checks the trailing CRC; returns the covered bytes or an error.
std::string unseal(std::string_view stored, std::string_view& body) {
  if (stored.size() < 9) return "too short";
  body = stored.substr(0, stored.size() - 8);
  ByteReader trailer(stored.substr(stored.size() - 8));
  if (trailer.fixed64() != crc_of(body)) return "checksum mismatch";
  const auto version = static_cast<std::uint8_t>(body[0]);
  if (version < record_version_min || version > record_version)
    return "unknown record version " + std::to_string(version) +
           " (this flashsale reads versions " + std::to_string(record_version_min) + " to " +
           std::to_string(record_version) + "): written by another version";
  return {};
}

constexpr std::uint8_t has_checkpoint = 1;

void write_hash(ByteWriter& out, const Hash& hash) {
  out.raw({reinterpret_cast<const char*>(hash.data()), hash.size()});
}

bool read_hash(ByteReader& in, Hash& hash) {
  const std::string_view bytes = in.take(hash.size());
  if (!in.ok()) return false;
  std::copy(bytes.begin(), bytes.end(), hash.begin());
  return true;
}

}  // namespace

Hash sha256(std::string_view bytes) {
  Hash hash;
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), hash.data());
  return hash;
}

std::string to_hex(const Hash& hash) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string text;
  for (const std::uint8_t byte : hash) {
    text += digits[byte >> 4];
    text += digits[byte & 15];
  }
  return text;
}

std::optional<Hash> from_hex(std::string_view text) {
  Hash hash;
  if (text.size() != hash.size() * 2) return std::nullopt;
  const auto nibble = [](char digit) -> int {
    if (digit >= '0' && digit <= '9') return digit - '0';
    if (digit >= 'a' && digit <= 'f') return digit - 'a' + 10;
    if (digit >= 'A' && digit <= 'F') return digit - 'A' + 10;
    return -1;
  };
  for (std::size_t index = 0; index < hash.size(); ++index) {
    const int high = nibble(text[2 * index]);
    const int low = nibble(text[2 * index + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    hash[index] = static_cast<std::uint8_t>(high * 16 + low);
  }
  return hash;
}

std::string seal_batch(const BatchHeader& header, std::string_view encoded_events) {
  std::string stored;
  stored.reserve(encoded_events.size() + 40);
  ByteWriter out(stored);
  out.byte(record_version);
  out.varint(header.number);
  out.varint(header.first_sequence);
  out.varint(header.event_count);
  write_hash(out, header.previous);
  out.byte(header.checkpoint ? has_checkpoint : 0);
  if (header.checkpoint) write_hash(out, *header.checkpoint);
  out.raw(encoded_events);
  seal(stored);
  return stored;
}

std::string open_batch(std::string_view stored, BatchHeader& header, std::string_view& events) {
  std::string_view body;
  if (std::string problem = unseal(stored, body); !problem.empty()) return problem;
  header.version = static_cast<std::uint8_t>(body[0]);
  ByteReader in(body.substr(1));
  header.number = in.varint();
  header.first_sequence = in.varint();
  header.event_count = static_cast<std::uint32_t>(in.bounded(0xffffffff));
  if (!read_hash(in, header.previous)) return "bad batch header";
  const std::uint8_t flags = in.byte();
  if (!in.ok() || (flags & ~has_checkpoint) != 0) return "bad batch header";
  header.checkpoint.reset();
  if ((flags & has_checkpoint) != 0 && !read_hash(in, header.checkpoint.emplace()))
    return "bad batch header";
  if (!in.ok() || header.number == 0 || header.first_sequence == 0) return "bad batch header";
  events = in.rest();
  return {};
}

std::string seal_snapshot(const SnapshotHeader& header, std::string_view engine_snapshot) {
  std::string stored;
  stored.reserve(engine_snapshot.size() + 40);
  ByteWriter out(stored);
  out.byte(record_version);
  out.varint(header.covered_sequence);
  out.varint(header.covered_batch);
  out.fixed64(header.digest);
  out.varint(header.chain_batch);
  write_hash(out, header.chain_head);
  out.raw(engine_snapshot);
  seal(stored);
  return stored;
}

std::string open_snapshot(std::string_view stored, SnapshotHeader& header,
                          std::string_view& engine_snapshot) {
  std::string_view body;
  if (std::string problem = unseal(stored, body); !problem.empty()) return problem;
  ByteReader in(body.substr(1));
  header.covered_sequence = in.varint();
  header.covered_batch = in.varint();
  header.digest = in.fixed64();
  header.chain_batch = in.varint();
  if (!in.ok() || !read_hash(in, header.chain_head)) return "bad snapshot header";
  engine_snapshot = in.rest();
  return {};
}

ChainCheck::ChainCheck(const SnapshotHeader& snapshot) : linked_(false), snapshot_(snapshot) {}

std::string ChainCheck::next(const BatchHeader& header, std::string_view stored) {
  const std::string batch = "batch " + std::to_string(header.number);
  if (linked_) {
    if (header.number != batch_ + 1)
      return batch + " follows batch " + std::to_string(batch_) + ": batches are missing";
    if (header.previous != head_)
      return batch + " does not link to batch " + std::to_string(batch_) +
             " (it names another previous hash)";
  } else if (batch_ != 0 && header.number != batch_ + 1) {
    return batch + " follows batch " + std::to_string(batch_) + ": batches are missing";
  } else if (batch_ == 0 && header.number > snapshot_->chain_batch + 1) {
    return "the journal starts at " + batch + ", after the snapshot's head (batch " +
           std::to_string(snapshot_->chain_batch) + "): batches are missing";
  }
  if (snapshot_ && header.number == snapshot_->chain_batch + 1) {
    if (header.previous != snapshot_->chain_head)
      return batch + " does not link to the snapshot's head (batch " +
             std::to_string(snapshot_->chain_batch) + ")";
    reached_snapshot_head_ = true;
  }
  head_ = sha256(stored);
  batch_ = header.number;
  linked_ = true;
  if (snapshot_ && header.number == snapshot_->chain_batch) {
    if (head_ != snapshot_->chain_head)
      return batch + " is not the batch the snapshot's head names (its hash differs)";
    reached_snapshot_head_ = true;
  }
  if (header.checkpoint) checkpoints_.push_back(*header.checkpoint);
  recent_.push_back({header.number, header.first_sequence + header.event_count - 1, head_});
  if (recent_.size() > recent_kept) recent_.pop_front();
  return {};
}

std::string ChainCheck::finish() const {
  if (snapshot_ && !reached_snapshot_head_ && snapshot_->chain_batch != 0)
    return "the journal ends before batch " + std::to_string(snapshot_->chain_batch) +
           ", the snapshot's head: batches are missing";
  return {};
}

bool ChainCheck::checkpointed(const Hash& snapshot_record) const noexcept {
  return std::find(checkpoints_.begin(), checkpoints_.end(), snapshot_record) != checkpoints_.end();
}

}  // namespace flashsale::journal
