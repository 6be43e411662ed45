// The load tester: its histogram, its traces, replay against the real server — a verdict that
// passes, and one that must fail when what it checks does not add up — and the comparison of
// two reports.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "clients.hpp"
#include "flashsale/loadtest/compare.hpp"
#include "flashsale/loadtest/histogram.hpp"
#include "flashsale/loadtest/trace.hpp"
#include "process.hpp"
#include "server_process.hpp"
#include "totals.hpp"
#include "verdict.hpp"

namespace flashsale::loadtest {
namespace {

using namespace std::chrono_literals;

TEST(Histogram, PercentilesAreWithinThreePercent) {
  LatencyHistogram histogram;
  std::mt19937_64 random(5);
  std::vector<std::uint64_t> values;
  for (int index = 0; index < 100'000; ++index) {
    values.push_back(1 + random() % 5'000'000);
    histogram.record(values.back());
  }
  std::sort(values.begin(), values.end());
  for (const double quantile : {0.5, 0.9, 0.99, 0.999}) {
    const auto exact =
        static_cast<double>(values[static_cast<std::size_t>(quantile * (values.size() - 1))]);
    EXPECT_NEAR(static_cast<double>(histogram.percentile(quantile)), exact, exact * 0.035)
        << quantile;
  }
  EXPECT_EQ(histogram.max(), values.back());
  EXPECT_EQ(histogram.count(), values.size());
  // Rebuilt from its buckets, as a worker process's histogram is, it reports the same.
  const LatencyHistogram copy =
      LatencyHistogram::from_buckets(histogram.buckets(), histogram.max());
  EXPECT_EQ(copy.count(), histogram.count());
  for (const double quantile : {0.5, 0.9, 0.99, 0.999})
    EXPECT_EQ(copy.percentile(quantile), histogram.percentile(quantile));
  EXPECT_THROW(LatencyHistogram::from_buckets({{1u << 20, 1}}, 1), std::out_of_range);
}

TEST(Traces, GenerationIsDeterministicAndRoundTrips) {
  const std::string scenario = FLASHSALE_SOURCE_DIR "/loadtest/scenarios/surge.toml";
  const Trace first = generate(scenario, 0.002, 42);
  const Trace second = generate(scenario, 0.002, 42);
  ASSERT_EQ(first.actions.size(), second.actions.size());
  EXPECT_EQ(first.header.viewers, 400u);
  EXPECT_EQ(first.header.drop.stock, 23u);
  const std::string path = ::testing::TempDir() + "trace.jsonl";
  write_trace(first, path);
  const Trace read = read_trace(path);
  ASSERT_EQ(read.actions.size(), first.actions.size());
  for (std::size_t index = 0; index < read.actions.size(); ++index) {
    EXPECT_EQ(read.actions[index].t_ms, second.actions[index].t_ms);
    EXPECT_EQ(read.actions[index].user, second.actions[index].user);
    EXPECT_EQ(read.actions[index].kind, second.actions[index].kind);
  }
  std::int64_t orders_before_open = 0;
  for (const Action& action : first.actions)
    orders_before_open += action.kind == ActionKind::order && action.t_ms < 0;
  EXPECT_GT(orders_before_open, 0) << "early clicks are part of a surge";
}

TEST(Traces, MalformedTracesNameTheLine) {
  const std::string path = ::testing::TempDir() + "bad.jsonl";
  std::ofstream(path)
      << R"({"flashsale_trace":1,"scenario":"x","seed":1,"scale":1,"countdown_ms":1,"viewers":1,)"
      << R"("drop":{"id":"x","title":"x","price_cents":1,"stock":1,"per_user_limit":1,"hold_seconds":1,"waitlist_limit":0}})"
      << "\n{\"t\":0,\"u\":5,\"a\":\"order\",\"q\":1,\"c\":\"c\"}\n";
  try {
    read_trace(path);
    FAIL() << "accepted a trace with a user beyond its viewers";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find(":2:"), std::string::npos) << error.what();
  }
}

std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// The sneaker scenario: ten sizes, the middle ones wanted most, a five-minute sale. The same
// seed gives the same trace, variants and all; each viewer orders one size by its demand.
TEST(Traces, TheSneakerScenarioOrdersSizesByDemandDeterministically) {
  const std::string scenario = FLASHSALE_SOURCE_DIR "/loadtest/scenarios/sneaker.toml";
  const Trace first = generate(scenario, 0.2, 11);
  const Trace second = generate(scenario, 0.2, 11);
  const DropSetup& drop = first.header.drop;
  ASSERT_EQ(drop.variants.size(), 10u);
  EXPECT_EQ(drop.variants.front().id, "38");
  EXPECT_EQ(drop.variants.back().id, "47");
  EXPECT_EQ(drop.variants[4].stock, 90u) << "450 pairs of EU 42, scaled by 0.2";
  EXPECT_EQ(drop.units(), 600u);
  EXPECT_EQ(drop.duration_seconds, 300u);
  EXPECT_EQ(drop.variants.back().list_price_cents, 19'900);
  EXPECT_EQ(first.header.viewers, 2'000u);
  ASSERT_EQ(first.actions.size(), second.actions.size());
  std::map<std::string, std::uint32_t> orders_by_size;
  std::set<std::uint32_t> buyers;
  for (std::size_t index = 0; index < first.actions.size(); ++index) {
    const Action& action = first.actions[index];
    EXPECT_EQ(action.t_ms, second.actions[index].t_ms);
    EXPECT_EQ(action.user, second.actions[index].user);
    EXPECT_EQ(action.variant, second.actions[index].variant);
    if (action.kind == ActionKind::order || action.kind == ActionKind::retry)
      EXPECT_FALSE(action.variant.empty()) << "every order names its size";
    else
      EXPECT_TRUE(action.variant.empty());
    if (action.kind == ActionKind::order) {
      orders_by_size[action.variant] += 1;
      buyers.insert(action.user);
    }
  }
  EXPECT_EQ(buyers.size(), first.header.viewers) << "each viewer orders once";
  // Demand 23 and 22 in 100 for EU 42 and 43, 1 for EU 38 and 47.
  EXPECT_GT(orders_by_size["42"], 300u);
  EXPECT_GT(orders_by_size["43"], 300u);
  EXPECT_LT(orders_by_size["38"], 60u);
  EXPECT_LT(orders_by_size["47"], 60u);
  EXPECT_GT(orders_by_size["42"], 5 * orders_by_size["38"]);
  // Another seed, another trace.
  const Trace other = generate(scenario, 0.2, 12);
  bool differs = other.actions.size() != first.actions.size();
  for (std::size_t index = 0; !differs && index < other.actions.size(); ++index)
    differs = other.actions[index].variant != first.actions[index].variant ||
              other.actions[index].t_ms != first.actions[index].t_ms;
  EXPECT_TRUE(differs);
}

// Version 2 carries the variants, each order's size and the duration through a file; a trace
// without them is still written as version 1.
TEST(Traces, VariantsRoundTripInVersionTwo) {
  const Trace written = generate(FLASHSALE_SOURCE_DIR "/tests/loadtest/sizes.toml", 1, 4);
  const std::string path = ::testing::TempDir() + "sizes.jsonl";
  write_trace(written, path);
  EXPECT_TRUE(first_line(path).starts_with(R"({"flashsale_trace":2,)")) << first_line(path);
  const Trace read = read_trace(path);
  EXPECT_EQ(read.header.version, 2);
  const DropSetup& drop = read.header.drop;
  ASSERT_EQ(drop.variants.size(), 3u);
  EXPECT_EQ(drop.variants[0].id, "41");
  EXPECT_EQ(drop.variants[0].label, "EU 41");
  EXPECT_EQ(drop.variants[0].list_price_cents, 12'900);
  EXPECT_EQ(drop.variants[1].list_price_cents, 0);
  EXPECT_EQ(drop.variants[2].price_cents, 10'900);
  EXPECT_EQ(drop.variants[2].stock, 5u);
  EXPECT_EQ(drop.duration_seconds, 3u);
  EXPECT_EQ(drop.units(), 20u);
  // The create body the replay sends: prices and stock per variant, none at the top.
  const boost::json::object body = to_json(drop);
  EXPECT_FALSE(body.contains("price_cents"));
  EXPECT_FALSE(body.contains("stock"));
  EXPECT_EQ(body.at("variants").as_array().size(), 3u);
  EXPECT_EQ(body.at("duration_seconds").to_number<int>(), 3);
  ASSERT_EQ(read.actions.size(), written.actions.size());
  for (std::size_t index = 0; index < read.actions.size(); ++index)
    EXPECT_EQ(read.actions[index].variant, written.actions[index].variant) << index;

  const std::string plain = ::testing::TempDir() + "plain.jsonl";
  write_trace(generate(FLASHSALE_SOURCE_DIR "/tests/loadtest/small.toml", 1, 4), plain);
  EXPECT_TRUE(first_line(plain).starts_with(R"({"flashsale_trace":1,)")) << first_line(plain);
  EXPECT_TRUE(read_trace(plain).header.drop.variants.empty());
}

TEST(Traces, AnOrderForASizeTheDropDoesNotSellNamesTheLine) {
  const std::string path = ::testing::TempDir() + "bad-size.jsonl";
  std::ofstream(path)
      << R"({"flashsale_trace":2,"scenario":"x","seed":1,"scale":1,"countdown_ms":1,"viewers":1,)"
      << R"("drop":{"id":"x","title":"x","per_user_limit":1,"hold_seconds":1,"waitlist_limit":0,)"
      << R"("variants":[{"id":"41","label":"","price_cents":1,"stock":1}]}})"
      << "\n{\"t\":0,\"u\":0,\"a\":\"order\",\"q\":1,\"c\":\"c\",\"v\":\"41\"}"
      << "\n{\"t\":1,\"u\":0,\"a\":\"retry\",\"q\":1,\"c\":\"c\",\"v\":\"44\"}\n";
  try {
    read_trace(path);
    FAIL() << "accepted an order for a size the drop does not sell";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find(":3:"), std::string::npos) << error.what();
  }
}

TEST(Traces, AScenarioWithVariantsAndATopLevelStockIsRefused) {
  const std::string path = ::testing::TempDir() + "both.toml";
  std::ofstream(path) << "[drop]\nstock = 5\n[[drop.variants]]\nid = \"41\"\nprice_cents = 1\n"
                         "stock = 5\n";
  EXPECT_THROW(generate(path, 1, 1), std::runtime_error);
}

// The stream scenario: three drops pinned a minute apart, each opening ten seconds after its
// pin. The same seed gives the same trace; each viewer subscribes to the stream once, orders
// each drop it wants after that drop's pin with its own client_order_id, and pays for the
// order it named.
TEST(Traces, TheStreamScenarioPinsEachDropAndOrdersItAsItOpens) {
  const std::string scenario = FLASHSALE_SOURCE_DIR "/loadtest/scenarios/stream.toml";
  const Trace first = generate(scenario, 0.1, 21);
  const Trace second = generate(scenario, 0.1, 21);
  ASSERT_TRUE(first.header.stream.has_value());
  const StreamSetup& stream = *first.header.stream;
  EXPECT_EQ(stream.id, "friday");
  ASSERT_EQ(stream.drops.size(), 3u);
  EXPECT_EQ(stream.drop_id(1), "friday~apron");
  EXPECT_EQ(stream.drops[0].opens_ms, 0);
  EXPECT_EQ(stream.drops[1].opens_ms, 60'000);
  EXPECT_EQ(stream.drops[2].opens_ms, 120'000);
  EXPECT_EQ(stream.drops[0].setup.stock, 50u);
  EXPECT_EQ(stream.drops[1].setup.variants[1].stock, 16u) << "160 medium aprons, scaled by 0.1";
  EXPECT_EQ(stream.drops[2].setup.duration_seconds, 20u);
  EXPECT_EQ(first.header.units(), 114u);
  EXPECT_EQ(first.header.viewers, 300u);
  EXPECT_EQ(first.header.countdown_ms, 15'000);
  ASSERT_EQ(first.actions.size(), second.actions.size());
  for (std::size_t index = 0; index < first.actions.size(); ++index) {
    const Action& one = first.actions[index];
    const Action& other = second.actions[index];
    ASSERT_TRUE(one.t_ms == other.t_ms && one.user == other.user && one.kind == other.kind &&
                one.drop == other.drop && one.client_order_id == other.client_order_id &&
                one.variant == other.variant)
        << index;
  }

  std::vector<std::int64_t> pins(3, -1);
  std::vector<std::set<std::uint32_t>> buyers(3);
  std::map<std::uint32_t, std::int64_t> subscribed;
  std::map<std::pair<std::uint32_t, std::string>, std::uint32_t> ordered;
  std::map<std::uint32_t, std::vector<std::int64_t>> payments, disconnects;
  for (const Action& action : first.actions) {
    switch (action.kind) {
      case ActionKind::pin:
        EXPECT_EQ(pins[action.drop], -1) << "each drop is pinned once";
        pins[action.drop] = action.t_ms;
        break;
      case ActionKind::subscribe:
        subscribed.try_emplace(action.user, action.t_ms);
        break;
      case ActionKind::order:
      case ActionKind::retry: {
        const std::int64_t opens = stream.drops[action.drop].opens_ms;
        EXPECT_GE(action.t_ms, pins[action.drop]) << "an order follows its drop's pin";
        EXPECT_GE(action.t_ms, subscribed.at(action.user));
        EXPECT_GE(action.t_ms, opens - 2'000);
        EXPECT_EQ(action.client_order_id, "c" + std::to_string(action.drop + 1));
        EXPECT_EQ(action.variant.empty(), action.drop != 1) << "only the apron comes in sizes";
        ordered.try_emplace({action.user, action.client_order_id}, action.drop);
        if (action.kind == ActionKind::order) buyers[action.drop].insert(action.user);
        break;
      }
      case ActionKind::confirm:
      case ActionKind::cancel:
        EXPECT_EQ(ordered.at({action.user, action.client_order_id}), action.drop);
        payments[action.user].push_back(action.t_ms);
        break;
      case ActionKind::disconnect:
        disconnects[action.user].push_back(action.t_ms);
        break;
      default:
        break;
    }
  }
  EXPECT_EQ(pins, (std::vector<std::int64_t>{-10'000, 50'000, 110'000}));
  EXPECT_EQ(subscribed.size(), 300u) << "every viewer watches the stream";
  // Demand 0.9, 0.6 and 0.8 of 300 viewers.
  EXPECT_NEAR(static_cast<double>(buyers[0].size()), 270, 30);
  EXPECT_NEAR(static_cast<double>(buyers[1].size()), 180, 30);
  EXPECT_NEAR(static_cast<double>(buyers[2].size()), 240, 30);
  std::size_t reconnects = 0;
  for (const auto& [user, gone] : disconnects)
    for (const std::int64_t at : gone) {
      reconnects += 1;
      for (const std::int64_t paid : payments[user])
        EXPECT_FALSE(paid >= at - 2'000 && paid <= at)
            << "viewer " << user << " disconnects at " << at << " with a payment at " << paid;
    }
  EXPECT_GT(reconnects, 0u);

  // Written as version 3, and read back action for action.
  const std::string path = ::testing::TempDir() + "stream.jsonl";
  write_trace(first, path);
  EXPECT_TRUE(first_line(path).starts_with(R"({"flashsale_trace":3,)")) << first_line(path);
  const Trace read = read_trace(path);
  EXPECT_EQ(read.header.version, 3);
  ASSERT_TRUE(read.header.stream.has_value());
  EXPECT_EQ(read.header.stream->title, "Friday night live");
  EXPECT_EQ(read.header.stream->drops[1].setup.variants.size(), 3u);
  EXPECT_EQ(read.header.stream->drops[2].opens_ms, 120'000);
  ASSERT_EQ(read.actions.size(), first.actions.size());
  for (std::size_t index = 0; index < read.actions.size(); ++index) {
    const Action& one = read.actions[index];
    const Action& written = first.actions[index];
    ASSERT_TRUE(one.t_ms == written.t_ms && one.kind == written.kind && one.drop == written.drop &&
                one.client_order_id == written.client_order_id && one.variant == written.variant &&
                (one.kind == ActionKind::pin || one.user == written.user))
        << index;
  }

  const Trace other = generate(scenario, 0.1, 22);
  bool differs = other.actions.size() != first.actions.size();
  for (std::size_t index = 0; !differs && index < other.actions.size(); ++index)
    differs = other.actions[index].t_ms != first.actions[index].t_ms ||
              other.actions[index].user != first.actions[index].user;
  EXPECT_TRUE(differs);
}

TEST(Traces, AStreamTraceThatDoesNotHoldTogetherNamesTheProblem) {
  const std::string header =
      R"({"flashsale_trace":3,"scenario":"x","seed":1,"scale":1,"countdown_ms":5000,)"
      R"("viewers":2,"stream":{"id":"s","title":"S"},"drops":[)"
      R"({"id":"a","title":"A","price_cents":1,"stock":1,"per_user_limit":1,"hold_seconds":1,)"
      R"("waitlist_limit":0,"opens_ms":0},)"
      R"({"id":"b","title":"B","price_cents":1,"stock":1,"per_user_limit":1,"hold_seconds":1,)"
      R"("waitlist_limit":0,"opens_ms":3000}]})";
  const std::string pins =
      "\n{\"t\":-2000,\"a\":\"pin\",\"d\":\"a\"}\n{\"t\":5,\"a\":\"pin\",\"d\":\"b\"}";
  const auto problem = [&](const std::string& name, const std::string& text) {
    const std::string path = ::testing::TempDir() + name + ".jsonl";
    std::ofstream(path) << text << "\n";
    try {
      read_trace(path);
    } catch (const std::runtime_error& error) {
      return std::string(error.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(problem("good", header + pins + R"(
{"t":10,"u":0,"a":"order","q":1,"c":"c1","d":"a"}
{"t":20,"u":0,"a":"confirm","c":"c1","d":"a"}
{"t":3010,"u":0,"a":"order","q":1,"c":"c2","d":"b"})"),
            "accepted");
  EXPECT_NE(problem("unknown-drop", header + pins + R"(
{"t":10,"u":0,"a":"order","q":1,"c":"c1","d":"z"})")
                .find(":4: a drop the header's stream does not have"),
            std::string::npos);
  EXPECT_NE(problem("no-drop", header + pins + R"(
{"t":10,"u":0,"a":"order","q":1,"c":"c1"})")
                .find(":4: bad field"),
            std::string::npos);
  EXPECT_NE(problem("two-drops", header + pins + R"(
{"t":10,"u":0,"a":"order","q":1,"c":"c1","d":"a"}
{"t":3010,"u":0,"a":"order","q":1,"c":"c1","d":"b"})")
                .find(":5: a client_order_id this viewer used in another drop"),
            std::string::npos);
  EXPECT_NE(problem("unpinned", header + "\n{\"t\":-2000,\"a\":\"pin\",\"d\":\"a\"}")
                .find("drop \"b\" is never pinned"),
            std::string::npos);
  EXPECT_NE(problem("late-pin", header + "\n{\"t\":-2000,\"a\":\"pin\",\"d\":\"a\"}" +
                                    "\n{\"t\":4000,\"a\":\"pin\",\"d\":\"b\"}")
                .find(":3: a drop pinned after it opens"),
            std::string::npos);
  EXPECT_NE(problem("version-two", R"({"flashsale_trace":2)" + header.substr(20) + pins)
                .find(":1: a stream in a trace of version 1 or 2"),
            std::string::npos);
  EXPECT_NE(problem("pin-outside", R"({"flashsale_trace":1,"scenario":"x","seed":1,"scale":1,)"
                                   R"("countdown_ms":1,"viewers":1,"drop":{"id":"x","title":"x",)"
                                   R"("price_cents":1,"stock":1,"per_user_limit":1,)"
                                   R"("hold_seconds":1,"waitlist_limit":0}})"
                                   "\n{\"t\":0,\"a\":\"pin\",\"d\":\"x\"}")
                .find(":2: unknown action"),
            std::string::npos);
}

TEST(Traces, AStreamScenarioWhoseFirstPinPrecedesTheReplayIsRefused) {
  const std::string path = ::testing::TempDir() + "early-pin.toml";
  std::ofstream(path) << "name = \"early\"\ncountdown_ms = 5000\n[stream]\nid = \"s\"\n"
                         "title = \"S\"\n[[drops]]\nid = \"a\"\ncountdown_ms = 8000\n";
  try {
    generate(path, 1, 1);
    FAIL() << "a pin 8 s before T-0 in a replay that starts 5 s before it";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("countdown_ms must be at least 8000"),
              std::string::npos)
        << error.what();
  }
}

// Per-variant figures survive the trip from a worker process to its coordinator, and add up.
TEST(Totals, VariantFiguresMergeAndRoundTrip) {
  Totals one;
  one.variants["41"] = {3, 1, 2};
  Totals two;
  two.variants["41"] = {1, 0, 1};
  two.variants["42"] = {5, 2, 3};
  one.merge(totals_from_json(to_json(two)));
  EXPECT_EQ(one.variants.at("41"), (VariantSeen{4, 1, 3}));
  EXPECT_EQ(one.variants.at("42"), (VariantSeen{5, 2, 3}));
  EXPECT_EQ(totals_from_json(to_json(one)).variants, one.variants);
}

// A stream's figures by drop and by pin cross from a worker to its coordinator and add up; the
// whole run's are the drops' together.
TEST(Totals, AStreamsFiguresByDropAndPinMergeAndRoundTrip) {
  Totals one;
  one.frames_in[0] = 7;
  one.drops.resize(2);
  one.drops[0].sent = 3;
  one.drops[1].sent = 4;
  one.drops[1].latency.record(2'000);
  one.pins.resize(2);
  one.pins[1] = {5, 1, {}};
  one.pins[1].latency.record(9'000);
  Totals two = one;
  two.drops[0].variants["M"] = {1, 0, 1};
  one.merge(totals_from_json(to_json(two)));
  ASSERT_EQ(one.drops.size(), 2u);
  EXPECT_EQ(one.drops[0].sent, 6u);
  EXPECT_EQ(one.drops[0].variants.at("M"), (VariantSeen{1, 0, 1}));
  EXPECT_EQ(one.drops[1].latency.count(), 2u);
  EXPECT_EQ(one.pins[1].owed, 10u);
  EXPECT_EQ(one.pins[1].missed, 2u);
  EXPECT_EQ(one.pins[1].latency.count(), 2u);
  const Totals all = one.combined();
  EXPECT_EQ(all.sent, 14u);
  EXPECT_EQ(all.latency.count(), 2u);
  EXPECT_EQ(all.frames_in.at(0), 14u);
  EXPECT_TRUE(all.drops.empty());
}

// The stream's own checks: every pin made as planned, and shown to every viewer owed it.
TEST(Verdict, AStreamFailsForAPinAViewerMissedOrTheHostCouldNotMake) {
  Totals seen;
  seen.pins.resize(2);
  seen.pins[0] = {100, 0, {}};
  seen.pins[1] = {90, 0, {}};
  seen.pins[0].latency.record(4'000);
  std::vector<PinCall> calls(2);
  calls[0] = {"one", 200, 200, {}, 1'000, 1'000, 0, 2.0};
  calls[1] = {"two", 200, 200, {}, 4'000, 4'000, 1, 2.0};
  const auto check = [&](std::string_view name) {
    for (const Check& made : stream_verdict(seen, calls))
      if (made.name == name) return made;
    return Check{"missing", false, {}};
  };
  EXPECT_TRUE(check("every_pin_made").pass) << check("every_pin_made").detail;
  EXPECT_TRUE(check("every_viewer_saw_every_pin").pass);
  EXPECT_NE(check("every_viewer_saw_every_pin").detail.find("one 100/100; two 90/90"),
            std::string::npos)
      << check("every_viewer_saw_every_pin").detail;
  seen.pins[1].missed = 3;
  EXPECT_FALSE(check("every_viewer_saw_every_pin").pass);
  EXPECT_NE(check("every_viewer_saw_every_pin").detail.find("two: 3 of 90 viewers never shown it"),
            std::string::npos);
  calls[1].opens_at_ms = 4'250;
  EXPECT_EQ(check("every_pin_made").detail, "two: opens 250 ms off its planned instant");
  calls[0].pin_status = 404;
  calls[0].countdown_status = 0;
  calls[0].refusal = "unknown_stream";
  EXPECT_FALSE(check("every_pin_made").pass);
  EXPECT_NE(check("every_pin_made").detail.find("one: pin answered 404, countdown 0"),
            std::string::npos);
}

// A sale of two sizes after a replay, as the host API gives it, and what its buyers saw.
struct VerdictFixture {
  DropSetup drop;
  boost::json::object server;
  Totals seen;

  VerdictFixture() {
    drop.id = "sizes";
    drop.variants = {{"41", "EU 41", 9'900, 0, 4}, {"42", "EU 42", 9'900, 0, 6}};
    server = boost::json::parse(R"({"id":"sizes","state":"sold_out","stock_total":10,
        "stock_left":0,"held":1,"sold":9,"variants":[
        {"id":"41","label":"EU 41","price_cents":9900,"stock_total":4,"stock_left":0,"held":0,
         "sold":4,"waitlist":0},
        {"id":"42","label":"EU 42","price_cents":9900,"stock_total":6,"stock_left":0,"held":1,
         "sold":5,"waitlist":0}]})")
                 .as_object();
    seen.sent = seen.answered = 30;
    seen.reserved = 10;
    seen.confirmed = 9;
    seen.variants["41"] = {4, 0, 4};
    seen.variants["42"] = {6, 0, 5};
  }
  std::map<std::string, Check> checks() const {
    std::map<std::string, Check> by_name;
    for (Check& check : verdict(seen, server, drop, {})) by_name[check.name] = check;
    return by_name;
  }
};

TEST(Verdict, ASaleOfSizesThatAddsUpPassesEveryCheck) {
  const auto checks = VerdictFixture().checks();
  EXPECT_EQ(checks.size(), 11u);
  for (const auto& [name, check] : checks) EXPECT_TRUE(check.pass) << name << ": " << check.detail;
  EXPECT_TRUE(checks.contains("no_variant_oversold"));
  EXPECT_TRUE(checks.contains("variant_counters_balance"));
  EXPECT_TRUE(checks.contains("variant_sold_matches_confirmations"));
}

// One size oversold while the drop as a whole is not: only the per-variant check can tell.
TEST(Verdict, AnOversoldSizeFailsTheVerdictThoughTheDropIsWithinItsStock) {
  VerdictFixture fixture;
  fixture.seen.variants["41"] = {5, 0, 4};  // five pairs of 41 reserved, four in stock
  fixture.seen.variants["42"] = {5, 0, 5};
  const auto checks = fixture.checks();
  EXPECT_FALSE(checks.at("no_variant_oversold").pass);
  EXPECT_EQ(checks.at("no_variant_oversold").detail, "41: 5 units held or sold, stock 4");
  EXPECT_TRUE(checks.at("reserved_within_stock").pass) << "10 reservations for 10 units";
  EXPECT_TRUE(checks.at("variant_counters_balance").pass);
  EXPECT_TRUE(checks.at("variant_sold_matches_confirmations").pass);
}

TEST(Verdict, ASizeWhoseCountersDoNotBalanceOrThatSoldUnconfirmedPairsFails) {
  VerdictFixture unbalanced;
  unbalanced.server.at("variants").as_array()[1].as_object()["stock_left"] = 1;
  EXPECT_EQ(unbalanced.checks().at("variant_counters_balance").detail,
            "42: left 1 + held 1 + sold 5 != total 6");
  VerdictFixture unconfirmed;
  unconfirmed.seen.variants["42"].confirmed = 4;
  EXPECT_FALSE(unconfirmed.checks().at("variant_sold_matches_confirmations").pass);
  VerdictFixture unlisted;
  unlisted.server.erase("variants");
  EXPECT_FALSE(unlisted.checks().at("variant_counters_balance").pass);
}

// A drop of one unnamed variant keeps the eight checks it always had.
TEST(Verdict, ADropWithoutVariantsKeepsItsEightChecks) {
  VerdictFixture fixture;
  fixture.drop.variants.clear();
  fixture.server.erase("variants");
  fixture.seen.variants.clear();
  const std::vector<Check> checks = verdict(fixture.seen, fixture.server, fixture.drop, {});
  std::vector<std::string> names;
  for (const Check& check : checks) names.push_back(check.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{
                "every_order_answered_once", "reserved_within_stock", "server_counters_balance",
                "sold_matches_confirmations", "nobody_above_the_limit", "order_ids_unique",
                "no_reservation_before_open", "retries_return_the_original"}));
}

// A drop with a duration must have closed itself once its end is past, with nothing reserved
// after it.
TEST(Verdict, ASaleThatOutlivedItsEndFails) {
  VerdictFixture fixture;
  fixture.drop.duration_seconds = 3;
  fixture.server["closes_at_ms"] = 10'000;
  const auto at = [&](std::int64_t now_ms) {
    for (const Check& check : verdict(fixture.seen, fixture.server, fixture.drop, {{}, now_ms}))
      if (check.name == "ended_by_itself") return check;
    return Check{"missing", false, {}};
  };
  EXPECT_TRUE(at(9'000).pass) << "before its end, an open drop is fine";
  EXPECT_FALSE(at(12'000).pass) << at(12'000).detail;
  fixture.server["state"] = "closed";
  EXPECT_TRUE(at(12'000).pass) << at(12'000).detail;
  fixture.seen.reserved_after_end = 1;
  EXPECT_FALSE(at(12'000).pass);
}

// A replay report as `replay` writes it, with the figures compare reads.
std::string report_with(double p99_ms, double peak_per_s, std::int64_t reserved, bool pass,
                        double cpu_seconds) {
  namespace json = boost::json;
  const auto latency = [p99_ms](const std::string& suffix) {
    json::object figures;
    figures[std::string("p50") + suffix] = p99_ms / 4;
    figures[std::string("p90") + suffix] = p99_ms / 2;
    figures[std::string("p99") + suffix] = p99_ms;
    figures[std::string("max") + suffix] = p99_ms * 2;
    return figures;
  };
  json::object spike = latency("_ms");
  spike["answers"] = 1000;
  return json::serialize(json::object{
      {"verdict", {{"pass", pass}, {"checks", json::array{}}}},
      {"results", {{"reserved", reserved}, {"sold_out", 900}}},
      {"latency_ms", latency("")},
      {"phases", {{"spike", spike}}},
      {"timeline",
       json::array{json::object{{"t_s", 0}, {"orders_per_s", {{"sold_out", peak_per_s}}}},
                   json::object{{"t_s", 1}, {"orders_per_s", {{"sold_out", 10}}}}}},
      {"server_process", {{"cpu_seconds", cpu_seconds}, {"resident_bytes", 50 << 20}}}});
}

const ComparedRow* row_named(const Comparison& comparison, std::string_view section,
                             std::string_view name) {
  for (const ComparedRow& row : comparison.rows)
    if (row.section == section && row.name == name) return &row;
  return nullptr;
}

TEST(Compare, MarksChangesBeyondNoiseAndFailsOnlyPastTheGivenThresholds) {
  const std::string a = report_with(20, 10'000, 100, true, 4.0);
  // p99 +50%, peak answers/s -30%, 2 more reservations, CPU +2% (noise).
  const std::string b = report_with(30, 7'000, 102, true, 4.08);
  const Comparison unlimited = compare_reports(a, b, {});
  EXPECT_TRUE(unlimited.failures.empty()) << "no threshold given, none crossed";
  ASSERT_NE(row_named(unlimited, "latency: all", "p99"), nullptr);
  EXPECT_EQ(row_named(unlimited, "latency: all", "p99")->mark, "worse");
  EXPECT_EQ(row_named(unlimited, "latency: spike", "p99")->mark, "worse");
  EXPECT_EQ(row_named(unlimited, "throughput", "peak answers/s")->mark, "worse");
  EXPECT_EQ(row_named(unlimited, "answers", "reserved")->mark, "") << "2% is within noise";
  EXPECT_EQ(row_named(unlimited, "answers", "sold_out")->mark, "");
  EXPECT_EQ(row_named(unlimited, "server", "CPU")->mark, "");

  CompareOptions limits;
  limits.max_p99_increase_percent = 40;
  limits.max_throughput_drop_percent = 20;
  limits.max_cpu_increase_percent = 10;
  const Comparison limited = compare_reports(a, b, limits);
  ASSERT_EQ(limited.failures.size(), 3u) << comparison_text(limited, "a", "b");
  EXPECT_NE(limited.failures[0].find("peak answers/s"), std::string::npos);
  EXPECT_NE(limited.failures[1].find("p99 overall"), std::string::npos);
  EXPECT_NE(limited.failures[2].find("p99 in the spike"), std::string::npos);
  limits.max_p99_increase_percent = 60;
  limits.max_throughput_drop_percent = 35;
  EXPECT_TRUE(compare_reports(a, b, limits).failures.empty());

  // Latencies within the floor are noise whatever their ratio; a reversed pair is better.
  const Comparison fast = compare_reports(report_with(0.2, 10'000, 100, true, 4),
                                          report_with(0.4, 10'000, 100, true, 4), limits);
  EXPECT_EQ(row_named(fast, "latency: all", "p99")->mark, "");
  EXPECT_TRUE(fast.failures.empty());
  EXPECT_EQ(row_named(compare_reports(b, a, {}), "latency: all", "p99")->mark, "better");

  // A p99 over fewer answers than the minimum is shown, not gated (the spike has 1,000 here).
  limits.max_p99_increase_percent = 40;
  limits.min_gated_answers = 1'001;
  const Comparison few = compare_reports(a, b, limits);
  EXPECT_EQ(row_named(few, "latency: spike", "p99")->mark, "worse");
  ASSERT_EQ(few.not_gated.size(), 1u);
  EXPECT_NE(few.not_gated[0].find("p99 in the spike: 1000 answers"), std::string::npos);
  for (const std::string& failure : few.failures)
    EXPECT_EQ(failure.find("spike"), std::string::npos) << failure;
}

TEST(Compare, BFailsOnItsOwnVerdictAndUnreadableReportsAreRefused) {
  const std::string a = report_with(20, 10'000, 100, true, 4);
  const Comparison failed = compare_reports(a, report_with(20, 10'000, 150, false, 4), {});
  ASSERT_EQ(failed.failures.size(), 1u);
  EXPECT_EQ(failed.failures[0], "B's own verdict failed");
  EXPECT_EQ(row_named(failed, "answers", "reserved")->mark, "differs");
  EXPECT_NE(comparison_html(failed, "a<", "b").find("a&lt;"), std::string::npos);
  EXPECT_THROW(compare_reports(a, "{}", {}), std::runtime_error);
  EXPECT_THROW(compare_reports("not json", a, {}), std::runtime_error);
}

class Replay : public ::testing::Test {
 protected:
  // Replays `given` (default: the small scenario, generated) against a fresh server whose
  // journal is under `prefix`; the exit status.
  int replay(const std::string& prefix, std::vector<std::string> extra = {},
             const std::string& given = {}) {
    server = std::make_unique<testing::ServerProcess>(redis, config, prefix);
    trace = given;
    report = ::testing::TempDir() + prefix + "-report";
    if (trace.empty()) {
      trace = ::testing::TempDir() + prefix + ".jsonl";
      testing::ChildProcess gen({FLASHSALE_LOADTEST, "gen", "--scenario",
                                 FLASHSALE_SOURCE_DIR "/tests/loadtest/small.toml", "--out", trace,
                                 "--seed", "3"});
      EXPECT_EQ(gen.wait(30s), 0);
    }
    const std::string port = std::to_string(server->port());
    std::vector<std::string> arguments{FLASHSALE_LOADTEST,
                                       "replay",
                                       "--trace",
                                       trace,
                                       "--url",
                                       "ws://127.0.0.1:" + port + "/ws",
                                       "--api",
                                       "http://127.0.0.1:" + port,
                                       "--report",
                                       report,
                                       "--grace-seconds",
                                       "2"};
    arguments.insert(arguments.end(), extra.begin(), extra.end());
    testing::ChildProcess replay(arguments);
    output = replay.drain_stdout(120s);
    return replay.wait(30s).value_or(-1);
  }
  boost::json::object report_json() const {
    std::ifstream in(report + "/report.json");
    std::stringstream text;
    text << in.rdbuf();
    return boost::json::parse(text.str()).as_object();
  }

  testing::RedisServer redis;
  std::string config = FLASHSALE_SOURCE_DIR "/configs/dev.toml";
  std::unique_ptr<testing::ServerProcess> server;
  std::string trace;
  std::string report;
  std::vector<std::string> output;
};

TEST_F(Replay, ASurgeAgainstTheRealServerPassesTheVerdict) {
  const int status = replay("pass");
  std::string printed;
  for (const auto& line : output) printed += line + "\n";
  EXPECT_EQ(status, 0) << printed;
  const auto json = report_json();
  EXPECT_TRUE(json.at("verdict").at("pass").as_bool()) << printed;
  EXPECT_EQ(json.at("verdict").at("checks").as_array().size(), 8u);
  EXPECT_GT(json.at("results").at("sold_out").to_number<std::int64_t>(), 0);
  EXPECT_GT(json.at("latency_ms").at("samples").to_number<std::int64_t>(), 300);
  // Latency by phase, and the server's own CPU and memory over the run.
  EXPECT_GT(json.at("phases").at("spike").at("answers").to_number<std::int64_t>(), 0);
  EXPECT_GT(json.at("server_process").at("cpu_seconds").to_number<double>(), 0);
  EXPECT_GT(json.at("server_process").at("resident_bytes").to_number<double>(), 1e6);
  std::ifstream html(report + "/report.html");
  std::stringstream text;
  text << html.rdbuf();
  EXPECT_NE(text.str().find("<svg"), std::string::npos);
  EXPECT_EQ(text.str().find("src="), std::string::npos) << "the report must not fetch anything";
}

// A report compared with itself passes any threshold; against a failed replay it fails, with
// the exit status CI gates on.
TEST_F(Replay, CompareGatesOnTheReportsItReads) {
  ASSERT_EQ(replay("base"), 0);
  const std::string base = report;
  ASSERT_NE(replay("broken", {"--assume-stock", "1"}), 0);
  const auto compare = [&](const std::string& b, std::vector<std::string> extra) {
    std::vector<std::string> arguments{FLASHSALE_LOADTEST, "compare", base, b};
    arguments.insert(arguments.end(), extra.begin(), extra.end());
    testing::ChildProcess run(arguments);
    output = run.drain_stdout(30s);
    return run.wait(30s).value_or(-1);
  };
  const std::string html = ::testing::TempDir() + "compare.html";
  EXPECT_EQ(
      compare(base, {"--max-p99-increase", "0", "--max-throughput-drop", "0", "--html", html}), 0);
  EXPECT_EQ(output.back(), "B passes");
  std::ifstream page(html);
  EXPECT_TRUE(page.good());
  EXPECT_EQ(compare(report, {}), 1);
  EXPECT_NE(std::find(output.begin(), output.end(), "  B's own verdict failed"), output.end());
  EXPECT_EQ(compare(::testing::TempDir() + "no-such-report", {}), 2);
}

// A replay spread over three worker processes sends the same orders and gets the same
// verdict from the same checks as one process: the coordinator merges its workers' figures as
// one process merges its threads'. Who wins a unit is timing, so the split of answers between
// statuses may differ; their sum may not.
TEST_F(Replay, ThreeWorkerProcessesGiveTheVerdictAndCountsOfOne) {
  const auto printed = [this] {
    std::string text;
    for (const auto& line : output) text += line + "\n";
    return text;
  };
  ASSERT_EQ(replay("one"), 0) << printed();
  const auto one = report_json();
  ASSERT_EQ(replay("three", {"--workers", "3"}), 0) << printed();
  const auto three = report_json();
  EXPECT_NE(printed().find("in 3 processes"), std::string::npos) << printed();
  EXPECT_EQ(three.at("parameters").at("workers").to_number<int>(), 3);
  const auto names = [](const boost::json::object& run) {
    std::vector<std::string> checks;
    for (const auto& check : run.at("verdict").at("checks").as_array()) {
      EXPECT_TRUE(check.at("pass").as_bool()) << check;
      checks.emplace_back(check.at("name").as_string());
    }
    return checks;
  };
  EXPECT_EQ(names(one), names(three));
  const auto orders = [](const boost::json::object& run, std::string_view key) {
    return run.at("orders").at(key).to_number<std::int64_t>();
  };
  const auto answers = [](const boost::json::object& run) {
    std::int64_t sum = 0;
    for (const auto& [status, count] : run.at("results").as_object())
      sum += count.to_number<std::int64_t>();
    return sum;
  };
  EXPECT_GT(orders(one, "sent"), 300);
  EXPECT_EQ(orders(three, "sent"), orders(one, "sent"));
  EXPECT_EQ(orders(three, "answered") + orders(three, "abandoned"),
            orders(one, "answered") + orders(one, "abandoned"));
  EXPECT_EQ(answers(three), orders(three, "answered"));
  EXPECT_EQ(answers(one), orders(one, "answered"));
  // Every unit went in both: 300 viewers compete for 20.
  for (const auto* run : {&one, &three})
    EXPECT_GE(run->at("results").at("reserved").to_number<std::int64_t>(), 20);
}

TEST_F(Replay, TheVerdictFailsWhenReservationsExceedTheStock) {
  // Told the stock is 1, the checker sees more reservations than units: it must fail.
  EXPECT_NE(replay("fail", {"--assume-stock", "1"}), 0);
  const auto json = report_json();
  EXPECT_FALSE(json.at("verdict").at("pass").as_bool());
  for (const auto& check : json.at("verdict").at("checks").as_array()) {
    if (check.at("name").as_string() == "reserved_within_stock") {
      EXPECT_FALSE(check.at("pass").as_bool());
    }
  }
}

// A sale of three sizes that ends by itself three seconds after T-0, replayed against the real
// server: each order names its size, every per-size check passes, the clicks after the end are
// answered closed, and the report shows each size's figures.
TEST_F(Replay, ASaleOfSizesPassesThePerVariantChecksAndEndsByItself) {
  const std::string sizes = ::testing::TempDir() + "sizes-replay.jsonl";
  testing::ChildProcess gen({FLASHSALE_LOADTEST, "gen", "--scenario",
                             FLASHSALE_SOURCE_DIR "/tests/loadtest/sizes.toml", "--out", sizes,
                             "--seed", "5"});
  ASSERT_EQ(gen.wait(30s), 0);
  std::string printed;
  const int status = replay("sizes", {}, sizes);
  for (const auto& line : output) printed += line + "\n";
  EXPECT_EQ(status, 0) << printed;
  const auto json = report_json();
  std::vector<std::string> names;
  for (const auto& check : json.at("verdict").at("checks").as_array()) {
    EXPECT_TRUE(check.at("pass").as_bool()) << check;
    names.emplace_back(check.at("name").as_string());
  }
  EXPECT_EQ(names.size(), 12u);
  EXPECT_NE(std::find(names.begin(), names.end(), "no_variant_oversold"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "ended_by_itself"), names.end());
  EXPECT_GT(json.at("results").at("closed").to_number<std::int64_t>(), 0) << printed;
  EXPECT_EQ(json.at("server").at("state").as_string(), "closed");
  const auto& variants = json.at("variants").as_array();
  ASSERT_EQ(variants.size(), 3u);
  std::int64_t sold = 0;
  for (const auto& variant : variants) {
    sold += variant.at("sold").to_number<std::int64_t>();
    EXPECT_EQ(variant.at("sold"), variant.at("confirmed_seen")) << variant;
  }
  EXPECT_EQ(variants[1].at("id").as_string(), "42");
  EXPECT_EQ(variants[1].at("stock_total").to_number<int>(), 10);
  EXPECT_EQ(variants[1].at("stock_left").to_number<int>() +
                variants[1].at("held").to_number<int>() + variants[1].at("sold").to_number<int>(),
            10);
  EXPECT_EQ(sold, json.at("server").at("sold").to_number<std::int64_t>());
  EXPECT_EQ(json.at("parameters").at("stock").to_number<int>(), 20);

  // Captured, the sale keeps its sizes, each order's size and its duration; its end is no host
  // close the capture would lose.
  const std::string captured = ::testing::TempDir() + "sizes-captured.jsonl";
  testing::ChildProcess capture({FLASHSALE_LOADTEST, "capture", "--redis", redis.socket(),
                                 "--journal-prefix", "sizes", "--out", captured});
  const auto capture_output = capture.drain_stdout(30s);
  ASSERT_EQ(capture.wait(30s), 0);
  ASSERT_EQ(capture_output.size(), 1u) << capture_output.back();
  EXPECT_NE(capture_output[0].find("20 units"), std::string::npos) << capture_output[0];
  const Trace again = read_trace(captured);
  ASSERT_EQ(again.header.drop.variants.size(), 3u);
  EXPECT_EQ(again.header.drop.variants[2].price_cents, 10'900);
  EXPECT_EQ(again.header.drop.duration_seconds, 3u);
  std::size_t orders = 0;
  for (const Action& action : again.actions) {
    if (action.kind != ActionKind::order) continue;
    orders += 1;
    EXPECT_TRUE(action.variant == "41" || action.variant == "42" || action.variant == "43")
        << action.variant;
  }
  EXPECT_GE(orders, 20u);
}

// A stream of three drops pinned one after another, replayed against the real server: the
// viewers watch the stream (not a drop) and order each drop as it opens. Every drop passes its
// own checks (the second its sizes', the third its end's), every pin is made and shown to
// every viewer still subscribed, and the report has each drop's section and the pin-to-screen
// latency.
class StreamReplay : public Replay {
 protected:
  int replay_stream(const std::string& prefix, std::vector<std::string> extra = {}) {
    const std::string path = ::testing::TempDir() + prefix + "-stream.jsonl";
    testing::ChildProcess gen({FLASHSALE_LOADTEST, "gen", "--scenario",
                               FLASHSALE_SOURCE_DIR "/tests/loadtest/stream.toml", "--out", path,
                               "--seed", "7"});
    EXPECT_EQ(gen.wait(30s), 0);
    return replay(prefix, std::move(extra), path);
  }
  std::string printed() const {
    std::string text;
    for (const auto& line : output) text += line + "\n";
    return text;
  }
  // Each drop's report passes, names its checks, and was shown to every viewer owed its pin.
  void expect_every_drop_passed(const boost::json::object& json) const {
    EXPECT_TRUE(json.at("verdict").at("pass").as_bool()) << printed();
    std::map<std::string, std::size_t> checks_by_drop;
    for (const auto& check : json.at("verdict").at("checks").as_array()) {
      EXPECT_TRUE(check.at("pass").as_bool()) << check;
      const auto* drop = check.as_object().if_contains("drop");
      checks_by_drop[drop == nullptr ? "" : std::string(drop->as_string())] += 1;
    }
    EXPECT_EQ(checks_by_drop,
              (std::map<std::string, std::size_t>{{"", 2}, {"one", 8}, {"two", 11}, {"three", 9}}));
    const auto& drops = json.at("drops").as_array();
    ASSERT_EQ(drops.size(), 3u);
    for (const auto& item : drops) {
      const auto& drop = item.as_object();
      EXPECT_TRUE(drop.at("verdict").at("pass").as_bool()) << drop.at("name");
      EXPECT_GT(drop.at("orders").at("sent").to_number<std::int64_t>(), 50) << drop.at("name");
      EXPECT_GT(drop.at("results").at("reserved").to_number<std::int64_t>(), 0);
      EXPECT_EQ(drop.at("server").at("stream").as_string(), "ci-stream");
      const auto& pin = drop.at("pin").as_object();
      EXPECT_GT(pin.at("owed").to_number<std::int64_t>(), 50) << drop.at("name");
      EXPECT_EQ(pin.at("missed").to_number<std::int64_t>(), 0) << drop.at("name");
      EXPECT_GT(pin.at("pin_to_screen_ms").at("samples").to_number<std::int64_t>(), 50);
    }
    EXPECT_EQ(drops[0].at("id").as_string(), "ci-stream~one");
    EXPECT_EQ(drops[1].at("variants").as_array().size(), 2u);
    EXPECT_EQ(drops[2].at("server").at("state").as_string(), "closed");
    EXPECT_EQ(drops[1].at("opens_at_s").to_number<double>(), 3);
    EXPECT_GT(json.at("stream").at("pin_to_screen_ms").at("samples").to_number<std::int64_t>(),
              250);
    EXPECT_EQ(json.at("server").at("pinned").as_string(), "ci-stream~three");
    EXPECT_EQ(json.at("parameters").at("drops").to_number<int>(), 3);
    EXPECT_EQ(json.at("parameters").at("stock").to_number<int>(), 32);
  }
};

TEST_F(StreamReplay, ThreeDropsPinnedOneAfterAnotherPassPerDropAndEveryViewerSeesEveryPin) {
  const int status = replay_stream("stream");
  EXPECT_EQ(status, 0) << printed();
  const auto json = report_json();
  expect_every_drop_passed(json);
  EXPECT_EQ(json.at("server").at("host").as_string(), "host") << "the configured host's key";
  std::ifstream html(report + "/report.html");
  std::stringstream text;
  text << html.rdbuf();
  EXPECT_NE(text.str().find("<h3>Pins</h3>"), std::string::npos);
  EXPECT_NE(text.str().find("Drop <code>three</code>"), std::string::npos);
  EXPECT_EQ(text.str().find("src="), std::string::npos) << "the report must not fetch anything";
}

// With the operator's key the stream is made for the host "loadtest"; spread over two worker
// processes, the pins are still owed and seen viewer by viewer.
TEST_F(StreamReplay, TheOperatorKeyAndTwoWorkerProcessesGiveTheSameVerdict) {
  const int status =
      replay_stream("stream-operator", {"--host-key", "dev-admin-key", "--workers", "2"});
  EXPECT_EQ(status, 0) << printed();
  const auto json = report_json();
  expect_every_drop_passed(json);
  EXPECT_EQ(json.at("server").at("host").as_string(), "loadtest");
}

// A replayed surge's journal, captured, replays against a fresh server and passes the verdict:
// the capture holds every recorded order once at its time, by the same viewers (under
// pseudonyms), and their payments. Who wins is timing, so the sale may split differently; every
// unit sells both times. The journal keeps its history and snapshots every 10 events, so the
// capture reads past snapshots.
TEST_F(Replay, ACapturedDropReplaysWithTheOrdersAndPaymentsItRecorded) {
  config = testing::dev_config_with(
      {}, {{"journal", "history = \"kept\""}, {"journal", "snapshot_every_events = 10"}});
  const auto printed = [this] {
    std::string text;
    for (const auto& line : output) text += line + "\n";
    return text;
  };
  const auto audit = [this] {
    return testing::http_call(server->port(), "GET", "/api/drops/small/audit", {}, "dev-host-key")
        .json();
  };
  ASSERT_EQ(replay("live"), 0) << printed();
  const auto generated = loadtest::read_trace(trace);
  const auto live = audit();
  EXPECT_EQ(redis.call({"EXISTS", "{live}:snapshot"}), "1");
  EXPECT_EQ(redis.call({"XRANGE", "{live}:journal", "-", "+", "COUNT", "1"}).substr(0, 4), "1-0 ")
      << "a snapshot trimmed the history";
  const std::string captured = ::testing::TempDir() + "captured.jsonl";
  testing::ChildProcess capture({FLASHSALE_LOADTEST, "capture", "--redis", redis.socket(),
                                 "--journal-prefix", "live", "--out", captured});
  const auto capture_output = capture.drain_stdout(30s);
  ASSERT_EQ(capture.wait(30s), 0);
  ASSERT_FALSE(capture_output.empty());
  EXPECT_NE(capture_output[0].find("drop small"), std::string::npos) << capture_output[0];

  const auto capture_trace = loadtest::read_trace(captured);
  EXPECT_EQ(capture_trace.header.drop.stock, 20u);
  EXPECT_EQ(capture_trace.header.drop.waitlist_limit, 5u);
  const auto orders_of = [](const loadtest::Trace& of) {
    std::set<std::pair<std::uint32_t, std::string>> orders;
    std::size_t confirms = 0;
    for (const auto& action : of.actions) {
      if (action.kind == loadtest::ActionKind::order || action.kind == loadtest::ActionKind::retry)
        orders.emplace(action.user, action.client_order_id);
      confirms += action.kind == loadtest::ActionKind::confirm;
    }
    return std::pair{orders, confirms};
  };
  const auto [captured_orders, captured_confirms] = orders_of(capture_trace);
  const auto generated_orders = orders_of(generated).first;
  // One order action per recorded client_order_id: retries returned what was recorded.
  EXPECT_EQ(static_cast<std::size_t>(std::count_if(
                capture_trace.actions.begin(), capture_trace.actions.end(),
                [](const auto& action) { return action.kind == loadtest::ActionKind::order; })),
            captured_orders.size());
  EXPECT_GE(captured_orders.size(), 25u);  // every unit and every waitlist place was ordered
  EXPECT_LE(captured_orders.size(), generated_orders.size());
  EXPECT_EQ(captured_confirms, live.at("orders_confirmed").to_number<std::size_t>());

  ASSERT_EQ(replay("again", {}, captured), 0) << printed();
  const auto again = report_json();
  EXPECT_TRUE(again.at("verdict").at("pass").as_bool()) << printed();
  EXPECT_EQ(again.at("orders").at("sent").to_number<std::size_t>(), captured_orders.size());
  EXPECT_GE(again.at("results").at("reserved").to_number<std::int64_t>(), 20);
  EXPECT_GT(audit().at("orders_confirmed").to_number<std::int64_t>(), 0);
}

}  // namespace
}  // namespace flashsale::loadtest
