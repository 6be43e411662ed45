// Loading the server's TOML configuration with toml++; docs/operations.md lists every key.
#include "flashsale/gateway/config.hpp"

#include <toml++/toml.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "address_set.hpp"

namespace flashsale::gateway {

namespace {

[[noreturn]] void bad(const std::string& key, const std::string& problem) {
  throw std::runtime_error("config: " + key + ": " + problem);
}

// Reads table.key into `out` if present, checking its type and range.
template <typename Number>
void read_number(const toml::table& table, const std::string& section, const char* key, Number& out,
                 double min, double max) {
  const toml::node* node = table.get(key);
  if (node == nullptr) return;
  double value = 0;
  if (const auto integer = node->value<std::int64_t>()) {
    value = static_cast<double>(*integer);
  } else if (const auto real = node->value<double>(); real && std::is_floating_point_v<Number>) {
    value = *real;
  } else {
    bad(section + "." + key, "must be a number");
  }
  if (value < min || value > max)
    bad(section + "." + key,
        "must be between " + std::to_string(min) + " and " + std::to_string(max));
  out = static_cast<Number>(value);
}

void read_ms(const toml::table& table, const std::string& section, const char* key,
             std::chrono::milliseconds& out, double max_ms) {
  std::int64_t value = out.count();
  read_number(table, section, key, value, 1, max_ms);
  out = std::chrono::milliseconds(value);
}

void read_string(const toml::table& table, const std::string& section, const char* key,
                 std::string& out) {
  const toml::node* node = table.get(key);
  if (node == nullptr) return;
  const auto value = node->value<std::string>();
  if (!value) bad(section + "." + key, "must be a string");
  out = *value;
}

void read_strings(const toml::table& table, const std::string& section, const char* key,
                  std::vector<std::string>& out) {
  const toml::node* node = table.get(key);
  if (node == nullptr) return;
  const toml::array* array = node->as_array();
  if (array == nullptr) bad(section + "." + key, "must be an array of strings");
  out.clear();
  for (const toml::node& item : *array) {
    const auto value = item.value<std::string>();
    if (!value) bad(section + "." + key, "must be an array of strings");
    out.push_back(*value);
  }
}

// One of two spellings: `first` (the default, as `out` holds it) or `second`.
template <typename Choice>
void read_choice(const toml::table& table, const std::string& section, const char* key, Choice& out,
                 std::string_view first, std::pair<std::string_view, Choice> second) {
  std::string value(first);
  read_string(table, section, key, value);
  if (value == second.first) {
    out = second.second;
  } else if (value != first) {
    bad(section + "." + key,
        "must be \"" + std::string(first) + "\" or \"" + std::string(second.first) + "\"");
  }
}

// A secret kept in a file of its own (the first line), so that the config file can be read by
// more people than the secret: if `key` is set, the file must be readable.
void read_secret_file(const toml::table& table, const std::string& section, const char* key,
                      std::string& out) {
  std::string path;
  read_string(table, section, key, path);
  if (path.empty()) return;
  std::ifstream file(path);
  if (!file || !std::getline(file, out)) bad(section + "." + key, "cannot be read");
}

// journal.redis_user and the password, from journal.redis_password_file (its first line) or
// else the environment's FLASHSALE_REDIS_PASSWORD: never from the config file itself, which is
// read by more people than the password should be.
// The sentinels' own, the same way: journal.sentinel_user, journal.sentinel_password_file or
// FLASHSALE_SENTINEL_PASSWORD.
void read_redis_credentials(const toml::table& journal, journal::JournalConfig& out) {
  read_string(journal, "journal", "redis_user", out.redis_user);
  if (const char* password = std::getenv("FLASHSALE_REDIS_PASSWORD")) out.redis_password = password;
  read_secret_file(journal, "journal", "redis_password_file", out.redis_password);
  read_string(journal, "journal", "sentinel_user", out.sentinel_user);
  if (const char* password = std::getenv("FLASHSALE_SENTINEL_PASSWORD"))
    out.sentinel_password = password;
  read_secret_file(journal, "journal", "sentinel_password_file", out.sentinel_password);
}

const toml::table& section(const toml::table& root, const char* name) {
  static const toml::table empty;
  const toml::node* node = root.get(name);
  if (node == nullptr) return empty;
  if (!node->is_table()) bad(name, "must be a table");
  return *node->as_table();
}

}  // namespace

GatewayConfig load_config(const std::string& path) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& error) {
    throw std::runtime_error("config: " + path + ": " + std::string(error.description()));
  }
  GatewayConfig config;
  const toml::table& server = section(root, "server");
  read_string(server, "server", "listen", config.listen);
  read_number(server, "server", "io_threads", config.io_threads, 1, 64);
  read_string(server, "server", "ops_listen", config.ops_listen);
  read_strings(server, "server", "allowed_origins", config.allowed_origins);
  read_string(server, "server", "tls_certificate", config.tls_certificate);
  read_string(server, "server", "tls_private_key", config.tls_private_key);
  read_strings(server, "server", "proxy_protocol_from", config.proxy_protocol_from);
  read_choice(server, "server", "log_format", config.log_format, "text", {"json", LogFormat::json});

  const toml::table& auth = section(root, "auth");
  read_choice(auth, "auth", "mode", config.auth, "token", {"dev", AuthMode::dev});
  read_string(auth, "auth", "token_secret", config.token_secret);
  read_string(auth, "auth", "host_key", config.host_key);
  read_string(auth, "auth", "host_id", config.host_id);
  // The operator's key, like the Redis password: a file or the environment keep it out of a
  // config file that more people read.
  read_string(auth, "auth", "admin_key", config.admin_key);
  if (const char* key = std::getenv("FLASHSALE_ADMIN_KEY")) config.admin_key = key;
  read_secret_file(auth, "auth", "admin_key_file", config.admin_key);
  read_secret_file(auth, "auth", "token_secret_file", config.token_secret);
  read_secret_file(auth, "auth", "host_key_file", config.host_key);
  read_number(auth, "auth", "token_lifetime_max_s", config.token_lifetime_max_s, 60, 31'536'000);

  const toml::table& journal = section(root, "journal");
  read_string(journal, "journal", "redis", config.journal.redis);
  read_redis_credentials(journal, config.journal);
  read_string(journal, "journal", "prefix", config.journal.prefix);
  read_choice(journal, "journal", "ack", config.ack, "durable", {"async", AckMode::async});
  read_ms(journal, "journal", "lease_ms", config.journal.lease_ttl, 600'000);
  read_ms(journal, "journal", "redis_timeout_ms", config.journal.redis_timeout, 600'000);
  read_number(journal, "journal", "snapshot_every_events", config.journal.snapshot_every_events, 1,
              1e12);
  read_ms(journal, "journal", "snapshot_every_ms", config.journal.snapshot_every, 86'400'000);
  read_choice(journal, "journal", "history", config.journal.keep_history, "trimmed",
              {"kept", true});
  read_number(journal, "journal", "orders_kept", config.journal.orders_kept, 1'000, 1e10);
  read_number(journal, "journal", "min_replicas", config.journal.min_replicas, 0, 64);
  read_ms(journal, "journal", "replica_timeout_ms", config.journal.replica_timeout, 600'000);

  const toml::table& limits = section(root, "limits");
  Limits& l = config.limits;
  read_number(limits, "limits", "frame_bytes_max", l.frame_bytes_max, 256, 1 << 20);
  read_number(limits, "limits", "queue_bytes_max", l.queue_bytes_max, 4096, 1 << 30);
  read_number(limits, "limits", "connections_max", l.connections_max, 1, 1e7);
  read_number(limits, "limits", "connections_per_user", l.connections_per_user, 1, 1e6);
  read_number(limits, "limits", "subscriptions_max", l.subscriptions_max, 1, 1e4);
  read_number(limits, "limits", "host_key_failures_per_minute", l.host_key_failures_per_minute, 1,
              1e6);
  read_number(limits, "limits", "hosts_max", l.hosts_max, 1, 1e7);
  read_number(limits, "limits", "accepts_per_second", l.accepts_per_second, 1, 1e7);
  read_number(limits, "limits", "accepts_burst", l.accepts_burst, 1, 1e7);
  read_number(limits, "limits", "connections_per_source", l.connections_per_source, 1, 1e7);
  read_number(limits, "limits", "accepts_per_source_per_second", l.accepts_per_source_per_second,
              0.01, 1e7);
  read_number(limits, "limits", "accepts_per_source_burst", l.accepts_per_source_burst, 1, 1e7);
  read_number(limits, "limits", "waitlist_limit_max", l.waitlist_limit_max, 0,
              double{engine::waitlist_limit_max});
  read_number(limits, "limits", "orders_per_second", l.orders_per_second, 0.01, 1e6);
  read_number(limits, "limits", "orders_burst", l.orders_burst, 1, 1e6);
  read_number(limits, "limits", "requests_per_second", l.requests_per_second, 0.01, 1e6);
  read_number(limits, "limits", "requests_burst", l.requests_burst, 1, 1e6);
  read_number(limits, "limits", "queued_per_connection", l.queued_per_connection, 1, 1e6);
  read_ms(limits, "limits", "handshake_timeout_ms", l.handshake_timeout, 600'000);
  read_ms(limits, "limits", "idle_timeout_ms", l.idle_timeout, 86'400'000);
  read_number(limits, "limits", "http_body_bytes_max", l.http_body_bytes_max, 1024, 1 << 26);
  read_number(limits, "limits", "http_connections_max", l.http_connections_max, 1, 1e6);
  read_number(limits, "limits", "http_connections_per_source", l.http_connections_per_source, 1,
              1e6);
  read_ms(limits, "limits", "http_connection_ms_max", l.http_connection_max, 86'400'000);
  read_number(limits, "limits", "engine_queue_max", l.engine_queue_max, 16, 1e8);
  read_number(limits, "limits", "stock_deliveries_per_second", l.stock_deliveries_per_second, 100,
              1e8);
  read_number(limits, "limits", "tick_deliveries_per_second", l.tick_deliveries_per_second, 1, 1e8);

  const toml::table& cluster = section(root, "cluster");
  read_number(cluster, "cluster", "shards", config.cluster.shards, 1, 1024);
  read_ms(cluster, "cluster", "standby_delay_ms", config.cluster.standby_delay, 600'000);
  read_ms(cluster, "cluster", "forward_timeout_ms", config.cluster.forward_timeout, 600'000);
  read_ms(cluster, "cluster", "unserved_after_ms", config.cluster.unserved_after, 600'000);
  read_string(cluster, "cluster", "id", config.cluster.id);
  read_string(cluster, "cluster", "status_listen", config.cluster.status_listen);

  const toml::table& engine = section(root, "engine");
  read_number(engine, "engine", "drops_max", config.engine.drops_max, 1, 1e5);
  read_number(engine, "engine", "streams_max", config.engine.streams_max, 1, 1e5);
  read_number(engine, "engine", "streams_per_host_max", config.engine.streams_per_host_max, 1, 1e5);
  read_number(engine, "engine", "decisions_per_drop_max", config.engine.decisions_per_drop_max, 1,
              4e9);
  read_number(engine, "engine", "decisions_per_drop_reserve",
              config.engine.decisions_per_drop_reserve, 0, 4e9);
  read_number(engine, "engine", "decisions_per_buyer_max", config.engine.decisions_per_buyer_max, 1,
              1e6);
  validate(config);
  return config;
}

void validate(const GatewayConfig& config) {
  if (config.host_key.empty() && config.admin_key.empty())
    bad("auth.admin_key", "is required unless auth.host_key configures a host");
  if (!config.host_key.empty() && config.host_key.size() < 8)
    bad("auth.host_key", "must be at least 8 characters");
  if (!config.admin_key.empty() && config.admin_key.size() < 12)
    bad("auth.admin_key", "must be at least 12 characters");
  if (config.admin_key == config.host_key)
    bad("auth.admin_key", "must not be the configured host's key");
  if (!engine::is_valid_host_id(config.host_id))
    bad("auth.host_id", "must be 1-32 of [A-Za-z0-9_.-]");
  if (config.auth == AuthMode::token && config.token_secret.size() < 16)
    bad("auth.token_secret", "must be at least 16 characters with mode = \"token\"");
  // configs/dev.toml's secrets are public: token mode is for real viewers, so not with them.
  if (config.auth == AuthMode::token && config.token_secret == "dev-secret-change-me-0123456789")
    bad("auth.token_secret", "is the development secret from configs/dev.toml; set your own");
  if (config.auth == AuthMode::token && config.host_key == "dev-host-key")
    bad("auth.host_key", "is the development key from configs/dev.toml; set your own");
  if (config.auth == AuthMode::token && config.admin_key == "dev-admin-key")
    bad("auth.admin_key", "is the development key from configs/dev.toml; set your own");
  try {
    config.journal.redis_endpoint();
  } catch (const std::invalid_argument& error) {
    bad("journal.redis", error.what());
  }
  if (!engine::is_valid_drop_id(config.journal.prefix))
    bad("journal.prefix", "must be 1-64 of [A-Za-z0-9_.-]");
  if (config.engine.decisions_per_drop_reserve > config.engine.decisions_per_drop_max)
    bad("engine.decisions_per_drop_reserve", "must not exceed decisions_per_drop_max");
  if (config.tls_certificate.empty() != config.tls_private_key.empty())
    bad(config.tls_certificate.empty() ? "server.tls_certificate" : "server.tls_private_key",
        "TLS needs both the certificate and the private key");
  try {
    const AddressSet checked(config.proxy_protocol_from);
  } catch (const std::invalid_argument& error) {
    bad("server.proxy_protocol_from", error.what());
  }
  if (config.limits.orders_burst < 1) bad("limits.orders_burst", "must be at least 1");
  if (!config.cluster.id.empty() &&
      (config.cluster.id.size() > 32 || !engine::is_valid_drop_id(config.cluster.id)))
    bad("cluster.id", "must be 1-32 of [A-Za-z0-9_.-]");
  if (config.cluster.unserved_after < std::chrono::milliseconds(1'500))
    bad("cluster.unserved_after_ms",
        "must be at least 1500 (engines say they are alive every second)");
  for (const std::uint32_t shard : config.cluster.preferred_shards)
    if (shard >= config.cluster.shards) bad("cluster.shards", "a preferred shard is out of range");
}

}  // namespace flashsale::gateway
