// flashsale: the server. `flashsale --config configs/dev.toml`; flags override the file so
// tests and operators can run several side by side.
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <optional>

#include "flashsale/gateway/config.hpp"
#include "flashsale/gateway/server.hpp"

int main(int argc, char** argv) {
  CLI::App app{"flashsale: flash sales inside live streams"};
  std::string config_path;
  std::string listen;
  std::string redis;
  std::string prefix;
  unsigned io_threads = 0;
  std::string role;
  std::uint32_t shards = 0;
  std::vector<std::uint32_t> preferred;
  std::string id;
  app.add_option("--config", config_path, "TOML configuration file")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--listen", listen, "HOST:PORT to serve on (overrides server.listen)");
  app.add_option("--redis", redis,
                 "journal Redis, HOST:PORT, redis://[USER[:PASSWORD]@]HOST:PORT, a unix socket "
                 "path or sentinel://[USER[:PASSWORD]@]HOST:PORT,…/NAME (overrides journal.redis)");
  std::optional<std::uint32_t> min_replicas;
  app.add_option("--min-replicas", min_replicas,
                 "replicas that must have a batch before it counts as durable (overrides "
                 "journal.min_replicas)")
      ->check(CLI::Range(0u, 64u));
  app.add_option("--journal-prefix", prefix, "journal key prefix (overrides journal.prefix)");
  app.add_option("--io-threads", io_threads, "I/O threads (overrides server.io_threads)")
      ->check(CLI::Range(1u, 64u));
  app.add_option("--role", role, "all (default): one process; gateway; engine (docs/scaling.md)")
      ->check(CLI::IsMember({"all", "gateway", "engine"}));
  app.add_option("--shards", shards, "shards of the deployment (overrides cluster.shards)")
      ->check(CLI::Range(1u, 1024u));
  app.add_option("--prefer", preferred, "an engine's preferred shards, e.g. --prefer 0 1")
      ->delimiter(',');
  app.add_option("--id", id, "this process's name in Redis (overrides cluster.id)");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  try {
    flashsale::gateway::GatewayConfig config = flashsale::gateway::load_config(config_path);
    if (!listen.empty()) config.listen = listen;
    if (!redis.empty()) config.journal.redis = redis;
    if (min_replicas) config.journal.min_replicas = *min_replicas;
    if (!prefix.empty()) config.journal.prefix = prefix;
    if (io_threads != 0) config.io_threads = io_threads;
    using flashsale::gateway::Role;
    if (!role.empty())
      config.cluster.role = role == "gateway"  ? Role::gateway
                            : role == "engine" ? Role::engine
                                               : Role::all;
    if (shards != 0) config.cluster.shards = shards;
    if (!preferred.empty()) config.cluster.preferred_shards = preferred;
    if (!id.empty()) config.cluster.id = id;
    // An engine has no viewers: what it listens on is its status.
    if (config.cluster.role == Role::engine && !listen.empty())
      config.cluster.status_listen = listen;
    flashsale::gateway::validate(config);
    return flashsale::gateway::Server(std::move(config)).run();
  } catch (const std::exception& error) {
    spdlog::error("flashsale: {}", error.what());
    return 2;
  }
}
