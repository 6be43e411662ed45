// See host_commands.hpp.
#include "host_commands.hpp"

namespace flashsale::gateway {

namespace {

using engine::CommandStatus;

HostReply unknown_drop() {
  return host_json::error(404, "unknown_drop", "no such drop");
}

HostReply from_status(const engine::CommandResult& result, const engine::Engine& engine,
                      unsigned ok_status) {
  switch (result.status) {
    case CommandStatus::ok:
      return {ok_status, host_json::drop(engine.drop_info(result.drop))};
    case CommandStatus::invalid_argument:
      return host_json::error(400, "invalid_argument", result.reason);
    case CommandStatus::unknown_drop:
      return unknown_drop();
    case CommandStatus::already_exists:
      return host_json::error(409, "already_exists", result.reason);
    case CommandStatus::wrong_state:
      return host_json::error(409, "wrong_state", result.reason);
    case CommandStatus::limit_reached:
      return host_json::error(409, "limit_reached", result.reason);
    default:
      return host_json::error(500, "internal", "unexpected engine status");
  }
}

}  // namespace

HostOutcome execute(const host::Command& command, engine::Engine& engine, const OrderIds& order_ids,
                    engine::TimeMs now_ms, engine::Events& events) {
  return std::visit(
      [&]<typename Body>(const Body& body) -> HostOutcome {
        if constexpr (std::is_same_v<Body, host::CreateDrop>) {
          const engine::DropSpec spec{body.id,
                                      body.title,
                                      body.price_cents,
                                      body.stock,
                                      body.per_user_limit,
                                      body.hold_ms,
                                      body.waitlist_limit,
                                      body.admission_window_ms,
                                      body.beneficiary,
                                      body.beneficiary_note,
                                      body.pledge_bps};
          return {from_status(engine.create_drop(spec, now_ms, events), engine, 201)};
        } else if constexpr (std::is_same_v<Body, host::StartCountdown>) {
          return {from_status(engine.start_countdown(body.drop, body.opens_in_ms, now_ms, events,
                                                     body.admission_seed),
                              engine, 200)};
        } else if constexpr (std::is_same_v<Body, host::Restock>) {
          return {from_status(engine.restock(body.drop, body.add, now_ms, events), engine, 200)};
        } else if constexpr (std::is_same_v<Body, host::CloseDrop>) {
          return {from_status(engine.close(body.drop, now_ms, events), engine, 200)};
        } else if constexpr (std::is_same_v<Body, host::ReadDrops>) {
          return {{200, host_json::drops(engine, protocol::DropAudience::host)}};
        } else if constexpr (std::is_same_v<Body, host::ListDrops>) {
          return {{200, host_json::drops(engine, protocol::DropAudience::listing)}};
        } else {
          const auto index = engine.find_drop(body.drop);
          if (!index) return {unknown_drop()};
          if constexpr (std::is_same_v<Body, host::ReadDrop>) {
            return {{200, host_json::drop(engine.drop_info(*index))}};
          } else if constexpr (std::is_same_v<Body, host::ReadOrders>) {
            return {{200,
                     host_json::orders(body.drop, engine.orders_of(*index, body.user), order_ids)}};
          } else {
            static_assert(std::is_same_v<Body, host::ReadAudit>);
            return {{200, {}}, journal::totals_of(engine.drop_info(*index))};
          }
        }
      },
      command);
}

}  // namespace flashsale::gateway
