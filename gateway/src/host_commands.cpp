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
    case CommandStatus::unknown_variant:
      return host_json::error(400, "unknown_variant", result.reason);
    default:
      return host_json::error(500, "internal", "unexpected engine status");
  }
}

// The command's spec, viewing into it: the engine copies what it keeps.
engine::DropSpec spec_of(const host::CreateDrop& create) {
  std::vector<engine::VariantSpec> variants;
  variants.reserve(create.variants.size());
  for (const host::Variant& variant : create.variants)
    variants.push_back({.id = variant.id,
                        .label = variant.label,
                        .price_cents = variant.price_cents,
                        .list_price_cents = variant.list_price_cents,
                        .stock = variant.stock});
  return {.id = create.id,
          .title = create.title,
          .price_cents = create.price_cents,
          .stock = create.stock,
          .per_user_limit = create.per_user_limit,
          .hold_ms = create.hold_ms,
          .waitlist_limit = create.waitlist_limit,
          .admission_window_ms = create.admission_window_ms,
          .beneficiary = create.beneficiary,
          .beneficiary_note = create.beneficiary_note,
          .pledge_bps = create.pledge_bps,
          .duration_ms = create.duration_ms,
          .variants = std::move(variants),
          .list_price_cents = create.list_price_cents,
          .per_variant_limit = create.per_variant_limit};
}

}  // namespace

HostOutcome execute(const host::Command& command, engine::Engine& engine, const OrderIds& order_ids,
                    engine::TimeMs now_ms, engine::Events& events) {
  return std::visit(
      [&]<typename Body>(const Body& body) -> HostOutcome {
        if constexpr (std::is_same_v<Body, host::CreateDrop>) {
          return {from_status(engine.create_drop(spec_of(body), now_ms, events, body.opens_at_ms,
                                                 body.admission_seed),
                              engine, 201)};
        } else if constexpr (std::is_same_v<Body, host::StartCountdown>) {
          const engine::CommandResult result =
              body.opens_at_ms ? engine.start_countdown_at(body.drop, *body.opens_at_ms, now_ms,
                                                           events, body.admission_seed)
                               : engine.start_countdown(body.drop, body.opens_in_ms, now_ms, events,
                                                        body.admission_seed);
          return {from_status(result, engine, 200)};
        } else if constexpr (std::is_same_v<Body, host::Restock>) {
          return {from_status(engine.restock(body.drop, body.add, now_ms, events, body.variant),
                              engine, 200)};
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
            return {{200, host_json::orders(engine.drop_info(*index),
                                            engine.orders_of(*index, body.user), order_ids)}};
          } else {
            static_assert(std::is_same_v<Body, host::ReadAudit>);
            return {{200, {}}, journal::totals_of(engine.drop_info(*index))};
          }
        }
      },
      command);
}

}  // namespace flashsale::gateway
