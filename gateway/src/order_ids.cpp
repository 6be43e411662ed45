// See order_ids.hpp. The per-thread cipher contexts live here, with the fixed-size base64url
// codec: 16 bytes to 22 characters and back, strict, so every block has exactly one spelling.
// OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock speak padded standard base64 and the decoder skips
// whitespace, and tokens.cpp's codec allocates and takes any length; neither fits a hot path
// that must refuse every spelling but one.
#include "flashsale/gateway/order_ids.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace flashsale::gateway {

namespace {

constexpr std::size_t block_bytes = 16;
using Block = std::array<unsigned char, block_bytes>;

constexpr std::string_view alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static_assert(alphabet.size() == 64);

// Each character's 6-bit value, or 0xff for a character outside base64url.
constexpr std::array<std::uint8_t, 256> decode_table = [] {
  std::array<std::uint8_t, 256> table{};
  table.fill(0xff);
  for (std::size_t i = 0; i < alphabet.size(); ++i)
    table[static_cast<unsigned char>(alphabet[i])] = static_cast<std::uint8_t>(i);
  return table;
}();

// 16 bytes as 22 characters: five groups of 3 bytes make 20, the last byte makes 2 (its low two
// bits in the top of the 22nd character, whose four low bits stay zero).
void encode(const Block& block, char* out) {
  for (std::size_t i = 0; i < 15; i += 3) {
    const std::uint32_t group = std::uint32_t{block[i]} << 16 | std::uint32_t{block[i + 1]} << 8 |
                                std::uint32_t{block[i + 2]};
    *out++ = alphabet[group >> 18];
    *out++ = alphabet[(group >> 12) & 0x3f];
    *out++ = alphabet[(group >> 6) & 0x3f];
    *out++ = alphabet[group & 0x3f];
  }
  *out++ = alphabet[block[15] >> 2];
  *out = alphabet[(block[15] & 0x3) << 4];
}

// The inverse of encode(), for exactly 22 characters. False for a character outside the
// alphabet or a last character with any of its four unused bits set.
bool decode(std::string_view text, Block& block) {
  std::uint8_t invalid = 0;  // a 0xff from the table sets the top two bits, no 6-bit value does
  std::uint8_t values[OrderIds::encoded_length];
  for (std::size_t i = 0; i < OrderIds::encoded_length; ++i) {
    values[i] = decode_table[static_cast<unsigned char>(text[i])];
    invalid |= values[i];
  }
  if ((invalid & 0xc0) != 0 || (values[21] & 0x0f) != 0) return false;
  for (std::size_t i = 0, j = 0; i < 15; i += 3, j += 4) {
    const std::uint32_t group = std::uint32_t{values[j]} << 18 |
                                std::uint32_t{values[j + 1]} << 12 |
                                std::uint32_t{values[j + 2]} << 6 | std::uint32_t{values[j + 3]};
    block[i] = static_cast<unsigned char>(group >> 16);
    block[i + 1] = static_cast<unsigned char>(group >> 8);
    block[i + 2] = static_cast<unsigned char>(group);
  }
  block[15] = static_cast<unsigned char>(values[20] << 2 | values[21] >> 4);
  return true;
}

// FNV-1a, 64 bits: standard, about 1 ns a byte, and two drop ids of the same length that differ
// in one byte never collide (each step is invertible). It is not collision resistant, nor need
// it be: drop ids come from the host, not from buyers, and a collision would only let an id of
// one drop parse as the same number in the other, where the engine still checks the owner.
std::uint64_t drop_tag(std::string_view drop) {
  std::uint64_t hash = 0xcbf29ce484222325;
  for (const char c : drop) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3;
  }
  return hash;
}

void store_big_endian(std::uint64_t value, unsigned char* out) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<unsigned char>(value);
    value >>= 8;
  }
}

std::uint64_t load_big_endian(const unsigned char* in) {
  std::uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = value << 8 | in[i];
  return value;
}

// OpenSSL failing after start-up (out of memory for a context) leaves no id to give: stop, as
// FS_ASSERT does, rather than hand out a wrong one.
[[noreturn]] void crypto_failed(const char* what) noexcept {
  std::fprintf(stderr, "flashsale: order ids: %s failed\n", what);
  std::fflush(stderr);
  std::abort();
}

// AES-128-ECB fetched once from the default provider (AES-NI where the CPU has it) and kept for
// the process's life; fetching at every context set-up would search the provider's tables.
EVP_CIPHER* aes_128_ecb() {
  static EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "AES-128-ECB", nullptr);
  return cipher;
}

std::atomic<std::uint64_t> next_instance_id{1};

// A thread's contexts for one instance: one to encrypt, one to decrypt, both keyed.
struct CipherSlot {
  std::uint64_t instance_id = 0;  // 0: never keyed
  EVP_CIPHER_CTX* encrypt = nullptr;
  EVP_CIPHER_CTX* decrypt = nullptr;
};

