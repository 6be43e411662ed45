// Live streams in the engine: creating them, drops created in them, the pin, going live and the
// end, which closes every drop of the stream as a host's close would. Every test ends with the
// checks every state must pass: the full invariant scan, the events replayed through apply()
// (also through the codec) and a snapshot restored, each to the same digest.
#include <gtest/gtest.h>

#include <span>
#include <string>
#include <vector>

#include "flashsale/engine/engine.hpp"
#include "flashsale/engine/event_codec.hpp"
#include "format_v4.hpp"
#include "printers.hpp"

namespace flashsale::engine {
namespace {

constexpr TimeMs hold_ms = 60'000;

StreamSpec stream_spec(std::string_view id, std::string_view host = "h1") {
  return {id, host, "Friday night live", "https://video.example/friday"};
}

// A drop of `stock` tees, two per buyer, with a waitlist of three.
DropSpec drop_spec(std::string_view id, std::string_view stream = "s1",
                   std::string_view host = "h1", std::uint32_t stock = 5) {
  DropSpec spec{id, "Tee", 1'500, stock, 2, hold_ms, 3};
  spec.host = host;
  spec.stream = stream;
  return spec;
}

class Streams : public ::testing::Test {
 protected:
  void TearDown() override {
    engine.check_invariants();
    Engine replayed(limits);
    for (const Event& event : events) replayed.apply(event);
    EXPECT_EQ(replayed.digest(), engine.digest());
    replayed.check_invariants();

    std::string bytes;
    ByteWriter out(bytes);
    TimeMs previous_at_ms = 0;
    for (const Event& event : events) encode_event(event, out, previous_at_ms);
    ByteReader in(bytes);
    previous_at_ms = 0;
    Engine decoded(limits);
    for (const Event& event : events) {
      Event read;
      ASSERT_TRUE(decode_event(in, event.sequence, previous_at_ms, read)) << event.sequence;
      ASSERT_EQ(read, event);
      decoded.apply(read);
    }
    EXPECT_TRUE(in.done());
    EXPECT_EQ(decoded.digest(), engine.digest());

    const std::string snapshot = engine.snapshot();
    Engine restored(limits);
    ASSERT_EQ(restored.restore(snapshot), "");
    EXPECT_EQ(restored.digest(), engine.digest());
    EXPECT_EQ(restored.snapshot(), snapshot);
    EXPECT_EQ(restored.stream_count(), engine.stream_count());
  }

  // Each command runs 10 ms after the one before and is followed by the full invariant scan;
  // `fresh()` is what it emitted.
  template <typename Command>
  auto run(Command command) {
    now += 10;
    mark = events.size();
    auto result = command();
    engine.check_invariants();
    return result;
  }
  CommandResult create_stream(const StreamSpec& spec) {
    return run([&] { return engine.create_stream(spec, now, events); });
  }
  CommandResult create(const DropSpec& spec) {
    return run([&] { return engine.create_drop(spec, now, events); });
  }
  CommandResult open(std::string_view drop) {
    return run([&] { return engine.start_countdown(drop, 0, now, events); });
  }
  CommandResult go_live(std::string_view stream) {
    return run([&] { return engine.go_live(stream, now, events); });
  }
  CommandResult pin(std::string_view stream, std::string_view drop) {
    return run([&] { return engine.pin(stream, drop, now, events); });
  }
  CommandResult end(std::string_view stream) {
    return run([&] { return engine.end_stream(stream, now, events); });
  }
  OrderResult order(std::string_view drop, std::string_view user, std::uint32_t qty = 1) {
    return run([&] { return engine.place_order({drop, user, "c1", qty}, now, events); });
  }
  std::span<const Event> fresh() const { return std::span<const Event>(events).subspan(mark); }
  StreamInfo stream(std::string_view id) const {
    return engine.stream_info(*engine.find_stream(id));
  }
  DropIndex drop(std::string_view id) const { return *engine.find_drop(id); }

  EngineLimits limits;
  Engine engine{limits};
  Events events;
  std::size_t mark = 0;
  TimeMs now = 1'000'000;
};

TEST(StreamIds, FollowTheRules) {
  EXPECT_TRUE(is_valid_stream_id("friday-live_2.0"));
  EXPECT_TRUE(is_valid_stream_id(std::string(32, 's')));
  EXPECT_FALSE(is_valid_stream_id(std::string(33, 's')));
  EXPECT_FALSE(is_valid_stream_id(""));
  EXPECT_FALSE(is_valid_stream_id("a~b"));
  EXPECT_FALSE(is_valid_stream_id("a b"));
  EXPECT_TRUE(is_valid_host_id("acme"));
  EXPECT_FALSE(is_valid_host_id(std::string(33, 'h')));
  EXPECT_FALSE(is_valid_host_id(""));

  EXPECT_TRUE(is_valid_drop_id("tee"));
  EXPECT_TRUE(is_valid_drop_id("friday~tee-2"));
  EXPECT_TRUE(is_valid_drop_id(std::string(32, 's') + "~" + std::string(31, 'n')));
  EXPECT_FALSE(is_valid_drop_id(std::string(32, 's') + "~" + std::string(32, 'n')));  // 65
  EXPECT_FALSE(is_valid_drop_id(std::string(33, 's') + "~n"));  // the stream part is too long
  EXPECT_FALSE(is_valid_drop_id("~tee"));
  EXPECT_FALSE(is_valid_drop_id("friday~"));
  EXPECT_FALSE(is_valid_drop_id("a~b~c"));
  EXPECT_FALSE(is_valid_drop_id("fri day~tee"));

  EXPECT_EQ(stream_of_drop("friday~tee"), "friday");
  EXPECT_EQ(stream_of_drop("tee"), "");
  EXPECT_EQ(to_string(StreamState::scheduled), "scheduled");
  EXPECT_EQ(to_string(StreamState::live), "live");
  EXPECT_EQ(to_string(StreamState::ended), "ended");
  EXPECT_EQ(to_string(CommandStatus::unknown_stream), "unknown_stream");
}

TEST_F(Streams, CreatedScheduledOnce) {
  const CommandResult created = create_stream(stream_spec("s1"));
  ASSERT_EQ(created.status, CommandStatus::ok);
  EXPECT_EQ(created.stream, 0u);
  ASSERT_EQ(fresh().size(), 1u);
  const auto& body = std::get<StreamCreated>(fresh()[0].body);
  EXPECT_EQ(*body.spec, stream_spec("s1"));
  EXPECT_EQ(fresh()[0].drop, 0u);
  EXPECT_EQ(engine.stream_count(), 1u);
  EXPECT_EQ(engine.find_stream("s1"), 0u);
  EXPECT_EQ(engine.find_stream("s2"), std::nullopt);
  const StreamInfo info = stream("s1");
  EXPECT_EQ(info.spec, stream_spec("s1"));
  EXPECT_EQ(info.state, StreamState::scheduled);
  EXPECT_FALSE(info.pinned);
  EXPECT_TRUE(info.drops.empty());

  ASSERT_EQ(create_stream(stream_spec("s2", "h2")).stream, 1u);
  const CommandResult again = create_stream(stream_spec("s1", "h2"));
  EXPECT_EQ(again.status, CommandStatus::already_exists);
  EXPECT_EQ(again.stream, 0u);
  EXPECT_TRUE(fresh().empty());
  EXPECT_EQ(stream("s1").spec.host, "h1");
}

TEST_F(Streams, InvalidSpecsAreRefused) {
  const auto refused = [&](const StreamSpec& spec) {
    const CommandResult result = create_stream(spec);
    EXPECT_TRUE(fresh().empty());
    return result.status == CommandStatus::invalid_argument && !result.reason.empty();
  };
  EXPECT_TRUE(refused(stream_spec("")));
  EXPECT_TRUE(refused(stream_spec("a~b")));
  EXPECT_TRUE(refused(stream_spec(std::string(33, 's'))));
  EXPECT_TRUE(refused(stream_spec("s1", "")));
  EXPECT_TRUE(refused(stream_spec("s1", "bad host")));
  const std::string title(201, 't');
  const std::string url(501, 'u');
  EXPECT_TRUE(refused({"s1", "h1", title, ""}));
  EXPECT_TRUE(refused({"s1", "h1", "", url}));
  EXPECT_EQ(create_stream({"s1", "h1", std::string(200, 't'), std::string(500, 'u')}).status,
            CommandStatus::ok);
  EXPECT_EQ(create_stream({"s2", "h1", "", ""}).status, CommandStatus::ok);
}

TEST_F(Streams, AtMostStreamsMax) {
  limits.streams_max = 2;
  Engine small(limits);
  ASSERT_EQ(small.create_stream(stream_spec("s1"), now, events).status, CommandStatus::ok);
  ASSERT_EQ(small.create_stream(stream_spec("s2"), now, events).status, CommandStatus::ok);
  EXPECT_EQ(small.create_stream(stream_spec("s3"), now, events).status,
            CommandStatus::limit_reached);
  // A repeat of a create is told the stream exists, full or not.
  EXPECT_EQ(small.create_stream(stream_spec("s2"), now, events).status,
            CommandStatus::already_exists);
  small.check_invariants();
  events.clear();  // they were small's; TearDown checks `engine`
}

// One host cannot take every stream of the engine: past its own maximum it is refused, and
// another host still creates.
TEST_F(Streams, AtMostStreamsPerHostMax) {
  limits.streams_per_host_max = 2;
  Engine small(limits);
  ASSERT_EQ(small.create_stream(stream_spec("s1", "h1"), now, events).status, CommandStatus::ok);
  ASSERT_EQ(small.create_stream(stream_spec("s2", "h1"), now, events).status, CommandStatus::ok);
  const CommandResult third = small.create_stream(stream_spec("s3", "h1"), now, events);
  EXPECT_EQ(third.status, CommandStatus::limit_reached);
  EXPECT_EQ(third.reason, "the host holds its maximum number of streams");
  EXPECT_EQ(small.create_stream(stream_spec("s3", "h2"), now, events).status, CommandStatus::ok);
  EXPECT_EQ(small.stream_count(), 3u);
  small.check_invariants();
  events.clear();  // they were small's; TearDown checks `engine`
}

TEST_F(Streams, DropsJoinTheirStream) {
  ASSERT_EQ(create_stream(stream_spec("s1")).status, CommandStatus::ok);
  const CommandResult created = create(drop_spec("s1~tee"));
  ASSERT_EQ(created.status, CommandStatus::ok);
  EXPECT_EQ(created.stream, 0u);
  const DropInfo info = engine.drop_info(created.drop);
  EXPECT_EQ(info.spec.stream, "s1");
  EXPECT_EQ(info.spec.host, "h1");
  ASSERT_EQ(create(drop_spec("s1~cap")).status, CommandStatus::ok);
  EXPECT_EQ(stream("s1").drops, (std::vector<DropIndex>{drop("s1~tee"), drop("s1~cap")}));
  // Drops in no stream: the operator's (no host), or a host's.
  ASSERT_EQ(create(drop_spec("solo", "", "")).status, CommandStatus::ok);
  ASSERT_EQ(create(drop_spec("hosted", "", "h1")).status, CommandStatus::ok);
  EXPECT_EQ(engine.drop_info(drop("hosted")).spec.host, "h1");
  EXPECT_EQ(stream("s1").drops.size(), 2u);
}

TEST_F(Streams, DropsRefusedByTheirStream) {
  ASSERT_EQ(create_stream(stream_spec("s1")).status, CommandStatus::ok);
  ASSERT_EQ(create_stream(stream_spec("s2", "h2")).status, CommandStatus::ok);
  const auto status = [&](const DropSpec& spec) {
    const CommandResult result = create(spec);
    EXPECT_TRUE(fresh().empty());
    return result.status;
  };
  // The id's stream part is the stream; an id with '~' is in a stream; a stream needs a host.
  EXPECT_EQ(status(drop_spec("s1~tee", "")), CommandStatus::invalid_argument);
  EXPECT_EQ(status(drop_spec("s1~tee", "", "")), CommandStatus::invalid_argument);
  EXPECT_EQ(status(drop_spec("s2~tee", "s1")), CommandStatus::invalid_argument);
  EXPECT_EQ(status(drop_spec("tee", "s1")), CommandStatus::invalid_argument);
  EXPECT_EQ(status(drop_spec("s1~tee", "s1", "")), CommandStatus::invalid_argument);
  EXPECT_EQ(status(drop_spec("s1~tee", "s1", "bad host")), CommandStatus::invalid_argument);
  // Then the stream: it must exist, be the host's, and not have ended.
  EXPECT_EQ(status(drop_spec("s9~tee", "s9")), CommandStatus::unknown_stream);
  EXPECT_EQ(status(drop_spec("s1~tee", "s1", "h2")), CommandStatus::invalid_argument);
  ASSERT_EQ(end("s2").status, CommandStatus::ok);
  const CommandResult ended = create(drop_spec("s2~tee", "s2", "h2"));
  EXPECT_EQ(ended.status, CommandStatus::wrong_state);
  EXPECT_EQ(ended.stream, 1u);
  // The drop's own failures come first: a spec out of range, an id taken.
  DropSpec bad_hold = drop_spec("s9~tee", "s9");
  bad_hold.hold_ms = 10;
  EXPECT_EQ(status(bad_hold), CommandStatus::invalid_argument);
  ASSERT_EQ(create(drop_spec("s1~tee")).status, CommandStatus::ok);
  EXPECT_EQ(status(drop_spec("s1~tee", "s1", "h2")), CommandStatus::already_exists);
  EXPECT_EQ(stream("s1").drops.size(), 1u);
  EXPECT_TRUE(stream("s2").drops.empty());
}

TEST_F(Streams, AtMostDropsPerStreamMax) {
  limits.drops_per_stream_max = 2;
  Engine small(limits);
  ASSERT_EQ(small.create_stream(stream_spec("s1"), now, events).status, CommandStatus::ok);
  ASSERT_EQ(small.create_drop(drop_spec("s1~a"), now, events).status, CommandStatus::ok);
  ASSERT_EQ(small.create_drop(drop_spec("s1~b"), now, events).status, CommandStatus::ok);
  small.close("s1~a", now, events);  // a closed drop still counts
  EXPECT_EQ(small.create_drop(drop_spec("s1~c"), now, events).status, CommandStatus::limit_reached);
  EXPECT_EQ(small.create_drop(drop_spec("elsewhere", "", "h1"), now, events).status,
            CommandStatus::ok);
  small.check_invariants();
  // The limit is the engine's: a replay under it rebuilds the same state.
  Engine replayed(limits);
  for (const Event& event : events) replayed.apply(event);
  EXPECT_EQ(replayed.digest(), small.digest());
  events.clear();
}

TEST_F(Streams, PinOneDropAtATime) {
  ASSERT_EQ(create_stream(stream_spec("s1")).status, CommandStatus::ok);
  ASSERT_EQ(create_stream(stream_spec("s2", "h2")).status, CommandStatus::ok);
  ASSERT_EQ(create(drop_spec("s1~a")).status, CommandStatus::ok);
  ASSERT_EQ(create(drop_spec("s1~b")).status, CommandStatus::ok);
  ASSERT_EQ(create(drop_spec("s2~a", "s2", "h2")).status, CommandStatus::ok);
  ASSERT_EQ(create(drop_spec("solo", "", "h1")).status, CommandStatus::ok);

  // Pinned while scheduled, in any drop state.
  const CommandResult pinned = pin("s1", "s1~a");
  ASSERT_EQ(pinned.status, CommandStatus::ok);
  EXPECT_EQ(pinned.drop, drop("s1~a"));
  EXPECT_EQ(pinned.stream, 0u);
  ASSERT_EQ(fresh().size(), 1u);
  EXPECT_EQ(std::get<StreamPinned>(fresh()[0].body), (StreamPinned{0, true, drop("s1~a")}));
  EXPECT_EQ(stream("s1").pinned, drop("s1~a"));
  // Again: nothing changes.
  EXPECT_EQ(pin("s1", "s1~a").status, CommandStatus::ok);
  EXPECT_TRUE(fresh().empty());
  // Another replaces it.
  EXPECT_EQ(pin("s1", "s1~b").status, CommandStatus::ok);
  ASSERT_EQ(fresh().size(), 1u);
  EXPECT_EQ(std::get<StreamPinned>(fresh()[0].body), (StreamPinned{0, true, drop("s1~b")}));
  // Another stream's drop, a drop in none, a drop that does not exist: not this stream's.
  EXPECT_EQ(pin("s1", "s2~a").status, CommandStatus::unknown_drop);
  EXPECT_EQ(pin("s1", "solo").status, CommandStatus::unknown_drop);
  EXPECT_EQ(pin("s1", "s1~zzz").status, CommandStatus::unknown_drop);
  EXPECT_EQ(pin("s9", "s1~a").status, CommandStatus::unknown_stream);
  EXPECT_TRUE(fresh().empty());
  EXPECT_EQ(stream("s1").pinned, drop("s1~b"));
  EXPECT_FALSE(stream("s2").pinned);
  // Unpinned, then unpinning again changes nothing.
  EXPECT_EQ(pin("s1", "").status, CommandStatus::ok);
  ASSERT_EQ(fresh().size(), 1u);
  EXPECT_EQ(std::get<StreamPinned>(fresh()[0].body), (StreamPinned{0, false, 0}));
  EXPECT_FALSE(stream("s1").pinned);
  EXPECT_EQ(pin("s1", "").status, CommandStatus::ok);
  EXPECT_TRUE(fresh().empty());
  // While live, a closed drop too.
  ASSERT_EQ(go_live("s1").status, CommandStatus::ok);
  ASSERT_EQ(run([&] { return engine.close("s1~a", now, events); }).status, CommandStatus::ok);
  EXPECT_EQ(pin("s1", "s1~a").status, CommandStatus::ok);
  EXPECT_EQ(stream("s1").pinned, drop("s1~a"));
  // Not once ended.
  ASSERT_EQ(end("s1").status, CommandStatus::ok);
  EXPECT_EQ(pin("s1", "s1~b").status, CommandStatus::wrong_state);
  EXPECT_EQ(pin("s1", "").status, CommandStatus::wrong_state);
  EXPECT_EQ(pin("s1", "s2~a").status, CommandStatus::unknown_drop);
}

TEST_F(Streams, GoLiveOnceFromScheduled) {
  ASSERT_EQ(create_stream(stream_spec("s1")).status, CommandStatus::ok);
  ASSERT_EQ(create_stream(stream_spec("s2")).status, CommandStatus::ok);
  EXPECT_EQ(go_live("s9").status, CommandStatus::unknown_stream);
  const CommandResult live = go_live("s2");
  ASSERT_EQ(live.status, CommandStatus::ok);
  EXPECT_EQ(live.stream, 1u);
  ASSERT_EQ(fresh().size(), 1u);
  EXPECT_EQ(std::get<StreamStateChanged>(fresh()[0].body),
            (StreamStateChanged{1, StreamState::live}));
  EXPECT_EQ(stream("s2").state, StreamState::live);
  EXPECT_EQ(go_live("s2").status, CommandStatus::wrong_state);
  // A scheduled stream may end without going live; an ended one never goes live.
  ASSERT_EQ(end("s1").status, CommandStatus::ok);
  EXPECT_EQ(go_live("s1").status, CommandStatus::wrong_state);
  EXPECT_EQ(end("s1").status, CommandStatus::wrong_state);
  EXPECT_EQ(end("s9").status, CommandStatus::unknown_stream);
  EXPECT_EQ(stream("s1").state, StreamState::ended);
}

// The end closes every drop of the stream not yet closed, as a close would: waitlists are
// cancelled, holds stay payable. Then the pin comes off, then the stream ends.
TEST_F(Streams, EndClosesEveryDropAsCloseWould) {
  // The same sale in two engines: one ends the stream, the other closes the drops one by one.
  Engine closing(limits);
  Events closing_events;
  const auto both = [&](const auto& command) {
    command(engine, events);
    command(closing, closing_events);
  };
  both([&](Engine& e, Events& out) {
    e.create_stream(stream_spec("s1"), now, out);
    e.create_drop(drop_spec("s1~open", "s1", "h1", 2), now, out);
    e.create_drop(drop_spec("s1~later"), now, out);
    e.create_drop(drop_spec("s1~shut"), now, out);
    e.create_drop(drop_spec("s1~unset"), now, out);
    e.create_drop(drop_spec("other", "", "h1"), now, out);
    DropSpec window = drop_spec("s1~window");
    window.admission_window_ms = 5'000;
    e.create_drop(window, now, out);
    e.start_countdown("s1~open", 0, now, out);
    e.start_countdown("s1~window", 0, now, out);
    e.start_countdown("s1~later", 60'000, now, out);
    e.start_countdown("other", 0, now, out);
    e.close("s1~shut", now, out);
    e.go_live("s1", now, out);
    e.pin("s1", "s1~open", now, out);
    e.place_order({"s1~open", "alice", "c1", 2}, now + 1, out);   // holds both units
    e.place_order({"s1~open", "bob", "c1", 1}, now + 2, out);     // waits
    e.place_order({"s1~open", "carol", "c1", 1}, now + 3, out);   // waits
    e.place_order({"s1~window", "dave", "c1", 1}, now + 4, out);  // collected for the draw
    e.place_order({"other", "erin", "c1", 1}, now + 5, out);
  });
  now += 100;
  const std::size_t before = events.size();
  ASSERT_EQ(closing_events.size(), before);
  ASSERT_EQ(run([&] { return engine.end_stream("s1", now, events); }).status, CommandStatus::ok);
  for (const char* id : {"s1~open", "s1~later", "s1~unset", "s1~window"})
    ASSERT_EQ(closing.close(id, now, closing_events).status, CommandStatus::ok) << id;
  // The drops' events are exactly the closes', in creation order; then the pin, then the end.
  ASSERT_EQ(events.size(), closing_events.size() + 2);
  for (std::size_t index = before; index < closing_events.size(); ++index)
    EXPECT_EQ(events[index], closing_events[index]) << "event " << index;
  EXPECT_EQ(events[events.size() - 2].body, EventBody(StreamPinned{0, false, 0}));
  EXPECT_EQ(events.back().body, EventBody(StreamStateChanged{0, StreamState::ended}));
  std::vector<OrderCancelled> cancelled;
  for (std::size_t index = before; index < events.size(); ++index) {
    if (const auto* body = std::get_if<OrderCancelled>(&events[index].body))
      cancelled.push_back(*body);
  }
  ASSERT_EQ(cancelled.size(), 2u);  // bob's and carol's places in the queue
  EXPECT_EQ(cancelled[0].reason, CancelReason::drop_closed);

  for (const char* id : {"s1~open", "s1~later", "s1~shut", "s1~unset", "s1~window"})
    EXPECT_EQ(engine.drop_info(drop(id)).state, DropState::closed) << id;
  EXPECT_EQ(engine.drop_info(drop("other")).state, DropState::open);
  EXPECT_EQ(engine.drop_info(drop("s1~window")).orders, 1u);  // the draw came first: dave won
  EXPECT_EQ(stream("s1").state, StreamState::ended);
  EXPECT_FALSE(stream("s1").pinned);
  // Alice's hold is still hers to pay; new orders find the drops closed.
  EXPECT_EQ(run([&] {
              return engine.confirm({"s1~open", 1, "alice"}, now, events);
            }).status,
            CommandStatus::ok);
  EXPECT_EQ(engine.drop_info(drop("s1~open")).sold, 2u);
  EXPECT_EQ(order("s1~open", "frank").outcome, OrderOutcome::closed);
  EXPECT_EQ(create(drop_spec("s1~late")).status, CommandStatus::wrong_state);
  EXPECT_EQ(end("s1").status, CommandStatus::wrong_state);
  closing.check_invariants();
}

TEST_F(Streams, EndWithNothingToClose) {
  ASSERT_EQ(create_stream(stream_spec("s1")).status, CommandStatus::ok);
  ASSERT_EQ(end("s1").status, CommandStatus::ok);
  ASSERT_EQ(fresh().size(), 1u);
  EXPECT_EQ(fresh()[0].body, EventBody(StreamStateChanged{0, StreamState::ended}));
}

// Events keep the state they create apart from the clock: a rebuilt engine continues as the
// original (here: holds still expire after an end, and on time).
TEST_F(Streams, ReplayedEngineContinuesAlike) {
  ASSERT_EQ(create_stream(stream_spec("s1")).status, CommandStatus::ok);
  ASSERT_EQ(create(drop_spec("s1~tee")).status, CommandStatus::ok);
  ASSERT_EQ(open("s1~tee").status, CommandStatus::ok);
  ASSERT_EQ(pin("s1", "s1~tee").status, CommandStatus::ok);
  EXPECT_EQ(order("s1~tee", "alice").outcome, OrderOutcome::reserved);
  ASSERT_EQ(end("s1").status, CommandStatus::ok);
  Engine rebuilt(limits);
  for (const Event& event : events) rebuilt.apply(event);
  Events original_more;
  Events rebuilt_more;
  engine.advance_time(now + hold_ms, original_more);
  rebuilt.advance_time(now + hold_ms, rebuilt_more);
  ASSERT_EQ(original_more.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<HoldExpired>(original_more[0].body));
  EXPECT_EQ(original_more, rebuilt_more);
  EXPECT_EQ(rebuilt.digest(), engine.digest());
  events.insert(events.end(), original_more.begin(), original_more.end());
}

TEST_F(Streams, DigestSeesStreams) {
  ASSERT_EQ(create_stream(stream_spec("s1")).status, CommandStatus::ok);
  Engine other(limits);
  Events other_events;
  other.create_stream({"s1", "h1", "Another title", "https://video.example/friday"}, now,
                      other_events);
  EXPECT_NE(other.digest(), engine.digest());
  ASSERT_EQ(create(drop_spec("s1~a")).status, CommandStatus::ok);
  const std::uint64_t unpinned = engine.digest();
  ASSERT_EQ(pin("s1", "s1~a").status, CommandStatus::ok);
  EXPECT_NE(engine.digest(), unpinned);
  // A drop's host counts too.
  Engine operated(limits);
  Engine hosted(limits);
  operated.create_drop(drop_spec("d", "", ""), now, other_events);
  hosted.create_drop(drop_spec("d", "", "h1"), now, other_events);
  EXPECT_NE(operated.digest(), hosted.digest());
}

// The snapshot and event codecs refuse damaged stream bytes, or read them into a consistent
// engine: never a crash.
TEST_F(Streams, EveryFlippedBitIsRefusedOrConsistent) {
  limits.decisions_per_drop_reserve = 16;  // thousands of engines below
  Engine small(limits);
  small.create_stream(stream_spec("s1"), now, events);
  small.create_stream(stream_spec("s2", "h2"), now, events);
  small.create_drop(drop_spec("s1~a"), now, events);
  small.create_drop(drop_spec("s2~b", "s2", "h2"), now, events);
  small.create_drop(drop_spec("c", "", "h1"), now, events);
  small.pin("s1", "s1~a", now, events);
  small.go_live("s1", now, events);
  small.end_stream("s2", now, events);
  const std::string bytes = small.snapshot();
  int refused = 0;
  for (std::size_t position = 0; position < bytes.size(); ++position) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string flipped = bytes;
      flipped[position] = static_cast<char>(flipped[position] ^ (1 << bit));
      Engine restored(limits);
      refused += restored.restore(flipped).empty() ? 0 : 1;
    }
  }
  EXPECT_GT(refused, 0);

  std::string encoded;
  ByteWriter out(encoded);
  TimeMs previous_at_ms = 0;
  for (const Event& event : events) encode_event(event, out, previous_at_ms);
  int undecodable = 0;
  for (std::size_t position = 0; position < encoded.size(); ++position) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string flipped = encoded;
      flipped[position] = static_cast<char>(flipped[position] ^ (1 << bit));
      ByteReader in(flipped);
      previous_at_ms = 0;
      Event decoded;
      for (std::uint64_t sequence = 1; sequence <= events.size(); ++sequence) {
        if (!decode_event(in, sequence, previous_at_ms, decoded)) {
          EXPECT_FALSE(in.ok());
          undecodable += 1;
          break;
        }
      }
    }
  }
  EXPECT_GT(undecodable, 0);
  events.clear();
}

