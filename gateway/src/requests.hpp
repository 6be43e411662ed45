// What the I/O threads (and, in an engine serving gateways, the command stream) ask of the
// engine thread: the one way in. A session builds a Request and hands it to a RequestSink —
// the engine thread of this process (Sequencer), or a gateway's link to the engine that owns
// the drop (ClusterLink). Everything here is data: no HTTP, no engine access; only a host
// reply's body is JSON, written by host_json.hpp.
//
// Answers come back through the asker's Outbox (viewers) or a HostRequest's `done` (hosts),
// once the events they depend on are durable.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "flashsale/engine/types.hpp"
#include "outbox.hpp"

namespace flashsale::gateway {

// A connection's place in the engine's queue, held by each request of its waiting there and
// given back when the request is done with (destroyed), on whichever thread that is: a
// connection counts its requests in flight to bound its share (limits.queued_per_connection).
// A request from elsewhere (an engine's command stream) holds none.
class QueueSlot {
 public:
  QueueSlot() = default;
  explicit QueueSlot(std::atomic<std::uint32_t>& held) : held_(&held) {
    held.fetch_add(1, std::memory_order_relaxed);
  }
  QueueSlot(QueueSlot&& other) noexcept : held_(std::exchange(other.held_, nullptr)) {}
  QueueSlot& operator=(QueueSlot&& other) noexcept {
    if (this != &other) {
      release();
      held_ = std::exchange(other.held_, nullptr);
    }
    return *this;
  }
  ~QueueSlot() { release(); }

 private:
  void release() {
    if (held_ != nullptr) held_->fetch_sub(1, std::memory_order_relaxed);
    held_ = nullptr;
  }
  std::atomic<std::uint32_t>* held_ = nullptr;
};

struct HelloRequest {
  std::shared_ptr<Outbox> from;
  std::string user;
  // A gateway's connection seen by an engine: registered for order updates only; the gateway
  // already welcomed it and counted it against connections_per_user.
  bool quiet = false;
};
struct LeaveRequest {
  Outbox* from = nullptr;
  std::string user;
};
struct SubscribeRequest {
  std::shared_ptr<Outbox> from;
  std::string drop;
  std::string user{};  // signed in: told where their orders in the drop stand; or empty
  QueueSlot slot{};    // last: given back before `from`, which keeps its counter alive, goes
};
struct OrderRequest {
  std::shared_ptr<Outbox> from;
  std::string drop;
  std::string user;
  std::string client_order_id;
  std::string variant;  // the variant's id; empty names none (a drop with one variant)
  std::uint32_t qty = 1;
  std::uint64_t tag = 0;  // the asker's number for this message, given back with its answer
  QueueSlot slot{};
  // When this server read it (the frame on an I/O thread, the command from Redis on an
  // engine): where its latency histograms start. Zero: not measured.
  std::chrono::steady_clock::time_point received{};
};
struct ActionRequest {
  std::shared_ptr<Outbox> from;
  bool confirm = true;
  std::string order_id;
  std::string user;
  QueueSlot slot{};
};

// Host commands (docs/protocol.md, "Host API"): checked at the edge against the engine's spec
// limits, carried as data, executed on the engine thread (host_commands.hpp).
namespace host {

// Whom a host call acts for, as the edge found it from the call's credential — never the
// credential itself, which is checked once there and goes no further. A host acts on its own
// streams and drops only; the operator on everything. The default acts for no one: it owns
// nothing, so a caller forgotten somewhere is refused, not trusted.
struct Caller {
  std::string host;  // a host's id; empty with `is_operator` (or for no one)
  bool is_operator = false;

  static Caller operator_() { return {{}, true}; }
  static Caller of(std::string host) { return {std::move(host), false}; }
  // Whether this caller may act on what `owner` owns ("" : only the operator).
  bool may_act_on(std::string_view owner) const {
    return is_operator || (!host.empty() && host == owner);
  }
  friend bool operator==(const Caller&, const Caller&) = default;
};

// One of a drop's variants (engine::VariantSpec, owning its strings).
struct Variant {
  std::string id;
  std::string label;
  std::int64_t price_cents = 0;
  std::int64_t list_price_cents = 0;
  std::uint32_t stock = 0;

  friend bool operator==(const Variant&, const Variant&) = default;
};

// engine::DropSpec, owning its strings, and the opening instant that may come with it.
struct CreateDrop {
  std::string id;  // in a stream: "<stream>~<name>"
  std::string title;
  std::int64_t price_cents = 0;
  std::uint32_t stock = 0;
  std::uint32_t per_user_limit = 1;
  engine::TimeMs hold_ms = 0;
  std::uint32_t waitlist_limit = 0;
  engine::TimeMs admission_window_ms = 0;
  std::string beneficiary;
  std::string beneficiary_note;
  std::uint32_t pledge_bps = 0;
  std::vector<Variant> variants{};  // empty: one unnamed variant (price_cents, stock)
  std::int64_t list_price_cents = 0;
  std::uint32_t per_variant_limit = 0;
  engine::TimeMs duration_ms = 0;
  // Set: the drop is created in countdown to this instant, its admission seed drawn as
  // StartCountdown's is.
  std::optional<engine::TimeMs> opens_at_ms{};
  std::uint64_t admission_seed = 0;
  std::string stream{};  // empty: in no stream (protocol v1's drop)
  // The owner, set on the engine thread: the caller, or the stream's host.
  std::string host{};

