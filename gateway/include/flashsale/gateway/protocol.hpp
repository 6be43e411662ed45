// Protocol v1 (docs/protocol.md): the JSON messages viewers exchange with the server over the
// WebSocket at /ws. Parsing checks every field a message needs and ignores the rest; the
// builders write server messages straight into a string, escaping what needs escaping.
//
// Parsing allocates nothing for a frame within the configured size: the JSON tree lives in a
// caller-provided buffer. Pure functions: any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "flashsale/engine/engine.hpp"
#include "flashsale/gateway/json_writer.hpp"

namespace flashsale::gateway {
class OrderIds;  // order_ids.hpp
}

namespace flashsale::gateway::protocol {

enum class ClientType : std::uint8_t {
  hello,
  subscribe,
  unsubscribe,
  order,
  confirm,
  cancel,
  time
};

// Strings point into the ParseBuffer the message was parsed with.
struct ClientMessage {
  ClientType type = ClientType::time;
  std::string_view token;            // hello
  std::string_view user;             // hello, dev auth only
  std::string_view drop;             // subscribe, unsubscribe (or `stream`), order
  std::string_view stream;           // subscribe, unsubscribe: instead of `drop`
  std::string_view client_order_id;  // order
  std::uint32_t qty = 0;             // order
  std::string_view variant;          // order: empty when the message names none
  std::string_view order_id;         // confirm, cancel
};

enum class ErrorCode : std::uint8_t {
  bad_json,
  unknown_type,
  bad_field,
  too_large,
  rate_limited,
  unauthenticated,
  unknown_drop,
  unknown_order,   // also for another buyer's order: ids say nothing about others' orders
  unavailable,     // the journal cannot take writes, or no engine serves the drop: retry later
  unknown_stream,  // subscribe to a stream that does not exist
};
std::string_view to_string(ErrorCode code) noexcept;

struct ParseError {
  ErrorCode code = ErrorCode::bad_json;
  std::string message;
  std::string ref;  // the offending type or client_order_id, when known
};

// Room for the JSON tree of one frame; reuse one per session.
struct ParseBuffer {
  alignas(16) unsigned char bytes[16 * 1024];
};

// Parses one text frame. On success fills `message` and returns nullopt.
std::optional<ParseError> parse(std::string_view frame, ParseBuffer& buffer,
                                ClientMessage& message);

// Order ids on the wire: "<drop>:<opaque>" (OrderIds, order_ids.hpp). A drop id never
// contains ':', so the drop is what comes before the last one: enough to route a confirm or
// cancel to its drop's engine, which alone reads the rest.
struct OrderRef {
  std::string_view drop;
  engine::OrderNumber order = 0;
};
std::string_view drop_of_order_id(std::string_view order_id);

// What an order_result says when the gateway answers instead of the engine.
enum class GatewayStatus : std::uint8_t {
  unavailable,   // the journal cannot take writes, or no engine serves the drop
  busy,          // the engine thread's queue is full
  rate_limited,  // over limits.orders_per_second on this connection
  sold_out,      // answered at the edge: nothing left for this buyer, not recorded
};
std::string_view to_string(GatewayStatus status) noexcept;

// Which of a drop's fields a reader gets (one encoder for every reader of a DropInfo).
enum class DropAudience : std::uint8_t {
  viewer,   // the `drop` frame: what the sale looks like from a stream
  listing,  // GET /drops: enough to choose a drop
  host,     // the host API: everything, counters included
};
// Appends the drop's fields for `audience` to an object being written.
void drop_fields(JsonObject& out, const engine::DropInfo& info, DropAudience audience);

// Server messages. Each returns the complete frame.
std::string welcome(std::string_view user, engine::TimeMs now_ms);
std::string time(engine::TimeMs now_ms);
std::string error(ErrorCode code, std::string_view message, std::string_view ref = {});
std::string drop(const engine::DropInfo& info, engine::TimeMs now_ms);
// A stream's full state with each of its drops as a `drop` frame tells it. `drops` are the
// infos of `info.drops`, in that order.
std::string stream(const engine::StreamInfo& info, std::span<const engine::DropInfo> drops,
                   engine::TimeMs now_ms);
std::string tick(std::string_view drop, engine::TimeMs ms_left, engine::TimeMs now_ms);
std::string state(std::string_view drop, engine::DropState state, engine::TimeMs now_ms);
// `left` is the drop's; a drop with named variants also lists each one's, and a charity drop
// (`pledge_bps` > 0) what it has raised so far.
std::string stock(std::string_view drop, std::uint32_t left, const engine::DropInfo& info);
// `variant`: the id of the order's variant, for a recorded outcome on a drop with named
// variants; empty otherwise (and then not written).
std::string order_result(std::string_view drop, std::string_view client_order_id,
                         const engine::OrderResult& result, const OrderIds& ids,
                         std::string_view variant = {});
// An order the gateway answers itself, with `status` instead of an engine outcome.
std::string order_result_status(std::string_view drop, std::string_view client_order_id,
                                GatewayStatus status, std::string_view reason);
// `variant` as for order_result.
std::string order_update(std::string_view drop, engine::OrderNumber order, const OrderIds& ids,
                         std::string_view client_order_id, engine::OrderStatus status,
                         std::uint32_t qty = 0, engine::TimeMs hold_expires_at_ms = 0,
                         std::string_view variant = {});

}  // namespace flashsale::gateway::protocol
