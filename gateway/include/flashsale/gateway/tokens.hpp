// Viewer tokens: `P "." base64url(HMAC-SHA256(secret, P))` with `P = base64url(payload)`,
// unpadded, and payload `{"user":"…","exp":unix_seconds}`. The platform's login service mints
// them with the shared secret; the host API mints them too. OpenSSL does the HMAC; the
// comparison takes the same time whatever the bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace flashsale::gateway {

std::string mint_token(std::string_view secret, std::string_view user, std::int64_t expires_s);

struct TokenCheck {
  std::string user;     // set when valid
  std::string problem;  // why not, otherwise
};
// Valid: well-formed, signature matches, not expired at `now_s`, user a valid name.
TokenCheck verify_token(std::string_view secret, std::string_view token, std::int64_t now_s);

std::string base64url_encode(std::string_view bytes);
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace flashsale::gateway
