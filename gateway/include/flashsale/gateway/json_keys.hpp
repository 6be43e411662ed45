// Keys named twice in one JSON object. Boost.JSON's DOM parser keeps the last silently; a proxy,
// a log reader or any other parser on the way may read the first. So whatever JSON the server
// acts on is refused when it does: a token's payload, a host call's body, a viewer's message.
// Any thread; both are a second, callback-only pass over text that already parsed.
#pragma once

#include <span>
#include <string_view>

namespace flashsale::gateway {

// A key twice in any object, at any depth (or not JSON at all). Allocates per object: for
// bodies and tokens, not the order path.
bool repeats_a_key(std::string_view json);

// One of `fields` (each at most 16 bytes) twice at the top level of an object: what a viewer's
// message is checked for. No allocation; other keys may repeat (they are ignored anyway).
bool repeats_a_field(std::string_view json, std::span<const std::string_view> fields);

}  // namespace flashsale::gateway
