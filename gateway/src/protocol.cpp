// Protocol v1: parsing client frames with Boost.JSON into a per-session buffer, and writing
// server frames with JsonObject (json_writer.hpp). docs/protocol.md is the reference; this file
// must agree with it.
#include "flashsale/gateway/protocol.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <charconv>

#include "flashsale/engine/assert.hpp"
#include "flashsale/gateway/json_keys.hpp"
#include "flashsale/gateway/order_ids.hpp"

namespace flashsale::gateway::protocol {

namespace json = boost::json;

std::string_view to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::bad_json:
      return "bad_json";
    case ErrorCode::unknown_type:
      return "unknown_type";
    case ErrorCode::bad_field:
      return "bad_field";
    case ErrorCode::too_large:
      return "too_large";
    case ErrorCode::rate_limited:
      return "rate_limited";
    case ErrorCode::unauthenticated:
      return "unauthenticated";
    case ErrorCode::unknown_drop:
      return "unknown_drop";
    case ErrorCode::unknown_order:
      return "unknown_order";
    case ErrorCode::unavailable:
      return "unavailable";
    case ErrorCode::unknown_stream:
      return "unknown_stream";
  }
  return "unknown";
}

namespace {

std::optional<ClientType> type_of(std::string_view name) {
  if (name == "order") return ClientType::order;
  if (name == "hello") return ClientType::hello;
  if (name == "subscribe") return ClientType::subscribe;
  if (name == "unsubscribe") return ClientType::unsubscribe;
  if (name == "confirm") return ClientType::confirm;
  if (name == "cancel") return ClientType::cancel;
  if (name == "time") return ClientType::time;
  return std::nullopt;
}

// The fields a message is read by: naming one twice is refused, whichever one a reader takes.
constexpr std::array<std::string_view, 9> read_fields = {
    "type", "token", "user", "drop", "client_order_id", "qty", "order_id", "variant", "stream"};

ParseError field_error(std::string_view field, std::string_view expected, std::string_view ref) {
  return {ErrorCode::bad_field, fmt::format("\"{}\" must be {}", field, expected),
          std::string(ref)};
}

// A required string field of 1..max bytes.
std::optional<ParseError> string_field(const json::object& object, std::string_view field,
                                       std::size_t max, std::string_view ref,
                                       std::string_view& out) {
  const json::value* value = object.if_contains(field);
  if (value == nullptr || !value->is_string() || value->get_string().empty() ||
      value->get_string().size() > max)
    return field_error(field, fmt::format("a string of 1-{} bytes", max), ref);
  out = value->get_string();
  return std::nullopt;
}

}  // namespace

std::optional<ParseError> parse(std::string_view frame, ParseBuffer& buffer,
                                ClientMessage& message) {
  json::monotonic_resource resource(buffer.bytes, sizeof buffer.bytes);
  json::parse_options options;
  options.max_depth = 8;
  json::error_code error;
  const json::value root = json::parse(frame, error, &resource, options);
  if (error) return ParseError{ErrorCode::bad_json, "not valid JSON: " + error.message(), {}};
  if (repeats_a_field(frame, read_fields))
    return ParseError{ErrorCode::bad_json, "a field is named twice", {}};
  const json::object* object = root.if_object();
  if (object == nullptr) return ParseError{ErrorCode::bad_json, "a message is a JSON object", {}};
  const json::value* type = object->if_contains("type");
  if (type == nullptr || !type->is_string())
    return ParseError{ErrorCode::bad_field, "\"type\" must be a string", {}};
  const std::string_view type_name = type->get_string();
  const auto known = type_of(type_name);
  if (!known)
    return ParseError{ErrorCode::unknown_type, "unknown message type", std::string(type_name)};
  message = ClientMessage{};
  message.type = *known;
  switch (*known) {
    case ClientType::hello: {
      const json::value* token = object->if_contains("token");
      if (token != nullptr) return string_field(*object, "token", 4096, type_name, message.token);
      return string_field(*object, "user", engine::user_length_max, type_name, message.user);
    }
    case ClientType::subscribe:
    case ClientType::unsubscribe:
      // A drop or a stream, never both: what the message is about must not depend on which
      // field a reader looks at first.
      if (!object->contains("stream"))
        return string_field(*object, "drop", engine::drop_id_length_max, type_name, message.drop);
      if (object->contains("drop"))
        return ParseError{ErrorCode::bad_field, "name a \"drop\" or a \"stream\", not both",
                          std::string(type_name)};
      return string_field(*object, "stream", engine::stream_id_length_max, type_name,
                          message.stream);
    case ClientType::order: {
      if (auto problem =
              string_field(*object, "client_order_id", engine::client_order_id_length_max,
                           type_name, message.client_order_id))
        return problem;
      const std::string_view ref = message.client_order_id;
      if (auto problem =
              string_field(*object, "drop", engine::drop_id_length_max, ref, message.drop))
        return problem;
      if (const json::value* variant = object->if_contains("variant")) {
        if (!variant->is_string() || !engine::is_valid_variant_id(variant->get_string()))
          return field_error("variant", "1-32 of [A-Za-z0-9_.-]", ref);
        message.variant = variant->get_string();
      }
      const json::value* qty = object->if_contains("qty");
      if (qty == nullptr) {
        message.qty = 1;
        return std::nullopt;
      }
      const auto number = qty->is_int64() ? std::optional(qty->get_int64())
                          : qty->is_uint64() && qty->get_uint64() <= engine::order_qty_max
                              ? std::optional(static_cast<std::int64_t>(qty->get_uint64()))
                              : std::nullopt;
      if (!number || *number < 1 || *number > engine::order_qty_max)
        return field_error("qty", "a whole number from 1 to 1000000", ref);
      message.qty = static_cast<std::uint32_t>(*number);
      return std::nullopt;
    }
    case ClientType::confirm:
    case ClientType::cancel:
      return string_field(*object, "order_id", OrderIds::id_length_max, type_name,
                          message.order_id);
    case ClientType::time:
      return std::nullopt;
  }
  return std::nullopt;
}

