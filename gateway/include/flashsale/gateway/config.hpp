// The server's configuration: a TOML file (configs/*.toml) plus command-line overrides. Every
// limit the gateway enforces is here, with its default, and is checked at start-up: a bad
// value stops the server with a message naming the key, before anything listens.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "flashsale/engine/engine.hpp"
#include "flashsale/journal/journal.hpp"

namespace flashsale::gateway {

enum class AuthMode { token, dev };
enum class AckMode { durable, async };

// What this process is (docs/scaling.md): the whole product in one process, a gateway that
// holds connections and forwards to engines through Redis, or an engine that serves the shards
// it holds the lease of.
enum class Role { all, gateway, engine };

struct ClusterConfig {
  Role role = Role::all;
  // Drops are spread over this many shards by a hash of their id; every process of a
  // deployment must agree (Redis remembers the first value and refuses others).
  std::uint32_t shards = 4;
  // An engine takes these shards as soon as their lease is free. Any other shard it takes as
  // soon as its lease lapses if it saw the shard served (a failover), and otherwise only after
  // it has been free for `standby_delay`, so that each shard's preferred engine wins at
  // start-up and the others stand by. Empty: all shards are preferred.
  std::vector<std::uint32_t> preferred_shards;
  std::chrono::milliseconds standby_delay{1'000};
  // This process's name in Redis (a gateway's reply stream, an engine's consumer name):
  // 1-32 of [A-Za-z0-9_.-]. Empty: made from the host name and process id.
  std::string id;
  // Engine: HOST:PORT for /healthz and /metrics (`--listen` with --role engine); empty: none.
  std::string status_listen;
  // Gateway: a shard whose engine has not said it is alive (once a second) for this long is
  // unserved: its orders are answered `unavailable` at once instead of waiting in Redis.
  std::chrono::milliseconds unserved_after{3'000};
  // Gateway: a host API call forwarded to an engine that has not answered by then gets 503.
  std::chrono::milliseconds forward_timeout{5'000};
};

struct Limits {
  std::size_t frame_bytes_max = 4096;        // larger frames: error too_large, close 1009
  std::size_t queue_bytes_max = 256 * 1024;  // per connection, outbound; past it: close 1013
  // WebSocket viewers per process (the fd limit is 20,000); past it an upgrade gets 503.
  std::uint32_t connections_max = 19'000;
  std::uint32_t connections_per_user = 4;  // past it: error rate_limited, close 1008
  double accepts_per_second = 5'000;       // new connections, token bucket; past it: closed at once
  double accepts_burst = 2'000;
  // Per source address, at the WebSocket upgrade; past either: HTTP 429 rate_limited. Generous
  // by default because a carrier-grade NAT puts many real viewers behind one address.
  std::uint32_t connections_per_source = 4'096;
  double accepts_per_source_per_second = 500;
  double accepts_per_source_burst = 1'000;
  // The largest waitlist_limit a host may give a drop (the per-drop cap on waitlist joins);
  // orders past a drop's cap are sold_out, counted as limit "waitlist_full".
  std::uint32_t waitlist_limit_max = 100'000;
  std::uint32_t subscriptions_max = 16;  // per connection
  // Wrong host keys one address may send a minute; past them its host calls get 429.
  double host_key_failures_per_minute = 10;
  // Host accounts the operator may create (revoked ones count: their ids stay taken).
  std::uint32_t hosts_max = 10'000;
  double orders_per_second = 5;  // token bucket per connection
  double orders_burst = 10;
  // Every message for the engine (order, subscribe, confirm, cancel), per connection: a token
  // bucket; refusals past it are budgeted the same, and a connection past both is closed 1008.
  double requests_per_second = 20;
  double requests_burst = 40;
  // Requests of one connection waiting in the engine's queue; at most a quarter of
  // engine_queue_max whatever is set, so that no connection can fill the queue (queue_share()).
  std::uint32_t queued_per_connection = 16;
  std::chrono::milliseconds handshake_timeout{5'000};
  std::chrono::milliseconds idle_timeout{30'000};  // pings are sent at half of it
  std::size_t http_body_bytes_max = 64 * 1024;
  // Plain HTTP connections (host API, pages, metrics) per process, beside connections_max
  // viewers; and how long one may be kept alive, however busy.
  std::uint32_t http_connections_max = 512;
  // Of them, from one source address: a page load opens ~6, a host console a few more.
  std::uint32_t http_connections_per_source = 32;
  std::chrono::milliseconds http_connection_max{60'000};
  std::size_t engine_queue_max = 65'536;  // commands waiting for the engine; past it: busy
  std::uint32_t queue_share() const {
    return static_cast<std::uint32_t>(std::min<std::size_t>(
        queued_per_connection, std::max<std::size_t>(1, engine_queue_max / 4)));
  }
  // Stock updates to all viewers together, per second: with 18,000 viewers, 10 updates a second
  // would be 180,000 frames a second, more than the I/O threads can send beside the orders.
  double stock_deliveries_per_second = 30'000;
  // Countdown ticks to all viewers together, per second: past this many viewers a tick comes
  // every 2, 3, … whole seconds instead of every second. Clients count down from the `drop`
  // message's opens_at_ms on their clock offset (docs/protocol.md); ticks only correct drift.
  double tick_deliveries_per_second = 30'000;
};

enum class LogFormat : std::uint8_t { text, json };

struct GatewayConfig {
  std::string listen = "127.0.0.1:8080";
  // "text": one line per event for people; "json": one object per line for log pipelines.
  LogFormat log_format = LogFormat::text;
  unsigned io_threads = 1;
  // HOST:PORT for /healthz and /metrics alone (e.g. 127.0.0.1:9100, for Prometheus and load
  // balancers); when set, the viewers' port no longer answers them. Empty: on `listen`.
  std::string ops_listen;
  // Origins whose pages may open the viewers' WebSocket (e.g. "https://shop.example"); others
  // get 403 at the upgrade. Empty: any, and clients that send no Origin (apps) always may.
  std::vector<std::string> allowed_origins;
  // TLS on `listen` (https://, wss://): PEM files, read at start and again on SIGHUP. Both or
  // neither; with them the port speaks TLS only.
  std::string tls_certificate;  // the server's certificate, then the chain up to a root
  std::string tls_private_key;
  // Addresses and networks (e.g. "10.0.0.5", "10.0.0.0/8") of load balancers whose connections
  // start with a PROXY protocol header (v1 or v2) naming the client: the per-source limits then
  // count the client. Connections from them without a valid header are closed; from anyone
  // else a header is not read. Empty: no one.
  std::vector<std::string> proxy_protocol_from;
  AuthMode auth = AuthMode::token;
  std::string token_secret;  // required with auth = "token"
  // The operator's key (Authorization: Bearer <admin_key>): acts on every stream and drop and
  // manages host accounts (/api/admin/hosts). Empty: no operator.
  std::string admin_key;
  // A host configured rather than created: `host_key` is the key of host `host_id`. For
  // development and for a single-host deployment; it cannot be revoked over the API (remove
  // it here). Empty: none. At least one of admin_key and host_key is required.
  std::string host_key;
  std::string host_id = "host";
  std::int64_t token_lifetime_max_s = 86'400;  // tokens expiring later than this are refused
  AckMode ack = AckMode::durable;
  Limits limits;
  engine::EngineLimits engine;
  journal::JournalConfig journal;
  ClusterConfig cluster;
};

// Reads `path` (TOML). Throws std::runtime_error naming the file, key and problem.
GatewayConfig load_config(const std::string& path);
// Checks cross-field rules; throws std::runtime_error.
void validate(const GatewayConfig& config);

}  // namespace flashsale::gateway
