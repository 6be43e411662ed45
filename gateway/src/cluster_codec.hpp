// Everything that crosses Redis between a gateway and an engine, as typed messages, and the
// one codec for each: the command stream (gateway → the shard's owner), a gateway's answer
// stream (engine → gateway) and a shard's updates channel (engine → every gateway). cluster.hpp
// has the keys, docs/scaling.md the paths.
//
// Every message is one record (cluster.hpp): <name>:<length>:<value>…, binary-safe, fields in
// any order. Numbers are decimal digits and nothing else, within their type's range ('-' first
// only for the signed ones: price_cents and the *_ms fields); a frame kind is FrameKind's
// number (0-6). A field name means one thing in every message of its stream.
//
// The command stream ({P-sN}:commands); "t" says what follows:
//   order      t=o g c d u k q n [v]
//   action     t=a g c u i x=confirm|cancel
//   subscribe  t=s g c d [u]      u: the viewer, told of their orders (absent before 2026-12);
//                                d a topic (topic.hpp): a drop's id, or ~ and a stream's
//   leave      t=l g c u          the connection closed: forget it
//   host call  t=<command> g call, and the command's own fields:
//     create     d title price_cents stock per_user_limit hold_ms waitlist_limit
//                admission_window_ms beneficiary beneficiary_note pledge_bps
//                list_price_cents per_variant_limit duration_ms admission_seed [variants]
//                [opens_at_ms]
//     countdown  d opens_in_ms admission_seed [opens_at_ms]
//     restock    d add [v]
//     close      d
//     drops      (none)           every drop, as the host sees it
//     list       (none)           every drop, as anyone sees it
//     drop       d
//     orders     d u
//     audit      d
//     create_stream  stream host title video_url
//     live, end, stream  stream
//     pin        stream d          d empty: unpin
//     streams    (none)           every stream the caller may act on
//   g the gateway's id; c its number for the connection; d a drop id; u a user; k a
//   client_order_id; q a quantity; n the gateway's number for the order (its tag, given back
//   with the answer); v a variant's id (absent: none named); i an order id; call the gateway's
//   number for the host call; opens_at_ms an opening instant (absent: none, or for a countdown
//   opens_in_ms instead); variants the drop's named variants (absent: none), a record holding
//   for each a field "variant", itself a record: id label price_cents list_price_cents stock.
//   The fields a create gained with variants (from list_price_cents on) are absent from an
//   older gateway's, and read as protocol v1's defaults; a create in a stream adds its stream.
//   Every host call says whom it acts for: by=<host id>, or op=1 for the operator (neither:
//   from a gateway older than host accounts, the operator). No credential travels: the
//   gateway checked it.
//
// A gateway's answer stream ({P-gw-ID}:out); "t" says what follows:
//   frame      t=f c k s i f      a frame for connection c
//   order      t=o c k n f        an order_result: delivered once per tag n
//   forget     t=u c d            no drop (stream) by the topic d: drop the subscription
//   close      t=x c code f       close the connection (WebSocket code) after the frame
//   host       t=h call status body
//   k a frame kind; s the engine's shard; i the drop's index in that shard (a stream frame's:
//   the stream's); f a frame; status an HTTP status (100-599) and body its JSON.
//
// The updates channel ({P-sN}:updates): a drop update, k i d f as above (a stream's: kind
// stream, i the stream's index, d its topic); a drop's gate for answers at the edge,
// g d l w b [v] (v: its named variants' ids, comma-separated; absent: none); or "alive", the
// owner's heartbeat, once a second.
//
// Decoding refuses (nullopt) anything malformed: not a record, an unknown type, a missing field,
// a field the stream knows given twice, a number out of range. Fields it does not know are
// passed over, so that a newer sender may add some. Text fields of viewer messages are views
// into the record (no copies on the order path); host commands and replies own their strings.
// Encoding appends to one string. Pure functions: any thread, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "edge_gate.hpp"
#include "outbox.hpp"
#include "requests.hpp"

namespace flashsale::gateway::cluster {

// The command stream.

struct OrderCommand {
  std::string_view gateway;
  std::uint64_t connection = 0;
  std::string_view drop;
  std::string_view user;
  std::string_view client_order_id;
  std::uint32_t qty = 0;
  std::uint64_t tag = 0;
  std::string_view variant{};  // empty: the order names none