std::string_view drop_of_order_id(std::string_view order_id) {
  const auto colon = order_id.rfind(':');
  return colon == std::string_view::npos ? std::string_view() : order_id.substr(0, colon);
}

std::string_view to_string(GatewayStatus status) noexcept {
  switch (status) {
    case GatewayStatus::unavailable:
      return "unavailable";
    case GatewayStatus::busy:
      return "busy";
    case GatewayStatus::rate_limited:
      return "rate_limited";
    case GatewayStatus::sold_out:
      return "sold_out";
  }
  return "unavailable";
}

std::string welcome(std::string_view user, engine::TimeMs now_ms) {
  return JsonObject("welcome").text("user", user).number("server_time_ms", now_ms).done();
}

std::string time(engine::TimeMs now_ms) {
  return JsonObject("time").number("server_time_ms", now_ms).done();
}

std::string error(ErrorCode code, std::string_view message, std::string_view ref) {
  JsonObject out("error");
  out.text("code", to_string(code)).text("message", message);
  if (!ref.empty()) out.text("ref", ref);
  return out.done();
}

namespace {

// [{id, label, price_cents, list_price_cents?, stock_total, stock_left}, …], the host's with
// each variant's counters too.
std::string variants_of(const engine::DropInfo& info, DropAudience audience) {
  JsonArray list;
  for (const engine::VariantInfo& variant : info.variants) {
    JsonObject item;
    item.text("id", variant.id)
        .text("label", variant.label)
        .number("price_cents", variant.price_cents);
    if (variant.list_price_cents > 0) item.number("list_price_cents", variant.list_price_cents);
    item.number("stock_total", variant.stock_total).number("stock_left", variant.stock_left);
    if (audience == DropAudience::host)
      item.number("held", variant.held)
          .number("sold", variant.sold)
          .number("waitlist", variant.waitlist_orders);
    list.raw(item.done());
  }
  return list.done();
}

}  // namespace

void drop_fields(JsonObject& out, const engine::DropInfo& info, DropAudience audience) {
  const auto& spec = info.spec;
  const bool named = !spec.variants.empty();
  // With named variants, the price a drop is announced at is its lowest.
  const auto cheapest = std::min_element(
      spec.variants.begin(), spec.variants.end(),
      [](const auto& one, const auto& other) { return one.price_cents < other.price_cents; });
  out.text(audience == DropAudience::viewer ? "drop" : "id", spec.id);
  if (!spec.stream.empty()) out.text("stream", spec.stream);
  if (audience == DropAudience::host && !spec.host.empty()) out.text("host", spec.host);
  out.text("title", spec.title)
      .number("price_cents", named ? cheapest->price_cents : spec.price_cents);
  if (spec.list_price_cents > 0) out.number("list_price_cents", spec.list_price_cents);
  out.text("state", engine::to_string(info.state)).number_or_null("opens_at_ms", info.opens_at_ms);
  if (spec.duration_ms > 0)
    out.number("duration_ms", spec.duration_ms).number_or_null("closes_at_ms", info.closes_at_ms);
  out.number("stock_total", info.stock_total).number("stock_left", info.stock_left);
  if (named) out.raw("variants", variants_of(info, audience));
  if (audience == DropAudience::listing) return;
  out.number("per_user_limit", spec.per_user_limit);
  if (spec.per_variant_limit > 0) out.number("per_variant_limit", spec.per_variant_limit);
  out.number("waitlist_limit", spec.waitlist_limit)
      .number("admission_window_ms", spec.admission_window_ms);
  if (audience == DropAudience::host) {
    out.number("hold_seconds", spec.hold_ms / 1000)
        .number("held", info.held)
        .number("sold", info.sold)
        .number("waitlist", info.waitlist_orders)
        .number("orders", info.orders)
        .number("decisions", info.decisions)
        .number("pending", info.pending_orders)
        .number("orders_confirmed", info.orders_confirmed);
  }
  // A charity drop's pledge; the host sees it (zeros) on every drop.
  if (spec.pledge_bps > 0 || audience == DropAudience::host) {
    out.text("beneficiary", spec.beneficiary)
        .text("beneficiary_note", spec.beneficiary_note)
        .number("pledge_bps", spec.pledge_bps)
        .number("raised_cents", info.raised_cents)
        .number("supporters", info.supporters);
  }
}

