// The hello rule, in one place for the single process and for a gateway: a user holds at most
// limits.connections_per_user connections (docs/protocol.md, "Limits").
#pragma once

#include <cstddef>
#include <string_view>

#include "flashsale/engine/types.hpp"
#include "flashsale/gateway/config.hpp"
#include "metrics.hpp"
#include "outbox.hpp"

namespace flashsale::gateway {

// `open`: the user's connections already signed in, not counting `from`. Welcomes `from` and
// returns true if there is room; otherwise refuses it (rate_limited, close 1008) and returns
// false. Any thread.
bool welcome_or_refuse(Outbox& from, std::string_view user, std::size_t open, const Limits& limits,
                       Metrics& metrics, engine::TimeMs now_ms);

}  // namespace flashsale::gateway
