// Crash and trouble tests of engine + journal, with real processes, a real redis-server and
// real signals. The engine runs in journal_driver, which prints each outcome only once it is
// durable; these tests kill things at random points and then check, through a fresh recovery,
// that every printed outcome survived unchanged (journal_driver check).
#include <gtest/gtest.h>
#include <signal.h>

#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "../engine/random_commands.hpp"
#include "../support/process.hpp"
#include "../support/redis_server.hpp"
#include "driver_process.hpp"

namespace flashsale::testing {
namespace {

using namespace std::chrono_literals;

TEST(JournalCrash, KilledEngineLosesNoAcknowledgedOutcome) {
  const std::uint64_t seed = engine::testing::random_base_seed();
  std::cout << "JournalCrash: seed " << seed << " (FLASHSALE_SEED reproduces the kill points)\n";
  std::mt19937_64 random(seed);
  RedisServer redis;
  std::vector<std::string> acks;
  constexpr int kills = 20;
  for (int kill = 0; kill < kills; ++kill) {
    auto driver = start_surge(redis, "crash", seed + static_cast<std::uint64_t>(kill),
                              {"--snapshot-every", "3000"});
    ASSERT_TRUE(collect(*driver, acks, 1 + random() % 600)) << driver->report();
    kill_and_keep(*driver, acks);
    const std::string verdict = check(redis, "crash", acks);
    ASSERT_EQ(verdict.rfind("CHECKED", 0), 0u) << "after kill " << kill << ": " << verdict;
  }
  std::cout << "JournalCrash: " << kills << " kills, " << acks.size()
            << " acknowledgements checked\n";
}

// The driver's d3 ends by itself; killed just after its end (the first new order it answered
// `closed`), the recovered journal still has it ended at that instant, and a driver killed
// before its end recovers a sale that ends at the same instant.
TEST(JournalCrash, KilledAtTheAutomaticEndTheSaleStillEndsAtItsInstant) {
  RedisServer redis;
  std::vector<std::string> acks;
  // Killed before the end: the recovered sale ends at its instant (check advances to it).
  auto early = start_surge(redis, "ending", 21, {"--ends-in-ms", "1500"});
  ASSERT_TRUE(collect(*early, acks, 50)) << early->report();
  kill_and_keep(*early, acks);
  std::string verdict = check(redis, "ending", acks);
  ASSERT_EQ(verdict.rfind("CHECKED", 0), 0u) << verdict;
  // Killed at the end: as soon as an order is answered `closed`.
  auto at_end = start_surge(redis, "ending", 22);
  bool ended = false;
  while (!ended) {
    const auto line = at_end->read_line(30s);
    ASSERT_TRUE(line.has_value()) << at_end->report();
    ended = line->starts_with("ACK d3 ") && line->find(" closed ") != std::string::npos &&
            line->ends_with(" 0");
    acks.push_back(*line);
  }
  kill_and_keep(*at_end, acks);
  verdict = check(redis, "ending", acks);
  ASSERT_EQ(verdict.rfind("CHECKED", 0), 0u) << verdict;
}

// Runs journal_driver window until it prints DONE; the winners it printed.
std::vector<std::string> draw_winners(ChildProcess& driver) {
  std::vector<std::string> winners;
  while (auto line = driver.read_line(60s)) {
    if (*line == "DONE") return winners;
    if (line->starts_with("WINNER ")) winners.push_back(line->substr(7));
  }
  ADD_FAILURE() << "the window driver stopped early: " << driver.report();
  return winners;
}

std::unique_ptr<ChildProcess> start_window(const RedisServer& redis, const std::string& prefix,
                                           std::uint64_t seed) {
  return std::make_unique<ChildProcess>(std::vector<std::string>{
      FLASHSALE_JOURNAL_DRIVER, "window", "--redis", redis.socket(), "--prefix", prefix, "--seed",
      std::to_string(seed), "--orders", "2000", "--stock", "25"});
}

// The admission window's winners are drawn from the journaled seed over the journaled arrivals:
// an engine killed inside the window and recovered draws exactly the winners an engine that
// never crashed draws. The restarted driver is given another seed, which it must not use.
TEST(JournalCrash, KilledInsideTheAdmissionWindowTheSameBuyersWin) {
  const std::uint64_t seed = engine::testing::random_base_seed();
  std::cout << "JournalCrash window: seed " << seed << "\n";
  RedisServer redis;
  auto calm = start_window(redis, "calm", seed);
  const std::vector<std::string> expected = draw_winners(*calm);
  ASSERT_EQ(expected.size(), 25u);

  auto crashing = start_window(redis, "crash", seed);
  const std::size_t kill_after = 1 + seed % 30;  // batches of 50 collected before the kill
  for (std::size_t line = 0; line < kill_after; ++line)
    ASSERT_TRUE(crashing->read_line(30s).has_value()) << crashing->report();
  crashing->signal(SIGKILL);
  crashing->wait(10s);
  auto restarted = start_window(redis, "crash", seed + 1);
  EXPECT_EQ(draw_winners(*restarted), expected) << "killed after " << kill_after << " batches";
}

TEST(JournalCrash, KilledRedisLosesNoAcknowledgedOutcome) {
  const std::uint64_t seed = engine::testing::random_base_seed();
  std::cout << "JournalCrash: seed " << seed << "\n";
  std::mt19937_64 random(seed);
  RedisServer redis;
  std::vector<std::string> acks;
  auto driver = start_surge(redis, "redis-crash", seed, {"--timeout-ms", "300"});
  for (int crash = 0; crash < 3; ++crash) {
    ASSERT_TRUE(collect(*driver, acks, 1 + random() % 500)) << driver->report();
    redis.kill();
    ASSERT_TRUE(driver->await_stderr("redis_unavailable", 20s));
    redis.start();
    ASSERT_TRUE(collect(*driver, acks, 50)) << "no acknowledgements after redis came back";
  }
  kill_and_keep(*driver, acks);
  const std::string verdict = check(redis, "redis-crash", acks);
  EXPECT_EQ(verdict.rfind("CHECKED", 0), 0u) << verdict;
}

TEST(JournalTrouble, UnreachableRedisAtStartIsWaitedFor) {
  RedisServer redis;
  redis.kill();
  auto driver = start_surge(redis, "late", 7);
  ASSERT_TRUE(driver->await_stderr("cannot reach redis", 20s));
  redis.start();
  std::vector<std::string> acks;
  ASSERT_TRUE(collect(*driver, acks, 100)) << driver->report();
  kill_and_keep(*driver, acks);
  EXPECT_EQ(check(redis, "late", acks).rfind("CHECKED", 0), 0u);
}

TEST(JournalTrouble, OutOfMemoryFailsClosedThenRecovers) {
  RedisServer redis;
  std::vector<std::string> acks;
  auto driver = start_surge(redis, "oom", 11);
  ASSERT_TRUE(collect(*driver, acks, 200)) << driver->report();
  redis.call({"CONFIG", "SET", "maxmemory", "1"});
  ASSERT_TRUE(driver->await_stderr("OOM", 20s)) << driver->report();
  // The batch made durable just before the refusal may still be printing; then silence.
  while (auto line = driver->read_line(200ms)) acks.push_back(std::move(*line));
  const std::size_t before = acks.size();
  const std::string stream_length = redis.call({"XLEN", "{oom}:journal"});
  EXPECT_FALSE(driver->read_line(500ms).has_value()) << "acknowledged while Redis refused writes";
  EXPECT_EQ(redis.call({"XLEN", "{oom}:journal"}), stream_length);
  redis.call({"CONFIG", "SET", "maxmemory", "0"});
  ASSERT_TRUE(collect(*driver, acks, 100)) << "no acknowledgements after memory came back";
  EXPECT_GT(acks.size(), before);
  kill_and_keep(*driver, acks);
  EXPECT_EQ(check(redis, "oom", acks).rfind("CHECKED", 0), 0u);
}

TEST(JournalTrouble, LostReplyIsResolvedByReadingTheStream) {
  RedisServer redis({"--enable-debug-command", "local"});
  std::vector<std::string> acks;
  // A 100 ms reply timeout against a Redis that sleeps 300 ms: the batch in flight is executed
  // after the client gave up on its reply.
  auto driver = start_surge(redis, "lost", 13, {"--timeout-ms", "100"});
  bool resolved = false;
  for (int attempt = 0; attempt < 10 && !resolved; ++attempt) {
    ASSERT_TRUE(collect(*driver, acks, 100)) << driver->report();
    redis.call({"DEBUG", "SLEEP", "0.3"});
    resolved = driver->await_stderr("was written before the connection dropped", 2s);
  }
  EXPECT_TRUE(resolved) << "no lost reply happened: " << driver->report();
  ASSERT_TRUE(collect(*driver, acks, 100));
  kill_and_keep(*driver, acks);
  EXPECT_EQ(check(redis, "lost", acks).rfind("CHECKED", 0), 0u);
}

TEST(JournalFencing, SecondEngineWaitsAndAStaleOwnerIsFenced) {
  RedisServer redis;
  std::vector<std::string> acks;
  auto first = start_surge(redis, "fence", 17, {"--lease-ms", "800"});
  ASSERT_TRUE(collect(*first, acks, 100)) << first->report();
  auto second = start_surge(redis, "fence", 18, {"--lease-ms", "800"});
  ASSERT_TRUE(second->await_stderr("waiting", 10s)) << second->report();
  // The first keeps serving while the second waits, and the second serves nothing.
  ASSERT_TRUE(collect(*first, acks, 100));
  EXPECT_FALSE(second->read_line(0ms).has_value());

  // Paused past its lease, the first is replaced…
  first->signal(SIGSTOP);
  std::vector<std::string> second_acks;
  ASSERT_TRUE(collect(*second, second_acks, 100, 20s)) << second->report();
  // …and when it resumes, its next write is refused by the fence and it stops.
  first->signal(SIGCONT);
  for (auto& line : first->drain_stdout(20s)) acks.push_back(std::move(line));
  EXPECT_TRUE(first->await_stderr("fenced", 10s)) << first->report();
  EXPECT_EQ(first->wait(10s), 3) << first->report();

  kill_and_keep(*second, second_acks);
  acks.insert(acks.end(), second_acks.begin(), second_acks.end());
  EXPECT_EQ(check(redis, "fence", acks).rfind("CHECKED", 0), 0u);
}

}  // namespace
}  // namespace flashsale::testing
