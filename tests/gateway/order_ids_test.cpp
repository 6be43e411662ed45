// OrderIds: round trips, ids that show no structure, every refusal parse() promises, the wire
// format pinned against OpenSSL directly (so another implementation can match it), keys shared
// between instances, and concurrent use from several threads with two keys.
#include "flashsale/gateway/order_ids.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace flashsale::gateway {
namespace {

using namespace std::string_literals;

constexpr std::string_view alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::uint32_t order_max = std::numeric_limits<std::uint32_t>::max();

OrderIds::Key key_of(std::uint8_t first) {
  OrderIds::Key key{};
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(first + i * 7);
  return key;
}

// The 16 bytes an id's last 22 characters spell (the test's own decoder, lenient on the last
// character's unused bits).
std::array<std::uint8_t, 16> block_of(std::string_view id) {
  const std::string_view encoded = id.substr(id.rfind(':') + 1);
  EXPECT_EQ(encoded.size(), OrderIds::encoded_length);
  std::array<std::uint8_t, 16> block{};
  unsigned buffer = 0;
  int bits = 0;
  std::size_t out = 0;
  for (const char c : encoded) {
    buffer = (buffer << 6) | static_cast<unsigned>(alphabet.find(c));
    bits += 6;
    if (bits >= 8 && out < block.size()) {
      bits -= 8;
      block[out++] = static_cast<std::uint8_t>(buffer >> bits);
    }
  }
  return block;
}

std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t hash = 0xcbf29ce484222325;
  for (const char c : text) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3;
  return hash;
}

// "<drop>:" and base64url(AES-128-ECB_key(order || tag)), both big-endian, computed with
// OpenSSL directly: the wire format, independent of order_ids.cpp.
std::string forge(const OrderIds::Key& key, std::string_view drop, std::uint64_t order,
                  std::uint64_t tag) {
  unsigned char plain[16];
  for (int i = 0; i < 8; ++i) {
    plain[i] = static_cast<unsigned char>(order >> (56 - 8 * i));
    plain[8 + i] = static_cast<unsigned char>(tag >> (56 - 8 * i));
  }
  unsigned char cipher[32];
  int length = 0;
  EVP_CIPHER_CTX* context = EVP_CIPHER_CTX_new();
  EXPECT_EQ(EVP_EncryptInit_ex(context, EVP_aes_128_ecb(), nullptr, key.data(), nullptr), 1);
  EVP_CIPHER_CTX_set_padding(context, 0);
  EXPECT_EQ(EVP_EncryptUpdate(context, cipher, &length, plain, 16), 1);
  EXPECT_EQ(length, 16);
  EVP_CIPHER_CTX_free(context);
  std::string id = std::string(drop) + ":";
  unsigned buffer = 0;
  int bits = 0;
  for (int i = 0; i < 16; ++i) {
    buffer = (buffer << 8) | cipher[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      id.push_back(alphabet[(buffer >> bits) & 0x3f]);
    }
  }
  id.push_back(alphabet[(buffer << (6 - bits)) & 0x3f]);
  return id;
}

const std::vector<std::string> drops = {"d",     "chestnut", "spring.sale-2025_v2", "a.b", "x:y",
                                        "a:b:c", ":",        std::string(64, 'z')};

TEST(OrderIds, RoundTripsManyNumbersAndDrops) {
  const OrderIds ids(key_of(1));
  std::mt19937 random(20250101);
  std::vector<engine::OrderNumber> orders = {1, 2, 3, 255, 256, 65536, order_max - 1, order_max};
  for (int i = 0; i < 2000; ++i) orders.push_back(random() | 1);
  for (const std::string& drop : drops) {
    for (const engine::OrderNumber order : orders) {
      const std::string id = ids.format(drop, order);
      ASSERT_EQ(id.size(), drop.size() + 1 + OrderIds::encoded_length);
      ASSERT_LE(id.size(), OrderIds::id_length_max);
      ASSERT_EQ(id.substr(0, drop.size() + 1), drop + ":");
      ASSERT_EQ(id.find_first_not_of(alphabet, drop.size() + 1), std::string::npos) << id;
      const auto ref = ids.parse(id);
      ASSERT_TRUE(ref) << id;
      EXPECT_EQ(ref->drop, drop);
      EXPECT_EQ(ref->drop.data(), id.data());  // points into the text
      EXPECT_EQ(ref->order, order);
    }
  }
}

TEST(OrderIds, MatchesTheDocumentedWireFormat) {
  const OrderIds::Key key = key_of(42);
  const OrderIds ids(key);
  for (const std::string& drop : drops) {
    for (const engine::OrderNumber order : {1u, 7u, 1000u, order_max}) {
      EXPECT_EQ(ids.format(drop, order), forge(key, drop, order, fnv1a(drop)));
    }
  }
}

