// The journal in-process against a real redis-server: what is appended comes back on recovery,
// snapshots trim the stream, and a damaged journal is refused rather than served.
#include <gtest/gtest.h>

#include <stdexcept>

#include "../../engine/journal/src/scripts.hpp"
#include "../engine/format_v4.hpp"
#include "../support/redis_server.hpp"
#include "flashsale/journal/journal.hpp"

namespace flashsale::journal {
namespace {

using engine::Engine;
using engine::Events;
using testing::RedisServer;
using namespace std::chrono_literals;

JournalConfig config_for(const RedisServer& redis, const std::string& prefix) {
  JournalConfig config;
  config.redis = redis.socket();
  config.prefix = prefix;
  config.lease_ttl = 1s;
  return config;
}

// Plays `orders` orders on drop "d" in batches of 64, each appended and awaited: one stream
// entry each (without the wait, group commit would fold them into a few).
void play(Engine& engine, Journal& journal, int first, int orders) {
  Events events;
  if (!engine.find_drop("d")) {
    engine.create_drop({"d", "Chestnuts", 1990, 500, 2, 60'000, 100}, 1'000, events);
    engine.start_countdown("d", 0, 1'000, events);
  }
  for (int order = first; order < first + orders; ++order) {
    const std::string user = "user-" + std::to_string(order % 700);
    engine.place_order({"d", user, "c-" + std::to_string(order), 1}, 2'000 + order, events);
    if (order % 64 == 63) {
      journal.append(events);
      events.clear();
      ASSERT_TRUE(journal.wait_durable(engine.last_sequence(), 10s));
    }
  }
  journal.append(events);
  ASSERT_TRUE(journal.wait_durable(engine.last_sequence(), 10s));
}

TEST(Journal, RecoversWhatWasAppended) {
  RedisServer redis;
  Engine original;
  std::uint64_t digest = 0;
  {
    Journal journal(config_for(redis, "round"));
    const RecoveryStats fresh = journal.recover(original);
    EXPECT_EQ(fresh.last_sequence, 0u);
    play(original, journal, 0, 3'000);
    digest = original.digest();
    EXPECT_EQ(journal.status().durable_sequence, original.last_sequence());
    EXPECT_GE(journal.status().batches_written, 1u);
  }  // stops, releasing the lease
  Engine recovered;
  Journal journal(config_for(redis, "round"));
  const RecoveryStats stats = journal.recover(recovered);
  EXPECT_EQ(stats.last_sequence, original.last_sequence());
  EXPECT_EQ(stats.events_replayed, original.last_sequence());
  EXPECT_EQ(recovered.digest(), digest);
  EXPECT_LT(stats.lease_wait_ms, 500) << "a clean stop releases the lease";
}

// A journal written by format version 4 (before streams) recovers in place, to the digest it was
// written with; the engine goes on writing version 5 batches after it, and the next recovery
// reads both.
TEST(Journal, AVersion4JournalRecoversAndGoesOn) {
  namespace v4 = testing::format_v4;
  RedisServer redis;
  redis.call({"SET", "{old}:snapshot", v4::bytes_of(v4::snapshot_record)});
  redis.call({"XADD", "{old}:journal", "1-0", "b", v4::bytes_of(v4::batch_1)});
  redis.call({"XADD", "{old}:journal", "2-0", "b", v4::bytes_of(v4::batch_2)});
  Engine upgraded;
  {
    Journal journal(config_for(redis, "old"));
    const RecoveryStats stats = journal.recover(upgraded);
    EXPECT_EQ(stats.last_sequence, v4::last_sequence);
    EXPECT_EQ(stats.snapshot_sequence, v4::snapshot_sequence);
    ASSERT_EQ(upgraded.digest(), v4::final_digest);
    Events events;
    const engine::TimeMs now = upgraded.now_ms() + 1'000;
    ASSERT_EQ(upgraded.create_stream({"s1", "h1", "Friday", ""}, now, events).status,
              engine::CommandStatus::ok);
    engine::DropSpec spec{"s1~tee", "Tee", 1'500, 5, 2, 60'000, 0};
    spec.host = "h1";
    spec.stream = "s1";
    ASSERT_EQ(upgraded.create_drop(spec, now, events).status, engine::CommandStatus::ok);
    ASSERT_EQ(upgraded.pin("s1", "s1~tee", now, events).status, engine::CommandStatus::ok);
    journal.append(events);
    ASSERT_TRUE(journal.wait_durable(upgraded.last_sequence(), 10s));
  }
  Engine recovered;
  Journal journal(config_for(redis, "old"));
  const RecoveryStats stats = journal.recover(recovered);
  EXPECT_EQ(stats.last_sequence, upgraded.last_sequence());
  EXPECT_EQ(recovered.digest(), upgraded.digest());
  EXPECT_EQ(recovered.stream_info(0).pinned, recovered.find_drop("s1~tee"));
}

// The caller's cursor comes back from recovery as of the last batch written, also when it
// was stored with no events to carry it; order records land with the batch holding their
// events, in order, and only then, with every field (the variant last).
TEST(Journal, CursorAndOrderRecordsLandWithTheirBatch) {
  RedisServer redis;
  Engine original;
  {
    Journal journal(config_for(redis, "cur"));
    EXPECT_EQ(journal.recover(original).cursor, "");
    Events events;
    engine::DropSpec spec{"d", "Sneakers", 0, 0, 2, 60'000, 0};
    spec.variants = {{"42", "EU 42", 1990, 2490, 5}};
    original.create_drop(spec, 1'000, events);
    original.start_countdown("d", 0, 1'000, events);
    const engine::OrderResult reserved =
        original.place_order({"d", "ann", "a-1", 1, "42"}, 2'000, events);
    ASSERT_EQ(reserved.outcome, engine::OrderOutcome::reserved);
    journal.append(events, "5-0");
    events.clear();
    ASSERT_TRUE(journal.wait_durable(original.last_sequence(), 10s));
    EXPECT_EQ(journal.durable_cursor(), "5-0");
    EXPECT_EQ(redis.call({"XLEN", "{cur}:orders"}), "0");

    original.confirm({"d", reserved.order, "ann"}, 3'000, events);
    OrderRecord confirmed;
    confirmed.sequence = original.last_sequence();
    confirmed.event = "confirmed";
    confirmed.drop = "d";
    confirmed.order = reserved.order;
    confirmed.order_id = "d:1";
    confirmed.user = "ann";
    confirmed.client_order_id = "a-1";
    confirmed.qty = 1;
    confirmed.price_cents = 1990;
    confirmed.at_ms = 3'000;
    confirmed.variant = "42";
    const KeptReply restock_reply{"g0:41", "200 {\"id\":\"d\"}"};
    journal.append(events, "9-3", std::span(&confirmed, 1), std::span(&restock_reply, 1));
    ASSERT_TRUE(journal.wait_durable(original.last_sequence(), 10s));
    // A kept reply lands with the batch that holds its cursor.
    EXPECT_NE(redis.call({"XRANGE", journal.replies_key(), "-", "+"})
                  .find(" k g0:41 v 200 {\"id\":\"d\"}"),
              std::string::npos);
    const std::string entries = redis.call({"XRANGE", "{cur}:orders", "-", "+"});
    EXPECT_NE(entries.find("event confirmed drop d order 1 order_id d:1 user ann client_order_id "
                           "a-1 qty 1 price_cents 1990 at_ms 3000 sequence " +
                           std::to_string(confirmed.sequence) + " reason  variant 42"),
              std::string::npos)
        << entries;

    // Commands that changed nothing still move the cursor, on their own, with their replies.
    const KeptReply refused{"g0:42", "409 {}"};
    journal.append({}, "12-0", {}, std::span(&refused, 1));
    journal.stop(10s);  // writes everything queued, the lone cursor too
    EXPECT_EQ(journal.durable_cursor(), "12-0");
    EXPECT_NE(redis.call({"XRANGE", journal.replies_key(), "-", "+"}).find("k g0:42 v 409 {}"),
              std::string::npos);
  }
  Engine recovered;
  Journal journal(config_for(redis, "cur"));
  EXPECT_EQ(journal.recover(recovered).cursor, "12-0");
  EXPECT_EQ(redis.call({"XLEN", "{cur}:orders"}), "1");
}

// Recovery keeps its lease by the fence's rule (scripts.hpp): renewed while it holds it, taken
// back if it lapsed with the stream unchanged (a stalled recovery that nobody replaced), lost if
// another engine took it or wrote.
TEST(JournalLease, RecoveryTakesBackALapsedLeaseOnlyIfNobodyWrote) {
  RedisServer redis;
  const auto touch = [&](const std::string& top) {
    return redis.call(
        {"EVAL", detail::touch_lua, "2", "{l}:lease", "{l}:journal", "me", "60000", top});
  };
  redis.call({"XADD", "{l}:journal", "1-0", "b", "x"});
  redis.call({"SET", "{l}:lease", "me", "PX", "60000"});
  EXPECT_EQ(touch("1-0"), "1");
  redis.call({"DEL", "{l}:lease"});  // lapsed
  EXPECT_EQ(touch("1-0"), "2");
  EXPECT_EQ(redis.call({"GET", "{l}:lease"}), "me");
  EXPECT_EQ(touch("1-0"), "1");
  redis.call({"SET", "{l}:lease", "other", "PX", "60000"});  // another engine took it
  EXPECT_EQ(touch("1-0"), "0");
  redis.call({"DEL", "{l}:lease"});
  redis.call({"XADD", "{l}:journal", "2-0", "b", "y"});  // and wrote before its lease lapsed
  EXPECT_EQ(touch("1-0"), "0");
  EXPECT_EQ(redis.call({"GET", "{l}:lease"}), "");
}

// A stream that ends before what the engine last wrote lacks batches it wrote (a replica
// promoted without them): every write script refuses it as a gap, whoever holds the lease.
TEST(JournalLease, AStreamShorterThanWhatTheEngineWroteIsAGap) {
  RedisServer redis;
  redis.call({"XADD", "{g}:journal", "1-0", "b", "x"});
  redis.call({"SET", "{g}:lease", "me", "PX", "60000"});
  const auto renew = [&](const std::string& top) {
    return redis.call(
        {"EVAL", detail::renew_lua, "2", "{g}:lease", "{g}:journal", "me", "60000", top});
  };
  EXPECT_EQ(renew("1-0"), "OK");
  EXPECT_EQ(renew("3-0"), "GAP the journal ends at 1-0 but this engine wrote up to 3-0");
  redis.call({"DEL", "{g}:lease"});
  EXPECT_TRUE(renew("3-0").starts_with("GAP")) << "a lapsed lease is no excuse";
  redis.call({"DEL", "{g}:journal"});
  EXPECT_EQ(renew("1-0"), "GAP the journal ends at 0-0 but this engine wrote up to 1-0");
  EXPECT_EQ(redis.call({"GET", "{g}:lease"}), "") << "nothing was taken";
}

// A journal whose Redis loses its last batches under it (as a failover to a replica that
// lacked them would) stops as diverged at its next write, and nothing more becomes durable.
TEST(Journal, ARedisThatLostBatchesStopsTheJournalAsDiverged) {
  RedisServer redis;
  Engine engine;
  Journal journal(config_for(redis, "lost"));
  journal.recover(engine);
  play(engine, journal, 0, 200);
  const std::uint64_t durable = journal.durable_sequence();
  const std::string top = redis.call({"XREVRANGE", "{lost}:journal", "+", "-", "COUNT", "1"});
  redis.call({"XDEL", "{lost}:journal", top.substr(0, top.find(' '))});
  Events events;
  engine.place_order({"d", "late", "c-late", 1}, 9'000, events);
  journal.append(events);
  EXPECT_FALSE(journal.wait_durable(engine.last_sequence(), 2s));
  EXPECT_EQ(journal.status().state, JournalState::diverged) << journal.status().detail;
  EXPECT_TRUE(journal.status().detail.starts_with("GAP")) << journal.status().detail;
  EXPECT_EQ(journal.durable_sequence(), durable);
  EXPECT_FALSE(journal.accepting());
}

TEST(RedisEndpoint, ASentinelSetIsReadWithItsCredentialsApart) {
  const RedisEndpoint endpoint =
      RedisEndpoint::parse("sentinel://app:p%40ss%2Fw@10.0.0.1:26379,[::1]:26380,s3:26381/sale");
  ASSERT_TRUE(endpoint.behind_sentinel());
  ASSERT_EQ(endpoint.sentinels.size(), 3u);
  EXPECT_EQ(endpoint.sentinels[0].host, "10.0.0.1");
  EXPECT_EQ(endpoint.sentinels[0].port, 26379);
  EXPECT_EQ(endpoint.sentinels[1].host, "::1");
  EXPECT_EQ(endpoint.sentinels[2].port, 26381);
  EXPECT_EQ(endpoint.sentinel_master, "sale");
  EXPECT_EQ(endpoint.user, "app");
  EXPECT_EQ(endpoint.password, "p@ss/w");
  EXPECT_EQ(endpoint.describe(), "sentinel://10.0.0.1:26379,[::1]:26380,s3:26381/sale");
  EXPECT_EQ(RedisEndpoint::parse("sentinel://secret@h:1/m").password, "secret");
  EXPECT_FALSE(RedisEndpoint::parse("127.0.0.1:6379").behind_sentinel());
}

TEST(RedisEndpoint, AMalformedSentinelSetIsRefusedWithoutItsPassword) {
  for (const char* bad : {"sentinel://h:1", "sentinel://h:1/", "sentinel:///m", "sentinel://h/m",
                          "sentinel://h:0/m", "sentinel://h:1,/m", "sentinel://u:hunter2@h:x/m"}) {
    try {
      RedisEndpoint::parse(bad);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const std::invalid_argument& error) {
      EXPECT_EQ(std::string(error.what()).find("hunter2"), std::string::npos) << error.what();
    }
  }
}

// No sentinel there: the connection says so, naming each sentinel and the set.
TEST(RedisEndpoint, UnreachableSentinelsAreNamedInTheError) {
  const RedisConnection connection(RedisEndpoint::parse("sentinel://127.0.0.1:1,127.0.0.1:2/sale"),
                                   500ms);
  EXPECT_FALSE(connection.ok());
  EXPECT_NE(connection.error().find("no sentinel named the primary of 'sale'"), std::string::npos)
      << connection.error();
  EXPECT_NE(connection.error().find("127.0.0.1:2"), std::string::npos) << connection.error();
}

TEST(Journal, SnapshotsTrimTheStreamAndRecoveryStartsFromThem) {
  RedisServer redis;
  Engine original;
  {
    Journal journal(config_for(redis, "snap"));
    journal.recover(original);
    play(original, journal, 0, 2'000);
    const std::string length_before = redis.call({"XLEN", "{snap}:journal"});
    journal.append_snapshot(original);
    play(original, journal, 2'000, 500);  // the snapshot is written once its events are durable
    journal.stop(5s);
    EXPECT_EQ(journal.status().snapshots_written, 1u);
    EXPECT_LT(std::stoi(redis.call({"XLEN", "{snap}:journal"})), std::stoi(length_before));
  }
  Engine recovered;
  Journal journal(config_for(redis, "snap"));
  const RecoveryStats stats = journal.recover(recovered);
  EXPECT_GT(stats.snapshot_sequence, 0u);
  EXPECT_LT(stats.events_replayed, original.last_sequence());
  EXPECT_EQ(recovered.digest(), original.digest());
}

TEST(Journal, DamagedJournalIsRefused) {
  RedisServer redis;
  {
    Engine engine;
    Journal journal(config_for(redis, "damage"));
    journal.recover(engine);
    play(engine, journal, 0, 1'000);
  }
  // Flip one byte in the middle of the second entry, keeping its id.
  const std::string ids = redis.call({"XRANGE", "{damage}:journal", "-", "+"});
  const std::string second_id = redis.call(
      {"EVAL", "return redis.call('XRANGE', KEYS[1], '-', '+')[2][1]", "1", "{damage}:journal"});
  std::string bytes =
      redis.call({"EVAL", "return redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])[1][2][2]", "1",
                  "{damage}:journal", second_id});
  ASSERT_GT(bytes.size(), 20u) << ids;
  bytes[bytes.size() / 2] ^= 0x40;
  redis.call({"EVAL",
              "local all = redis.call('XRANGE', KEYS[1], '-', '+') redis.call('DEL', KEYS[1]) "
              "for _, entry in ipairs(all) do local value = entry[2][2] "
              "if entry[1] == ARGV[1] then value = ARGV[2] end "
              "redis.call('XADD', KEYS[1], entry[1], 'b', value) end return #all",
              "1", "{damage}:journal", second_id, bytes});
  Engine engine;
  Journal journal(config_for(redis, "damage"));
  try {
    journal.recover(engine);
    FAIL() << "a damaged journal was accepted";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("checksum"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find(second_id), std::string::npos) << error.what();
  }
}

TEST(Journal, MissingEntryIsRefused) {
  RedisServer redis;
  {
    Engine engine;
    Journal journal(config_for(redis, "hole"));
    journal.recover(engine);
    play(engine, journal, 0, 1'000);
  }
  const std::string second_id = redis.call(
      {"EVAL", "return redis.call('XRANGE', KEYS[1], '-', '+')[2][1]", "1", "{hole}:journal"});
  ASSERT_EQ(redis.call({"XDEL", "{hole}:journal", second_id}), "1");
  Engine engine;
  Journal journal(config_for(redis, "hole"));
  EXPECT_THROW(journal.recover(engine), std::runtime_error);
}

TEST(Journal, LostTailAfterASnapshotIsRefused) {
  RedisServer redis;
  {
    Engine engine;
    Journal journal(config_for(redis, "tail"));
    journal.recover(engine);
    play(engine, journal, 0, 1'000);
    journal.append_snapshot(engine);
    play(engine, journal, 1'000, 200);
    journal.stop(5s);
    ASSERT_EQ(journal.status().snapshots_written, 1u);
  }
  // Drop every entry: the snapshot says batches existed that are now gone.
  redis.call({"DEL", "{tail}:journal"});
  Engine engine;
  Journal journal(config_for(redis, "tail"));
  try {
    journal.recover(engine);
    FAIL() << "a journal missing its tail was accepted";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("missing"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace flashsale::journal
