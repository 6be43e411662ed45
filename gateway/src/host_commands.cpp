// See host_commands.hpp.
#include "host_commands.hpp"

namespace flashsale::gateway {

namespace {

using engine::CommandStatus;

HostReply unknown_drop() {
  return host_json::error(404, "unknown_drop", "no such drop");
}
HostReply unknown_stream() {
  return host_json::error(404, "unknown_stream", "no such stream");
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
    case CommandStatus::unknown_stream:
      return unknown_stream();
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
          .per_variant_limit = create.per_variant_limit,
          .host = create.host,
          .stream = create.stream};
}

HostReply stream_reply(const engine::CommandResult& result, const engine::Engine& engine,
                       unsigned ok_status) {
  if (result.status != CommandStatus::ok) return from_status(result, engine, ok_status);
  return {ok_status, host_json::stream(engine, engine.stream_info(result.stream), true)};
}

// The drop `id` names, if `caller` may act on it: another host's drop is answered as one that
// does not exist, so ids cannot be probed for.
std::optional<engine::DropIndex> drop_for(const engine::Engine& engine, std::string_view id,
                                          const host::Caller& caller) {
  const auto index = engine.find_drop(id);
  if (!index || !caller.may_act_on(engine.drop_info(*index).spec.host)) return std::nullopt;
  return index;
}
std::optional<engine::StreamIndex> stream_for(const engine::Engine& engine, std::string_view id,
                                              const host::Caller& caller) {
  const auto index = engine.find_stream(id);
  if (!index || !caller.may_act_on(engine.stream_info(*index).spec.host)) return std::nullopt;
  return index;
}

// A new drop's owner: the caller, or in a stream the stream's host (the operator acts for
// them). Nullopt when the caller may not create it there.
std::optional<std::string> owner_of_new(const host::CreateDrop& create,
                                        const engine::Engine& engine, const host::Caller& caller) {
  if (create.stream.empty()) return caller.host;
  const auto stream = engine.find_stream(create.stream);
  // An unknown stream is the engine's to refuse, with the status it gives.
  if (!stream) return caller.host;
  const std::string_view host = engine.stream_info(*stream).spec.host;
  if (!caller.may_act_on(host)) return std::nullopt;
  return std::string(host);
}

}  // namespace

HostOutcome execute(const host::Command& command, const host::Caller& caller,
                    engine::Engine& engine, const OrderIds& order_ids, engine::TimeMs now_ms,
                    engine::Events& events) {
  return std::visit(
      [&]<typename Body>(const Body& body) -> HostOutcome {
        if constexpr (std::is_same_v<Body, host::CreateDrop>) {
          const auto owner = owner_of_new(body, engine, caller);
          if (!owner) return {unknown_stream()};
          host::CreateDrop owned = body;
          owned.host = *owner;
          return {from_status(engine.create_drop(spec_of(owned), now_ms, events, body.opens_at_ms,
                                                 body.admission_seed),
                              engine, 201)};
        } else if constexpr (std::is_same_v<Body, host::ReadDrops>) {
          return {{200, host_json::drops(engine, caller)}};
        } else if constexpr (std::is_same_v<Body, host::ListDrops>) {
          return {{200, host_json::public_drops(engine)}};
        } else if constexpr (std::is_same_v<Body, host::CreateStream>) {
          const engine::StreamSpec spec{.id = body.id,
                                        .host = caller.is_operator ? body.host : caller.host,
                                        .title = body.title,
                                        .video_url = body.video_url};
          return {stream_reply(engine.create_stream(spec, now_ms, events), engine, 201)};
        } else if constexpr (std::is_same_v<Body, host::ReadStreams>) {
          return {{200, host_json::streams(engine, caller)}};
        } else if constexpr (requires { body.stream; }) {
          const auto stream = stream_for(engine, body.stream, caller);
          if (!stream) return {unknown_stream()};
          if constexpr (std::is_same_v<Body, host::GoLive>) {
            return {stream_reply(engine.go_live(body.stream, now_ms, events), engine, 200)};
          } else if constexpr (std::is_same_v<Body, host::Pin>) {
            return {stream_reply(engine.pin(body.stream, body.drop, now_ms, events), engine, 200)};
          } else if constexpr (std::is_same_v<Body, host::EndStream>) {
            return {stream_reply(engine.end_stream(body.stream, now_ms, events), engine, 200)};
          } else {
            static_assert(std::is_same_v<Body, host::ReadStream>);
            return {{200, host_json::stream(engine, engine.stream_info(*stream), true)}};
          }
        } else {
          const auto index = drop_for(engine, body.drop, caller);
          if (!index) return {unknown_drop()};
          if constexpr (std::is_same_v<Body, host::StartCountdown>) {
            const engine::CommandResult result =
                body.opens_at_ms ? engine.start_countdown_at(body.drop, *body.opens_at_ms, now_ms,
                                                             events, body.admission_seed)
                                 : engine.start_countdown(body.drop, body.opens_in_ms, now_ms,
                                                          events, body.admission_seed);
            return {from_status(result, engine, 200)};
          } else if constexpr (std::is_same_v<Body, host::Restock>) {
            return {from_status(engine.restock(body.drop, body.add, now_ms, events, body.variant),
                                engine, 200)};
          } else if constexpr (std::is_same_v<Body, host::CloseDrop>) {
            return {from_status(engine.close(body.drop, now_ms, events), engine, 200)};
          } else if constexpr (std::is_same_v<Body, host::ReadDrop>) {
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
