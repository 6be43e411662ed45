// The journal over a replicated Redis — one primary, one replica, three Sentinels, real
// processes (tests/support/replicated_redis.hpp) — with the engine in journal_driver requiring
// one replica per batch. Machines are lost (kill -9 and the data folder deleted), primaries cut
// off (SIGSTOP) and replicas killed at random moments (seed printed); after each, every
// acknowledgement the driver printed must be in the journal on whichever node is the primary
// now, unchanged (journal_driver check), and the hash chain must verify (flashsale-audit).
#include <gtest/gtest.h>

#include <condition_variable>
#include <iostream>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "../../engine/journal/src/sentinel_watch.hpp"
#include "../engine/random_commands.hpp"
#include "../support/process.hpp"
#include "../support/replicated_redis.hpp"
#include "driver_process.hpp"

namespace flashsale::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

DriverRedis driver_redis(const ReplicatedRedis& redis) {
  return {redis.sentinel_url(),
          {"FLASHSALE_REDIS_PASSWORD=" + redis.password(),
           "FLASHSALE_SENTINEL_PASSWORD=" + redis.password()}};
}

const std::vector<std::string> one_replica{"--min-replicas", "1"};

int primary_node(const ReplicatedRedis& redis) {
  return redis.primary_port() == redis.port(0) ? 0 : 1;
}

