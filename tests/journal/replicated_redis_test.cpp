// ReplicatedRedis, the support of the journal's failover tests, checked on its own: a write the
// replica acknowledged (WAIT) survives the loss of the primary's machine, the Sentinels promote
// the replica, and the lost node, started again empty, comes back as a replica with the data.
// Prints how long the failover and the rejoining took.
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>

#include "../support/replicated_redis.hpp"

namespace flashsale::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

long long milliseconds_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

TEST(ReplicatedRedisSupport, FailsOverWhenThePrimaryIsKilled) {
  ReplicatedRedis redis;
  ASSERT_EQ(redis.primary_port(), redis.port(0)) << redis.report();
  ASSERT_EQ(redis.call(0, {"SET", "order:1", "alice"}), "OK");
  ASSERT_EQ(redis.call(0, {"WAIT", "1", "1000"}), "1") << redis.report();

  const Clock::time_point lost = Clock::now();
  redis.kill_and_wipe(0);
  ASSERT_TRUE(redis.await_primary(redis.port(1), 15s)) << redis.report();
  const long long failover_ms = milliseconds_since(lost);
  std::cout << "failover: node 1 is the primary " << failover_ms << " ms after node 0 was lost\n";
  RecordProperty("failover_ms", std::to_string(failover_ms));
  EXPECT_EQ(redis.primary_port(), redis.port(1));
  EXPECT_EQ(redis.call(1, {"GET", "order:1"}), "alice");
  // Alone, the promoted replica refuses writes (min-replicas-to-write 1): fail closed.
  EXPECT_EQ(redis.call(1, {"SET", "order:2", "bob"}).rfind("NOREPLICAS", 0), 0u);

  // Back with an empty folder and its original config, node 0 claims to be a primary; the
  // Sentinels turn it into a replica of node 1, which gives it the data. About 11 s; the deadline
  // leaves room for a Sentinel's 30 s TILT on a loaded machine.
  const Clock::time_point restarted = Clock::now();
  redis.start(0);
  EXPECT_EQ(redis.call(0, {"DBSIZE"}), "0");
  ASSERT_TRUE(redis.await_replica_in_sync(0, 60s)) << redis.report();
  const long long rejoin_ms = milliseconds_since(restarted);
  std::cout << "rejoin: node 0 is an in-sync replica " << rejoin_ms << " ms after its start\n";
  RecordProperty("rejoin_ms", std::to_string(rejoin_ms));
  EXPECT_EQ(redis.call(0, {"GET", "order:1"}), "alice");
  EXPECT_EQ(redis.call(1, {"SET", "order:2", "bob"}), "OK");
  EXPECT_EQ(redis.call(1, {"WAIT", "1", "1000"}), "1");
  EXPECT_EQ(redis.call(0, {"GET", "order:2"}), "bob");
  EXPECT_EQ(redis.primary_port(), redis.port(1));
}

}  // namespace
}  // namespace flashsale::testing