  friend bool operator==(const CreateDrop&, const CreateDrop&) = default;
};
struct StartCountdown {
  std::string drop;
  engine::TimeMs opens_in_ms = 0;
  // Orders the admission window's draw: drawn from a CSPRNG on the I/O thread that took the
  // call, journaled with the countdown, never shown.
  std::uint64_t admission_seed = 0;
  // Set: the opening instant itself, and opens_in_ms is not read.
  std::optional<engine::TimeMs> opens_at_ms{};

  friend bool operator==(const StartCountdown&, const StartCountdown&) = default;
};
struct Restock {
  std::string drop;
  std::uint32_t add = 0;
  std::string variant{};  // may be empty on a drop with one variant

  friend bool operator==(const Restock&, const Restock&) = default;
};
struct CloseDrop {
  std::string drop;

  friend bool operator==(const CloseDrop&, const CloseDrop&) = default;
};
struct ReadDrops {  // every drop, as the host sees it
  friend bool operator==(const ReadDrops&, const ReadDrops&) = default;
};
struct ListDrops {  // every drop, as anyone may see it (GET /drops)
  friend bool operator==(const ListDrops&, const ListDrops&) = default;
};
struct ReadDrop {
  std::string drop;

  friend bool operator==(const ReadDrop&, const ReadDrop&) = default;
};
struct ReadOrders {
  std::string drop;
  std::string user;

  friend bool operator==(const ReadOrders&, const ReadOrders&) = default;
};
// What a drop's sale commits to, answered with the journal's chain head at that state.
struct ReadAudit {
  std::string drop;

  friend bool operator==(const ReadAudit&, const ReadAudit&) = default;
};

// Streams (engine::StreamSpec): where a host's drops happen, one pinned on screen at a time.
struct CreateStream {
  std::string id;
  std::string host;  // the owner: the caller, or whom the operator names
  std::string title;
  std::string video_url;

  friend bool operator==(const CreateStream&, const CreateStream&) = default;
};
struct GoLive {
  std::string stream;

  friend bool operator==(const GoLive&, const GoLive&) = default;
};
struct Pin {
  std::string stream;
  std::string drop;  // empty: unpin

  friend bool operator==(const Pin&, const Pin&) = default;
};
struct EndStream {
  std::string stream;

  friend bool operator==(const EndStream&, const EndStream&) = default;
};
struct ReadStreams {  // every stream the caller may see
  friend bool operator==(const ReadStreams&, const ReadStreams&) = default;
};
struct ReadStream {  // one stream with its shelf of drops
  std::string stream;

  friend bool operator==(const ReadStream&, const ReadStream&) = default;
};

using Command = std::variant<CreateDrop, StartCountdown, Restock, CloseDrop, ReadDrops, ListDrops,
                             ReadDrop, ReadOrders, ReadAudit, CreateStream, GoLive, Pin, EndStream,
                             ReadStreams, ReadStream>;
// Each alternative's name, in the variant's order: its type in the cluster's messages and its
// route in the host API's metrics.
inline constexpr std::array<std::string_view, std::variant_size_v<Command>> command_names = {
    "create", "countdown",     "restock", "close", "drops", "list",    "drop",  "orders",
    "audit",  "create_stream", "live",    "pin",   "end",   "streams", "stream"};

// Creating, counting down, restocking, closing, and every stream command but the reads change
// the engine; the rest only read it.
bool changes(const Command& command);
// What places a command on a shard (cluster.hpp): the drop's or stream's id; empty for the
// lists, which every shard answers.
std::string_view shard_key_of(const Command& command);
// Whether every shard answers it (the lists), their answers merged.
bool is_list(const Command& command);

}  // namespace host

// A host call's answer: an HTTP status and a JSON body (host_json.hpp writes them).
struct HostReply {
  unsigned status = 200;
  std::string body;

  friend bool operator==(const HostReply&, const HostReply&) = default;
};
// A kept host reply (for a successor engine to answer again): "<status> <body>".
std::string encode_kept_reply(const HostReply& reply);
std::optional<HostReply> decode_kept_reply(std::string_view kept);

struct HostRequest {
  host::Command command;
  host::Caller caller;
  std::function<void(HostReply)> done;  // called on the engine thread: post to your own
  // Not empty: the reply is kept under this key with the cursor that completes the call
  // (journal::KeptReply), for a successor to send again.
  std::string keep_reply_as;
};

// An engine serving gateways (docs/scaling.md): the requests before this came from its command
// stream up to entry `id`, which the journal stores with their events — unless `journal` is
// false: a predecessor did those commands and stored a position past them already. Either way
// Sequencer::released_mark() reaches `id` once every answer to those requests has gone out.
struct CursorMark {
  std::string id;
  bool journal = true;
};

using Request = std::variant<HelloRequest, LeaveRequest, SubscribeRequest, OrderRequest,
                             ActionRequest, HostRequest, CursorMark>;

// What sessions hand their requests to. Any thread.
class RequestSink {
 public:
  virtual ~RequestSink() = default;
  // False when the request cannot be queued now: answer `busy` yourself.
  virtual bool submit(Request request) = 0;
};

// An engine thread fed by a command stream (an engine serving gateways) in groups, each with
// the CursorMark of the entries it holds (audits after it). Any thread.
class GroupSink : public RequestSink {
 public:
  // All of them or none (false: no room now), with nothing queued between them.
  virtual bool submit_all(std::vector<Request>& requests) = 0;
  // The last CursorMark whose requests' answers were all handed to their outboxes (their events
  // durable), "" before the first: the commands up to it may be acknowledged.
  virtual std::string released_mark() const = 0;
};

}  // namespace flashsale::gateway
