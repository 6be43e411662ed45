// The load tester: its histogram, its traces, replay against the real server — a verdict that
// passes, and one that must fail when what it checks does not add up — and the comparison of
// two reports.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "clients.hpp"
#include "flashsale/loadtest/compare.hpp"
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
