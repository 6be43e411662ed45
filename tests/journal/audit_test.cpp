// flashsale-audit against journals written by the real journal into a real redis-server: an
// untouched journal verifies (also after a snapshot trimmed it) and yields the totals computed
// by hand; each kind of tampering fails, naming the entry; a journal of format version 4 (before
// streams) still verifies.
#include <gtest/gtest.h>

#include <array>
#include <boost/crc.hpp>
#include <random>

#include "../engine/format_v4.hpp"
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

// The shoe drop sells three sizes at their own prices, for the same cause at another rate.
struct Size {
  const char* id;
  const char* label;
  std::int64_t price_cents;
  std::uint32_t stock;
};
constexpr std::array<Size, 3> sizes = {
    {{"40", "EU 40", 8'999, 12}, {"41", "EU 41", 9'499, 20}, {"42", "EU 42", 10'001, 8}}};
constexpr std::uint32_t shoes_pledge_bps = 777;

struct Written {
  std::int64_t raised_cents = 0;  // by hand
  std::uint64_t sold = 0;
  // The shoe drop, by hand from the confirms that succeeded.
  std::array<std::uint64_t, sizes.size()> shoes_sold{};
  std::int64_t shoes_raised_cents = 0;
  Hash head{};
};

engine::DropSpec shoes_spec() {
  engine::DropSpec spec{"shoes", "Running shoes", 0, 0, 3, 5'000, 4};
  for (const Size& size : sizes)
    spec.variants.push_back({size.id, size.label, size.price_cents, 0, size.stock});
  spec.beneficiary = "Village school";
  spec.pledge_bps = shoes_pledge_bps;
  return spec;
}

// A charity drop sold over 40 awaited batches (one stream entry each), with a snapshot after
// the 20th that trims the stream; confirms, cancels and expiries along the way. A second drop
// sells sizes of a shoe alongside.
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
  engine.create_drop(shoes_spec(), 1'000, events);
  engine.start_countdown("shoes", 0, 1'000, events);
  Written written;
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
    for (int order = 0; order < 4; ++order) {
      now += 50;
      const std::string user = "s" + std::to_string(random() % 60);
      // The middle size is wanted most.
      const std::size_t size = random() % 4 == 0 ? 0 : random() % 3 == 0 ? 2 : 1;
      const auto qty = static_cast<std::uint32_t>(1 + random() % 2);
      const auto result = engine.place_order(
          {"shoes", user, "c" + std::to_string(round), qty, sizes[size].id}, now, events);
      if (result.outcome != engine::OrderOutcome::reserved || result.repeated) continue;
      EXPECT_EQ(result.variant, size);
      const engine::OrderAction action{"shoes", result.order, user};
      if (random() % 3 != 0) {
        if (engine.confirm(action, now, events).status == engine::CommandStatus::ok)
          written.shoes_sold[size] += qty;
      } else {
        engine.cancel(action, now, events);
      }
    }
    journal.append(events);
    events.clear();
    EXPECT_TRUE(journal.wait_durable(engine.last_sequence(), 10s));
    if (round == 20) journal.append_snapshot(engine);
  }
  journal.stop(5s);
  EXPECT_EQ(journal.status().snapshots_written, 1u);
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
  std::uint64_t shoes_value = 0;
  for (std::size_t size = 0; size < sizes.size(); ++size)
    shoes_value += written.shoes_sold[size] * static_cast<std::uint64_t>(sizes[size].price_cents);
  written.shoes_raised_cents = static_cast<std::int64_t>(shoes_value * shoes_pledge_bps / 10'000);
  EXPECT_GT(written.shoes_raised_cents, 0);
  return written;
}

std::string money(std::int64_t cents) {
  return "¥" + std::to_string(cents / 100) + "." + (cents % 100 < 10 ? "0" : "") +
         std::to_string(cents % 100);
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
  EXPECT_NE(verdict.out.find("raised " + money(written.raised_cents)), std::string::npos)
      << verdict.out;
  EXPECT_NE(verdict.out.find("sold " + std::to_string(written.sold) + " units"), std::string::npos)
      << verdict.out;
  EXPECT_NE(verdict.out.find("raised " + money(written.shoes_raised_cents)), std::string::npos)
      << verdict.out;
  const AuditReport report = audit(copy);
  ASSERT_EQ(report.problem, "");
  // Per variant, each size's units and sales at its own price.
  ASSERT_EQ(report.drops.size(), 2u);
  const DropTotals& shoes = report.drops[1];
  ASSERT_EQ(shoes.variants.size(), sizes.size());
  std::int64_t shoes_sales = 0;
  for (std::size_t size = 0; size < sizes.size(); ++size) {
    const VariantTotals& variant = shoes.variants[size];
    EXPECT_EQ(variant.id, sizes[size].id);
    EXPECT_EQ(variant.units_sold, written.shoes_sold[size]) << variant.id;
    const auto sales =
        static_cast<std::int64_t>(written.shoes_sold[size]) * sizes[size].price_cents;
    EXPECT_EQ(variant.sales_cents, sales) << variant.id;
    shoes_sales += sales;
    EXPECT_NE(verdict.out.find("  variant " + variant.id + ": sold " +
                               std::to_string(variant.units_sold) + " units, sales " +
                               money(sales) + "\n"),
              std::string::npos)
        << verdict.out;
  }
  EXPECT_EQ(shoes.sales_cents, shoes_sales);
  EXPECT_EQ(shoes.raised_cents, written.shoes_raised_cents);
  // A drop without variants has one, unnamed, and no variant lines.
  ASSERT_EQ(report.drops[0].variants.size(), 1u);
  EXPECT_EQ(report.drops[0].variants[0].id, "");
  EXPECT_EQ(report.drops[0].sales_cents, static_cast<std::int64_t>(written.sold) * price_cents);
  EXPECT_EQ(verdict.out.find("variant :"), std::string::npos) << verdict.out;
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
  ASSERT_EQ(now.drops.size(), 2u);
  for (std::size_t drop = 0; drop < now.drops.size(); ++drop) {
    EXPECT_EQ(now.drops[drop].raised_cents, then.drops[drop].raised_cents);
    EXPECT_EQ(now.drops[drop].units_sold, then.drops[drop].units_sold);
    for (std::size_t variant = 0; variant < now.drops[drop].variants.size(); ++variant)
      EXPECT_EQ(now.drops[drop].variants[variant].sales_cents,
                then.drops[drop].variants[variant].sales_cents);
  }
  EXPECT_EQ(run_audit(redis, "sale", {"--expect-head", to_hex(then.head.hash)}).status, 0);
}

// The audit's own arithmetic names what does not add up: a variant that sold more than its
// confirmed orders hold, one whose counters do not balance, a drop whose sales or amount raised
// are not its variants'.
TEST(AuditTotals, AVariantOrADropThatDoesNotAddUpIsNamed) {
  Engine engine;
  Events events;
  ASSERT_EQ(engine.create_drop(shoes_spec(), 1'000, events).status, engine::CommandStatus::ok);
  engine.start_countdown("shoes", 0, 1'000, events);
  const auto reserved = engine.place_order({"shoes", "ann", "c1", 2, "41"}, 2'000, events);
  ASSERT_EQ(reserved.outcome, engine::OrderOutcome::reserved);
  ASSERT_EQ(engine.confirm({"shoes", reserved.order, "ann"}, 2'000, events).status,
            engine::CommandStatus::ok);
  const engine::DropInfo info = engine.drop_info(0);
  const std::array<std::uint64_t, 3> confirmed{0, 2, 0};
  EXPECT_EQ(check_totals(info, confirmed), "");

  EXPECT_EQ(check_totals(info, std::array<std::uint64_t, 3>{0, 1, 0}),
            "variant 41 sold 2 units, but its confirmed orders hold 1");
  engine::DropInfo oversold = info;
  oversold.variants[1].sold += 1;
  oversold.variants[1].stock_left -= 1;
  EXPECT_EQ(check_totals(oversold, confirmed),
            "variant 41 sold 3 units, but its confirmed orders hold 2");
  engine::DropInfo unbalanced = info;
  unbalanced.variants[2].stock_left += 1;
  EXPECT_EQ(check_totals(unbalanced, confirmed),
            "variant 42 does not balance: left 9 + held 0 + sold 0 != total 8");
  engine::DropInfo mispriced = info;
  mispriced.sales_cents += 1;
  EXPECT_EQ(check_totals(mispriced, confirmed),
            "its variants' sales add up to 18998 cents, not the 18999 it reports");
  engine::DropInfo overstated = info;
  overstated.raised_cents += 1;
  EXPECT_EQ(check_totals(overstated, confirmed),
            "it reports 1477 cents raised, but 777 bps of its sales is 1476");
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

// A journal written by version 4, before streams, still verifies: its records are read as that
// version's, its snapshot restores to the digest it was sealed with, and its events replay.
TEST(AuditFormat, AJournalOfVersion4StillVerifies) {
  namespace v4 = testing::format_v4;
  JournalCopy copy;
  copy.snapshot = v4::bytes_of(v4::snapshot_record);
  copy.entries = {{"1-0", v4::bytes_of(v4::batch_1)}, {"2-0", v4::bytes_of(v4::batch_2)}};
  BatchHeader header;
  std::string_view events;
  ASSERT_EQ(open_batch(copy.entries[1].second, header, events), "");
  EXPECT_EQ(header.version, 4);
  const AuditReport report = audit(copy);
  ASSERT_EQ(report.problem, "");
  EXPECT_TRUE(report.from_snapshot);
  EXPECT_EQ(report.head.batch, 2u);
  EXPECT_EQ(report.head.last_sequence, v4::last_sequence);
  EXPECT_EQ(report.events_replayed, v4::last_sequence - v4::snapshot_sequence);
  ASSERT_EQ(report.drops.size(), 2u);
  EXPECT_EQ(report.drops[0].units_sold, v4::pears_sold);
  EXPECT_EQ(report.drops[0].raised_cents, v4::pears_raised_cents);
  EXPECT_EQ(report.drops[1].units_sold, v4::shoes_sold);
  EXPECT_EQ(report.drops[1].sales_cents, v4::shoes_sales_cents);
  // A version not yet written is refused, by name (under a valid checksum).
  const std::string& stored = copy.entries[1].second;
  std::string future = stored.substr(0, stored.size() - 8);
  future[0] = static_cast<char>(record_version + 1);
  boost::crc_32_type crc;
  crc.process_bytes(future.data(), future.size());
  engine::ByteWriter(future).fixed64(crc.checksum());
  EXPECT_NE(open_batch(future, header, events).find("unknown record version"), std::string::npos);
}

}  // namespace
}  // namespace flashsale::journal
