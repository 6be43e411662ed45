// What ships for operators, against the real thing: Debian's prometheus scrapes a real server
// through a small surge, loaded with deploy/prometheus/flashsale-rules.yml. Every dashboard
// panel's query (deploy/grafana) returns data and every alert rule evaluates cleanly over
// series that exist, so a renamed metric fails here; stopping Redis sets the journal alert off.
// Cluster-only series (flashsale_shard_*) are checked against an engine in tests/cluster.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "clients.hpp"
#include "process.hpp"
#include "server_process.hpp"

namespace flashsale::testing {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

unsigned short free_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return acceptor.local_endpoint().port();
}

// A private prometheus scraping `target` every second and evaluating the shipped rules.
class Prometheus {
 public:
  explicit Prometheus(unsigned short target)
      : port_(free_port()),
        folder_(std::filesystem::temp_directory_path() /
                ("prometheus-" + std::to_string(getpid()) + "-" + std::to_string(port_))) {
    std::filesystem::create_directories(folder_);
    const std::string config = (folder_ / "prometheus.yml").string();
    std::ofstream(config) << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                          << "rule_files:\n  - " FLASHSALE_SOURCE_DIR
                             "/deploy/prometheus/flashsale-rules.yml\n"
                          << "scrape_configs:\n  - job_name: flashsale\n    static_configs:\n"
                          << "      - targets: ['127.0.0.1:" << target << "']\n";
    process_ = std::make_unique<ChildProcess>(std::vector<std::string>{
        "/usr/bin/prometheus", "--config.file=" + config,
        "--storage.tsdb.path=" + (folder_ / "data").string(),
        "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=warn"});
  }

  ~Prometheus() {
    process_.reset();  // killed and reaped
    std::error_code ignored;
    std::filesystem::remove_all(folder_, ignored);
  }

  // The `data` of an API call (GET), or null if Prometheus is not answering yet.
  json::value api(const std::string& path_and_query) const {
    try {
      const HttpReply reply = http_call(port_, "GET", "/api/v1/" + path_and_query);
      if (reply.status != 200) return nullptr;
      return reply.json().at("data");
    } catch (const std::exception&) {
      return nullptr;
    }
  }
  json::array query(const std::string& promql) const {
    const json::value data =
        api("query?query=" + boost::urls::encode(promql, boost::urls::unreserved_chars));
    return data.is_object() ? data.at("result").as_array() : json::array();
  }
  // Polls `query` until it returns something (Prometheus has no event to await); false at
  // the deadline.
  bool await(const std::string& promql, std::chrono::seconds timeout = 20s) const {
    const auto deadline = Clock::now() + timeout;
    while (query(promql).empty()) {
      if (Clock::now() > deadline) return false;
      std::this_thread::sleep_for(200ms);
    }
    return true;
  }

 private:
  unsigned short port_;
  std::filesystem::path folder_;
  std::unique_ptr<ChildProcess> process_;
};

// The flashsale_… and process_… names a query reads. (Scanned by hand: GCC 12 warns inside
// <regex> under the sanitizers.)
std::set<std::string> metric_names(const std::string& promql) {
  const auto name_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  };
  std::set<std::string> names;
  for (std::size_t at = 0; at < promql.size(); ++at) {
    if (at > 0 && name_char(promql[at - 1])) continue;
    const std::string_view rest = std::string_view(promql).substr(at);
    if (!rest.starts_with("flashsale_") && !rest.starts_with("process_")) continue;
    std::size_t end = at;
    while (end < promql.size() && name_char(promql[end])) ++end;
    names.insert(promql.substr(at, end - at));
    at = end;
  }
  return names;
}

bool cluster_only(const std::string& promql) {
  return promql.find("flashsale_shard_") != std::string::npos;
}

TEST(Prometheus, DashboardQueriesAndAlertRulesHaveDataAndTheJournalAlertFires) {
  RedisServer redis;
  ServerProcess server(redis, dev_config, "prometheus");
  Prometheus prometheus(server.port());
  ASSERT_TRUE(prometheus.await("up{job=\"flashsale\"} == 1")) << "prometheus never scraped";

  // A small surge: orders answered every way, so that every series moves.
  ASSERT_EQ(http_call(server.port(), "POST", "/api/drops",
                      R"({"id":"d","title":"t","price_cents":1,"stock":3,"per_user_limit":1,)"
                      R"("hold_seconds":60})",
                      "dev-host-key")
                .status,
            201u);
  ASSERT_EQ(
      http_call(server.port(), "POST", "/api/drops/d/countdown", R"({"seconds":0})", "dev-host-key")
          .status,
      200u);
  std::vector<std::unique_ptr<Viewer>> viewers;
  for (int index = 0; index < 6; ++index) {
    viewers.push_back(std::make_unique<Viewer>(server.port()));
    viewers.back()->sign_in("v" + std::to_string(index));
    viewers.back()->send(R"({"type":"subscribe","drop":"d"})");  // stock updates fan out
    viewers.back()->send(R"({"type":"order","drop":"d","client_order_id":"c"})");
    ASSERT_TRUE(viewers.back()->next_of("order_result"));
  }
  // Rates need two scrapes that saw the orders.
  ASSERT_TRUE(prometheus.await("increase(flashsale_order_seconds_count[1m]) > 0"));

  std::ifstream file(FLASHSALE_SOURCE_DIR "/deploy/grafana/flashsale-dashboard.json");
  const json::value dashboard = json::parse(std::string(std::istreambuf_iterator<char>(file), {}));
  std::size_t checked = 0;
  for (const json::value& panel : dashboard.at("panels").as_array()) {
    for (const json::value& target : panel.at("targets").as_array()) {
      std::string promql(target.at("expr").as_string());
      if (cluster_only(promql)) continue;
      for (auto at = promql.find("$instance"); at != std::string::npos;
           at = promql.find("$instance"))
        promql.replace(at, 9, ".*");
      EXPECT_FALSE(prometheus.query(promql).empty())
          << panel.at("title").as_string() << ": " << promql;
      checked += 1;
    }
  }
  EXPECT_GE(checked, 20u);

  // Every rule loaded and evaluated without error, over series that exist.
  const json::value rules = prometheus.api("rules");
  ASSERT_TRUE(rules.is_object());
  std::size_t alerts = 0;
  for (const json::value& group : rules.at("groups").as_array()) {
    for (const json::value& rule : group.at("rules").as_array()) {
      alerts += 1;
      EXPECT_EQ(rule.at("health").as_string(), "ok") << rule;
      const std::string promql(rule.at("query").as_string());
      for (const std::string& name : metric_names(promql)) {
        if (name.starts_with("flashsale_shard_")) continue;
        if (name == "flashsale_tls_certificate_expiry_seconds") continue;  // with TLS only
        EXPECT_FALSE(prometheus.query("count(" + name + ")").empty())
            << rule.at("name").as_string() << " uses " << name << ", which no series has";
      }
    }
  }
  EXPECT_EQ(alerts, 10u);

  // Redis gone: the journal alert's expression holds at once (pending for its 30 s `for`).
  redis.kill();
  EXPECT_TRUE(prometheus.await(
      R"(ALERTS{alertname="FlashsaleJournalNotAccepting",alertstate=~"pending|firing"})"))
      << http_call(server.port(), "GET", "/readyz").body;
}

}  // namespace
}  // namespace flashsale::testing
