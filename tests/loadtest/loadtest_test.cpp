// The load tester: its histogram, its traces, and replay against the real server — a verdict
// that passes, and one that must fail when what it checks does not add up.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <random>
#include <sstream>

#include "flashsale/loadtest/histogram.hpp"
#include "flashsale/loadtest/trace.hpp"
#include "process.hpp"
#include "server_process.hpp"

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

class Replay : public ::testing::Test {
 protected:
  // Generates the small scenario and replays it against a fresh server; the exit status.
  int replay(const std::string& prefix, std::vector<std::string> extra = {}) {
    server = std::make_unique<testing::ServerProcess>(
        redis, FLASHSALE_SOURCE_DIR "/configs/dev.toml", prefix);
    trace = ::testing::TempDir() + prefix + ".jsonl";
    report = ::testing::TempDir() + prefix + "-report";
    testing::ChildProcess gen({FLASHSALE_LOADTEST, "gen", "--scenario",
                               FLASHSALE_SOURCE_DIR "/tests/loadtest/small.toml", "--out", trace,
                               "--seed", "3"});
    EXPECT_EQ(gen.wait(30s), 0);
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
  std::ifstream html(report + "/report.html");
  std::stringstream text;
  text << html.rdbuf();
  EXPECT_NE(text.str().find("<svg"), std::string::npos);
  EXPECT_EQ(text.str().find("src="), std::string::npos) << "the report must not fetch anything";
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

}  // namespace
}  // namespace flashsale::loadtest
