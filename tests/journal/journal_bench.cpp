// bench_journal: durable orders per second through engine + journal, against the design most
// flash-sale systems use instead, on the same private redis-server (configs/redis.conf:
// appendonly yes, appendfsync always), in the same run.
//
//   engine + journal  1M distinct buyers for 11,483 units, 1,024 orders per place_orders call,
//                     every outcome (reserved or sold_out) journaled; timed until the last one
//                     is durable (Redis has fsynced it).
//   Lua per order     one EVALSHA per order that checks the buyer's limit, decrements stock and
//                     records the buyer; pipelined 128 deep on 2 connections (the machine has 2
//                     cores, Redis takes one).
//   recovery          a fresh engine recovering those events from the stream alone, and from a
//                     snapshot; then the same for a drop of 10 variants (sizes 38-47, the
//                     buyers taking them in turn), against the one-variant figure.
//   replicated        engine + journal again over a replicated set (tests/support/
//                     replicated_redis.hpp: primary, replica, three Sentinels, over TCP, both data
//                     nodes fsyncing), first without WAIT, then with min_replicas = 1: what
//                     replication before acknowledging costs.
//
// Usage: bench_journal [orders]   (default 1,000,000)
#include <spdlog/spdlog.h>

#include <hiredis/hiredis.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "../support/redis_server.hpp"
#include "../support/replicated_redis.hpp"
#include "flashsale/journal/journal.hpp"