std::string drop(const engine::DropInfo& info, engine::TimeMs now_ms) {
  JsonObject out("drop");
  drop_fields(out, info, DropAudience::viewer);
  return out.number("server_time_ms", now_ms).done();
}

std::string stream(const engine::StreamInfo& info, std::span<const engine::DropInfo> drops,
                   engine::TimeMs now_ms) {
  JsonObject out("stream");
  out.text("stream", info.spec.id)
      .text("title", info.spec.title)
      .text("video_url", info.spec.video_url)
      .text("state", engine::to_string(info.state));
  JsonArray shelf;
  std::string_view pinned;
  for (const engine::DropInfo& drop_info : drops) {
    if (info.pinned == drop_info.index) pinned = drop_info.spec.id;
    JsonObject item;
    drop_fields(item, drop_info, DropAudience::viewer);
    shelf.raw(item.number("server_time_ms", now_ms).done());
  }
  if (info.pinned) {
    FS_ASSERT(!pinned.empty());  // the pinned drop is one of the stream's
    out.text("pinned", pinned);
  } else {
    out.raw("pinned", "null");
  }
  return out.raw("drops", shelf.done()).number("server_time_ms", now_ms).done();
}

std::string tick(std::string_view drop, engine::TimeMs ms_left, engine::TimeMs now_ms) {
  return JsonObject("tick")
      .text("drop", drop)
      .number("ms_left", ms_left)
      .number("server_time_ms", now_ms)
      .done();
}

std::string state(std::string_view drop, engine::DropState state, engine::TimeMs now_ms) {
  return JsonObject("state")
      .text("drop", drop)
      .text("state", engine::to_string(state))
      .number("server_time_ms", now_ms)
      .done();
}

std::string stock(std::string_view drop, std::uint32_t left, const engine::DropInfo& info) {
  JsonObject out("stock");
  out.text("drop", drop).number("left", left);
  if (!info.spec.variants.empty()) {
    JsonArray variants;
    for (const engine::VariantInfo& variant : info.variants)
      variants.raw(JsonObject().text("id", variant.id).number("left", variant.stock_left).done());
    out.raw("variants", variants.done());
  }
  if (info.spec.pledge_bps > 0)
    out.number("raised_cents", info.raised_cents).number("supporters", info.supporters);
  return out.done();
}

std::string order_result(std::string_view drop, std::string_view client_order_id,
                         const engine::OrderResult& result, const OrderIds& ids,
                         std::string_view variant) {
  JsonObject out("order_result");
  out.text("client_order_id", client_order_id)
      .text("drop", drop)
      .text("status", engine::to_string(result.outcome));
  if (!variant.empty()) out.text("variant", variant);
  if (result.outcome == engine::OrderOutcome::reserved) {
    out.text("order_id", ids.format(drop, result.order))
        .number("qty", result.qty)
        .number("hold_expires_at_ms", result.hold_expires_at_ms);
  } else if (result.outcome == engine::OrderOutcome::waitlisted) {
    out.text("order_id", ids.format(drop, result.order))
        .number("position", result.waitlist_position);
  } else if (!result.reason.empty()) {
    out.text("reason", result.reason);
  }
  return out.done();
}

std::string order_result_status(std::string_view drop, std::string_view client_order_id,
                                GatewayStatus status, std::string_view reason) {
  JsonObject out("order_result");
  out.text("client_order_id", client_order_id)
      .text("drop", drop)
      .text("status", to_string(status))
      .text("reason", reason);
  // The engine's sold_out is recorded; this one is not, and says so.
  if (status == GatewayStatus::sold_out) out.raw("recorded", "false");
  return out.done();
}

std::string order_update(std::string_view drop, engine::OrderNumber order, const OrderIds& ids,
                         std::string_view client_order_id, engine::OrderStatus status,
                         std::uint32_t qty, engine::TimeMs hold_expires_at_ms,
                         std::string_view variant) {
  JsonObject out("order_update");
  out.text("order_id", ids.format(drop, order))
      .text("client_order_id", client_order_id)
      .text("drop", drop)
      .text("status", engine::to_string(status));
  if (!variant.empty()) out.text("variant", variant);
  if (status == engine::OrderStatus::reserved)
    out.number("qty", qty).number("hold_expires_at_ms", hold_expires_at_ms);
  return out.done();
}

}  // namespace flashsale::gateway::protocol

namespace flashsale::gateway {

void append_json_string(std::string& out, std::string_view text) {
  out.push_back('"');
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

}  // namespace flashsale::gateway