TEST(OrderIds, ConsecutiveIdsShareNoVisibleStructure) {
  const OrderIds ids(key_of(3));
  const int pairs = 1000;
  int bits_differing = 0;
  int characters_differing = 0;
  for (engine::OrderNumber order = 1; order <= pairs; ++order) {
    const std::string a = ids.format("chestnut", order);
    const std::string b = ids.format("chestnut", order + 1);
    const auto block_a = block_of(a);
    const auto block_b = block_of(b);
    int distance = 0;
    for (std::size_t i = 0; i < block_a.size(); ++i)
      distance += std::popcount(static_cast<unsigned>(block_a[i] ^ block_b[i]));
    bits_differing += distance;
    int characters = 0;
    for (std::size_t i = 0; i < a.size(); ++i) characters += a[i] != b[i];
    characters_differing += characters;
    // 22 encoded characters: about 21.4 differ for unrelated blocks; half is far in the tail.
    EXPECT_GE(characters, 11) << a << " " << b;
  }
  // Unrelated 128-bit blocks differ in 64 bits on average (standard deviation 0.18 over 1000).
  EXPECT_NEAR(static_cast<double>(bits_differing) / pairs, 64.0, 2.0);
  EXPECT_GT(static_cast<double>(characters_differing) / pairs, 20.0);
}

TEST(OrderIds, AnotherKeyGivesAnotherId) {
  const OrderIds ids(key_of(5));
  const OrderIds other(key_of(6));
  for (engine::OrderNumber order = 1; order <= 1000; ++order) {
    const std::string id = ids.format("chestnut", order);
    EXPECT_NE(id, other.format("chestnut", order));
    EXPECT_FALSE(other.parse(id)) << id;
  }
}

TEST(OrderIds, RefusesAnIdMovedToAnotherDrop) {
  const OrderIds ids(key_of(7));
  for (engine::OrderNumber order = 1; order <= 1000; ++order) {
    const std::string id = ids.format("chestnut", order);
    const std::string encoded = id.substr(id.rfind(':'));
    for (const std::string_view other : {"walnut", "chestnuT", "chestnut.", "x:chestnut", "c"})
      EXPECT_FALSE(ids.parse(std::string(other) + encoded)) << other << encoded;
  }
}

TEST(OrderIds, RefusesEveryOneCharacterChange) {
  const OrderIds ids(key_of(8));
  const std::string replacements = std::string(alphabet) + "=+/.:~ \0\xff"s;
  for (const engine::OrderNumber order : {1u, 2u, 77u, order_max}) {
    const std::string id = ids.format("spring.sale", order);
    for (std::size_t position = 0; position < id.size(); ++position) {
      for (const char c : replacements) {
        if (c == id[position]) continue;
        std::string changed = id;
        changed[position] = c;
        EXPECT_FALSE(ids.parse(changed)) << "position " << position << ": " << changed;
      }
    }
  }
}

TEST(OrderIds, RefusesWrongLengthsAndPadding) {
  const OrderIds ids(key_of(9));
  const std::string id = ids.format("chestnut", 12345);
  ASSERT_TRUE(ids.parse(id));
  EXPECT_FALSE(ids.parse(id.substr(0, id.size() - 1)));
  EXPECT_FALSE(ids.parse(id + "A"));
  EXPECT_FALSE(ids.parse(id + "="));
  EXPECT_FALSE(ids.parse(id + "=="));  // the padded standard spelling
  EXPECT_FALSE(ids.parse(id.substr(0, id.size() - 1) + "="));
  EXPECT_FALSE(ids.parse(id.substr(0, id.size() - 2) + "=="));
  EXPECT_FALSE(ids.parse(id + ":"));
  EXPECT_FALSE(ids.parse(id + ":" + id.substr(id.rfind(':') + 1)));
  // Standard base64's '+' and '/' for base64url's '-' and '_', in the first ids that have them.
  int spelled_standard = 0;
  for (engine::OrderNumber order = 1; spelled_standard < 20; ++order) {
    std::string standard = ids.format("chestnut", order);
    const std::size_t dash = standard.find_first_of("-_", std::string_view("chestnut:").size());
    if (dash == std::string::npos) continue;
    standard[dash] = standard[dash] == '-' ? '+' : '/';
    EXPECT_FALSE(ids.parse(standard)) << standard;
    ++spelled_standard;
  }
}

TEST(OrderIds, RefusesNonCanonicalLastCharacters) {
  const OrderIds ids(key_of(10));
  for (engine::OrderNumber order = 1; order <= 200; ++order) {
    const std::string id = ids.format("chestnut", order);
    const auto value = alphabet.find(id.back());
    ASSERT_EQ(value & 0x0f, 0u) << id;  // format() leaves the unused bits zero
    for (std::size_t low = 1; low < 16; ++low) {
      std::string changed = id;
      changed.back() = alphabet[value | low];  // decodes to the same 16 bytes when lenient
      EXPECT_EQ(block_of(changed), block_of(id));
      EXPECT_FALSE(ids.parse(changed)) << changed;
    }
  }
}

