// See host_json.hpp.
#include "host_json.hpp"

#include "flashsale/gateway/protocol.hpp"

namespace flashsale::gateway::host_json {

namespace {

constexpr std::string_view list_open = R"({"drops":[)";
constexpr std::string_view list_close = "]}";

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

std::string drops(const engine::Engine& engine, protocol::DropAudience audience) {
  JsonArray list;
  for (engine::DropIndex index = 0; index < engine.drop_count(); ++index) {
    const engine::DropInfo info = engine.drop_info(index);
    // Viewers see a drop once it is announced: its countdown started.
    if (audience == protocol::DropAudience::listing && info.state == engine::DropState::scheduled)
      continue;
    JsonObject item;
    protocol::drop_fields(item, info, audience);
    list.raw(item.done());
  }
  return JsonObject().raw("drops", list.done()).done();
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

std::string token(std::string_view token) {
  return JsonObject().text("token", token).done();
}

// Every part was written by drops() above, so its items are spliced as they are.
HostReply merge_drop_lists(std::vector<HostReply>& parts) {
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
  return {200, JsonObject().raw("drops", merged.done()).done()};
}

}  // namespace flashsale::gateway::host_json
