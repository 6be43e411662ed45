// See host_json.hpp.
#include "host_json.hpp"

#include <fmt/format.h>

#include "flashsale/gateway/protocol.hpp"

namespace flashsale::gateway::host_json {

namespace {

template <typename Keep>
std::string drop_list(const engine::Engine& engine, protocol::DropAudience audience, Keep keep) {
  JsonArray list;
  for (engine::DropIndex index = 0; index < engine.drop_count(); ++index) {
    const engine::DropInfo info = engine.drop_info(index);
    if (!keep(info)) continue;
    JsonObject item;
    protocol::drop_fields(item, info, audience);
    list.raw(item.done());
  }
  return JsonObject().raw("drops", list.done()).done();
}

}  // namespace

HostReply error(unsigned status, std::string_view code, std::string_view message) {
  return {status, JsonObject()
                      .raw("error", JsonObject().text("code", code).text("message", message).done())
                      .done()};
}

std::string drop(const engine::DropInfo& info) {
  JsonObject out;
  protocol::drop_fields(out, info, protocol::DropAudience::host);
  return out.done();
}

std::string public_drops(const engine::Engine& engine) {
  // Viewers see a drop once it is announced: its countdown started.
  return drop_list(engine, protocol::DropAudience::listing, [](const engine::DropInfo& info) {
    return info.state != engine::DropState::scheduled;
  });
}

std::string drops(const engine::Engine& engine, const host::Caller& caller) {
  return drop_list(engine, protocol::DropAudience::host,
                   [&](const engine::DropInfo& info) { return caller.may_act_on(info.spec.host); });
}

std::string stream(const engine::Engine& engine, const engine::StreamInfo& info, bool shelf) {
  JsonArray ids;
  JsonArray drops;
  for (const engine::DropIndex index : info.drops) {
    const engine::DropInfo drop_info = engine.drop_info(index);
    ids.text(drop_info.spec.id);
    if (!shelf) continue;
    JsonObject item;
    protocol::drop_fields(item, drop_info, protocol::DropAudience::host);
    drops.raw(item.done());
  }
  JsonObject out;
  out.text("id", info.spec.id)
      .text("host", info.spec.host)
      .text("title", info.spec.title)
      .text("video_url", info.spec.video_url)
      .text("state", engine::to_string(info.state));
  if (info.pinned)
    out.text("pinned", engine.drop_info(*info.pinned).spec.id);
  else
    out.raw("pinned", "null");
  out.raw("drops", ids.done());
  if (shelf) out.raw("shelf", drops.done());
  return out.done();
}

std::string streams(const engine::Engine& engine, const host::Caller& caller) {
  JsonArray list;
  for (engine::StreamIndex index = 0; index < engine.stream_count(); ++index) {
    const engine::StreamInfo info = engine.stream_info(index);
    if (caller.may_act_on(info.spec.host)) list.raw(stream(engine, info, false));
  }
  return JsonObject().raw("streams", list.done()).done();
}

std::string orders(const engine::DropInfo& drop, std::span<const engine::OrderInfo> orders,
                   const OrderIds& order_ids) {
  const bool named = !drop.spec.variants.empty();
  JsonArray list;
  for (const engine::OrderInfo& order : orders) {
    JsonObject item;
    item.text("order_id", order_ids.format(drop.spec.id, order.order))
        .text("client_order_id", order.client_order_id);
    if (named) item.text("variant", drop.variants[order.variant].id);
    list.raw(item.number("qty", order.qty)
                 .text("status", engine::to_string(order.status))
                 .number("hold_expires_at_ms", order.hold_expires_at_ms)
                 .done());
  }
  return JsonObject().raw("orders", list.done()).done();
}

std::string audit(const journal::DropTotals& totals, const journal::ChainHead& head) {
  JsonArray variants;
  for (const journal::VariantTotals& variant : totals.variants)
    variants.raw(JsonObject()
                     .text("id", variant.id)
                     .number("units_sold", variant.units_sold)
                     .number("sales_cents", variant.sales_cents)
                     .done());
  return JsonObject()
      .text("drop", totals.id)
      .text("beneficiary", totals.beneficiary)
      .number("pledge_bps", totals.pledge_bps)
      .number("units_sold", totals.units_sold)
      .number("orders_confirmed", totals.orders_confirmed)
      .number("supporters", totals.supporters)
      .number("sales_cents", totals.sales_cents)
      .number("raised_cents", totals.raised_cents)
      .raw("variants", variants.done())
      .text("head", journal::to_hex(head.hash))
      .number("batch", head.batch)
      .number("sequence", head.last_sequence)
      .done();
}

namespace {

JsonObject& account_fields(JsonObject& out, const HostDirectory::Host& host) {
  out.text("id", host.id)
      .text("state", host.revoked_at_ms == 0 ? "active" : "revoked")
      .number("created_at_ms", host.created_at_ms);
  if (host.revoked_at_ms != 0) out.number("revoked_at_ms", host.revoked_at_ms);
  return out;
}

}  // namespace

std::string host_account(const HostDirectory::Host& host, std::string_view key) {
  JsonObject out;
  account_fields(out, host);
  if (!key.empty()) out.text("key", key);
  return out.done();
}

std::string host_accounts(std::span<const HostDirectory::Host> hosts, std::string_view configured) {
  JsonArray list;
  if (!configured.empty()) {  // made by the config, not at an instant: created_at_ms 0
    JsonObject item;
    account_fields(item, {std::string(configured), 0, 0});
    list.raw(item.raw("configured", "true").done());
  }
  for (const HostDirectory::Host& host : hosts) {
    JsonObject item;
    account_fields(item, host);
    list.raw(item.done());
  }
  return JsonObject().raw("hosts", list.done()).done();
}

std::string token(std::string_view token) {
  return JsonObject().text("token", token).done();
}

// Every part was written by drops() or streams() above, so its items are spliced as they are.
HostReply merge_lists(std::vector<HostReply>& parts, std::string_view key) {
  const std::string list_open = fmt::format(R"({{"{}":[)", key);
  constexpr std::string_view list_close = "]}";
  JsonArray merged;
  for (HostReply& part : parts) {
    if (part.status != 200) return std::move(part);
    const std::string_view body = part.body;
    if (!body.starts_with(list_open) || !body.ends_with(list_close))
      return error(502, "bad_gateway", "an engine answered with an unreadable list");
    const std::string_view items =
        body.substr(list_open.size(), body.size() - list_open.size() - list_close.size());
    if (!items.empty()) merged.raw(items);
  }
  return {200, JsonObject().raw(key, merged.done()).done()};
}

}  // namespace flashsale::gateway::host_json
