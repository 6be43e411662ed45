// Determinism: the same commands give the same events and digest; applying the events to a
// fresh engine gives the same digest at every point; and a rebuilt engine, given the same
// further commands, answers exactly as the original does. This is what makes recovery a replay.
#include <gtest/gtest.h>

#include <iostream>
#include <vector>

#include "flashsale/engine/engine.hpp"
#include "flashsale/engine/event_codec.hpp"
#include "printers.hpp"
#include "random_commands.hpp"

namespace flashsale::engine {
namespace {

using testing::Command;

std::vector<Command> record_commands(std::uint64_t seed, std::size_t count, Engine& engine,
                                     Events& events) {
  testing::CommandGenerator generator(seed);
  std::vector<Command> commands;
  for (std::size_t step = 0; step < count; ++step) {
    commands.push_back(generator.next(engine));
    testing::execute(engine, commands.back(), events);
  }
  return commands;
}

class Determinism : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    seed = testing::random_base_seed() + static_cast<std::uint64_t>(GetParam());
    std::cout << "Determinism: seed " << seed
              << " (FLASHSALE_SEED=" << seed - static_cast<std::uint64_t>(GetParam())
              << " reproduces)\n";
  }
  std::uint64_t seed = 0;
};

TEST_P(Determinism, SameCommandsGiveSameEventsAndDigest) {
  Engine first;
  Events first_events;
  const auto commands = record_commands(seed, 20'000, first, first_events);
  Engine second;
  Events second_events;
  for (const Command& command : commands) testing::execute(second, command, second_events);
  ASSERT_EQ(first_events.size(), second_events.size());
  for (std::size_t index = 0; index < first_events.size(); ++index)
    ASSERT_EQ(first_events[index], second_events[index]) << "event " << index;
  EXPECT_EQ(first.digest(), second.digest());
}

TEST_P(Determinism, ReplayingEventsRebuildsTheSameStateAtEveryPoint) {
  Engine original;
  Events events;
  testing::CommandGenerator generator(seed);
  std::vector<std::pair<std::size_t, std::uint64_t>> checkpoints;  // events so far, digest
  for (int step = 0; step < 20'000; ++step) {
    testing::execute(original, generator.next(original), events);
    if (step % 997 == 0) checkpoints.emplace_back(events.size(), original.digest());
  }
  checkpoints.emplace_back(events.size(), original.digest());

  Engine rebuilt;
  std::size_t applied = 0;
  for (const auto& [event_count, digest] : checkpoints) {
    for (; applied < event_count; ++applied) rebuilt.apply(events[applied]);
    ASSERT_EQ(rebuilt.digest(), digest) << "after " << event_count << " events";
  }
  rebuilt.check_invariants();

  // Both now continue with the same commands: a rebuilt engine is indistinguishable.
  Events original_more;
  Events rebuilt_more;
  // The rebuilt clock stands at the last event, the original's may have moved on without one
  // (time is not an event). Brought to the same time, the rebuilt engine has nothing left to
  // say — everything due by then was in the events — and both continue alike. Without this, a
  // command stamped between the two clocks (the generator sends some late) is decided at two
  // different times.
  Events caught_up;
  rebuilt.advance_time(original.now_ms(), caught_up);
  EXPECT_TRUE(caught_up.empty()) << caught_up.size() << " events due by the original's clock";
  testing::CommandGenerator more(seed ^ 0x9e3779b97f4a7c15ULL, original.now_ms());
  for (int step = 0; step < 5'000; ++step) {
    const Command command = more.next(original);
    const testing::Answer a = testing::execute(original, command, original_more);
    const testing::Answer b = testing::execute(rebuilt, command, rebuilt_more);
    ASSERT_EQ(a.order.outcome, b.order.outcome) << "step " << step;
    ASSERT_EQ(a.order.order, b.order.order) << "step " << step;
    ASSERT_EQ(a.action.status, b.action.status) << "step " << step;
    ASSERT_EQ(a.command.status, b.command.status) << "step " << step;
  }
  ASSERT_EQ(original_more.size(), rebuilt_more.size());
  for (std::size_t index = 0; index < original_more.size(); ++index)
    ASSERT_EQ(original_more[index], rebuilt_more[index]) << "event " << index;
  EXPECT_EQ(original.digest(), rebuilt.digest());
}

// A snapshot restores to the same digest, and the restored engine continues as the original.
TEST_P(Determinism, SnapshotsRestoreTheSameEngine) {
  Engine original;
  Events events;
  testing::CommandGenerator generator(seed);
  for (int round = 0; round < 4; ++round) {
    for (int step = 0; step < 5'000; ++step)
      testing::execute(original, generator.next(original), events);
    const std::string bytes = original.snapshot();
    Engine restored;
    ASSERT_EQ(restored.restore(bytes), "");
    ASSERT_EQ(restored.digest(), original.digest()) << "round " << round;
    ASSERT_EQ(restored.snapshot(), bytes);  // canonical
    Events original_more;
    Events restored_more;
    testing::CommandGenerator more(seed + 1000 + static_cast<std::uint64_t>(round),
                                   original.now_ms());
    Engine copy;
    ASSERT_EQ(copy.restore(bytes), "");
    for (int step = 0; step < 2'000; ++step) {
      const Command command = more.next(copy);
      testing::execute(copy, command, restored_more);
      testing::execute(restored, command, original_more);
    }
    ASSERT_EQ(original_more, restored_more);
  }
}

TEST(Snapshot, RejectsDamagedBytes) {
  Engine engine;
  Events events;
  engine.create_drop({"d", "t", 100, 5, 2, 60'000, 3}, 1, events);
  engine.start_countdown("d", 0, 2, events);
  engine.place_order({"d", "alice", "c1", 1}, 3, events);
  const std::string bytes = engine.snapshot();
  Engine empty;
  EXPECT_NE(empty.restore(""), "");
  Engine truncated;
  EXPECT_NE(truncated.restore(std::string_view(bytes).substr(0, bytes.size() - 3)), "");
  Engine trailing;
  EXPECT_NE(trailing.restore(bytes + "x"), "");
  std::string wrong_magic = bytes;
  wrong_magic[0] ^= 1;
  Engine magic;
  EXPECT_NE(magic.restore(wrong_magic), "");
}

// Any single flipped bit of a snapshot is either refused with a reason or restores an engine
// whose invariants hold; never a crash. (The journal's CRC catches flips first; this is the
// second line.)
TEST(Snapshot, EveryFlippedBitIsRefusedOrConsistent) {
  Engine engine;
  Events events;
  engine.create_drop({"d", "t", 100, 3, 2, 60'000, 2}, 1, events);
  engine.start_countdown("d", 0, 2, events);
  engine.place_order({"d", "alice", "c1", 2}, 3, events);
  engine.place_order({"d", "bob", "c1", 1}, 4, events);
  engine.place_order({"d", "carol", "c1", 1}, 5, events);
  engine.place_order({"d", "dave", "c1", 1}, 5, events);
  engine.confirm({"d", 2, "bob"}, 6, events);
  const std::string bytes = engine.snapshot();
  int refused = 0;
  for (std::size_t position = 0; position < bytes.size(); ++position) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string flipped = bytes;
      flipped[position] = static_cast<char>(flipped[position] ^ (1 << bit));
      Engine restored;
      refused += restored.restore(flipped).empty() ? 0 : 1;
    }
  }
  EXPECT_GT(refused, 0);
}

TEST(EventCodec, EveryFlippedBitDecodesOrIsRefused) {
  Engine engine;
  Events events;
  engine.create_drop({"d", "t", 100, 3, 2, 60'000, 2}, 1, events);
  engine.start_countdown("d", 0, 2, events);
  engine.place_order({"d", "alice", "c1", 2}, 3, events);
  engine.place_order({"d", "bob", "c1", 2}, 4, events);
  engine.cancel({"d", 1, "alice"}, 5, events);
  std::string bytes;
  ByteWriter out(bytes);
  TimeMs previous = 0;
  for (const Event& event : events) encode_event(event, out, previous);
  // Under UBSan an overflow in decoding fails the test too.
  int refused = 0;
  for (std::size_t position = 0; position < bytes.size(); ++position) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string flipped = bytes;
      flipped[position] = static_cast<char>(flipped[position] ^ (1 << bit));
      ByteReader in(flipped);
      previous = 0;
      Event decoded;
      for (std::uint64_t sequence = 1; sequence <= events.size(); ++sequence) {
        if (!decode_event(in, sequence, previous, decoded)) {
          EXPECT_FALSE(in.ok());  // a refused event leaves the reader failed
          refused += 1;
          break;
        }
        EXPECT_GE(decoded.at_ms, 0);
        EXPECT_LE(decoded.at_ms, time_ms_max);
      }
    }
  }
  EXPECT_GT(refused, 0);
}

// Encoding then decoding every event gives the same events, and they rebuild the same engine.
TEST_P(Determinism, EventCodecRoundTrips) {
  Engine original;
  Events events;
  testing::CommandGenerator generator(seed);
  for (int step = 0; step < 20'000; ++step)
    testing::execute(original, generator.next(original), events);
  std::string bytes;
  ByteWriter out(bytes);
  TimeMs previous = 0;
  for (const Event& event : events) encode_event(event, out, previous);
  ByteReader in(bytes);
  Engine rebuilt;
  previous = 0;
  for (const Event& expected : events) {
    Event decoded;
    ASSERT_TRUE(decode_event(in, expected.sequence, previous, decoded));
    ASSERT_EQ(decoded, expected);
    rebuilt.apply(decoded);
  }
  EXPECT_TRUE(in.done());
  EXPECT_EQ(rebuilt.digest(), original.digest());
  std::cout << "EventCodec: " << events.size() << " events in " << bytes.size() << " bytes\n";
}

TEST(EventCodec, RejectsDamagedBytes) {
  Engine engine;
  Events events;
  engine.create_drop({"d", "t", 100, 5, 2, 60'000, 3}, 1, events);
  std::string bytes;
  ByteWriter out(bytes);
  TimeMs previous = 0;
  encode_event(events[0], out, previous);
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    ByteReader in(std::string_view(bytes).substr(0, cut));
    Event decoded;
    previous = 0;
    EXPECT_FALSE(decode_event(in, 1, previous, decoded)) << "cut at " << cut;
  }
  std::string bad_kind = bytes;
  bad_kind[0] = 42;
  ByteReader in(bad_kind);
  Event decoded;
  previous = 0;
  EXPECT_FALSE(decode_event(in, 1, previous, decoded));
}

// place_orders is an optimisation of place_order: the same answers and events, always.
TEST_P(Determinism, BatchedOrdersMatchOrdersOneByOne) {
  Engine one_by_one;
  Engine batched;
  Events single_events;
  Events batch_events;
  testing::CommandGenerator generator(seed);
  std::vector<Command> pending;  // consecutive orders at the same time form a batch
  std::vector<PlaceOrder> batch;
  std::vector<OrderResult> results;
  const auto flush = [&] {
    batch.clear();
    for (const Command& command : pending)
      batch.push_back(
          {command.drop, command.user, command.client_order_id, command.qty, command.variant});
    results.assign(batch.size(), OrderResult{});
    if (!batch.empty()) batched.place_orders(batch, pending.front().now_ms, batch_events, results);
    for (std::size_t index = 0; index < pending.size(); ++index) {
      const testing::Answer single = testing::execute(one_by_one, pending[index], single_events);
      ASSERT_EQ(single.order.outcome, results[index].outcome) << "order " << index;
      ASSERT_EQ(single.order.order, results[index].order) << "order " << index;
      ASSERT_EQ(single.order.repeated, results[index].repeated) << "order " << index;
      ASSERT_EQ(single.order.hold_expires_at_ms, results[index].hold_expires_at_ms);
      ASSERT_EQ(single.order.variant, results[index].variant);
    }
    pending.clear();
  };
  std::size_t batches = 0;
  for (int step = 0; step < 20'000; ++step) {
    Command command = generator.next(one_by_one);
    if (command.kind == Command::Kind::place) {
      if (!pending.empty()) command.now_ms = pending.front().now_ms;
      pending.push_back(command);
      if (pending.size() < 64 && step % 97 != 0) continue;
    }
    batches += pending.size() > 1;
    ASSERT_NO_FATAL_FAILURE(flush());
    if (command.kind != Command::Kind::place) {
      testing::execute(one_by_one, command, single_events);
      testing::execute(batched, command, batch_events);
    }
  }
  ASSERT_NO_FATAL_FAILURE(flush());
  EXPECT_GT(batches, 100u);
  ASSERT_EQ(single_events, batch_events);
  EXPECT_EQ(one_by_one.digest(), batched.digest());
}

TEST(DeterminismDigest, DiffersWhenStateDiffers) {
  Events events;
  Engine a;
  Engine b;
  DropSpec spec{"d", "t", 100, 5, 1, 60'000, 0};
  a.create_drop(spec, 1, events);
  b.create_drop(spec, 1, events);
  EXPECT_EQ(a.digest(), b.digest());
  a.start_countdown("d", 0, 2, events);
  b.start_countdown("d", 0, 2, events);
  a.place_order({"d", "alice", "c1", 1}, 3, events);
  b.place_order({"d", "alice", "c2", 1}, 3, events);
  EXPECT_NE(a.digest(), b.digest());
}

INSTANTIATE_TEST_SUITE_P(Seeds, Determinism, ::testing::Range(0, 8));

}  // namespace
}  // namespace flashsale::engine
