// flashsale-audit against journals written by the real journal into a real redis-server: an
// untouched journal verifies (also after a snapshot trimmed it) and yields the totals computed
// by hand; each kind of tampering fails, naming the entry.
#include <gtest/gtest.h>

#include <random>

#include "../support/process.hpp"
#include "../support/redis_server.hpp"
#include "flashsale/journal/audit.hpp"

namespace flashsale::journal {
namespace {

using engine::Engine;
using engine::Events;
using testing::ChildProcess;
using testing::RedisServer;
using namespace std::chrono_literals;

constexpr std::int64_t price_cents = 1'999;
constexpr std::uint32_t pledge_bps = 1'500;

struct Written {
  std::int64_t raised_cents = 0;  // by hand
  std::uint64_t sold = 0;
  Hash head{};
};

// A charity drop sold over 40 awaited batches (one stream entry each), with a snapshot after
// the 20th that trims the stream; confirms, cancels and expiries along the way.
Written write_journal(const RedisServer& redis, const std::string& prefix) {
  JournalConfig config;
  config.redis = redis.socket();
  config.prefix = prefix;
  Journal journal(config);
  Engine engine;
  journal.recover(engine);
  Events events;
  engine::DropSpec spec{"pears", "Snow pears", price_cents, 200, 2, 5'000, 10};
  spec.beneficiary = "Village school";
  spec.pledge_bps = pledge_bps;
  engine.create_drop(spec, 1'000, events);
  engine.start_countdown("pears", 0, 1'000, events);
  std::mt19937_64 random(7);
  engine::TimeMs now = 1'000;
  for (int round = 0; round < 40; ++round) {
    for (int order = 0; order < 8; ++order) {
      now += 50;
      const std::string user = "u" + std::to_string(random() % 120);
      const auto result = engine.place_order({"pears", user, "c" + std::to_string(round),
                                              static_cast<std::uint32_t>(1 + random() % 2)},
                                             now, events);
      if (result.outcome != engine::OrderOutcome::reserved || result.repeated) continue;
      const engine::OrderAction action{"pears", result.order, user};
      if (random() % 3 != 0)
        engine.confirm(action, now, events);
      else if (random() % 2 == 0)
        engine.cancel(action, now, events);
    }
    journal.append(events);
    events.clear();
    EXPECT_TRUE(journal.wait_durable(engine.last_sequence(), 10s));
    if (round == 20) journal.append_snapshot(engine);
  }
  journal.stop(5s);
  EXPECT_EQ(journal.status().snapshots_written, 1u);
  Written written;
  std::uint64_t confirmed_value = 0;
  const engine::DropInfo info = engine.drop_info(0);
  for (engine::OrderNumber order = 1; order <= info.orders; ++order) {
    const auto found = engine.order_info(0, order);
    if (found->status == engine::OrderStatus::confirmed) {
      confirmed_value += std::uint64_t{found->qty} * price_cents;
      written.sold += found->qty;
    }
  }
  written.raised_cents = static_cast<std::int64_t>(confirmed_value * pledge_bps / 10'000);
  EXPECT_EQ(info.raised_cents, written.raised_cents);
  return written;
}

// Writes `copy` under another prefix, as it would sit in Redis.
void store(const RedisServer& redis, const std::string& prefix, const JournalCopy& copy) {
  if (copy.snapshot) redis.call({"SET", "{" + prefix + "}:snapshot", *copy.snapshot});
  for (const auto& [id, batch] : copy.entries)
    redis.call({"XADD", "{" + prefix + "}:journal", id, "b", batch});
}

struct Verdict {
  int status = -1;
  std::string out;
  std::string err;
};

Verdict run_audit(const RedisServer& redis, const std::string& prefix,
                  std::vector<std::string> extra = {}) {
  std::vector<std::string> arguments{FLASHSALE_AUDIT, "--redis", redis.socket(), "--journal-prefix",
                                     prefix};
  arguments.insert(arguments.end(), extra.begin(), extra.end());
  ChildProcess audit(arguments);
  Verdict verdict;
  while (auto line = audit.read_line(30s)) verdict.out += *line + "\n";
  audit.await_stderr("\x01", 30s);  // reads stderr to its end
  verdict.status = audit.wait(30s).value_or(-1);
  verdict.err = audit.report();
  return verdict;
}

class Audit : public ::testing::Test {
 protected:
  void SetUp() override {
    written = write_journal(redis, "sale");
    copy = read_journal(RedisEndpoint::parse(redis.socket()), "sale");
    ASSERT_GT(copy.entries.size(), 6u);
    ASSERT_TRUE(copy.snapshot.has_value());
  }
  // Stores `tampered` as its own journal, audits it, and expects a failure mentioning `what`.
  void expect_refused(const std::string& prefix, const JournalCopy& tampered,
                      const std::string& what) {
    store(redis, prefix, tampered);
    const Verdict verdict = run_audit(redis, prefix);
    EXPECT_EQ(verdict.status, 1) << verdict.out << verdict.err;
    EXPECT_NE(verdict.err.find(what), std::string::npos) << verdict.err;
  }

  RedisServer redis;
  Written written;
  JournalCopy copy;
};

TEST_F(Audit, AnUntouchedJournalVerifiesAfterTrimmingAndGivesTheTotals) {
  EXPECT_NE(copy.entries.front().first, "1-0") << "the snapshot trimmed the stream";
  const Verdict verdict = run_audit(redis, "sale");
  ASSERT_EQ(verdict.status, 0) << verdict.err;
  const std::string raised = "raised ¥" + std::to_string(written.raised_cents / 100) + "." +
                             (written.raised_cents % 100 < 10 ? "0" : "") +
                             std::to_string(written.raised_cents % 100);
  EXPECT_NE(verdict.out.find(raised), std::string::npos) << verdict.out;
  EXPECT_NE(verdict.out.find("sold " + std::to_string(written.sold) + " units"), std::string::npos)
      << verdict.out;
  const AuditReport report = audit(copy);
  ASSERT_EQ(report.problem, "");
  EXPECT_NE(verdict.out.find("head: " + to_hex(report.head.hash)), std::string::npos);
  // The same from an export file, and with the head expected.
  const std::string file = ::testing::TempDir() + "journal-" + std::to_string(getpid()) + ".fsj";
  write_export(copy, file);
  ChildProcess from_file(
      {FLASHSALE_AUDIT, "--file", file, "--expect-head", to_hex(report.head.hash)});
  EXPECT_EQ(from_file.wait(30s), 0) << from_file.report();
  std::remove(file.c_str());
  EXPECT_EQ(run_audit(redis, "sale", {"--expect-head", std::string(64, '0')}).status, 1);
}

// A head recorded earlier (say by the audit API) stays checkable as the journal grows: later
// batches extend the chain, and the totals printed are those of the state the head names.
TEST_F(Audit, AnEarlierHeadStillVerifiesWithItsOwnTotals) {
  JournalCopy earlier = copy;
  earlier.entries.resize(copy.entries.size() - 3);
  const AuditReport then = audit(earlier);
  ASSERT_EQ(then.problem, "");
  const AuditReport now = audit(copy, then.head.hash);
  ASSERT_EQ(now.problem, "");
  EXPECT_EQ(now.head.batch, then.head.batch);
  ASSERT_EQ(now.drops.size(), 1u);
  EXPECT_EQ(now.drops[0].raised_cents, then.drops[0].raised_cents);
  EXPECT_EQ(now.drops[0].units_sold, then.drops[0].units_sold);
  EXPECT_EQ(run_audit(redis, "sale", {"--expect-head", to_hex(then.head.hash)}).status, 0);
}

TEST_F(Audit, AnEditedByteFailsAtThatEntry) {
  JournalCopy tampered = copy;
  auto& [id, batch] = tampered.entries[3];
  batch[batch.size() / 2] ^= 0x01;
  expect_refused("edited", tampered, "entry " + id + " (position 4 in the stream): checksum");
}

TEST_F(Audit, AnEditWithARecomputedChecksumBreaksTheNextLink) {
  JournalCopy tampered = copy;
  BatchHeader header;
  std::string_view events;
  ASSERT_EQ(open_batch(tampered.entries[3].second, header, events), "");
  std::string changed(events);
  changed[changed.size() / 2] ^= 0x01;
  tampered.entries[3].second = seal_batch(header, changed);
  expect_refused("forged", tampered,
                 "entry " + tampered.entries[4].first + " (position 5 in the stream): batch " +
                     std::to_string(header.number + 1) + " does not link");
}

TEST_F(Audit, ADeletedEntryFails) {
  JournalCopy tampered = copy;
  tampered.entries.erase(tampered.entries.begin() + 3);
  expect_refused("deleted", tampered, "batches are missing");
}

TEST_F(Audit, SwappedEntriesFail) {
  JournalCopy tampered = copy;
  std::swap(tampered.entries[3].second, tampered.entries[4].second);
  expect_refused("swapped", tampered,
                 "entry " + tampered.entries[3].first + " (position 4 in the stream): holds batch");
}

TEST_F(Audit, AReplacedSnapshotFails) {
  // A well-formed snapshot of another state (the holds expired), sealed with the real one's
  // chain head and a correct digest: only its binding to the chain can tell.
  SnapshotHeader header;
  std::string_view bytes;
  ASSERT_EQ(open_snapshot(*copy.snapshot, header, bytes), "");
  Engine other;
  ASSERT_EQ(other.restore(bytes), "");
  Events events;
  other.advance_time(other.now_ms() + 60'000, events);
  ASSERT_FALSE(events.empty());
  header.digest = other.digest();
  header.covered_sequence = other.last_sequence();
  JournalCopy tampered = copy;
  tampered.snapshot = seal_snapshot(header, other.snapshot());
  store(redis, "replaced", tampered);
  const Verdict verdict = run_audit(redis, "replaced");
  EXPECT_EQ(verdict.status, 1) << verdict.out;
  EXPECT_NE(verdict.err.find("snapshot"), std::string::npos) << verdict.err;
}

}  // namespace
}  // namespace flashsale::journal