TEST_F(Streams, StreamEventsNameNoDrop) {
  ASSERT_EQ(create_stream(stream_spec("s1")).status, CommandStatus::ok);
  std::string bytes;
  ByteWriter out(bytes);
  TimeMs previous_at_ms = 0;
  Event named = events[0];
  named.drop = 3;
  encode_event(named, out, previous_at_ms);
  ByteReader in(bytes);
  previous_at_ms = 0;
  Event decoded;
  EXPECT_FALSE(decode_event(in, 1, previous_at_ms, decoded));
  EXPECT_TRUE(is_stream_event(events[0].body));
}

// Version 4's bytes, written before streams existed, are still read: the snapshot restores to
// the digest it was written with, and the events decode and replay to the final state.
TEST(FormatVersion4, SnapshotAndEventsStillRead) {
  namespace v4 = testing::format_v4;
  Engine restored;
  ASSERT_EQ(restored.restore(v4::bytes_of(v4::engine_snapshot)), "");
  EXPECT_EQ(restored.digest(), v4::snapshot_digest);
  EXPECT_EQ(restored.last_sequence(), v4::snapshot_sequence);

  Engine replayed;
  const std::string before = v4::bytes_of(v4::events_before);
  const std::string after = v4::bytes_of(v4::events_after);
  for (const std::string* batch : {&before, &after}) {
    ByteReader in(*batch);
    TimeMs previous_at_ms = 0;
    while (!in.done()) {
      Event event;
      ASSERT_TRUE(decode_event(in, replayed.last_sequence() + 1, previous_at_ms, event, 4));
      replayed.apply(event);
      if (replayed.last_sequence() == v4::snapshot_sequence) {
        EXPECT_EQ(replayed.digest(), v4::snapshot_digest);
      }
      if (replayed.last_sequence() > v4::snapshot_sequence) restored.apply(event);
    }
  }
  EXPECT_EQ(replayed.last_sequence(), v4::last_sequence);
  EXPECT_EQ(replayed.digest(), v4::final_digest);
  EXPECT_EQ(restored.digest(), v4::final_digest);
  replayed.check_invariants();
  const DropInfo pears = replayed.drop_info(*replayed.find_drop("pears"));
  EXPECT_EQ(pears.sold, v4::pears_sold);
  EXPECT_EQ(pears.raised_cents, v4::pears_raised_cents);
  EXPECT_EQ(pears.spec.host, "");
  EXPECT_EQ(pears.spec.stream, "");
  const DropInfo shoes = replayed.drop_info(*replayed.find_drop("shoes"));
  EXPECT_EQ(shoes.sold, v4::shoes_sold);
  EXPECT_EQ(shoes.sales_cents, v4::shoes_sales_cents);
  EXPECT_EQ(replayed.stream_count(), 0u);
  // What version 5 writes of the same state restores alike.
  Engine again;
  ASSERT_EQ(again.restore(replayed.snapshot()), "");
  EXPECT_EQ(again.digest(), v4::final_digest);
}

TEST(FormatVersion4, HasNoStreamEvents) {
  Engine engine;
  Events events;
  engine.create_stream(stream_spec("s1"), 1, events);
  std::string bytes;
  ByteWriter out(bytes);
  TimeMs previous_at_ms = 0;
  encode_event(events[0], out, previous_at_ms);
  for (const std::uint8_t version : {std::uint8_t{5}, std::uint8_t{4}, std::uint8_t{3}}) {
    ByteReader in(bytes);
    previous_at_ms = 0;
    Event decoded;
    EXPECT_EQ(decode_event(in, 1, previous_at_ms, decoded, version), version == 5) << int{version};
  }
  std::string snapshot = engine.snapshot();
  snapshot[8] = 6;  // the version, after the magic
  Engine restored;
  EXPECT_EQ(restored.restore(snapshot), "unknown snapshot version");
}

}  // namespace
}  // namespace flashsale::engine