double seconds_since(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// flashsale-audit on the journal as the current primary holds it: its exit status.
int audit(const ReplicatedRedis& redis, const std::string& prefix) {
  ChildProcess audit(with_environment(
      driver_redis(redis).environment,
      {FLASHSALE_AUDIT, "--redis", redis.sentinel_url(), "--journal-prefix", prefix}));
  const auto status = audit.wait(60s);
  if (status != 0) ADD_FAILURE() << audit.report();
  return status.value_or(-1);
}

// A surge through the replicated set (`journal_driver`, one replica per batch), its seed
// printed; every acknowledgement it printed kept.
class JournalFailoverSurge : public ::testing::Test {
 protected:
  void start(const std::string& prefix) {
    std::cout << "JournalFailoverSurge: seed " << seed
              << " (FLASHSALE_SEED reproduces the kill points)\n";
    prefix_ = prefix;
    driver = start_surge(to, prefix, seed, one_replica);
  }
  // Stops the surge; every acknowledgement must be on the primary now, unchanged, and its hash
  // chain must verify.
  void expect_every_acknowledgement_kept() {
    kill_and_keep(*driver, acks);
    const std::string verdict = check(to, prefix_, acks, one_replica);
    EXPECT_EQ(verdict.rfind("CHECKED", 0), 0u) << verdict;
    EXPECT_EQ(audit(redis, prefix_), 0);
  }

  const std::uint64_t seed = engine::testing::random_base_seed();
  std::mt19937_64 random{seed};
  ReplicatedRedis redis;
  const DriverRedis to = driver_redis(redis);
  std::vector<std::string> acks;
  std::unique_ptr<ChildProcess> driver;

 private:
  std::string prefix_;
};

// The primary's machine is lost mid-surge, twice: Sentinel promotes the replica, the old
// primary comes back empty and is made its replica, and the engine serves again — with every
// outcome it acknowledged before the loss.
TEST_F(JournalFailoverSurge, APrimaryLostWithItsDiskLosesNoAcknowledgedOutcome) {
  start("loss");
  for (int loss = 0; loss < 2; ++loss) {
    ASSERT_TRUE(collect(*driver, acks, 1 + random() % 400)) << driver->report();
    const int lost = primary_node(redis);
    const Clock::time_point killed = Clock::now();
    redis.kill_and_wipe(lost);
    ASSERT_TRUE(redis.await_primary(redis.port(1 - lost), 60s)) << redis.report();
    const double promoted_s = seconds_since(killed);
    redis.start(lost);  // empty, with the config it was first given: a primary, until demoted
    ASSERT_TRUE(redis.await_replica_in_sync(lost, 60s)) << redis.report();
    const double rejoined_s = seconds_since(killed);
    ASSERT_TRUE(collect(*driver, acks, 1, 30s)) << driver->report();
    std::cout << "JournalFailoverSurge: loss " << loss << " after " << acks.size()
              << " acknowledgements: replica promoted in " << promoted_s
              << " s, old primary back as its replica in " << rejoined_s
              << " s, orders served again in " << seconds_since(killed) << " s\n";
    ASSERT_TRUE(collect(*driver, acks, 50)) << driver->report();
  }
  expect_every_acknowledgement_kept();
}

// A primary cut off (SIGSTOP) long enough for a failover, then back: no write is acknowledged
// through it once deposed, and the engine ends up on the new primary with everything.
TEST_F(JournalFailoverSurge, ADeposedPrimaryAcknowledgesNothing) {
  start("cut");
  ASSERT_TRUE(collect(*driver, acks, 1 + random() % 400)) << driver->report();
  const int cut = primary_node(redis);
  const Clock::time_point paused = Clock::now();
  redis.pause(cut);
  ASSERT_TRUE(redis.await_primary(redis.port(1 - cut), 60s)) << redis.report();
  const double promoted_s = seconds_since(paused);
  redis.resume(cut);
  ASSERT_TRUE(redis.await_replica_in_sync(cut, 60s)) << redis.report();
  ASSERT_TRUE(collect(*driver, acks, 50)) << driver->report();
  std::cout << "JournalFailoverSurge partition: promoted in " << promoted_s
            << " s, served again in " << seconds_since(paused) << " s\n";
  EXPECT_EQ(primary_node(redis), 1 - cut);
  expect_every_acknowledgement_kept();
}

// With one replica required and the only one killed, nothing more is acknowledged — WAIT ends
// short and the journal stops accepting — until it is back, and then service resumes by itself.
TEST(JournalFailover, WithoutItsReplicaTheJournalFailsClosedThenResumes) {
  ReplicatedRedis redis;
  const DriverRedis to = driver_redis(redis);
  std::vector<std::string> acks;
  auto driver = start_surge(to, "alone", 23, one_replica);
  ASSERT_TRUE(collect(*driver, acks, 200)) << driver->report();
  const int replica = 1 - primary_node(redis);
  redis.kill(replica);
  ASSERT_TRUE(driver->await_stderr("too_few_replicas", 20s)) << driver->report();
  // Batches replicated before the kill may still be printing; then silence.
  while (auto line = driver->read_line(200ms)) acks.push_back(std::move(*line));
  EXPECT_FALSE(driver->read_line(1500ms).has_value()) << "acknowledged without a replica";
  redis.start(replica);
  ASSERT_TRUE(redis.await_replica_in_sync(replica, 60s)) << redis.report();
  ASSERT_TRUE(collect(*driver, acks, 100)) << "no acknowledgements after the replica came back";
  kill_and_keep(*driver, acks);
  EXPECT_EQ(check(to, "alone", acks, one_replica).rfind("CHECKED", 0), 0u);
}

TEST(JournalFailover, UnreachableSentinelsAndAWrongPasswordAreReportedAndWaitedOut) {
  ReplicatedRedis redis;
  // No sentinel at these ports: the driver keeps asking, saying so.
  auto nowhere = start_surge(DriverRedis("sentinel://127.0.0.1:1,127.0.0.1:2/flashsale", {}),
                             "nowhere", 1, one_replica);
  EXPECT_TRUE(nowhere->await_stderr("no sentinel named the primary of 'flashsale'", 20s))
      << nowhere->report();
  EXPECT_FALSE(nowhere->read_line(0ms).has_value());

  const std::string wrong = "not-the-" + redis.password();
  auto refused = start_surge(
      DriverRedis(redis.sentinel_url(), {"FLASHSALE_REDIS_PASSWORD=" + wrong,
                                         "FLASHSALE_SENTINEL_PASSWORD=" + redis.password()}),
      "refused", 2, one_replica);
  EXPECT_TRUE(refused->await_stderr("refused AUTH", 20s)) << refused->report();
  auto refused_by_sentinels =
      start_surge(DriverRedis(redis.sentinel_url(), {"FLASHSALE_REDIS_PASSWORD=" + redis.password(),
                                                     "FLASHSALE_SENTINEL_PASSWORD=" + wrong}),
                  "refused", 3, one_replica);
  EXPECT_TRUE(refused_by_sentinels->await_stderr("refused AUTH", 20s))
      << refused_by_sentinels->report();
  for (ChildProcess* driver : {refused.get(), refused_by_sentinels.get()}) {
    driver->signal(SIGKILL);
    EXPECT_EQ(driver->report(1s).find(wrong), std::string::npos) << "a password was logged";
  }
}

// ACL users of their own, on the data nodes and on the sentinels, are all the journal needs (the
// hardening issue's production setup: `user default off`).
TEST(JournalFailover, AclUsersOnTheNodesAndTheSentinelsAreEnough) {
  ReplicatedRedis redis;
  for (int node = 0; node < ReplicatedRedis::data_node_count; ++node)
    ASSERT_EQ(redis.call(node, {"ACL", "SETUSER", "journal", "on", ">journal-secret", "~*", "&*",
                                "+@all"}),
              "OK");
  for (int sentinel = 0; sentinel < ReplicatedRedis::sentinel_count; ++sentinel)
    ASSERT_EQ(redis.call_sentinel(
                  sentinel, {"ACL", "SETUSER", "watcher", "on", ">watcher-secret", "&*", "+@all"}),
              "OK");
  const DriverRedis as_users(
      redis.sentinel_url(),
      {"FLASHSALE_REDIS_USER=journal", "FLASHSALE_REDIS_PASSWORD=journal-secret",
       "FLASHSALE_SENTINEL_USER=watcher", "FLASHSALE_SENTINEL_PASSWORD=watcher-secret"});
  std::vector<std::string> acks;
  auto driver = start_surge(as_users, "users", 29, one_replica);
  ASSERT_TRUE(collect(*driver, acks, 100)) << driver->report();
  kill_and_keep(*driver, acks);
  EXPECT_EQ(check(as_users, "users", acks, one_replica).rfind("CHECKED", 0), 0u);
}

// The journal's watch hears the sentinels announce the new primary (so that the writer leaves a
// primary that is cut off rather than dead without waiting for its timeout), and stops at once.
TEST(JournalFailover, TheSentinelWatchHearsOfTheNewPrimary) {
  ReplicatedRedis redis;
  journal::RedisEndpoint endpoint = journal::RedisEndpoint::parse(redis.sentinel_url());
  endpoint.sentinel_password = redis.password();
  std::mutex mutex;
  std::condition_variable announced;
  std::vector<std::string> primaries;
  journal::SentinelWatch watch(endpoint, 1s, [&](const std::string& primary) {
    std::lock_guard lock(mutex);
    primaries.push_back(primary);
    announced.notify_all();
  });
  // The sentinels take a second to call the primary down: time enough to subscribe.
  redis.kill(0);
  std::unique_lock lock(mutex);
  ASSERT_TRUE(announced.wait_for(lock, 60s, [&] { return !primaries.empty(); })) << redis.report();
  EXPECT_EQ(primaries[0], "127.0.0.1:" + std::to_string(redis.port(1)));
}

}  // namespace
}  // namespace flashsale::testing
