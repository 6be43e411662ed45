// See cluster_engine.hpp; docs/scaling.md has the whole argument.
#include "cluster_engine.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "cluster.hpp"
#include "command_applier.hpp"
#include "command_stream.hpp"
#include "engine_status.hpp"
#include "event_log.hpp"
#include "lease_watch.hpp"
#include "remote_outbox.hpp"
#include "sequencer.hpp"
#include "shard_redis.hpp"
#include "status_server.hpp"

namespace flashsale::gateway {

namespace {

class ShardWorker {
 public:
  ShardWorker(const GatewayConfig& config, std::uint32_t shard, bool preferred,
              std::string consumer, RedisPipe& out, Metrics& metrics, const std::atomic<bool>& stop)
      : config_(config),
        shard_(shard),
        preferred_(preferred),
        consumer_(std::move(consumer)),
        out_(out),
        metrics_(metrics),
        stop_(stop),
        thread_([this] { run(); }) {}
  ~ShardWorker() { thread_.join(); }

  // Any thread.
  ShardStatus status() const {
    std::lock_guard lock(status_mutex_);
    return {shard_, serving_ != nullptr ? std::optional(serving_->status()) : std::nullopt};
  }

 private:
  void run() {
    while (!stop_) {
      if (wait_for_free_lease(config_, shard_, preferred_, stop_)) serve();
    }
  }

  void serve() {
    journal::JournalConfig journal_config = config_.journal;
    journal_config.prefix = cluster::shard_prefix(config_.journal.prefix, shard_);
    journal_config.wait_for_lease = false;  // another standby was quicker: back to watching
    journal::Journal journal(journal_config);
    ShardFanout fanout(out_, cluster::updates_channel(config_.journal.prefix, shard_));
    JournalLog log(journal);
    Sequencer sequencer(config_, log, {&fanout}, metrics_);
    journal::RecoveryStats recovered;
    try {
      recovered = sequencer.recover();
    } catch (const journal::LeaseHeld&) {
      return;
    } catch (const std::exception& error) {
      spdlog::error("shard {}: cannot recover: {}", shard_, error.what());
      nap(std::chrono::seconds(1), stop_);
      return;
    }
    sequencer.start();
    {
      std::lock_guard lock(status_mutex_);
      serving_ = &journal;
    }
    // Said once /readyz says it too: operators and tests read the one to trust the other.
    spdlog::info(
        "shard {}: serving as {} (recovered {} events in {:.1f} ms, after waiting {:.1f} "
        "ms for the lease)",
        shard_, consumer_, recovered.last_sequence, recovered.total_ms, recovered.lease_wait_ms);
    CommandApplier applier(config_, shard_, out_, sequencer, stop_);
    CommandStream commands(config_, shard_, consumer_, journal, sequencer, applier, out_, stop_,
                           recovered.cursor);
    const bool fenced = !commands.run();
    {
      std::lock_guard lock(status_mutex_);
      serving_ = nullptr;
    }
    sequencer.stop(config_.journal.redis_timeout);
    journal.stop(config_.journal.redis_timeout);
    spdlog::info("shard {}: no longer served here ({})", shard_, fenced ? "fenced" : "stopping");
  }

  const GatewayConfig& config_;
  const std::uint32_t shard_;
  const bool preferred_;
  const std::string consumer_;
  RedisPipe& out_;
  Metrics& metrics_;
  const std::atomic<bool>& stop_;
  mutable std::mutex status_mutex_;
  const journal::Journal* serving_ = nullptr;  // under status_mutex_, while serving
  std::thread thread_;                         // last
};

}  // namespace

bool shard_count_agrees(const GatewayConfig& config) {
  const journal::RedisEndpoint endpoint = config.journal.redis_endpoint();
  while (true) {
    journal::RedisConnection redis(endpoint, config.journal.redis_timeout);
    const std::string key = cluster::cluster_key(config.journal.prefix);
    const std::string shards = std::to_string(config.cluster.shards);
    if (redis.command({"SET", key, shards, "NX"}) == nullptr) {
      spdlog::warn("cluster: cannot reach redis {}; retrying", endpoint.describe());
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      continue;
    }
    const journal::Reply stored = redis.command({"GET", key});
    if (stored == nullptr) continue;
    if (journal::text_of(stored) == shards) return true;
    spdlog::error("cluster: this deployment has {} shards ({} in redis), not {}",
                  journal::text_of(stored), key, shards);
    return false;
  }
}

int run_engine_node(const GatewayConfig& config, const std::atomic<bool>& stop) {
  if (!shard_count_agrees(config)) return 2;
  Metrics metrics;
  const std::string consumer = cluster::process_name(config.cluster.id);
  RedisPipe out(config.journal.redis_endpoint(), config.journal.redis_timeout, std::size_t{1} << 20,
                "engine answers");
  std::vector<std::unique_ptr<ShardWorker>> workers;
  std::mutex workers_mutex;  // the status port reads them while they are being started
  const auto shard_statuses = [&] {
    std::lock_guard lock(workers_mutex);
    std::vector<ShardStatus> shards;
    shards.reserve(workers.size());
    for (const auto& worker : workers) shards.push_back(worker->status());
    return shards;
  };
  // Listening first: an address in use ends the process with its error before any shard's
  // thread runs.
  std::optional<StatusServer> status;
  if (!config.cluster.status_listen.empty()) {
    status.emplace(
        "engine status", config.cluster.status_listen, config.limits, metrics,
        [&] { return engine_health(consumer, shard_statuses()); },
        [&] { return engine_metrics(metrics, shard_statuses()); });
  }
  const auto& preferred = config.cluster.preferred_shards;
  for (std::uint32_t shard = 0; shard < config.cluster.shards; ++shard) {
    const bool prefers = preferred.empty() ||
                         std::find(preferred.begin(), preferred.end(), shard) != preferred.end();
    auto worker =
        std::make_unique<ShardWorker>(config, shard, prefers, consumer, out, metrics, stop);
    std::lock_guard lock(workers_mutex);
    workers.push_back(std::move(worker));
  }
  spdlog::info(
      "flashsale: engine {} serving or standing by for {} shards (preferring {})", consumer,
      config.cluster.shards,
      preferred.empty() ? std::string("all") : fmt::format("{}", fmt::join(preferred, ",")));
  while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  status.reset();   // nothing reads the workers any more
  workers.clear();  // each returns once `stop` is seen and its shard is handed back
  return 0;
}

}  // namespace flashsale::gateway
