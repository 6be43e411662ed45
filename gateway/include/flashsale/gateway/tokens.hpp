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
// The token for any payload bytes (mint_token's, or another minter's format).
std::string sign_payload(std::string_view secret, std::string_view payload);

struct TokenCheck {
  std::string user;     // set when valid
  std::string problem;  // why not, otherwise
};
// Valid: well-formed (a JSON object with no key twice: two "user"s would mean what the parser
// chose), signature matches, not expired at `now_s` and expiring within `lifetime_max_s` of it
// (a token minted elsewhere with exp in the year 3000 is refused), user a valid name.
TokenCheck verify_token(std::string_view secret, std::string_view token, std::int64_t now_s,
                        std::int64_t lifetime_max_s);

std::string base64url_encode(std::string_view bytes);
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace flashsale::gateway