TEST(OrderIds, RefusesOldIdsAndMalformedText) {
  const OrderIds ids(key_of(11));
  const std::string id = ids.format("d", 7);
  const std::string encoded = id.substr(2);
  for (const std::string_view text :
       {"d:7", "d:1", "chestnut:4294967295", "", ":", "d:", "no-colon", "AAAAAAAAAAAAAAAAAAAAAA"})
    EXPECT_FALSE(ids.parse(text)) << text;
  EXPECT_FALSE(ids.parse(encoded));        // no drop, no colon
  EXPECT_FALSE(ids.parse(":" + encoded));  // empty drop
  EXPECT_FALSE(ids.parse(std::string(OrderIds::encoded_length, 'A')));
  EXPECT_FALSE(ids.parse("d:" + std::string(OrderIds::encoded_length, 'A')));
}

TEST(OrderIds, RefusesDropsLongerThanTheEngineAllows) {
  const OrderIds ids(key_of(12));
  const std::string longest(engine::drop_id_length_max, 'q');
  EXPECT_TRUE(ids.parse(ids.format(longest, 9)));
  const std::string too_long = longest + "q";
  EXPECT_FALSE(ids.parse(ids.format(too_long, 9)));  // outside format()'s precondition
}

TEST(OrderIds, RefusesOrderZeroAndNumbersAboveTheEngines) {
  const OrderIds::Key key = key_of(13);
  const OrderIds ids(key);
  EXPECT_FALSE(ids.parse(ids.format("d", 0)));
  const std::uint64_t tag = fnv1a("d");
  ASSERT_TRUE(ids.parse(forge(key, "d", 7, tag)));
  EXPECT_FALSE(ids.parse(forge(key, "d", 0, tag)));
  EXPECT_FALSE(ids.parse(forge(key, "d", std::uint64_t{order_max} + 1, tag)));
  EXPECT_FALSE(ids.parse(forge(key, "d", std::uint64_t{1} << 32 | 7, tag)));
  EXPECT_FALSE(ids.parse(forge(key, "d", std::uint64_t{1} << 63 | 7, tag)));
  EXPECT_FALSE(ids.parse(forge(key, "d", 7, tag ^ 1)));
}

TEST(OrderIds, InstancesWithOneKeyReadEachOthersIds) {
  const OrderIds::Key key = OrderIds::random_key();
  const OrderIds first(key);
  const OrderIds second(key);
  const OrderIds copy = first;  // NOLINT(performance-unnecessary-copy-initialization): tested
  for (engine::OrderNumber order = 1; order <= 1000; ++order) {
    const std::string id = first.format("chestnut", order);
    EXPECT_EQ(second.format("chestnut", order), id);
    EXPECT_EQ(copy.format("chestnut", order), id);
    const auto ref = second.parse(id);
    ASSERT_TRUE(ref);
    EXPECT_EQ(ref->order, order);
    EXPECT_TRUE(first.parse(second.format("walnut", order)));
  }
}

TEST(OrderIds, RandomKeysDiffer) {
  EXPECT_NE(OrderIds::random_key(), OrderIds::random_key());
}

// More instances on one thread than it keeps contexts for, and an instance destroyed and
// another made (likely at the same address) with another key: the cache never mixes them up.
TEST(OrderIds, ManyInstancesOnOneThreadKeepTheirKeys) {
  std::vector<std::unique_ptr<OrderIds>> instances;
  for (std::uint8_t i = 0; i < 9; ++i) instances.push_back(std::make_unique<OrderIds>(key_of(i)));
  for (int round = 0; round < 3; ++round) {
    for (std::size_t i = 0; i < instances.size(); ++i) {
      const std::string id = instances[i]->format("d", 5);
      EXPECT_EQ(id, forge(key_of(static_cast<std::uint8_t>(i)), "d", 5, fnv1a("d")));
      EXPECT_EQ(instances[i]->parse(id)->order, 5u);
      EXPECT_FALSE(instances[(i + 1) % instances.size()]->parse(id));
    }
  }
  for (std::uint8_t round = 0; round < 20; ++round) {
    auto before = std::make_unique<OrderIds>(key_of(100));
    const std::string old_id = before->format("d", 5);
    before.reset();
    const auto after = std::make_unique<OrderIds>(key_of(200 + round));
    EXPECT_FALSE(after->parse(old_id));
    EXPECT_EQ(after->format("d", 5), forge(key_of(200 + round), "d", 5, fnv1a("d")));
  }
}

TEST(OrderIds, ConcurrentUseWithTwoKeys) {
  const OrderIds first(key_of(21));
  const OrderIds second(key_of(22));
  constexpr engine::OrderNumber orders = 2000;
  // The expected ids, made on this thread.
  std::vector<std::string> expected_first, expected_second;
  for (engine::OrderNumber order = 1; order <= orders; ++order) {
    expected_first.push_back(first.format("chestnut", order));
    expected_second.push_back(second.format("chestnut", order));
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        for (engine::OrderNumber order = 1; order <= orders; ++order) {
          const bool use_first = (order + t + round) % 2 == 0;
          const OrderIds& ids = use_first ? first : second;
          const OrderIds& other = use_first ? second : first;
          const std::string id = ids.format("chestnut", order);
          const auto& expected = use_first ? expected_first : expected_second;
          const auto ref = ids.parse(id);
          if (id != expected[order - 1] || !ref || ref->order != order || other.parse(id))
            failures.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace flashsale::gateway
