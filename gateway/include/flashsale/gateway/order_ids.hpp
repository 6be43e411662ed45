// OrderIds: the order ids buyers see, "<drop>:<22 base64url characters>", which say nothing about
// how many orders came before. The engine, the journal and the audit keep numbering orders
// 1, 2, 3… within a drop; shown as such ("chestnut:7") a number tells every buyer how busy the
// sale is and where they stand. Here the number is encrypted instead: one 16-byte block,
// `order number (8 bytes, big-endian) || tag (8 bytes)`, is enciphered with AES-128 under a
// secret random key and written in unpadded base64url. One block of AES under a random 128-bit
// key is a pseudorandom permutation, which is all we need: distinct blocks give unrelated-looking
// ids, and nobody without the key can make or read one. So ECB on a single block, no IV, no
// padding: the id is deterministic (the same order always gets the same id, in every process
// that holds the key), and decrypting gives the order number back without any lookup table.
//
// The tag is a 64-bit FNV-1a hash of the drop id. It is no secret and needs none, since the
// cipher hides it: it only lets parse() refuse an id moved to another drop, and refuse forged
// text, which decrypts to a random block whose tag and zero high bytes (96 bits) won't match.
//
// Thread rules: format() and parse() are const and may be called at once from any threads, on
// one instance or several. OpenSSL's EVP_CIPHER_CTX is mutable state and may not be shared, so
// each thread keeps its own contexts in a small thread_local cache, keyed by the instance's id,
// a number from a global counter that is never reused (a destroyed instance's slots can then
// never be mistaken for a new instance allocated at the same address with another key).
// Allocation: none per call but the string format() returns; a thread's first call on an
// instance keys that thread's contexts, which may allocate.
// Cost per call (bench_order_ids, Release, OpenSSL 3.0 with AES-NI; docs/benchmarks.md): format
// 54 ns and parse 82 ns for a 16-byte drop id, 105 and 137 ns for a 64-byte one (the tag's hash
// takes about 1 ns a byte); "<drop>:<number>" with fmt took 61 ns. Threads share nothing but
// the read-only key, so they do not contend.
// Failure: random_key() and the constructor throw std::runtime_error when OpenSSL cannot give
// random bytes or AES (start-up only); a later OpenSSL failure (out of memory setting up a
// thread's context) stops the process.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "flashsale/engine/types.hpp"
#include "flashsale/gateway/protocol.hpp"

namespace flashsale::gateway {

class OrderIds {
 public:
  static constexpr std::size_t key_bytes = 16;
  using Key = std::array<std::uint8_t, key_bytes>;
  // The encrypted block in base64url: 16 bytes are 128 bits, 22 characters carry 132.
  static constexpr std::size_t encoded_length = 22;
  // The longest id format() gives for a valid drop id: what a caller's bound on order id text
  // (protocol::parse's "order_id" field) must allow.
  static constexpr std::size_t id_length_max = engine::drop_id_length_max + 1 + encoded_length;

  // Every process that must parse another's ids needs the same key. Throws std::runtime_error
  // if OpenSSL has no AES-128 (start-up only); sets up the calling thread's context.
  explicit OrderIds(const Key& key);
  // Copies share the key and the id, which is sound: an id always stands for the same key.
  OrderIds(const OrderIds&) = default;
  OrderIds& operator=(const OrderIds&) = default;
  // Wipes this object's copy of the key. A thread's contexts keep the key schedule until that
  // thread reuses their slot for another instance or ends (OpenSSL wipes it then).
  ~OrderIds();

  // 16 bytes from OpenSSL's RAND_bytes. Throws std::runtime_error if it fails (start-up only).
  static Key random_key();
  // A key written as 32 hex digits (as the journal keeps it); nullopt if it is not one.
  static std::optional<Key> key_from_hex(std::string_view hex);

  // "<drop>:<22 base64url characters>". Precondition: `drop` is 1..drop_id_length_max bytes
  // (the engine's drop ids are); `order` is any number, 0 included, though parse() refuses 0.
  std::string format(std::string_view drop, engine::OrderNumber order) const;

  // The inverse of format() with the same key: the drop is the text before the last ':', as
  // with protocol::parse_order_id (engine drop ids have no ':', base64url has none either).
  // Nullopt for anything format() did not produce: no ':' or nothing before it, a drop longer
  // than drop_id_length_max, not exactly 22 characters after it, a character outside
  // base64url ('=' padding included), a last character with its unused low bits set (each
  // order has one spelling), a tag of another drop, or an order of 0 or above UINT32_MAX.
  // The returned drop points into `text`.
  std::optional<protocol::OrderRef> parse(std::string_view text) const;

 private:
  Key key_;
  std::uint64_t instance_id_;  // from a global counter, never reused; 0 means none
};

}  // namespace flashsale::gateway
