// See lease_watch.hpp.
#include "lease_watch.hpp"

#include "cluster.hpp"
#include "shard_redis.hpp"

namespace flashsale::gateway {

bool wait_for_free_lease(const GatewayConfig& config, std::uint32_t shard, bool preferred,
                         const std::atomic<bool>& stop) {
  using Clock = std::chrono::steady_clock;
  const journal::RedisEndpoint endpoint = config.journal.redis_endpoint();
  const std::string lease_key =
      "{" + cluster::shard_prefix(config.journal.prefix, shard) + "}:lease";
  Clock::time_point free_since{};  // {}: held when last looked
  bool seen_held = false;
  std::unique_ptr<journal::RedisConnection> redis;
  while (!stop) {
    if (!connect(redis, endpoint, config.journal.redis_timeout, stop)) continue;
    const journal::Reply ttl = redis->command({"PTTL", lease_key});
    if (ttl == nullptr) continue;
    if (ttl->type == REDIS_REPLY_INTEGER && ttl->integer == -2) {  // no such key: free
      if (free_since == Clock::time_point{}) free_since = Clock::now();
      if (preferred || seen_held || Clock::now() - free_since >= config.cluster.standby_delay)
        return true;
    } else {
      free_since = {};
      seen_held = true;
    }
    nap(std::chrono::milliseconds(50), stop);
  }
  return false;
}

}  // namespace flashsale::gateway
