// See records.hpp for the formats.
#include "flashsale/journal/records.hpp"

#include <boost/crc.hpp>

#include "flashsale/engine/bytes.hpp"

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
  if (static_cast<std::uint8_t>(body[0]) != record_version) return "unknown record version";
  return {};
}

}  // namespace

std::string seal_batch(const BatchHeader& header, std::string_view encoded_events) {
  std::string stored;
  stored.reserve(encoded_events.size() + 40);
  ByteWriter out(stored);
  out.byte(record_version);
  out.varint(header.number);
  out.varint(header.first_sequence);
  out.varint(header.event_count);
  out.raw(encoded_events);
  seal(stored);
  return stored;
}

std::string open_batch(std::string_view stored, BatchHeader& header, std::string_view& events) {
  std::string_view body;
  if (std::string problem = unseal(stored, body); !problem.empty()) return problem;
  ByteReader in(body.substr(1));
  header.number = in.varint();
  header.first_sequence = in.varint();
  header.event_count = static_cast<std::uint32_t>(in.bounded(0xffffffff));
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
  if (!in.ok()) return "bad snapshot header";
  engine_snapshot = in.rest();
  return {};
}

}  // namespace flashsale::journal
