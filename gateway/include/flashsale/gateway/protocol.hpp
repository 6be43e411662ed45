// Protocol v1 (docs/protocol.md): the JSON messages viewers exchange with the server over the
// WebSocket at /ws. Parsing checks every field a message needs and ignores the rest; the
// builders write server messages straight into a string, escaping what needs escaping.
//
// Parsing allocates nothing for a frame within the configured size: the JSON tree lives in a
// caller-provided buffer. Pure functions: any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "flashsale/engine/engine.hpp"

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
  std::string_view drop;             // subscribe, unsubscribe, order
  std::string_view client_order_id;  // order
  std::uint32_t qty = 0;             // order
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
  unknown_order,
  not_owner,
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

// Order ids on the wire: "<drop>:<number>". A drop id never contains ':'.
std::string order_id(std::string_view drop, engine::OrderNumber order);
struct OrderRef {
  std::string_view drop;
  engine::OrderNumber order = 0;
};
std::optional<OrderRef> parse_order_id(std::string_view order_id);

// Appends `text` as a JSON string literal (quotes included).
void append_string(std::string& out, std::string_view text);

// Server messages. Each returns the complete frame.
std::string welcome(std::string_view user, engine::TimeMs now_ms);
std::string time(engine::TimeMs now_ms);
std::string error(ErrorCode code, std::string_view message, std::string_view ref = {});
std::string drop(const engine::DropInfo& info, engine::TimeMs now_ms);
std::string tick(std::string_view drop, engine::TimeMs ms_left, engine::TimeMs now_ms);
std::string state(std::string_view drop, engine::DropState state, engine::TimeMs now_ms);
// For a charity drop (`pledge_bps` > 0) also what it has raised so far.
std::string stock(std::string_view drop, std::uint32_t left, const engine::DropInfo& info);
// `status` overrides the engine's outcome with a gateway status (busy, unavailable, rate_limited).
std::string order_result(std::string_view drop, std::string_view client_order_id,
                         const engine::OrderResult& result);
std::string order_result_status(std::string_view drop, std::string_view client_order_id,
                                std::string_view status, std::string_view reason);
std::string order_update(std::string_view drop, engine::OrderNumber order,
                         std::string_view client_order_id, engine::OrderStatus status,
                         std::uint32_t qty = 0, engine::TimeMs hold_expires_at_ms = 0);

}  // namespace flashsale::gateway::protocol
