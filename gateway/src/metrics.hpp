// Metrics: counters the I/O threads and the engine thread bump with relaxed atomics, rendered
// in Prometheus' text format for GET /metrics. Nothing here allocates on the hot path.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "flashsale/engine/types.hpp"
#include "flashsale/gateway/protocol.hpp"
#include "flashsale/journal/journal.hpp"
#include "histogram.hpp"
#include "requests.hpp"

namespace flashsale::gateway {

// Statuses an order_result can carry: the engine's outcomes (by their enum value) and the
// gateway's own. `pending` counts orders collected in an admission window (their result
// follows the draw). The gateway's `unavailable` shares the engine's counter.
inline constexpr std::array<std::string_view, 12> order_statuses = {
    "invalid",  "closed",      "not_open", "limit_exceeded",  "reserved", "waitlisted",
    "sold_out", "unavailable", "pending",  "unknown_variant", "busy",     "rate_limited"};
constexpr std::size_t order_status_index(engine::OrderOutcome outcome) {
  return static_cast<std::size_t>(outcome);
}
constexpr std::size_t order_status_index(protocol::GatewayStatus status) {
  switch (status) {
    case protocol::GatewayStatus::unavailable:
      return order_status_index(engine::OrderOutcome::unavailable);
    case protocol::GatewayStatus::busy:
      return 10;
    case protocol::GatewayStatus::rate_limited:
      return 11;
    case protocol::GatewayStatus::sold_out:
      return order_status_index(engine::OrderOutcome::sold_out);
  }
  return 10;
}
static_assert(order_statuses[order_status_index(engine::OrderOutcome::pending)] == "pending");
static_assert(order_statuses[order_status_index(engine::OrderOutcome::unknown_variant)] ==
              "unknown_variant");
static_assert(order_statuses[order_status_index(protocol::GatewayStatus::busy)] == "busy");
static_assert(order_statuses[order_status_index(protocol::GatewayStatus::rate_limited)] ==
              "rate_limited");
static_assert(order_statuses[order_status_index(protocol::GatewayStatus::sold_out)] == "sold_out");

// Abuse limits (config.hpp, docs/protocol.md), counted each time one refuses something.
enum class Limit : std::uint8_t {
  accepts,                       // the server's accept rate: closed at once
  accepts_per_source,            // upgrade: HTTP 429
  connections_per_source,        // upgrade: HTTP 429
  connections_per_user,          // hello: rate_limited, close 1008
  orders_per_connection,         // order_result rate_limited
  subscriptions_per_connection,  // error rate_limited
  waitlist_full,                 // order_result sold_out: the drop's waitlist is at its cap
  requests_per_connection,       // rate_limited; closed 1008 past the refusals' own budget
  queue_share,                   // rate_limited: the connection's share of the engine queue
  http_connections,              // plain HTTP connections past http_connections_max: closed
  host_key_failures,             // host calls from an address that guessed too often: 429
  http_connections_per_source,   // plain HTTP connections from one address: closed
};
inline constexpr std::array<std::string_view, 12> limit_names = {"accepts",
                                                                 "accepts_per_source",
                                                                 "connections_per_source",
                                                                 "connections_per_user",
                                                                 "orders_per_connection",
                                                                 "subscriptions_per_connection",
                                                                 "waitlist_full",
                                                                 "requests_per_connection",
                                                                 "queue_share",
                                                                 "http_connections",
                                                                 "host_key_failures",
                                                                 "http_connections_per_source"};

struct Metrics {
  using Counter = std::atomic<std::uint64_t>;
  Counter connections_open{0};
  Counter http_connections_open{0};  // HTTP sessions (an upgrade leaves when its session ends)
  Counter connections_accepted{0};
  Counter connections_refused{0};  // over connections_max
  std::array<Counter, limit_names.size()> limited{};
  Counter messages_in{0};
  Counter messages_out{0};
  Counter frames_superseded{0};  // stale tick/stock frames a slow viewer never got
  Counter slow_viewers_closed{0};
  Counter idle_viewers_closed{0};  // silent through a ping (WebsocketSession::sweep)
  Counter protocol_errors{0};
  Counter tls_handshakes_failed{0};  // not TLS, refused, or too slow
  Counter proxy_headers_refused{0};  // a trusted proxy's connection without a valid header
  Counter tls_reloads_failed{0};     // SIGHUP found files that do not load: the old ones stay
  Counter tls_expires_at_s{0};       // the certificate in use; 0 without TLS
  // The host accounts (HostDirectory) as last read, and when (Unix ms); 0: no directory here
  // (an engine) or not read yet.
  Counter host_accounts{0};
  Counter host_accounts_read_at_ms{0};
  std::array<Counter, order_statuses.size()> orders{};
  Counter orders_at_edge{0};  // answered sold_out by an I/O thread (edge_gate.hpp), in `orders` too
  Counter engine_queue_depth{0};
  Counter engine_queue_max{0};  // limits.engine_queue_max, where an engine thread runs
  Counter engine_batches{0};
  Counter releases_pending{0};
  Counter answers_repeated{0};  // a gateway's: order answers received twice, delivered once
  // An order inside the server: from its frame read (or its command read, on an engine of the
  // cluster) to its answer handed to the connection's I/O thread, and two of the stages.
  Histogram order_latency;       // the whole of it
  Histogram order_queue_wait;    // read until the engine thread decides it
  Histogram order_durable_wait;  // decided until released: the journal making it durable
  Histogram fanout_lag;          // a drop update's wait for each I/O thread that fans it out
  // Host API calls and GET /drops, from their request read to their reply, by route: each
  // host command's name (host::command_names), then "tokens", then "hosts" (the operator's
  // calls on host accounts), then "refused" for calls answered before they became a command (a
  // wrong key, bad input, an unknown route).
  static constexpr std::size_t host_route_tokens = host::command_names.size();
  static constexpr std::size_t host_route_hosts = host_route_tokens + 1;
  static constexpr std::size_t host_route_refused = host_route_hosts + 1;
  std::array<Histogram, host_route_refused + 1> host_calls;
  // Each journal batch once durable (for an engine of the cluster, every shard's together).
  Histogram journal_round_trip;  // sent until Redis answered, fsync included
  CountHistogram journal_batch_events;
  RecoveryHistogram recovery;  // each journal this process recovered (one per shard it took)

  void count_order(engine::OrderOutcome outcome) {
    orders[order_status_index(outcome)].fetch_add(1, std::memory_order_relaxed);
  }
  void count_order(protocol::GatewayStatus status) {
    orders[order_status_index(status)].fetch_add(1, std::memory_order_relaxed);
  }

  void count_limited(Limit limit) {
    limited[static_cast<std::size_t>(limit)].fetch_add(1, std::memory_order_relaxed);
  }

  // `journal`: null in a gateway, which has none.
  std::string render(const journal::JournalStatus* journal) const;
};

}  // namespace flashsale::gateway
