// See tokens.hpp.
#include "flashsale/gateway/tokens.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <boost/json.hpp>
#include <vector>

#include "flashsale/engine/types.hpp"
#include "flashsale/gateway/json_keys.hpp"
#include "flashsale/gateway/protocol.hpp"

namespace flashsale::gateway {

namespace {

constexpr std::string_view alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string signature(std::string_view secret, std::string_view payload) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), digest, &length);
  return base64url_encode({reinterpret_cast<const char*>(digest), length});
}

}  // namespace

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::uint32_t buffer = 0;
  int bits = 0;
  for (const char c : bytes) {
    buffer = (buffer << 8) | static_cast<unsigned char>(c);
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(alphabet[(buffer >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(alphabet[(buffer << (6 - bits)) & 0x3f]);
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  std::string out;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (const char c : text) {
    const auto value = alphabet.find(c);
    if (value == std::string_view::npos) return std::nullopt;
    buffer = (buffer << 6) | static_cast<std::uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  if (bits >= 6) return std::nullopt;  // a lone trailing character carries no byte
  return out;
}

std::string mint_token(std::string_view secret, std::string_view user, std::int64_t expires_s) {
  std::string payload = "{\"user\":";
  append_json_string(payload, user);
  payload += ",\"exp\":" + std::to_string(expires_s) + "}";
  return sign_payload(secret, payload);
}

std::string sign_payload(std::string_view secret, std::string_view payload) {
  const std::string encoded = base64url_encode(payload);
  return encoded + "." + signature(secret, encoded);
}

TokenCheck verify_token(std::string_view secret, std::string_view token, std::int64_t now_s,
                        std::int64_t lifetime_max_s) {
  const auto dot = token.find('.');
  if (dot == std::string_view::npos) return {{}, "malformed token"};
  const std::string_view encoded = token.substr(0, dot);
  const std::string expected = signature(secret, encoded);
  const std::string_view given = token.substr(dot + 1);
  if (given.size() != expected.size() ||
      CRYPTO_memcmp(given.data(), expected.data(), expected.size()) != 0)
    return {{}, "bad token signature"};
  const auto payload = base64url_decode(encoded);
  if (!payload) return {{}, "malformed token"};
  if (repeats_a_key(*payload)) return {{}, "malformed token payload"};
  boost::json::error_code error;
  const boost::json::value value = boost::json::parse(*payload, error);
  const boost::json::object* object = error ? nullptr : value.if_object();
  const boost::json::value* user = object ? object->if_contains("user") : nullptr;
  const boost::json::value* expires = object ? object->if_contains("exp") : nullptr;
  if (user == nullptr || !user->is_string() || expires == nullptr || !expires->is_int64())
    return {{}, "malformed token payload"};
  if (expires->get_int64() <= now_s) return {{}, "expired token"};
  if (expires->get_int64() - now_s > lifetime_max_s) return {{}, "token lives too long"};
  const std::string_view name = user->get_string();
  if (!engine::is_valid_name(name, engine::user_length_max)) return {{}, "bad user in token"};
  return {std::string(name), {}};
}

}  // namespace flashsale::gateway
