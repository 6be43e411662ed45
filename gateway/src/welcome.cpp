// See welcome.hpp.
#include "welcome.hpp"

#include "flashsale/gateway/protocol.hpp"

namespace flashsale::gateway {

bool welcome_or_refuse(Outbox& from, std::string_view user, std::size_t open, const Limits& limits,
                       Metrics& metrics, engine::TimeMs now_ms) {
  if (open >= limits.connections_per_user) {
    metrics.protocol_errors.fetch_add(1, std::memory_order_relaxed);
    metrics.count_limited(Limit::connections_per_user);
    from.close_with(share(protocol::error(protocol::ErrorCode::rate_limited,
                                          "too many connections for this user", "hello")),
                    1008, "too many connections for this user");
    return false;
  }
  from.send(share(protocol::welcome(user, now_ms)), FrameKind::reply);
  return true;
}

}  // namespace flashsale::gateway