  friend bool operator==(const OrderCommand&, const OrderCommand&) = default;
};
struct ActionCommand {
  std::string_view gateway;
  std::uint64_t connection = 0;
  std::string_view user;
  std::string_view order_id;
  bool confirm = true;  // false: cancel

  friend bool operator==(const ActionCommand&, const ActionCommand&) = default;
};
struct SubscribeCommand {
  std::string_view gateway;
  std::uint64_t connection = 0;
  std::string_view drop;
  // The signed-in viewer, told where their orders in the drop stand. Absent from a gateway
  // older than 2026-12: then nobody is told.
  std::string_view user{};

  friend bool operator==(const SubscribeCommand&, const SubscribeCommand&) = default;
};
struct LeaveCommand {
  std::string_view gateway;
  std::uint64_t connection = 0;
  std::string_view user;

  friend bool operator==(const LeaveCommand&, const LeaveCommand&) = default;
};
struct HostCommand {
  std::string gateway;
  std::uint64_t call = 0;
  host::Command command;
  host::Caller caller{};

  friend bool operator==(const HostCommand&, const HostCommand&) = default;
};
using Command =
    std::variant<OrderCommand, ActionCommand, SubscribeCommand, LeaveCommand, HostCommand>;

// Each appends the message's record to `record`.
void encode(const OrderCommand& order, std::string& record);
void encode(const ActionCommand& action_command, std::string& record);
void encode(const SubscribeCommand& subscribe, std::string& record);
void encode(const LeaveCommand& leave, std::string& record);
void encode(const HostCommand& message, std::string& record);
void encode(const Command& command, std::string& record);
// Views into `record` (a HostCommand excepted).
std::optional<Command> decode_command(std::string_view record);

// A gateway's answer stream.

struct FrameAnswer {
  std::uint64_t connection = 0;
  FrameKind kind = FrameKind::reply;
  std::uint32_t shard = 0;
  std::uint32_t drop_index = 0;  // in its shard: global_drop_index() makes it the gateway's
  std::string_view frame;

  friend bool operator==(const FrameAnswer&, const FrameAnswer&) = default;
};
struct OrderAnswer {
  std::uint64_t connection = 0;
  FrameKind kind = FrameKind::order;
  std::uint64_t tag = 0;
  std::string_view frame;

  friend bool operator==(const OrderAnswer&, const OrderAnswer&) = default;
};
struct ForgetAnswer {
  std::uint64_t connection = 0;
  std::string_view drop;

  friend bool operator==(const ForgetAnswer&, const ForgetAnswer&) = default;
};
struct CloseAnswer {
  std::uint64_t connection = 0;
  std::uint16_t code = 1008;
  std::string_view frame;

  friend bool operator==(const CloseAnswer&, const CloseAnswer&) = default;
};
struct HostAnswer {
  std::uint64_t call = 0;
  HostReply reply;

  friend bool operator==(const HostAnswer&, const HostAnswer&) = default;
};
using Answer = std::variant<FrameAnswer, OrderAnswer, ForgetAnswer, CloseAnswer, HostAnswer>;

void encode(const FrameAnswer& message, std::string& record);
void encode(const OrderAnswer& message, std::string& record);
void encode(const ForgetAnswer& message, std::string& record);
void encode(const CloseAnswer& message, std::string& record);
void encode(const HostAnswer& message, std::string& record);
void encode(const Answer& answer, std::string& record);
// Views into `record` (a HostAnswer excepted).
std::optional<Answer> decode_answer(std::string_view record);

// A shard's updates channel.

struct DropUpdate {
  FrameKind kind = FrameKind::drop;
  std::uint32_t drop_index = 0;  // in the shard
  std::string_view drop;
  std::string_view frame;

  friend bool operator==(const DropUpdate&, const DropUpdate&) = default;
};
// The owner's "I serve this shard", once a second.
struct Heartbeat {
  friend bool operator==(const Heartbeat&, const Heartbeat&) = default;
};
inline constexpr std::string_view heartbeat = "alive";
// A drop's gate for answers at the edge (edge_gate.hpp): the buyers as 8 little-endian bytes
// each, ascending.
using Update = std::variant<Heartbeat, DropUpdate, EdgeGate>;

std::string encode_update(const DropUpdate& update);
std::string encode_gate(const EdgeGate& gate);
// A DropUpdate views into `message`.
std::optional<Update> decode_update(std::string_view message);

}  // namespace flashsale::gateway::cluster