namespace {

using namespace flashsale;
using Clock = std::chrono::steady_clock;

constexpr std::uint32_t stock = 11'483;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

journal::JournalConfig config_for(const std::string& redis, const std::string& prefix = "bench") {
  journal::JournalConfig config;
  config.redis = redis;
  config.prefix = prefix;
  config.snapshot_every_events = std::uint64_t{1} << 62;  // only when asked
  config.snapshot_every = std::chrono::hours(24);
  config.pending_bytes_max = std::size_t{1} << 30;
  return config;
}

engine::EngineLimits limits_for(std::uint32_t orders) {
  engine::EngineLimits limits;
  limits.decisions_per_drop_reserve = orders + orders / 4;
  limits.decisions_per_drop_max = limits.decisions_per_drop_reserve;
  return limits;
}

// Plays the orders on a drop of `variants` (1: one unnamed variant); the engine's digest, for
// recovery to compare with.
std::uint64_t play(const journal::JournalConfig& config, const char* label,
                   const std::vector<std::string>& users, std::size_t variants = 1) {
  const auto orders = static_cast<std::uint32_t>(users.size());
  engine::Engine engine(limits_for(orders));
  journal::Journal journal(config);
  journal.recover(engine);
  engine::Events events;
  engine::DropSpec spec{"chestnut", "Chestnuts", 1990, stock, 1, 60'000, 0};
  std::vector<std::string> sizes;
  for (std::size_t size = 0; variants > 1 && size < variants; ++size)
    sizes.push_back(std::to_string(38 + size));
  for (const std::string& size : sizes)
    spec.variants.push_back({size, size, 1990, 0, stock / static_cast<std::uint32_t>(variants)});
  if (!sizes.empty()) {
    spec.price_cents = 0;
    spec.stock = 0;
  }
  engine.create_drop(spec, 1, events);
  engine.start_countdown("chestnut", 0, 1, events);
  journal.append(events);
  events.clear();
  journal.wait_durable(engine.last_sequence(), std::chrono::seconds(10));
  std::vector<engine::PlaceOrder> batch;
  std::vector<engine::OrderResult> results(1024);

  const Clock::time_point start = Clock::now();
  for (std::size_t first = 0; first < users.size(); first += 1024) {
    batch.clear();
    for (std::size_t index = first; index < std::min(users.size(), first + 1024); ++index) {
      batch.push_back({"chestnut", users[index], "c-1", 1,
                       sizes.empty() ? std::string_view() : sizes[index % sizes.size()]});
    }
    engine.place_orders(batch, 2, events, results);
    journal.append(events);
    events.clear();
  }
  const double decided_s = seconds_since(start);
  if (!journal.wait_durable(engine.last_sequence(), std::chrono::minutes(5))) {
    std::printf("%s: journal did not become durable\n", label);
    std::exit(1);
  }
  const double durable_s = seconds_since(start);
  const journal::JournalStatus status = journal.status();
  std::printf(
      "%s: %u orders durable in %.3f s = %.0f orders/s "
      "(decided in %.3f s; %llu batches, %.0f events/batch, %.1f journal bytes/order, last batch "
      "%.2f ms)\n",
      label, orders, durable_s, orders / durable_s, decided_s,
      static_cast<unsigned long long>(status.batches_written),
      static_cast<double>(status.events_written) / static_cast<double>(status.batches_written),
      static_cast<double>(status.bytes_written) / orders, status.last_batch_ms);
  journal.stop(std::chrono::seconds(10));
  return engine.digest();
}

void engine_and_journal(const testing::RedisServer& redis, const std::vector<std::string>& users,
                        std::size_t variants, const std::string& prefix) {
  const auto orders = static_cast<std::uint32_t>(users.size());
  const std::string label = "engine + journal, " + std::to_string(variants) + " variant(s)";
  const std::uint64_t digest =
      play(config_for(redis.socket(), prefix), label.c_str(), users, variants);

  engine::Engine replayed(limits_for(orders));
  journal::Journal reader(config_for(redis.socket(), prefix));
  const journal::RecoveryStats from_stream = reader.recover(replayed);
  std::printf("recovery (stream): %llu events in %.0f ms = %.0f ms per million orders; digest %s\n",
              static_cast<unsigned long long>(from_stream.events_replayed), from_stream.total_ms,
              from_stream.total_ms * 1e6 / orders,
              replayed.digest() == digest ? "equal" : "DIFFERENT");
  reader.append_snapshot(replayed);
  reader.stop(std::chrono::seconds(30));

  engine::Engine restored(limits_for(orders));
  journal::Journal again(config_for(redis.socket(), prefix));
  const journal::RecoveryStats from_snapshot = again.recover(restored);
  std::printf(
      "recovery (snapshot): %.1f MB snapshot in %.0f ms = %.0f ms per million orders; digest %s\n",
      static_cast<double>(from_snapshot.snapshot_bytes) / 1e6, from_snapshot.total_ms,
      from_snapshot.total_ms * 1e6 / orders, restored.digest() == digest ? "equal" : "DIFFERENT");
}

// The usual design: stock and buyers in Redis, one script per order.
constexpr const char* order_lua = R"(
local qty = tonumber(ARGV[2])
local bought = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if bought + qty > tonumber(ARGV[3]) then return -1 end
local left = tonumber(redis.call('GET', KEYS[1]) or '0')
if left < qty then return 0 end
redis.call('DECRBY', KEYS[1], qty)
redis.call('HINCRBY', KEYS[2], ARGV[1], qty)
return 1
)";

void lua_per_order(const testing::RedisServer& redis, const std::vector<std::string>& users) {
  redis.call({"SET", "{lua}:stock", std::to_string(stock)});
  const std::string sha = redis.call({"SCRIPT", "LOAD", order_lua});
  constexpr int connections = 2;
  constexpr std::size_t depth = 128;
  std::vector<long long> sold(connections, 0);
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> threads;
  for (int connection = 0; connection < connections; ++connection) {
    threads.emplace_back([&, connection] {
      redisContext* context = redisConnectUnix(redis.socket().c_str());
      std::size_t sent = 0;
      std::size_t received = 0;
      std::vector<std::size_t> mine;
      for (std::size_t index = static_cast<std::size_t>(connection); index < users.size();
           index += connections)
        mine.push_back(index);
      while (received < mine.size()) {
        while (sent < mine.size() && sent - received < depth) {
          const std::string& user = users[mine[sent++]];
          const char* argv[] = {"EVALSHA",      sha.c_str(),  "2", "{lua}:stock",
                                "{lua}:buyers", user.c_str(), "1", "1"};
          const std::size_t lengths[] = {7, sha.size(), 1, 11, 12, user.size(), 1, 1};
          redisAppendCommandArgv(context, 8, argv, lengths);
        }
        void* reply = nullptr;
        if (redisGetReply(context, &reply) != REDIS_OK) return;
        sold[static_cast<std::size_t>(connection)] += static_cast<redisReply*>(reply)->integer == 1;
        freeReplyObject(reply);
        received += 1;
      }
      redisFree(context);
    });
  }
  for (auto& thread : threads) thread.join();
  const double elapsed_s = seconds_since(start);
  std::printf("Lua per order    : %zu orders in %.3f s = %.0f orders/s (%lld sold)\n", users.size(),
              elapsed_s, static_cast<double>(users.size()) / elapsed_s, sold[0] + sold[1]);
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t orders = argc > 1 ? std::stoul(argv[1]) : 1'000'000;
  spdlog::set_level(spdlog::level::warn);
  std::vector<std::string> users;
  users.reserve(orders);
  for (std::size_t user = 0; user < orders; ++user) users.push_back("user-" + std::to_string(user));
  testing::RedisServer redis;
  const std::string info = redis.call({"INFO", "server"});
  const auto version = info.find("redis_version:");
  std::printf("%s, %s, %zu orders\n",
              info.substr(version, info.find('\r', version) - version).c_str(),
              redis.call({"CONFIG", "GET", "appendfsync"}).c_str(), orders);
  engine_and_journal(redis, users, 1, "bench");
  engine_and_journal(redis, users, 10, "bench-sizes");
  lua_per_order(redis, users);

  testing::ReplicatedRedis replicated;
  journal::JournalConfig config = config_for(replicated.sentinel_url(), "bench-async");
  config.redis_password = replicated.password();
  config.sentinel_password = replicated.password();
  play(config, "replicated, no WAIT", users);
  config.prefix = "bench-wait";
  config.min_replicas = 1;
  play(config, "replicated, WAIT 1", users);
  return 0;
}