// Why per thread, keyed by instance id: a context carries the key schedule and per-call state,
// so two threads may not use one at once, and a lock or a fresh context per call would cost
// more than the encryption. A thread uses one or two instances in practice (one key per
// process); four slots, reused round robin, leave room for tests and key rotation. The id, not
// the address, names the instance: ids are never reused, so a slot left by a destroyed
// instance can only be overwritten, never matched. Contexts are freed (and wiped by OpenSSL)
// when the thread ends.
class CipherCache {
 public:
  CipherCache() = default;
  CipherCache(const CipherCache&) = delete;
  CipherCache& operator=(const CipherCache&) = delete;
  ~CipherCache() {
    for (CipherSlot& slot : slots_) {
      EVP_CIPHER_CTX_free(slot.encrypt);
      EVP_CIPHER_CTX_free(slot.decrypt);
    }
  }

  // The slot keyed for `instance_id`, keying one with `key` if none is.
  const CipherSlot& slot(std::uint64_t instance_id, const OrderIds::Key& key) {
    for (const CipherSlot& slot : slots_)
      if (slot.instance_id == instance_id) return slot;
    CipherSlot& slot = slots_[next_];
    next_ = (next_ + 1) % slots_.size();
    slot.instance_id = 0;  // until both contexts hold the new key
    if (slot.encrypt == nullptr) slot.encrypt = EVP_CIPHER_CTX_new();
    if (slot.decrypt == nullptr) slot.decrypt = EVP_CIPHER_CTX_new();
    if (slot.encrypt == nullptr || slot.decrypt == nullptr) crypto_failed("EVP_CIPHER_CTX_new");
    if (EVP_EncryptInit_ex2(slot.encrypt, aes_128_ecb(), key.data(), nullptr, nullptr) != 1 ||
        EVP_DecryptInit_ex2(slot.decrypt, aes_128_ecb(), key.data(), nullptr, nullptr) != 1)
      crypto_failed("AES-128-ECB key set-up");
    // One whole block in, one out: no padding, so decryption holds nothing back either.
    EVP_CIPHER_CTX_set_padding(slot.encrypt, 0);
    EVP_CIPHER_CTX_set_padding(slot.decrypt, 0);
    slot.instance_id = instance_id;
    return slot;
  }

 private:
  std::array<CipherSlot, 4> slots_{};
  std::size_t next_ = 0;
};

thread_local CipherCache cipher_cache;

void run(EVP_CIPHER_CTX* context, const Block& in, Block& out) {
  int length = 0;
  if (EVP_CipherUpdate(context, out.data(), &length, in.data(), block_bytes) != 1 ||
      length != block_bytes)
    crypto_failed("AES-128-ECB block");
}

}  // namespace

OrderIds::OrderIds(const Key& key) : key_(key), instance_id_(next_instance_id.fetch_add(1)) {
  if (aes_128_ecb() == nullptr) throw std::runtime_error("order ids: OpenSSL has no AES-128-ECB");
  cipher_cache.slot(instance_id_, key_);
}

OrderIds::~OrderIds() {
  OPENSSL_cleanse(key_.data(), key_.size());
}

OrderIds::Key OrderIds::random_key() {
  Key key;
  if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1)
    throw std::runtime_error("order ids: RAND_bytes failed");
  return key;
}

std::optional<OrderIds::Key> OrderIds::key_from_hex(std::string_view hex) {
  Key key{};
  if (hex.size() != 2 * key.size()) return std::nullopt;
  for (std::size_t index = 0; index < key.size(); ++index) {
    const char* begin = hex.data() + 2 * index;
    const auto [end, problem] = std::from_chars(begin, begin + 2, key[index], 16);
    if (problem != std::errc{} || end != begin + 2) return std::nullopt;
  }
  return key;
}

std::string OrderIds::format(std::string_view drop, engine::OrderNumber order) const {
  Block plain;
  store_big_endian(order, plain.data());
  store_big_endian(drop_tag(drop), plain.data() + 8);
  Block cipher;
  run(cipher_cache.slot(instance_id_, key_).encrypt, plain, cipher);
  std::string id(drop.size() + 1 + encoded_length, ':');
  drop.copy(id.data(), drop.size());
  encode(cipher, id.data() + drop.size() + 1);
  return id;
}

std::optional<protocol::OrderRef> OrderIds::parse(std::string_view text) const {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon > engine::drop_id_length_max)
    return std::nullopt;
  const std::string_view drop = text.substr(0, colon);
  const std::string_view encoded = text.substr(colon + 1);
  Block cipher;
  if (encoded.size() != encoded_length || !decode(encoded, cipher)) return std::nullopt;
  Block plain;
  run(cipher_cache.slot(instance_id_, key_).decrypt, cipher, plain);
  const std::uint64_t order = load_big_endian(plain.data());
  const std::uint64_t tag = load_big_endian(plain.data() + 8);
  // One test for all three, so the time taken says nothing about which failed.
  const bool valid = (tag == drop_tag(drop)) & (order >> 32 == 0) & (order != 0);
  if (!valid) return std::nullopt;
  return protocol::OrderRef{drop, static_cast<engine::OrderNumber>(order)};
}

}  // namespace flashsale::gateway
