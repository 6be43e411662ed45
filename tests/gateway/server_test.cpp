// The flashsale server end to end: the real executable, a real redis-server, real sockets.
// Viewers are Beast WebSocket clients; the host is plain HTTP.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include "clients.hpp"
#include "server_process.hpp"

namespace flashsale::testing {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

constexpr const char* host_key = "dev-host-key";

// Creates drop `id` through the host API of the server at `port`: 60 s holds, no waitlist.
void create_drop(unsigned short port, std::string_view id, int stock, int per_user_limit = 1) {
  ASSERT_EQ(http_call(port, "POST", "/api/drops",
                      json::serialize(json::object{{"id", id},
                                                   {"title", "t"},
                                                   {"price_cents", 1},
                                                   {"stock", stock},
                                                   {"per_user_limit", per_user_limit},
                                                   {"hold_seconds", 60}}),
                      host_key)
                .status,
            201u);
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override { server = std::make_unique<ServerProcess>(redis, dev_config, "gw"); }

  HttpReply host(std::string_view method, std::string_view target, std::string_view body = {}) {
    return http_call(server->port(), method, target, body, host_key);
  }
  void create(std::string_view id, int stock, int limit, int hold_seconds, int waitlist) {
    const auto reply = host("POST", "/api/drops",
                            json::serialize(json::object{{"id", id},
                                                         {"title", "Chestnuts"},
                                                         {"price_cents", 1990},
                                                         {"stock", stock},
                                                         {"per_user_limit", limit},
                                                         {"hold_seconds", hold_seconds},
                                                         {"waitlist_limit", waitlist}}));
    ASSERT_EQ(reply.status, 201u) << reply.body;
  }
  void open_now(std::string_view id) {
    const auto reply =
        host("POST", "/api/drops/" + std::string(id) + "/countdown", R"({"seconds":0})");
    ASSERT_EQ(reply.status, 200u) << reply.body;
  }
  static json::object order(std::string_view drop, std::string_view client_order_id, int qty = 1) {
    return {{"type", "order"}, {"drop", drop}, {"qty", qty}, {"client_order_id", client_order_id}};
  }

  RedisServer redis;
  std::unique_ptr<ServerProcess> server;
};

std::string text(const json::object& message, std::string_view key) {
  return std::string(message.at(key).as_string());
}

TEST_F(ServerTest, WholeFlowFromCountdownToWaitlistPromotionAndExpiry) {
  create("d", 2, 1, 2, 2);
  Viewer alice(server->port());
  Viewer bob(server->port());
  Viewer carol(server->port());
  for (const auto& [viewer, name] :
       {std::pair{&alice, "alice"}, std::pair{&bob, "bob"}, std::pair{&carol, "carol"}}) {
    viewer->sign_in(name);
    viewer->send_json({{"type", "subscribe"}, {"drop", "d"}});
    const auto drop = viewer->next_of("drop");
    ASSERT_TRUE(drop);
    EXPECT_EQ(text(*drop, "state"), "scheduled");
    EXPECT_TRUE(drop->at("opens_at_ms").is_null());
  }
  ASSERT_EQ(host("POST", "/api/drops/d/countdown", R"({"seconds":2})").status, 200u);
  const auto countdown = alice.next_of("drop");
  ASSERT_TRUE(countdown);
  EXPECT_EQ(text(*countdown, "state"), "countdown");
  const auto tick = alice.next_of("tick");
  ASSERT_TRUE(tick);
  EXPECT_LE(tick->at("ms_left").as_int64(), 2'000);
  const auto opened = alice.next_of("state", 5s);
  ASSERT_TRUE(opened);
  EXPECT_EQ(text(*opened, "state"), "open");

  alice.send_json(order("d", "a-1"));
  const auto alice_result = alice.next_of("order_result");
  ASSERT_TRUE(alice_result);
  EXPECT_EQ(text(*alice_result, "status"), "reserved");
  bob.send_json(order("d", "b-1"));
  const auto bob_result = bob.next_of("order_result");
  ASSERT_TRUE(bob_result);
  EXPECT_EQ(text(*bob_result, "status"), "reserved");
  carol.send_json(order("d", "c-1"));
  const auto carol_result = carol.next_of("order_result");
  ASSERT_TRUE(carol_result);
  EXPECT_EQ(text(*carol_result, "status"), "waitlisted");
  EXPECT_EQ(carol_result->at("position").as_int64(), 1);

  // Viewers see the stock reach zero.
  std::int64_t left = -1;
  while (left != 0) {
    const auto stock = alice.next_of("stock");
    ASSERT_TRUE(stock);
    left = stock->at("left").as_int64();
  }

  alice.send_json({{"type", "confirm"}, {"order_id", alice_result->at("order_id")}});
  const auto paid = alice.next_of("order_update");
  ASSERT_TRUE(paid);
  EXPECT_EQ(text(*paid, "status"), "confirmed");

  bob.send_json({{"type", "cancel"}, {"order_id", bob_result->at("order_id")}});
  const auto cancelled = bob.next_of("order_update");
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(text(*cancelled, "status"), "cancelled");
  // Bob's unit goes to Carol, pushed to her connection.
  const auto promoted = carol.next_of("order_update");
  ASSERT_TRUE(promoted);
  EXPECT_EQ(text(*promoted, "status"), "reserved");
  EXPECT_EQ(text(*promoted, "client_order_id"), "c-1");
  // She does not pay: the hold (2 s) expires and she is told.
  const auto expired = carol.next_of("order_update", 6s);
  ASSERT_TRUE(expired);
  EXPECT_EQ(text(*expired, "status"), "expired");

  const auto counters = host("GET", "/api/drops/d").json().as_object();
  EXPECT_EQ(counters.at("sold").as_int64(), 1);
  EXPECT_EQ(counters.at("held").as_int64(), 0);
  EXPECT_EQ(counters.at("stock_left").as_int64() + counters.at("held").as_int64() +
                counters.at("sold").as_int64(),
            counters.at("stock_total").as_int64());

  // A retry returns the original outcome.
  carol.send_json(order("d", "c-1"));
  const auto again = carol.next_of("order_result");
  ASSERT_TRUE(again);
  EXPECT_EQ(text(*again, "status"), "waitlisted");
  const auto orders = host("GET", "/api/drops/d/orders?user=carol").json().as_object();
  EXPECT_EQ(orders.at("orders").as_array().at(0).as_object().at("status").as_string(), "expired");
}

// The viewer page and console come from the binary itself, with their content types, an ETag
// that a revalidation answers with 304, and a content security policy on the pages.
TEST_F(ServerTest, PagesAreServedWithTypesAndValidators) {
  namespace http = boost::beast::http;
  const PageReply page = page_call(server->port(), http::verb::get, "/?drop=x&user=ann");
  ASSERT_EQ(page.status, 200u);
  EXPECT_EQ(page.headers[http::field::content_type], "text/html; charset=utf-8");
  EXPECT_EQ(page.headers[http::field::cache_control], "no-cache");
  EXPECT_NE(page.headers["Content-Security-Policy"], "");
  EXPECT_NE(page.body.find("data-testid=\"buy\""), std::string::npos);
  const std::string etag(page.headers[http::field::etag]);
  ASSERT_FALSE(etag.empty());
  const PageReply again = page_call(server->port(), http::verb::get, "/", etag);
  EXPECT_EQ(again.status, 304u);
  EXPECT_TRUE(again.body.empty());

  const PageReply console = page_call(server->port(), http::verb::get, "/host");
  EXPECT_EQ(console.status, 200u);
  EXPECT_NE(console.body.find("data-testid=\"sales-chart\""), std::string::npos);
  const PageReply script = page_call(server->port(), http::verb::get, "/web/viewer.js");
  EXPECT_EQ(script.status, 200u);
  EXPECT_EQ(script.headers[http::field::content_type], "text/javascript; charset=utf-8");
  const PageReply head = page_call(server->port(), http::verb::head, "/web/style.css");
  EXPECT_EQ(head.status, 200u);
  EXPECT_EQ(head.headers[http::field::content_type], "text/css; charset=utf-8");
  EXPECT_NE(head.headers[http::field::content_length], "0");
  EXPECT_EQ(page_call(server->port(), http::verb::get, "/web/nothing.js").status, 404u);
  EXPECT_EQ(page_call(server->port(), http::verb::post, "/host").status, 405u);
  // A stream's page is the viewer page under the stream's id, one segment only.
  const PageReply stream_page = page_call(server->port(), http::verb::get, "/s/friday?user=ann");
  EXPECT_EQ(stream_page.status, 200u);
  EXPECT_EQ(stream_page.body, page.body);
  EXPECT_EQ(page_call(server->port(), http::verb::get, "/s/").status, 404u);
  EXPECT_EQ(page_call(server->port(), http::verb::get, "/s/a/b").status, 404u);

  // The drop list a viewer may see, without the host key and without the host's numbers, and
  // only once the drop is announced (its countdown started). The list may be 250 ms old.
  create("d", 5, 1, 60, 0);
  const auto drops_listed = [&] {
    const auto drops = http_call(server->port(), "GET", "/drops");
    EXPECT_EQ(drops.status, 200u);
    return drops.json().at("drops").as_array();
  };
  EXPECT_TRUE(drops_listed().empty());
  open_now("d");
  json::array announced;
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  // Polled on fresh connections: one the server turns away (past its accept rate, on a fast
  // machine) is polled again.
  const auto poll = [&] {
    try {
      announced = drops_listed();
    } catch (const std::exception&) {
      announced = {};
    }
    return announced.empty();
  };
  while (poll() && std::chrono::steady_clock::now() < deadline) {
  }
  ASSERT_EQ(announced.size(), 1u);
  const auto& listed = announced.at(0).as_object();
  EXPECT_EQ(text(listed, "id"), "d");
  EXPECT_EQ(listed.at("stock_left").as_int64(), 5);
  EXPECT_FALSE(listed.contains("held"));
}

TEST_F(ServerTest, SignInIsRequiredFirst) {
  Viewer early(server->port());
  early.send_json(order("d", "x"));
  const auto refused = early.next();
  ASSERT_TRUE(refused);
  EXPECT_EQ(text(*refused, "code"), "unauthenticated");
  EXPECT_FALSE(early.next());
  EXPECT_EQ(early.close_code(), 1008);
}

TEST(ServerTokens, TokensAreCheckedWhenAuthIsTokenMode) {
  RedisServer redis;
  // configs/dev.toml's keys and secret are public: token mode refuses to start with them.
  EXPECT_THROW(ServerProcess(redis, dev_config_with({{"mode", "\"token\""}}), "dev-secrets"),
               std::runtime_error);
  const std::string own_key = "host-key-of-our-own";
  ServerProcess server(redis,
                       dev_config_with({{"mode", "\"token\""},
                                        {"host_key", "\"" + own_key + "\""},
                                        {"admin_key", "\"an-admin-key-of-our-own\""},
                                        {"token_secret", "\"a-secret-of-our-own-0123456789\""}}),
                       "tokens");
  const auto minted = http_call(server.port(), "POST", "/api/tokens",
                                R"({"user":"dana","ttl_seconds":60})", own_key);
  ASSERT_EQ(minted.status, 200u) << minted.body;
  Viewer dana(server.port());
  dana.send_json({{"type", "hello"}, {"token", minted.json().at("token")}});
  const auto welcome = dana.next();
  ASSERT_TRUE(welcome);
  ASSERT_EQ(text(*welcome, "type"), "welcome") << json::serialize(*welcome);
  EXPECT_EQ(text(*welcome, "user"), "dana");

  Viewer forger(server.port());
  forger.send_json({{"type", "hello"}, {"token", "eyJ1c2VyIjoiZXZlIn0.AAAA"}});
  const auto refused = forger.next();
  ASSERT_TRUE(refused);
  EXPECT_EQ(text(*refused, "code"), "unauthenticated");
  EXPECT_FALSE(forger.next());
  EXPECT_EQ(forger.close_code(), 1008);

  Viewer name_only(server.port());  // dev sign-in is off
  name_only.send_json({{"type", "hello"}, {"user", "mallory"}});
  const auto no_dev = name_only.next();
  ASSERT_TRUE(no_dev);
  EXPECT_EQ(text(*no_dev, "code"), "unauthenticated");
}

TEST(ServerLimits, AcceptRateAndConnectionsPerUserHoldAtTheirValues) {
  RedisServer redis;
  ServerProcess server(
      redis,
      dev_config_with(
          {{"accepts_per_second", "1"}, {"accepts_burst", "3"}, {"connections_per_user", "2"}}),
      "limits");
  // The burst of 3 connections is accepted...
  Viewer first(server.port());
  first.sign_in("dana");
  Viewer second(server.port());
  second.sign_in("dana");
  Viewer third(server.port());
  // ...the user's third connection is refused at hello (limit 2)...
  third.send_json({{"type", "hello"}, {"user", "dana"}});
  const auto refused = third.next();
  ASSERT_TRUE(refused);
  EXPECT_EQ(text(*refused, "code"), "rate_limited");
  // ...and a fourth within the same second is over the accept rate: closed at once.
  EXPECT_THROW(Viewer(server.port()), std::exception);
}

TEST(ServerLimits, ViewersPastConnectionsMaxAreRefusedButTheHostApiAnswers) {
  RedisServer redis;
  ServerProcess server(redis, dev_config_with({{"connections_max", "1"}}), "capacity");
  Viewer first(server.port());
  first.sign_in("erin");
  EXPECT_THROW(Viewer(server.port()), std::exception);  // the upgrade gets 503
  EXPECT_EQ(http_call(server.port(), "GET", "/api/drops", {}, host_key).status, 200u);
  EXPECT_NE(http_call(server.port(), "GET", "/metrics")
                .body.find("flashsale_connections_refused_total 1"),
            std::string::npos);
}

// A metric's value from /metrics (the whole line's number), or -1 when absent.
double metric(unsigned short port, const std::string& series) {
  const std::string body = http_call(port, "GET", "/metrics").body;
  const auto at = body.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(body.substr(at + series.size() + 2));
}

// Polls /metrics until `series` reads `value` (or, `at_least`, at least `value`); false after
// `timeout`. A poll the server turns away (at its HTTP connection limit) reads as no value.
bool await_metric(unsigned short port, const std::string& series, double value,
                  std::chrono::milliseconds timeout = 5s, bool at_least = false) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const auto read = [&] {
    try {
      return metric(port, series);
    } catch (const std::exception&) {
      return -1.0;
    }
  };
  for (double seen = read(); at_least ? seen < value : seen != value; seen = read()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
  }
  return true;
}

bool await_metric_at_least(unsigned short port, const std::string& series, double value,
                           std::chrono::milliseconds timeout = 5s) {
  return await_metric(port, series, value, timeout, true);
}

// A sold-out drop is answered at the edge (docs/decisions.md): an order that could get nothing
// is answered `sold_out` by the I/O thread, not recorded, while a buyer with an order in the
// drop still reaches the engine and hears their original outcome again. A unit that comes back
// is sold to the next order, never twice.
TEST_F(ServerTest, ASoldOutDropIsAnsweredAtTheEdgeAndAReturnedUnitSellsOnce) {
  create("d", 2, 1, 60, 0);
  open_now("d");
  Viewer alice(server->port());
  Viewer bob(server->port());
  Viewer carol(server->port());
  Viewer dave(server->port());
  alice.sign_in("alice");
  bob.sign_in("bob");
  carol.sign_in("carol");
  dave.sign_in("dave");
  // The order's result (empty, and the test failed, if none came).
  const auto result_of = [](Viewer& viewer, const json::object& message) {
    viewer.send_json(message);
    const auto result = viewer.next_of("order_result");
    EXPECT_TRUE(result) << json::serialize(message);
    return result.value_or(json::object());
  };
  // Its status, and "(unrecorded)" after an answer the engine did not record.
  const auto status_of = [&](Viewer& viewer, const json::object& message) {
    const json::object result = result_of(viewer, message);
    if (result.empty()) return std::string("no answer");
    const bool unrecorded = result.contains("recorded") && !result.at("recorded").as_bool();
    return text(result, "status") + (unrecorded ? " (unrecorded)" : "");
  };
  const json::object alice_result = result_of(alice, order("d", "a-1"));
  const json::object bob_result = result_of(bob, order("d", "b-1"));
  ASSERT_EQ(text(bob_result, "status"), "reserved");

  const std::string at_edge = "sold_out (unrecorded)";
  EXPECT_EQ(status_of(carol, order("d", "c-1")), at_edge);
  EXPECT_EQ(metric(server->port(), "flashsale_orders_at_edge_total"), 1);
  // Alice has an order here: her retry is the engine's, and so is her second order.
  EXPECT_EQ(result_of(alice, order("d", "a-1")), alice_result);
  EXPECT_EQ(status_of(alice, order("d", "a-2")), "limit_exceeded");
  EXPECT_EQ(metric(server->port(), "flashsale_orders_at_edge_total"), 1);

  // Bob's unit comes back: Carol's retry, a fresh attempt, gets it.
  bob.send_json({{"type", "cancel"}, {"order_id", bob_result.at("order_id")}});
  const auto cancelled = bob.next_of("order_update");
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(text(*cancelled, "status"), "cancelled");
  const json::object carol_result = result_of(carol, order("d", "c-1"));
  EXPECT_EQ(text(carol_result, "status"), "reserved");
  // Sold out again: Dave is answered at the edge; Carol's retry still reaches her reservation.
  EXPECT_EQ(status_of(dave, order("d", "d-1")), at_edge);
  EXPECT_EQ(status_of(dave, order("d", "not an id")), "invalid") << "the engine's answer";
  EXPECT_EQ(result_of(carol, order("d", "c-1")), carol_result);
  EXPECT_EQ(metric(server->port(), "flashsale_orders_at_edge_total"), 2);
  EXPECT_EQ(metric(server->port(), "flashsale_orders_total{status=\"sold_out\"}"), 2);

  // An expired hold lowers the gate too: a 1 s hold on a drop of one unit.
  create("x", 1, 1, 1, 0);
  open_now("x");
  EXPECT_EQ(status_of(alice, order("x", "a-x")), "reserved");
  EXPECT_EQ(status_of(bob, order("x", "b-x")), at_edge);
  const auto expired = alice.next_of("order_update", 5s);
  ASSERT_TRUE(expired);
  EXPECT_EQ(text(*expired, "status"), "expired");
  EXPECT_EQ(status_of(bob, order("x", "b-x")), "reserved");

  const auto counters = host("GET", "/api/drops/d").json().as_object();
  EXPECT_EQ(counters.at("held").as_int64(), 2);
  EXPECT_EQ(counters.at("stock_left").as_int64(), 0);
  EXPECT_EQ(counters.at("stock_left").as_int64() + counters.at("held").as_int64() +
                counters.at("sold").as_int64(),
            counters.at("stock_total").as_int64());
}

// What an operator reads during a drop: each answered order is timed (its whole stay in the
// server, its wait for the engine thread, its wait for durability) in Prometheus histograms
// whose buckets add up, and so are host calls by route, journal batches and the recovery; the
// process metrics and build are there beside them.
TEST_F(ServerTest, OrdersHostCallsAndBatchesAreInHistogramsBesideTheProcessMetrics) {
  create("d", 5, 5, 60, 0);
  open_now("d");
  Viewer alice(server->port());
  alice.sign_in("alice");
  for (const char* id : {"c1", "c2", "c3"}) {
    alice.send_json(order("d", id));
    ASSERT_TRUE(alice.next_of("order_result"));
  }
  const unsigned short port = server->port();
  for (const std::string histogram : {"flashsale_order_seconds", "flashsale_order_queue_seconds",
                                      "flashsale_order_durable_seconds"}) {
    SCOPED_TRACE(histogram);
    EXPECT_EQ(metric(port, histogram + "_count"), 3);
    EXPECT_EQ(metric(port, histogram + "_bucket{le=\"+Inf\"}"), 3);
    EXPECT_GT(metric(port, histogram + "_sum"), 0);
    EXPECT_LE(metric(port, histogram + "_bucket{le=\"0.001\"}"),
              metric(port, histogram + "_bucket{le=\"0.01\"}"));
  }
  // Each order waits at least its journal batch, within its whole stay.
  EXPECT_LE(metric(port, "flashsale_order_durable_seconds_sum"),
            metric(port, "flashsale_order_seconds_sum"));
  // One create and one countdown, each under its route; a wrong key under "refused".
  EXPECT_EQ(http_call(port, "POST", "/api/drops/d/close", "{}", "wrong").status, 401u);
  EXPECT_EQ(metric(port, "flashsale_host_call_seconds_count{route=\"create\"}"), 1);
  EXPECT_EQ(metric(port, "flashsale_host_call_seconds_count{route=\"countdown\"}"), 1);
  EXPECT_EQ(metric(port, "flashsale_host_call_seconds_count{route=\"refused\"}"), 1);
  EXPECT_EQ(metric(port, "flashsale_host_call_seconds_count{route=\"close\"}"), 0);
  EXPECT_EQ(metric(port, "flashsale_host_call_seconds_bucket{route=\"create\",le=\"+Inf\"}"), 1);
  // The drop's create, its countdown and three reservations, at least, in durable batches,
  // each timed; one recovery at the start.
  EXPECT_GE(metric(port, "flashsale_journal_batch_events_sum"), 5);
  EXPECT_GE(metric(port, "flashsale_journal_round_trip_seconds_count"), 1);
  EXPECT_LE(metric(port, "flashsale_journal_round_trip_seconds_count"),
            metric(port, "flashsale_journal_batch_events_count"));
  EXPECT_EQ(metric(port, "flashsale_recovery_seconds_count"), 1);
  EXPECT_GT(metric(port, "process_open_fds"), 3);
  EXPECT_GT(metric(port, "process_max_fds"), metric(port, "process_open_fds"));
  EXPECT_GT(metric(port, "process_resident_memory_bytes"), 1e6);
  EXPECT_GT(metric(port, "process_start_time_seconds"), 1.7e9);
  const std::string exposition = http_call(port, "GET", "/metrics").body;
  EXPECT_NE(exposition.find("flashsale_build_info{version=\"0.1.0\""), std::string::npos);
  EXPECT_EQ(promtool_check_metrics(exposition), "");
}

// Each abuse limit lets exactly its configured value through, refuses the next with the
// protocol's code, counts it in /metrics, and leaves everyone else alone.
TEST(ServerLimits, EachAbuseLimitTriggersAtItsValueAndSparesOthers) {
  RedisServer redis;
  ServerProcess server(redis,
                       dev_config_with({{"connections_per_source", "3"},
                                        {"orders_per_second", "0.01"},
                                        {"orders_burst", "3"},
                                        {"subscriptions_max", "2"},
                                        {"waitlist_limit_max", "2"}}),
                       "abuse");
  const unsigned short port = server.port();
  // Connections per source address: 3 from 127.0.0.1, the 4th refused; 127.0.0.2 unaffected.
  std::vector<std::unique_ptr<Viewer>> local;
  for (int index = 0; index < 3; ++index) local.push_back(std::make_unique<Viewer>(port));
  EXPECT_THROW(Viewer{port}, std::exception);  // HTTP 429 rate_limited
  EXPECT_EQ(metric(port, "flashsale_limited_total{limit=\"connections_per_source\"}"), 1);
  Viewer other(port, 0, "127.0.0.2");
  other.sign_in("olga");
  // A closed connection gives its place back.
  local.pop_back();
  ASSERT_TRUE(await_metric(port, "flashsale_connections", 3));
  local.push_back(std::make_unique<Viewer>(port));

  // The per-drop waitlist cap: a host may not set more than waitlist_limit_max...
  const auto create = [&](int waitlist) {
    return http_call(port, "POST", "/api/drops",
                     json::serialize(json::object{{"id", "w"},
                                                  {"title", "t"},
                                                  {"price_cents", 1},
                                                  {"stock", 1},
                                                  {"per_user_limit", 1},
                                                  {"hold_seconds", 60},
                                                  {"waitlist_limit", waitlist}}),
                     host_key);
  };
  EXPECT_EQ(create(3).status, 400u);
  ASSERT_EQ(create(2).status, 201u);
  ASSERT_EQ(http_call(port, "POST", "/api/drops/w/countdown", R"({"seconds":0})", host_key).status,
            200u);
  // Subscriptions per connection: 2, the 3rd refused. Both kept ones must exist: the engine
  // thread forgets a subscription to an unknown drop, which would make room for the third.
  create_drop(port, "v", 1);
  Viewer& buyer = *local[0];
  buyer.sign_in("bea");
  for (const char* drop : {"w", "v"}) buyer.send_json({{"type", "subscribe"}, {"drop", drop}});
  buyer.send_json({{"type", "subscribe"}, {"drop", "y"}});
  std::optional<json::object> refused;
  while ((refused = buyer.next()) && text(*refused, "type") != "error") {
  }
  ASSERT_TRUE(refused);
  EXPECT_EQ(text(*refused, "code"), "rate_limited");
  EXPECT_EQ(text(*refused, "ref"), "y");
  EXPECT_EQ(metric(port, "flashsale_limited_total{limit=\"subscriptions_per_connection\"}"), 1);

  // Orders per connection: a burst of 3, the 4th rate_limited; another connection still orders.
  const std::vector<std::string> answers = [&] {
    std::vector<std::string> statuses;
    for (int index = 0; index < 4; ++index) {
      buyer.send_json({{"type", "order"},
                       {"drop", "w"},
                       {"qty", 1},
                       {"client_order_id", "b" + std::to_string(index)}});
      const auto result = buyer.next_of("order_result");
      statuses.push_back(result ? text(*result, "status") : "none");
    }
    return statuses;
  }();
  EXPECT_EQ(answers, (std::vector<std::string>{"reserved", "limit_exceeded", "limit_exceeded",
                                               "rate_limited"}));
  EXPECT_EQ(metric(port, "flashsale_limited_total{limit=\"orders_per_connection\"}"), 1);
  // Waitlist joins: two waiting places, then sold_out counted as waitlist_full.
  std::vector<std::string> waiting;
  for (const auto& [viewer, name] : {std::pair{local[1].get(), "cy"},
                                     std::pair{local[2].get(), "di"}, std::pair{&other, "olga"}}) {
    if (viewer != &other) viewer->sign_in(name);
    viewer->send_json({{"type", "order"}, {"drop", "w"}, {"qty", 1}, {"client_order_id", "c"}});
    const auto result = viewer->next_of("order_result");
    waiting.push_back(result ? text(*result, "status") : "none");
  }
  EXPECT_EQ(waiting, (std::vector<std::string>{"waitlisted", "waitlisted", "sold_out"}));
  EXPECT_EQ(metric(port, "flashsale_limited_total{limit=\"waitlist_full\"}"), 1);
}

// The engine's share per connection (issue: hardening). A fair drop for the tests below: 100
// units, 10 per buyer, opened at once.
void open_fair_drop(unsigned short port) {
  create_drop(port, "fair", 100, 10);
  ASSERT_EQ(
      http_call(port, "POST", "/api/drops/fair/countdown", R"({"seconds":0})", host_key).status,
      200u);
}

// Viewers buying one unit each of the fair drop.
struct Buyers {
  Buyers(unsigned short port, int count) {
    for (int index = 0; index < count; ++index) {
      viewers.push_back(std::make_unique<Viewer>(port));
      viewers.back()->sign_in("buyer" + std::to_string(index));
    }
  }
  void order() {
    for (auto& viewer : viewers)
      viewer->send_json(
          {{"type", "order"}, {"drop", "fair"}, {"qty", 1}, {"client_order_id", "one"}});
  }
  std::vector<std::string> statuses() {
    std::vector<std::string> answers;
    for (auto& viewer : viewers) {
      const auto result = viewer->next_of("order_result");
      answers.push_back(result ? text(*result, "status") : "none");
    }
    return answers;
  }
  std::vector<std::unique_ptr<Viewer>> viewers;
};

// A connection flooding the engine with cancels is refused past its budget and then closed
// with 1008, and another viewer's orders sent in the middle of the flood are all decided —
// with the default engine queue and with the smallest one (16).
TEST(ServerFairness, AFloodIsRefusedThenClosedAndOthersOrdersAreServed) {
  for (const char* queue : {"65536", "16"}) {
    SCOPED_TRACE(std::string("engine_queue_max = ") + queue);
    RedisServer redis;
    ServerProcess server(redis, dev_config_with({{"engine_queue_max", queue}}), "fair");
    open_fair_drop(server.port());
    Viewer flooder(server.port());
    flooder.sign_in("flooder");
    Buyers others(server.port(), 8);
    const auto flood = [&](int count) {
      try {
        for (int index = 0; index < count; ++index)
          flooder.send(R"({"type":"cancel","order_id":"fair:)" + std::to_string(index) + "\"}");
      } catch (const std::exception&) {
        // closed by the server while we were still writing
      }
    };
    flood(1'000);
    others.order();
    flood(3'000);
    EXPECT_EQ(others.statuses(), std::vector<std::string>(8, "reserved"));
    EXPECT_FALSE(flooder.next_of("never", 5s));
    EXPECT_EQ(flooder.close_code(), 1008);
    // Refused past its budget, or past its share of the queue when the engine is slow to
    // answer (a loaded machine): either way refusals it kept sending past.
    EXPECT_GT(metric(server.port(), "flashsale_limited_total{limit=\"requests_per_connection\"}") +
                  metric(server.port(), "flashsale_limited_total{limit=\"queue_share\"}"),
              0);
  }
}

// While the journal is slow, requests wait in the engine's queue: one connection holds at most
// a quarter of it, refused past that with rate_limited, and the others' orders still get in.
TEST(ServerFairness, OneConnectionHoldsAtMostItsShareOfTheEngineQueue) {
  RedisServer redis;
  ServerProcess server(redis, dev_config_with({{"engine_queue_max", "16"}}), "share");
  const unsigned short port = server.port();
  open_fair_drop(port);
  Viewer flooder(port);
  flooder.sign_in("flooder");
  Buyers first(port, 1);
  Buyers others(port, 8);
  redis.pause();
  // A decided order waits for its batch: from now on the engine thread takes its queue only
  // every 50 ms, and what it decides waits for Redis.
  first.order();
  ASSERT_TRUE(await_metric(port, "flashsale_releases_pending", 1));
  for (int index = 0; index < 40; ++index)  // within the request budget: only the share refuses
    flooder.send(R"({"type":"cancel","order_id":"fair:)" + std::to_string(index) + "\"}");
  others.order();
  int waiting_refused = 0;
  for (int index = 0; index < 40; ++index) {
    const auto answer = flooder.next_of("error", 1s);
    if (!answer) break;
    if (text(*answer, "code") == "rate_limited") ++waiting_refused;
  }
  redis.resume();
  EXPECT_GT(waiting_refused, 0);
  EXPECT_GT(metric(port, "flashsale_limited_total{limit=\"queue_share\"}"), 0);
  EXPECT_EQ(first.statuses(), std::vector<std::string>{"reserved"});
  EXPECT_EQ(others.statuses(), std::vector<std::string>(8, "reserved"));
}

// A journal Redis that wants a user and password (an ACL user): the server takes them from
// journal.redis_user and journal.redis_password_file, works, and never logs the password; the
// audit tool takes them from the environment, and a wrong one is refused without being shown.
TEST(ServerSecrets, RedisCredentialsComeFromAFileAndAreNeverLogged) {
  const std::string password = "pw-7f3a9c1e-never-logged";
  RedisServer redis(
      {"--user", "default", "off", "--user", "flash", "on", ">" + password, "~*", "&*", "+@all"});
  ServerProcess server(
      redis,
      dev_config_with({},
                      {{"journal", "redis_user = \"flash\""},
                       {"journal", "redis_password_file = \"" +
                                       write_temp_file("redis-password", password + "\n") + "\""}}),
      "secret");
  const unsigned short port = server.port();
  EXPECT_EQ(http_call(port, "GET", "/healthz").status, 200u);
  open_fair_drop(port);
  Buyers buyer(port, 1);
  buyer.order();
  EXPECT_EQ(buyer.statuses(), std::vector<std::string>{"reserved"});  // durable: Redis took it
  EXPECT_EQ(server.stop(), 0);
  EXPECT_EQ(server.log().find(password), std::string::npos) << server.log();

  const std::string wrong = "wrong-4b1d-not-shown";
  setenv("FLASHSALE_REDIS_USER", "flash", 1);
  setenv("FLASHSALE_REDIS_PASSWORD", wrong.c_str(), 1);
  ChildProcess audit({FLASHSALE_AUDIT, "--redis", redis.socket(), "--journal-prefix", "secret"});
  unsetenv("FLASHSALE_REDIS_PASSWORD");
  unsetenv("FLASHSALE_REDIS_USER");
  EXPECT_EQ(audit.wait(30s), 2);
  const std::string said = audit.report();
  EXPECT_NE(said.find("refused AUTH"), std::string::npos) << said;
  EXPECT_EQ(said.find(wrong), std::string::npos) << said;
}

// With an Origin allow-list, a page from elsewhere cannot open the socket; a listed page and an
// app (no Origin) can.
TEST(ServerSecrets, OnlyListedOriginsMayOpenTheSocket) {
  RedisServer redis;
  ServerProcess server(
      redis, dev_config_with({}, {{"server", R"(allowed_origins = ["https://shop.example"])"}}),
      "origins");
  EXPECT_THROW(Viewer(server.port(), 0, "127.0.0.1", "https://evil.example"), std::exception);
  Viewer listed(server.port(), 0, "127.0.0.1", "https://shop.example");
  listed.sign_in("from-the-shop");
  Viewer app(server.port());
  app.sign_in("from-an-app");
}

// With server.ops_listen, health and metrics live on their own address only.
TEST(ServerOperations, HealthAndMetricsCanHaveAnAddressOfTheirOwn) {
  RedisServer redis;
  ServerProcess server(redis, dev_config_with({}, {{"server", R"(ops_listen = "127.0.0.1:0")"}}),
                       "ops");
  const std::string log = server.log();
  const std::string mark = "operations on 127.0.0.1:";
  const auto at = log.find(mark);
  ASSERT_NE(at, std::string::npos) << log;
  const auto ops = static_cast<unsigned short>(std::stoi(log.substr(at + mark.size())));
  EXPECT_EQ(http_call(server.port(), "GET", "/metrics").status, 404u);
  EXPECT_EQ(http_call(server.port(), "GET", "/healthz").status, 404u);
  EXPECT_EQ(http_call(server.port(), "GET", "/readyz").status, 404u);
  const auto metrics = http_call(ops, "GET", "/metrics");
  EXPECT_EQ(metrics.status, 200u);
  EXPECT_NE(metrics.body.find("flashsale_connections "), std::string::npos);
  EXPECT_EQ(http_call(ops, "GET", "/healthz").body, R"({"status":"alive"})");
  const auto ready = http_call(ops, "GET", "/readyz");
  EXPECT_EQ(ready.status, 200u);
  EXPECT_NE(ready.body.find("durable_sequence"), std::string::npos) << ready.body;
  EXPECT_EQ(http_call(ops, "POST", "/metrics").status, 405u);
  // Not the API's address: its answer is outside the contract, so the call is not recorded.
  EXPECT_EQ(page_call(ops, boost::beast::http::verb::get, "/api/drops").status, 404u);
}

// server.log_format = "json": every line the server logs is one JSON object with its time,
// level, component and message, for log pipelines.
TEST(ServerOperations, JsonLogsAreOneObjectPerLine) {
  RedisServer redis;
  ServerProcess server(redis, dev_config_with({}, {{"server", R"(log_format = "json")"}}), "json");
  Viewer viewer(server.port());
  viewer.sign_in("ann");
  ASSERT_EQ(server.stop(), 0);
  std::set<std::string> components;
  std::size_t lines = 0;
  std::istringstream log(server.log());
  for (std::string line; std::getline(log, line);) {
    if (line.empty()) continue;
    lines += 1;
    json::value parsed;
    ASSERT_NO_THROW(parsed = json::parse(line)) << line;
    const json::object& event = parsed.as_object();
    for (const char* key : {"time", "level", "component", "message"})
      ASSERT_TRUE(event.contains(key) && event.at(key).is_string()) << key << " in " << line;
    EXPECT_EQ(event.at("time").as_string().size(), 24u) << line;  // 2026-12-02T09:30:00.123Z
    components.insert(std::string(event.at("component").as_string()));
  }
  EXPECT_GE(lines, 3u);
  EXPECT_TRUE(components.count("journal")) << "recovery is logged by the journal";
  EXPECT_TRUE(components.count("flashsale"));
}

// configs/production.toml does not start as shipped (its secrets are files you create), and
// starts once they exist: token sign-in, health off the viewers' port, Redis with a password.
TEST(ServerOperations, TheProductionConfigStartsOnlyWithItsSecrets) {
  const std::string redis_password = "redis-pw-for-the-production-test";
  RedisServer redis({"--user", "default", "off", "--user", "flashsale", "on", ">" + redis_password,
                     "~*", "&*", "+@all"});
  const std::string shipped = FLASHSALE_SOURCE_DIR "/configs/production.toml";
  EXPECT_THROW(ServerProcess(redis, shipped, "prod-as-shipped"), std::runtime_error);

  std::ifstream file(shipped);
  std::string config((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const auto set = [&](const std::string& from, const std::string& to) {
    const auto at = config.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    config.replace(at, from.size(), to);
  };
  const std::string operator_key = "production-test-operator-key";
  set("\"/etc/flashsale/admin-key\"", "\"" + write_temp_file("admin-key", operator_key) + "\"");
  set("\"/etc/flashsale/token-secret\"",
      "\"" + write_temp_file("token-secret", "production-test-token-secret") + "\"");
  set("\"/etc/flashsale/redis-password\"",
      "\"" + write_temp_file("redis-pw", redis_password) + "\"");
  set("\"127.0.0.1:9100\"", "\"127.0.0.1:0\"");
  ServerProcess server(redis, write_temp_file("production.toml", config), "prod");
  EXPECT_EQ(http_call(server.port(), "GET", "/healthz").status, 404u);
  // The operator makes a host; the host's key works.
  const auto host =
      http_call(server.port(), "POST", "/api/admin/hosts", R"({"id":"market"})", operator_key);
  ASSERT_EQ(host.status, 201u) << host.body;
  const std::string market_key(host.json().at("key").as_string());
  const auto minted = http_call(server.port(), "POST", "/api/tokens",
                                R"({"user":"pat","ttl_seconds":600})", market_key);
  ASSERT_EQ(minted.status, 200u) << minted.body;
  Viewer pat(server.port());
  pat.send_json({{"type", "hello"}, {"token", minted.json().at("token")}});
  const auto welcome = pat.next_of("welcome");
  ASSERT_TRUE(welcome);
  EXPECT_EQ(text(*welcome, "user"), "pat");
}

// Guessing the host key costs time: past host_key_failures_per_minute wrong keys, an address's
// host calls get 429 without a look at the key, the right one included.
TEST(ServerSecrets, WrongHostKeysFromOneAddressAreLimited) {
  RedisServer redis;
  ServerProcess server(redis, dev_config_with({}, {{"limits", "host_key_failures_per_minute = 3"}}),
                       "guess");
  const unsigned short port = server.port();
  for (int guess = 0; guess < 3; ++guess)
    EXPECT_EQ(http_call(port, "GET", "/api/drops", {}, "guess-" + std::to_string(guess)).status,
              401u);
  EXPECT_EQ(http_call(port, "GET", "/api/drops", {}, "guess-3").status, 429u);
  EXPECT_EQ(http_call(port, "GET", "/api/drops", {}, host_key).status, 429u);
  EXPECT_EQ(metric(port, "flashsale_limited_total{limit=\"host_key_failures\"}"), 2);
}

// A first message that is not a valid hello closes the connection, binary ones included.
TEST_F(ServerTest, BinaryFramesBeforeHelloClose1008) {
  Viewer early(server->port());
  early.send_binary("\x01\x02");
  const auto refused = early.next();
  ASSERT_TRUE(refused);
  EXPECT_EQ(text(*refused, "code"), "unauthenticated");
  EXPECT_FALSE(early.next());
  EXPECT_EQ(early.close_code(), 1008);
}

// Countdown ticks thin out with the audience: past limits.tick_deliveries_per_second viewers
// (here 1 a second, with 3 connected) a tick comes every 3 whole seconds before the opening
// instant, not every second; the drop still opens on time.
TEST(ServerLimits, CountdownTicksThinOutForALargeAudience) {
  RedisServer redis;
  ServerProcess server(redis, dev_config_with({}, {{"limits", "tick_deliveries_per_second = 1"}}),
                       "ticks");
  const unsigned short port = server.port();
  create_drop(port, "d", 5);
  Viewer alice(port), bob(port), carol(port);
  alice.sign_in("alice");
  alice.send_json({{"type", "subscribe"}, {"drop", "d"}});
  ASSERT_TRUE(alice.next_of("drop"));
  ASSERT_EQ(http_call(port, "POST", "/api/drops/d/countdown", R"({"seconds":4})", host_key).status,
            200u);
  std::vector<std::int64_t> seconds_left;
  for (;;) {
    const auto message = alice.next(6s);
    ASSERT_TRUE(message);
    const std::string_view type = message->at("type").as_string();
    if (type == "state") {
      EXPECT_EQ(message->at("state").as_string(), "open");
      break;
    }
    if (type == "tick") seconds_left.push_back((message->at("ms_left").as_int64() + 500) / 1000);
  }
  // One tick as the countdown starts, then at 3 s left (and perhaps at 0): never 2 or 1.
  ASSERT_GE(seconds_left.size(), 2u);
  EXPECT_EQ(seconds_left[0], 4);
  for (std::size_t index = 1; index < seconds_left.size(); ++index)
    EXPECT_EQ(seconds_left[index] % 3, 0) << seconds_left[index];
}

TEST(ServerLimits, AcceptsPerSourceHoldAtTheirValueAndSpareOtherAddresses) {
  RedisServer redis;
  ServerProcess server(redis,
                       dev_config_with({{"accepts_per_source_per_second", "0.01"},
                                        {"accepts_per_source_burst", "3"}}),
                       "accepts");
  std::vector<std::unique_ptr<Viewer>> viewers;
  for (int index = 0; index < 3; ++index)
    viewers.push_back(std::make_unique<Viewer>(server.port()));
  EXPECT_THROW(Viewer{server.port()}, std::exception);  // HTTP 429 rate_limited
  EXPECT_EQ(metric(server.port(), "flashsale_limited_total{limit=\"accepts_per_source\"}"), 1);
  Viewer other(server.port(), 0, "127.0.0.2");
  other.sign_in("olga");
}

// With an admission window nobody is answered on arrival: every buyer inside the window hears
// the draw's outcome when it closes, exactly `stock` of them reserved.
TEST_F(ServerTest, AdmissionWindowAnswersEveryBuyerWhenItCloses) {
  const auto created = host(
      "POST", "/api/drops",
      R"({"id":"fair","title":"t","price_cents":1,"stock":2,"per_user_limit":1,"hold_seconds":60,)"
      R"("admission_window_ms":1500})");
  ASSERT_EQ(created.status, 201u) << created.body;
  EXPECT_EQ(created.json().at("admission_window_ms").as_int64(), 1500);
  std::vector<std::unique_ptr<Viewer>> buyers;
  for (int index = 0; index < 5; ++index) {
    buyers.push_back(std::make_unique<Viewer>(server->port()));
    buyers.back()->sign_in("b" + std::to_string(index));
  }
  const auto opened = host("POST", "/api/drops/fair/countdown", R"({"seconds":0})");
  ASSERT_EQ(opened.status, 200u);
  const std::int64_t closes_at_ms = opened.json().at("opens_at_ms").as_int64() + 1500;
  for (auto& buyer : buyers) buyer->send_json(order("fair", "c1"));
  buyers[0]->send_json(order("fair", "c1"));  // a retry inside the window gets its own answer
  int reserved = 0;
  int sold_out = 0;
  std::string first_answer;
  for (auto& buyer : buyers) {
    const auto result = buyer->next_of("order_result");
    if (buyer == buyers[0] && result) first_answer = text(*result, "status");
    ASSERT_TRUE(result);
    const std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count();
    EXPECT_GE(now_ms, closes_at_ms) << "answered before the window closed";
    reserved += text(*result, "status") == "reserved";
    sold_out += text(*result, "status") == "sold_out";
  }
  EXPECT_EQ(reserved, 2);
  EXPECT_EQ(sold_out, 3);
  const auto retried = buyers[0]->next_of("order_result");
  ASSERT_TRUE(retried);
  EXPECT_EQ(text(*retried, "status"), first_answer);
  EXPECT_EQ(metric(server->port(), "flashsale_orders_total{status=\"pending\"}"), 6);
  EXPECT_EQ(metric(server->port(), "flashsale_orders_at_edge_total"), 0)
      << "nothing inside the window is answered at the edge";
  // After the draw the drop is sold out: a buyer the draw passed over (no order, a recorded
  // sold_out) hears sold_out again, now from the edge; a winner's retry is still the engine's.
  for (auto& buyer : buyers) {
    buyer->send_json(order("fair", "c1"));
    const auto again = buyer->next_of("order_result");
    ASSERT_TRUE(again);
    const bool unrecorded = again->contains("recorded");
    EXPECT_EQ(unrecorded, text(*again, "status") == "sold_out");
  }
  EXPECT_EQ(metric(server->port(), "flashsale_orders_at_edge_total"), 3);
}

// ack = "durable" holds an outcome until Redis has it; ack = "async" answers at once. With
// Redis stopped, only the async server answers — and the durable one's outcome is there, the
// same, once Redis is back.
TEST(ServerAck, DurableWaitsForRedisAndAsyncDoesNot) {
  RedisServer redis;
  ServerProcess durable(redis, dev_config_with({}), "ack-durable");
  ServerProcess async(redis, dev_config_with({{"ack", "\"async\""}}), "ack-async");
  for (const ServerProcess* server : {&durable, &async}) {
    const unsigned short port = server->port();
    ASSERT_EQ(
        http_call(
            port, "POST", "/api/drops",
            R"({"id":"d","title":"t","price_cents":1,"stock":5,"per_user_limit":1,"hold_seconds":60})",
            host_key)
            .status,
        201u);
    ASSERT_EQ(
        http_call(port, "POST", "/api/drops/d/countdown", R"({"seconds":0})", host_key).status,
        200u);
  }
  Viewer waits(durable.port());
  waits.sign_in("ann");
  Viewer quick(async.port());
  quick.sign_in("ann");
  redis.pause();
  quick.send(R"({"type":"order","drop":"d","client_order_id":"c1"})");
  const auto answered = quick.next_of("order_result", 3s);
  ASSERT_TRUE(answered) << "async ack answers while Redis is stopped";
  EXPECT_EQ(text(*answered, "status"), "reserved");
  waits.send(R"({"type":"order","drop":"d","client_order_id":"c1"})");
  EXPECT_FALSE(waits.next_of("order_result", 500ms)) << "durable ack answered before Redis had it";
  redis.resume();
  Viewer again(durable.port());
  again.sign_in("ann");
  again.send(R"({"type":"order","drop":"d","client_order_id":"c1"})");
  const auto original = again.next_of("order_result", 10s);
  ASSERT_TRUE(original);
  EXPECT_EQ(text(*original, "status"), "reserved");
  // The one order ann has: the retry was answered with the original's outcome.
  const auto orders =
      http_call(durable.port(), "GET", "/api/drops/d/orders?user=ann", {}, host_key).json();
  ASSERT_EQ(orders.at("orders").as_array().size(), 1u);
  EXPECT_EQ(orders.at("orders").at(0).at("order_id"), original->at("order_id"));
}

// Polls /readyz until the journal says it cannot write (503); false after 10 s.
bool await_journal_down(unsigned short port) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      if (http_call(port, "GET", "/readyz").status == 503) return true;
    } catch (const std::exception&) {
      // turned away at the HTTP connection limit: poll again
    }
  }
  return false;
}

// An open drop `d` with 5 units, a buyer "ann" signed in, and her order "c1" decided while
// Redis hangs (SIGSTOP), its batch on its way; then Redis dies (SIGKILL) and the journal knows.
// The order's fate is unknown until Redis is back (docs/durability.md, "Redis in trouble").
void order_into_a_hung_then_killed_redis(RedisServer& redis, unsigned short port, Viewer& buyer) {
  create_drop(port, "d", 5);
  ASSERT_EQ(http_call(port, "POST", "/api/drops/d/countdown", R"({"seconds":0})", host_key).status,
            200u);
  buyer.sign_in("ann");
  redis.pause();
  buyer.send(R"({"type":"order","drop":"d","client_order_id":"c1"})");
  ASSERT_TRUE(await_metric_at_least(port, "flashsale_releases_pending", 1)) << "decided, held";
  redis.kill();
  ASSERT_TRUE(await_journal_down(port));
}

// While the order's fate is unknown, what decides nothing is answered at once, `unavailable`
// (a host call too: it used to wait behind the batch until its connection timed out, an empty
// reply), and what depends on the order — its answer, reads of the state it changed — is held.
// A server stopped then lets go of those connections and exits cleanly: the held answers used to
// outlive the I/O threads their connections need to end, and the process died with SIGSEGV.
TEST(ServerRedisTrouble, HungThenKilledRedisRefusesAtOnceHoldsTheUnknownAndStopsCleanly) {
  RedisServer redis;
  ServerProcess server(redis, dev_config, "hung");
  const unsigned short port = server.port();
  Viewer buyer(port);
  ASSERT_NO_FATAL_FAILURE(order_into_a_hung_then_killed_redis(redis, port, buyer));

  const auto refused = http_call(
      port, "POST", "/api/drops",
      R"({"id":"late","title":"t","price_cents":1,"stock":1,"per_user_limit":1,"hold_seconds":60})",
      host_key);
  ASSERT_EQ(refused.status, 503u) << refused.body;
  EXPECT_EQ(refused.json().at("error").at("code"), "unavailable");
  Viewer again(port);
  again.sign_in("ann");
  again.send(R"({"type":"order","drop":"d","client_order_id":"c1"})");
  const auto retried = again.next_of("order_result");
  ASSERT_TRUE(retried);
  EXPECT_EQ(text(*retried, "status"), "unavailable");

  // Held: the order's answer and the stock update it made, then each read as it reaches the
  // engine thread — the host's and the public list's.
  ASSERT_TRUE(await_metric(port, "flashsale_releases_pending", 2));
  auto read = std::async(std::launch::async,
                         [port] { return http_call(port, "GET", "/api/drops/d", {}, host_key); });
  ASSERT_TRUE(await_metric(port, "flashsale_releases_pending", 3));
  auto list = std::async(std::launch::async, [port] { return http_call(port, "GET", "/drops"); });
  ASSERT_TRUE(await_metric(port, "flashsale_releases_pending", 4));

  EXPECT_EQ(server.stop(), 0) << server.log();
  EXPECT_NE(server.log().find("4 message(s) waited for events never made durable"),
            std::string::npos)
      << server.log();
  EXPECT_FALSE(buyer.next_of("order_result")) << "answered an order whose fate is unknown";
  EXPECT_EQ(buyer.close_code(), 1001);
  for (auto* call : {&read, &list}) {
    unsigned status = 0;
    try {
      status = call->get().status;
    } catch (const std::exception&) {
      // closed unanswered, as it should be
    }
    EXPECT_EQ(status, 0u) << "answered a read of a state never durable";
  }
}

// The same order, once Redis is back on its AOF: the journal looks for the batch in the stream,
// writes it (Redis hung before reading it), and the buyer gets the answer that waited; a retry
// gets the same order.
TEST(ServerRedisTrouble, AnOrderLostWithAKilledRedisIsAnsweredWhenRedisIsBack) {
  RedisServer redis;
  ServerProcess server(redis, dev_config, "back");
  const unsigned short port = server.port();
  Viewer buyer(port);
  ASSERT_NO_FATAL_FAILURE(order_into_a_hung_then_killed_redis(redis, port, buyer));

  redis.start();
  const auto answer = buyer.next_of("order_result", 20s);
  ASSERT_TRUE(answer) << "the held answer never came";
  EXPECT_EQ(text(*answer, "status"), "reserved");
  Viewer again(port);
  again.sign_in("ann");
  again.send(R"({"type":"order","drop":"d","client_order_id":"c1"})");
  const auto retried = again.next_of("order_result");
  ASSERT_TRUE(retried);
  EXPECT_EQ(text(*retried, "status"), "reserved");
  EXPECT_EQ(retried->at("order_id"), answer->at("order_id"));
  EXPECT_EQ(server.stop(), 0) << server.log();
}

// A buyer who comes back learns where their orders stand when they subscribe: a payment made
// from another device while they were away, and a hold still running. Another viewer is told
// nothing of them.
TEST_F(ServerTest, ASubscribeTellsAReturningBuyerWhereTheirOrdersStand) {
  create("d", 5, 2, 60, 0);
  open_now("d");
  std::string paid_id;
  {
    Viewer phone(server->port());
    phone.sign_in("alice");
    phone.send_json(order("d", "a-1"));
    const auto first = phone.next_of("order_result");
    ASSERT_TRUE(first);
    paid_id = text(*first, "order_id");
    phone.send_json(order("d", "a-2"));
    ASSERT_TRUE(phone.next_of("order_result"));
  }  // the phone is gone; the laptop pays, without following the drop
  {
    Viewer laptop(server->port());
    laptop.sign_in("alice");
    laptop.send_json({{"type", "confirm"}, {"order_id", paid_id}});
    const auto paid = laptop.next_of("order_update");
    ASSERT_TRUE(paid);
    EXPECT_EQ(text(*paid, "status"), "confirmed");
  }
  Viewer back(server->port());
  back.sign_in("alice");
  back.send_json({{"type", "subscribe"}, {"drop", "d"}});
  ASSERT_TRUE(back.next_of("drop"));
  std::map<std::string, std::string> told;
  for (int index = 0; index < 2; ++index) {
    const auto update = back.next_of("order_update");
    ASSERT_TRUE(update);
    told[text(*update, "client_order_id")] = text(*update, "status");
  }
  EXPECT_EQ(told, (std::map<std::string, std::string>{{"a-1", "confirmed"}, {"a-2", "reserved"}}));

  // What a subscribe sends comes before what a later one does: bob hears of no order between.
  create("e", 5, 1, 60, 0);
  Viewer bob(server->port());
  bob.sign_in("bob");
  bob.send_json({{"type", "subscribe"}, {"drop", "d"}});
  bob.send_json({{"type", "subscribe"}, {"drop", "e"}});
  for (auto message = bob.next(); message; message = bob.next()) {
    EXPECT_NE(text(*message, "type"), "order_update");
    if (text(*message, "type") == "drop" && text(*message, "drop") == "e") return;
  }
  ADD_FAILURE() << "no drop e";
}

TEST_F(ServerTest, EveryErrorCodeIsAnsweredAndTheConnectionKeepsServing) {
  create("d", 5, 1, 60, 0);
  open_now("d");
  Viewer alice(server->port());
  alice.sign_in("alice");
  const auto error_for = [&](std::string_view frame) {
    alice.send_unchecked(frame);
    const auto error = alice.next_of("error");
    return error ? text(*error, "code") : std::string("no error");
  };
  EXPECT_EQ(error_for("{nope"), "bad_json");
  EXPECT_EQ(error_for(R"({"type":"teleport"})"), "unknown_type");
  EXPECT_EQ(error_for(R"({"type":"order","drop":"d","qty":-3,"client_order_id":"c"})"),
            "bad_field");
  EXPECT_EQ(error_for(R"({"type":"subscribe","drop":"nope"})"), "unknown_drop");
  EXPECT_EQ(error_for(R"({"type":"confirm","order_id":"nope:1"})"), "unknown_order");
  EXPECT_EQ(error_for(R"({"type":"confirm","order_id":"d:99"})"), "unknown_order");

  Viewer bob(server->port());
  bob.sign_in("bob");
  bob.send_json(order("d", "b-1"));
  const auto bobs = bob.next_of("order_result");
  ASSERT_TRUE(bobs);
  // Another buyer's order is answered as if it did not exist: ids reveal nothing of others.
  EXPECT_EQ(error_for(R"({"type":"cancel","order_id":")" + text(*bobs, "order_id") + "\"}"),
            "unknown_order");

  // Still serving after all that.
  alice.send_json({{"type", "time"}});
  EXPECT_TRUE(alice.next_of("time"));

  // Orders beyond the burst (10) are refused for rate, with an order_result.
  for (int index = 0; index < 15; ++index)
    alice.send_json(order("d", "r-" + std::to_string(index)));
  int rate_limited = 0;
  for (int index = 0; index < 15; ++index) {
    const auto result = alice.next_of("order_result");
    ASSERT_TRUE(result);
    rate_limited += text(*result, "status") == "rate_limited";
  }
  EXPECT_GE(rate_limited, 4);
}

TEST_F(ServerTest, OversizedFramesCloseWith1009) {
  Viewer alice(server->port());
  alice.sign_in("alice");
  alice.send(R"({"type":"time","padding":")" + std::string(5'000, 'x') + "\"}");
  EXPECT_FALSE(alice.next());
  EXPECT_EQ(alice.close_code(), 1009);
}

TEST_F(ServerTest, HostApiAnswersErrorsWithStatusAndCode) {
  EXPECT_EQ(http_call(server->port(), "GET", "/api/drops").status, 401u);
  EXPECT_EQ(http_call(server->port(), "GET", "/api/drops", {}, "wrong-key-123").status, 401u);
  EXPECT_EQ(host("GET", "/api/drops/nope").status, 404u);
  EXPECT_EQ(host("POST", "/api/drops", "{not json").status, 400u);
  const auto missing = host("POST", "/api/drops", R"({"id":"d"})");
  EXPECT_EQ(missing.status, 400u);
  EXPECT_EQ(missing.json().at("error").at("code").as_string(), "invalid_argument");
  create("d", 1, 1, 60, 0);
  EXPECT_EQ(
      host(
          "POST", "/api/drops",
          R"({"id":"d","title":"t","price_cents":1,"stock":1,"per_user_limit":1,"hold_seconds":60})")
          .status,
      409u);
  open_now("d");
  EXPECT_EQ(host("POST", "/api/drops/d/countdown", R"({"seconds":5})").status, 409u);
  EXPECT_EQ(host("POST", "/api/drops/d/restock", R"({"add":2})").status, 200u);
  EXPECT_EQ(host("POST", "/api/drops/d/close").status, 200u);
  EXPECT_EQ(host("POST", "/api/drops/d/close").status, 409u);
  EXPECT_EQ(host("GET", "/api/drops/d/orders").status, 400u);
  EXPECT_EQ(http_call(server->port(), "GET", "/healthz").status, 200u);
  const auto metrics = http_call(server->port(), "GET", "/metrics");
  EXPECT_NE(metrics.body.find("flashsale_orders_total{status=\"reserved\"}"), std::string::npos);
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Sizes S, M and L of a tee: what a host creates for a drop with variants.
json::object tee(std::string_view id) {
  return {{"id", id},
          {"title", "Tee"},
          {"per_user_limit", 3},
          {"per_variant_limit", 2},
          {"hold_seconds", 60},
          {"variants",
           json::array{json::object{{"id", "S"},
                                    {"label", "Small"},
                                    {"price_cents", 1500},
                                    {"list_price_cents", 2500},
                                    {"stock", 2}},
                       json::object{{"id", "M"}, {"price_cents", 1200}, {"stock", 3}},
                       json::object{
                           {"id", "L"}, {"label", "Large"}, {"price_cents", 1800}, {"stock", 1}}}}};
}

json::object order_of(std::string_view drop, std::string_view client_order_id,
                      std::string_view variant, int qty = 1) {
  return {{"type", "order"},
          {"drop", drop},
          {"qty", qty},
          {"client_order_id", client_order_id},
          {"variant", variant}};
}

// Each variant's stock, by id, as a `stock` frame or a drop lists them.
std::map<std::string, std::int64_t> variant_stock(const json::object& holder,
                                                  std::string_view left_key) {
  std::map<std::string, std::int64_t> left;
  for (const json::value& variant : holder.at("variants").as_array())
    left[std::string(variant.at("id").as_string())] = variant.at(left_key).as_int64();
  return left;
}

// Bad variants and schedules are refused at the edge with the error the docs give, and leave
// nothing behind: no drop, no units, no recorded order.
TEST_F(ServerTest, BadVariantsAndSchedulesAreRefusedAndChangeNothing) {
  const auto refused = [&](json::object body, std::string_view code, std::string_view names) {
    const auto reply = host("POST", "/api/drops", json::serialize(body));
    EXPECT_EQ(reply.status, 400u) << reply.body;
    if (reply.status != 400u) return;
    const json::value answer = reply.json();
    const json::value& error = answer.at("error");
    EXPECT_EQ(error.at("code").as_string(), code) << reply.body;
    EXPECT_NE(std::string(error.at("message").as_string()).find(names), std::string::npos)
        << names << " unnamed in " << reply.body;
  };
  const auto with = [](json::object body, std::string_view key, json::value value) {
    body[key] = std::move(value);
    return body;
  };
  const auto with_variant = [&](std::size_t index, std::string_view key, json::value value) {
    json::object body = tee("bad");
    body["variants"].as_array()[index].as_object()[key] = std::move(value);
    return body;
  };
  const std::int64_t now = now_ms();
  constexpr std::int64_t day_ms = 24 * 3600 * 1000;
  refused(with_variant(1, "id", "S"), "invalid_argument", "given twice");
  refused(with_variant(0, "list_price_cents", 1000), "invalid_argument",
          "variants[0].list_price_cents");
  refused(with_variant(2, "id", "L XL"), "invalid_argument", "variants[2].id");
  refused(with(tee("bad"), "variants", json::array{}), "invalid_argument", "variants");
  refused(with(tee("bad"), "stock", 5), "invalid_argument", "stock");
  refused(with(tee("bad"), "price_cents", 1500), "invalid_argument", "price_cents");
  refused(with(tee("bad"), "per_variant_limit", 4), "invalid_argument", "per_variant_limit");
  refused(json::object{{"id", "bad"},
                       {"title", "t"},
                       {"price_cents", 1500},
                       {"list_price_cents", 1499},
                       {"stock", 1},
                       {"per_user_limit", 1},
                       {"hold_seconds", 60}},
          "invalid_argument", "list_price_cents");
  refused(with(with(tee("bad"), "opens_at_ms", now + 60'000), "ends_at_ms", now + 30'000),
          "invalid_argument", "ends_at_ms");
  refused(with(tee("bad"), "ends_at_ms", now + 30'000), "invalid_argument", "opens_at_ms");
  refused(with(with(with(tee("bad"), "opens_at_ms", now + 60'000), "ends_at_ms", now + 90'000),
               "duration_seconds", 30),
          "invalid_argument", "duration_seconds");
  refused(with(tee("bad"), "opens_at_ms", now + 8 * day_ms), "invalid_argument", "opens_at_ms");
  refused(with(tee("bad"), "duration_seconds", 7 * 24 * 3600 + 1), "invalid_argument",
          "duration_seconds");
  EXPECT_EQ(host("GET", "/api/drops/bad").status, 404u);
  EXPECT_EQ(host("GET", "/api/drops").json().at("drops").as_array().size(), 0u);

  ASSERT_EQ(host("POST", "/api/drops", json::serialize(tee("tee"))).status, 201u);
  const auto before = host("GET", "/api/drops/tee").json().as_object();
  const auto restock = [&](std::string_view body) {
    return host("POST", "/api/drops/tee/restock", body);
  };
  auto unknown = restock(R"({"add":2,"variant":"XL"})");
  EXPECT_EQ(unknown.status, 400u);
  EXPECT_EQ(unknown.json().at("error").at("code").as_string(), "unknown_variant") << unknown.body;
  unknown = restock(R"({"add":2})");
  EXPECT_EQ(unknown.status, 400u);
  EXPECT_EQ(unknown.json().at("error").at("code").as_string(), "unknown_variant") << unknown.body;
  EXPECT_EQ(restock(R"({"add":2,"variant":"x y"})").json().at("error").at("code").as_string(),
            "invalid_argument");
  for (const char* both : {R"({"seconds":0,"opens_at_ms":1})", "{}"}) {
    const auto countdown = host("POST", "/api/drops/tee/countdown", both);
    EXPECT_EQ(countdown.status, 400u) << both;
    EXPECT_NE(countdown.body.find("exactly one"), std::string::npos) << countdown.body;
  }
  EXPECT_EQ(host("POST", "/api/drops/tee/countdown",
                 json::serialize(json::object{{"opens_at_ms", now + 8 * day_ms}}))
                .status,
            400u);
  EXPECT_EQ(host("GET", "/api/drops/tee").json().as_object(), before) << "a refusal changed it";

  open_now("tee");
  Viewer alice(server->port());
  alice.sign_in("alice");
  for (const json::object& message : {order_of("tee", "a-1", "XL"), order("tee", "a-1")}) {
    alice.send_json(message);
    const auto result = alice.next_of("order_result");
    ASSERT_TRUE(result);
    EXPECT_EQ(text(*result, "status"), "unknown_variant");
    EXPECT_FALSE(text(*result, "reason").empty());
    EXPECT_FALSE(result->contains("variant"));
  }
  alice.send_unchecked(R"({"type":"order","drop":"tee","client_order_id":"a-1","variant":"x y"})");
  const auto malformed = alice.next_of("error");
  ASSERT_TRUE(malformed);
  EXPECT_EQ(text(*malformed, "code"), "bad_field");
  EXPECT_EQ(text(*malformed, "ref"), "a-1");
  const auto untouched = host("GET", "/api/drops/tee").json().as_object();
  EXPECT_EQ(untouched.at("decisions").as_int64(), 0);
  EXPECT_EQ(untouched.at("orders").as_int64(), 0);
  EXPECT_EQ(untouched.at("stock_left").as_int64(), 6);
  // Nothing was recorded: the same client_order_id, naming a size the drop has, buys.
  alice.send_json(order_of("tee", "a-1", "S"));
  const auto bought = alice.next_of("order_result");
  ASSERT_TRUE(bought);
  EXPECT_EQ(text(*bought, "status"), "reserved");
  EXPECT_EQ(text(*bought, "variant"), "S");
}

// A drop scheduled at creation, with a duration: it counts down to its instant, sells each
// variant from its own stock over a real socket, shows viewers every variant's stock, and
// closes by itself when its time is up, as a host's close would.
TEST_F(ServerTest, AScheduledDropWithVariantsSellsEachAndClosesByItself) {
  const std::int64_t opens_at_ms = now_ms() + 2'000;
  json::object body = tee("tee");
  body["opens_at_ms"] = opens_at_ms;
  body["duration_seconds"] = 4;
  const auto created = host("POST", "/api/drops", json::serialize(body));
  ASSERT_EQ(created.status, 201u) << created.body;
  const auto drop = created.json().as_object();
  EXPECT_EQ(text(drop, "state"), "countdown");
  EXPECT_EQ(drop.at("opens_at_ms").as_int64(), opens_at_ms);
  EXPECT_EQ(drop.at("duration_ms").as_int64(), 4'000);
  EXPECT_EQ(drop.at("closes_at_ms").as_int64(), opens_at_ms + 4'000);
  EXPECT_EQ(drop.at("price_cents").as_int64(), 1200) << "the lowest variant's";
  EXPECT_EQ(drop.at("per_variant_limit").as_int64(), 2);
  EXPECT_EQ(drop.at("stock_total").as_int64(), 6);
  EXPECT_EQ(variant_stock(drop, "stock_total"),
            (std::map<std::string, std::int64_t>{{"S", 2}, {"M", 3}, {"L", 1}}));

  Viewer alice(server->port());
  Viewer bob(server->port());
  alice.sign_in("alice");
  bob.sign_in("bob");
  for (Viewer* viewer : {&alice, &bob}) viewer->send_json({{"type", "subscribe"}, {"drop", "tee"}});
  const auto shown = alice.next_of("drop");
  ASSERT_TRUE(shown);
  EXPECT_EQ(variant_stock(*shown, "stock_left"),
            (std::map<std::string, std::int64_t>{{"S", 2}, {"M", 3}, {"L", 1}}));
  EXPECT_EQ(shown->at("closes_at_ms").as_int64(), opens_at_ms + 4'000);
  if (text(*shown, "state") == "countdown") {
    const auto opened = alice.next_of("state", 5s);
    ASSERT_TRUE(opened);
    EXPECT_EQ(text(*opened, "state"), "open");
  }

  alice.send_json(order_of("tee", "a-1", "S", 2));
  const auto small = alice.next_of("order_result");
  ASSERT_TRUE(small);
  EXPECT_EQ(text(*small, "status"), "reserved") << json::serialize(*small);
  EXPECT_EQ(text(*small, "variant"), "S");
  EXPECT_EQ(small->at("qty").as_int64(), 2);
  bob.send_json(order_of("tee", "b-1", "M"));
  const auto medium = bob.next_of("order_result");
  ASSERT_TRUE(medium);
  EXPECT_EQ(text(*medium, "status"), "reserved");
  EXPECT_EQ(text(*medium, "variant"), "M");
  alice.send_json(order_of("tee", "a-2", "S"));
  const auto over = alice.next_of("order_result");
  ASSERT_TRUE(over);
  EXPECT_EQ(text(*over, "status"), "limit_exceeded") << "3 units may be hers, but 2 of a size";
  EXPECT_EQ(text(*over, "variant"), "S");

  // Viewers see every variant's stock, coalesced: S sold out, M down one, L untouched.
  const std::map<std::string, std::int64_t> expected{{"S", 0}, {"M", 2}, {"L", 1}};
  std::map<std::string, std::int64_t> seen;
  std::int64_t left = -1;
  while (seen != expected) {
    const auto stock = bob.next_of("stock");
    ASSERT_TRUE(stock) << "last seen: " << left;
    seen = variant_stock(*stock, "left");
    left = stock->at("left").as_int64();
  }
  EXPECT_EQ(left, 3);

  alice.send_json({{"type", "confirm"}, {"order_id", small->at("order_id")}});
  const auto paid = alice.next_of("order_update");
  ASSERT_TRUE(paid);
  EXPECT_EQ(text(*paid, "status"), "confirmed");
  EXPECT_EQ(text(*paid, "variant"), "S");
  const auto orders = host("GET", "/api/drops/tee/orders?user=alice").json().as_object();
  ASSERT_EQ(orders.at("orders").as_array().size(), 1u) << "limit_exceeded is no order";
  EXPECT_EQ(orders.at("orders").as_array()[0].at("variant").as_string(), "S");
  const auto audit = host("GET", "/api/drops/tee/audit").json().as_object();
  EXPECT_EQ(audit.at("sales_cents").as_int64(), 3'000);

  // Nobody closes it: its duration does.
  const auto closed = bob.next_of("state", 8s);
  ASSERT_TRUE(closed);
  EXPECT_EQ(text(*closed, "state"), "closed");
  EXPECT_GE(closed->at("server_time_ms").as_int64(), opens_at_ms + 4'000);
  bob.send_json(order_of("tee", "b-2", "L"));
  const auto late = bob.next_of("order_result");
  ASSERT_TRUE(late);
  EXPECT_EQ(text(*late, "status"), "closed");
  EXPECT_EQ(text(host("GET", "/api/drops/tee").json().as_object(), "state"), "closed");
}

// The edges of the HTTP surface (issue: hardening): read-only endpoints take GET and HEAD only,
// ids that are paths and text with control characters are refused, query values are
// percent-decoded, and health says what is wrong in its own words, not Redis's.
TEST_F(ServerTest, HttpEdgesAnswerAsDocumented) {
  for (const char* target : {"/metrics", "/healthz", "/readyz", "/drops"}) {
    EXPECT_EQ(http_call(server->port(), "DELETE", target).status, 405u) << target;
    EXPECT_EQ(http_call(server->port(), "POST", target).status, 405u) << target;
    EXPECT_EQ(page_call(server->port(), boost::beast::http::verb::head, target).status, 200u)
        << target;
    // A query does not change the resource (a probe's marker, a cache-buster).
    EXPECT_EQ(http_call(server->port(), "GET", std::string(target) + "?probe=1").status, 200u)
        << target;
    // HEAD then GET on one connection: the HEAD's answer has the GET's length and no body, or
    // the GET's answer would be read from the middle of it.
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket socket(io);
    socket.connect({boost::asio::ip::make_address("127.0.0.1"), server->port()});
    const std::string requests = "HEAD " + std::string(target) +
                                 " HTTP/1.1\r\nHost: a\r\n\r\nGET " + target +
                                 " HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    boost::asio::write(socket, boost::asio::buffer(requests));
    std::string answers;
    boost::system::error_code end;
    boost::asio::read(socket, boost::asio::dynamic_buffer(answers), end);
    const std::size_t first_end = answers.find("\r\n\r\n");
    ASSERT_NE(first_end, std::string::npos) << target;
    EXPECT_TRUE(answers.compare(first_end + 4, 12, "HTTP/1.1 200") == 0)
        << target << ": after the HEAD's headers comes " << answers.substr(first_end + 4, 40);
  }
  for (const char* id : {".", ".."}) {
    const auto refused = host("POST", "/api/drops",
                              json::serialize(json::object{{"id", id},
                                                           {"title", "t"},
                                                           {"price_cents", 1},
                                                           {"stock", 1},
                                                           {"per_user_limit", 1},
                                                           {"hold_seconds", 60}}));
    EXPECT_EQ(refused.status, 400u) << id;
  }
  const auto escaped = host("POST", "/api/drops",
                            R"({"id":"e","title":"a\u001b[2Jb","price_cents":1,"stock":1,)"
                            R"("per_user_limit":1,"hold_seconds":60})");
  EXPECT_EQ(escaped.status, 400u);
  EXPECT_NE(escaped.body.find("control characters"), std::string::npos) << escaped.body;

  create("q", 5, 1, 60, 0);
  open_now("q");
  for (const auto& [user, encoded] : {std::pair{"a&b", "a%26b"}, std::pair{"p+q", "p%2Bq"}}) {
    Viewer buyer(server->port());
    buyer.sign_in(user);
    buyer.send_json(order("q", "one"));
    ASSERT_TRUE(buyer.next_of("order_result"));
    const auto orders = host("GET", std::string("/api/drops/q/orders?user=") + encoded);
    ASSERT_EQ(orders.status, 200u) << orders.body;
    EXPECT_EQ(orders.json().at("orders").as_array().size(), 1u) << user;
  }

  redis.kill();
  HttpReply health;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  EXPECT_EQ(http_call(server->port(), "GET", "/healthz").status, 200u) << "alive all the same";
  // A poll the server turns away (at its HTTP connection limits) is polled again.
  const auto poll = [&] {
    try {
      health = http_call(server->port(), "GET", "/readyz");
    } catch (const std::exception&) {
      health = {};
      health.status = 200;
    }
    return health.status;
  };
  while (poll() == 200 && std::chrono::steady_clock::now() < deadline) {
  }
  ASSERT_EQ(health.status, 503u);
  EXPECT_EQ(health.json().at("error").at("message").as_string(),
            "the journal cannot reach its Redis; retrying")
      << health.body;
}

// What the server answers to `bytes` sent raw on a fresh connection: everything until it closes
// (or 5 s pass).
std::string raw_http(unsigned short port, const std::string& bytes) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  boost::asio::write(socket, boost::asio::buffer(bytes));
  std::string answer;
  std::array<char, 4096> chunk;
  std::function<void()> read = [&] {
    socket.async_read_some(boost::asio::buffer(chunk),
                           [&](boost::system::error_code error, std::size_t n) {
                             answer.append(chunk.data(), n);
                             if (!error) read();
                           });
  };
  read();
  io.run_for(5s);
  return answer;
}

// Requests that cannot be read still get an answer with a status before the connection ends.
TEST_F(ServerTest, UnreadableRequestsAreAnsweredWithAStatus) {
  const std::string huge(20 * 1024, 'x');
  EXPECT_TRUE(
      raw_http(server->port(), "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: " + huge + "\r\n\r\n")
          .starts_with("HTTP/1.1 431"));
  for (const std::string headers :
       {"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "Content-Length: -1\r\n",
        "Content-Length: 1\r\nContent-Length: 2\r\n"}) {
    EXPECT_TRUE(
        raw_http(server->port(), "POST /api/drops HTTP/1.1\r\nHost: a\r\n" + headers + "\r\nabcde")
            .starts_with("HTTP/1.1 400"))
        << headers;
  }
  EXPECT_EQ(http_call(server->port(), "GET", "/healthz").status, 200u);  // still serving
}

// Plain HTTP connections count too, from their first request: past http_connections_max a new
// one is answered 503 and closed, and a kept-alive one ends after http_connection_ms_max however
// busy. A connection that has asked nothing yet (or upgrades) is not an HTTP client.
TEST(ServerLimits, HttpConnectionsAreBoundedInNumberAndLifetime) {
  RedisServer redis;
  ServerProcess server(
      redis, dev_config_with({{"http_connections_max", "3"}, {"http_connection_ms_max", "300"}}),
      "http-limits");
  const unsigned short port = server.port();
  boost::asio::io_context io;
  const auto connect = [&] {
    auto socket = std::make_unique<boost::asio::ip::tcp::socket>(io);
    socket->connect({boost::asio::ip::make_address("127.0.0.1"), port});
    return socket;
  };
  // One request on a kept connection: the response's head, up to the blank line.
  const auto ask = [](boost::asio::ip::tcp::socket& socket) {
    boost::asio::write(
        socket, boost::asio::buffer(std::string_view("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")));
    boost::asio::streambuf reply;
    boost::asio::read_until(socket, reply, "\r\n\r\n");
    return std::string(boost::asio::buffers_begin(reply.data()),
                       boost::asio::buffers_end(reply.data()));
  };
  std::vector<std::unique_ptr<boost::asio::ip::tcp::socket>> held;
  for (int index = 0; index < 3; ++index) {
    held.push_back(connect());
    EXPECT_NE(ask(*held.back()).find("200 OK"), std::string::npos);
  }
  Viewer viewer(port);  // an upgrade is not counted
  viewer.sign_in("ann");
  auto refused = connect();
  EXPECT_NE(ask(*refused).find("503 Service Unavailable"), std::string::npos);
  std::array<char, 4096> rest;
  boost::system::error_code error;
  while (refused->read_some(boost::asio::buffer(rest), error) > 0) {
  }
  EXPECT_EQ(error, boost::asio::error::eof);  // and closed

  std::this_thread::sleep_for(350ms);  // the kept connection outlives its lifetime
  const std::string last = ask(*held[0]);
  EXPECT_NE(last.find("Connection: close"), std::string::npos) << last;
  held.clear();
  ASSERT_TRUE(await_metric(port, "flashsale_limited_total{limit=\"http_connections\"}", 1));
}

TEST_F(ServerTest, RetryAfterARestartReturnsTheOriginalOutcome) {
  create("d", 1, 1, 60, 0);
  open_now("d");
  std::string order_id;
  {
    Viewer alice(server->port());
    alice.sign_in("alice");
    alice.send_json(order("d", "a-1"));
    const auto result = alice.next_of("order_result");
    ASSERT_TRUE(result);
    ASSERT_EQ(text(*result, "status"), "reserved");
    order_id = text(*result, "order_id");
  }
  EXPECT_EQ(server->stop(), 0);
  server->restart();
  Viewer alice(server->port());
  alice.sign_in("alice");
  alice.send_json(order("d", "a-1"));
  const auto again = alice.next_of("order_result");
  ASSERT_TRUE(again);
  EXPECT_EQ(text(*again, "status"), "reserved");
  EXPECT_EQ(text(*again, "order_id"), order_id);
  Viewer bob(server->port());
  bob.sign_in("bob");
  bob.send_json(order("d", "b-1"));
  const auto sold_out = bob.next_of("order_result");
  ASSERT_TRUE(sold_out);
  EXPECT_EQ(text(*sold_out, "status"), "sold_out");
}

// A charity drop: viewers see what it raised (from confirmed sales only, rounded down once);
// the audit API names the journal's head for that state, flashsale-audit agrees with it, and
// after a crash and recovery the API names the same head.
TEST_F(ServerTest, CharityDropReportsWhatItRaisedAndItsAuditHeadSurvivesACrash) {
  const auto created = host("POST", "/api/drops",
                            R"({"id":"d","title":"Snow pears","price_cents":1990,"stock":5,)"
                            R"("per_user_limit":1,"hold_seconds":60,"pledge_bps":1500,)"
                            R"("beneficiary":"Village school","beneficiary_note":"books"})");
  ASSERT_EQ(created.status, 201u) << created.body;
  open_now("d");
  Viewer ann(server->port());
  ann.sign_in("ann");
  ann.send_json({{"type", "subscribe"}, {"drop", "d"}});
  const auto described = ann.next_of("drop");
  ASSERT_TRUE(described);
  EXPECT_EQ(text(*described, "beneficiary"), "Village school");
  EXPECT_EQ(described->at("pledge_bps").as_int64(), 1500);
  EXPECT_EQ(described->at("raised_cents").as_int64(), 0);
  Viewer bob(server->port());
  bob.sign_in("bob");
  std::vector<std::string> order_ids;
  for (Viewer* viewer : {&ann, &bob}) {
    viewer->send_json(order("d", "c1"));
    const auto result = viewer->next_of("order_result");
    ASSERT_TRUE(result);
    ASSERT_EQ(text(*result, "status"), "reserved");
    order_ids.push_back(text(*result, "order_id"));
  }
  ann.send_json({{"type", "confirm"}, {"order_id", order_ids[0]}});
  bob.send_json({{"type", "cancel"}, {"order_id", order_ids[1]}});
  ASSERT_TRUE(bob.next_of("order_update"));
  // 15% of ¥19.90 is 298.5 cents: 298 raised, and the cancelled hold raised nothing.
  std::int64_t raised = -1;
  while (raised != 298) {
    const auto update = ann.next_of("stock");
    ASSERT_TRUE(update) << "no stock update with the amount raised";
    raised = update->at("raised_cents").as_int64();
  }

  const auto audited = host("GET", "/api/drops/d/audit");
  ASSERT_EQ(audited.status, 200u) << audited.body;
  const json::value before = audited.json();
  EXPECT_EQ(before.at("raised_cents").as_int64(), 298);
  EXPECT_EQ(before.at("units_sold").as_int64(), 1);
  EXPECT_EQ(before.at("orders_confirmed").as_int64(), 1);
  EXPECT_EQ(before.at("supporters").as_int64(), 1);
  const std::string head(before.at("head").as_string());
  ASSERT_EQ(head.size(), 64u);

  ChildProcess audit({FLASHSALE_AUDIT, "--redis", redis.socket(), "--journal-prefix", "gw",
                      "--expect-head", head});
  std::string printed;
  while (auto line = audit.read_line(30s)) printed += *line + "\n";
  EXPECT_EQ(audit.wait(30s), 0) << printed << audit.report();
  EXPECT_NE(printed.find("raised ¥2.98 for Village school"), std::string::npos) << printed;

  server->kill();
  server->restart();
  const auto again = host("GET", "/api/drops/d/audit");
  ASSERT_EQ(again.status, 200u) << again.body;
  const json::value after = again.json();
  EXPECT_EQ(after.at("head"), before.at("head"));
  EXPECT_EQ(after.at("sequence"), before.at("sequence"));
  EXPECT_EQ(after.at("raised_cents"), before.at("raised_cents"));
}

TEST_F(ServerTest, ShutdownClosesViewersWith1001AndExitsCleanly) {
  Viewer alice(server->port());
  alice.sign_in("alice");
  // An idle keep-alive HTTP client (a load balancer's health checks) does not hold the stop up.
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket checker(io);
  checker.connect({boost::asio::ip::make_address("127.0.0.1"), server->port()});
  const std::string check = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";
  boost::asio::write(checker, boost::asio::buffer(check));
  std::string answer;
  boost::asio::read_until(checker, boost::asio::dynamic_buffer(answer), "alive");
  EXPECT_EQ(server->stop(), 0);
  EXPECT_FALSE(alice.next());
  EXPECT_EQ(alice.close_code(), 1001);
  EXPECT_EQ(server->log().find("still open"), std::string::npos) << server->log();
  boost::system::error_code closed;
  boost::asio::read(checker, boost::asio::dynamic_buffer(answer), closed);
  EXPECT_EQ(closed, boost::asio::error::eof);
}

// Keep-alive without a timer per connection: a viewer that answers pings stays however quiet it
// is; one whose client reads nothing is pinged, then dropped, and counted.
TEST(ServerIdle, SilentViewersArePingedAndDroppedUnlessTheyAnswer) {
  RedisServer redis;
  ServerProcess server(redis, dev_config_with({{"idle_timeout_ms", "400"}}), "idle");
  Viewer quiet(server.port());
  quiet.sign_in("quiet");
  Viewer hung(server.port());
  hung.sign_in("hung");
  auto quiet_stays = std::async(std::launch::async, [&] { return quiet.stays_open_for(1500ms); });
  const auto started = std::chrono::steady_clock::now();
  const auto bytes = hung.bytes_until_closed(5s);
  const auto silent_for = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(bytes) << "a viewer that never answered was still connected after 5 s";
  EXPECT_NE(bytes->find(std::string("\x89\x00", 2)), std::string::npos) << "no ping was sent";
  EXPECT_GE(silent_for, 400ms);  // not before the idle timeout
  EXPECT_TRUE(quiet_stays.get()) << "a viewer answering pings was dropped";
  const auto metrics = http_call(server.port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("flashsale_idle_viewers_closed_total 1\n"), std::string::npos);
}

// GCC names an ASan build with __SANITIZE_ADDRESS__; clang 14 only answers __has_feature.
#if defined(__SANITIZE_ADDRESS__)
#define FLASHSALE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FLASHSALE_ASAN 1
#endif
#endif

long rss_kb(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

// A viewer that stops reading is closed; memory stays bounded and others are served.
TEST_F(ServerTest, SlowViewerIsClosedAndOthersAreUnaffected) {
  Viewer slow(server->port(), 4096);
  slow.sign_in("slow");
  Viewer fine(server->port());
  fine.sign_in("fine");
  const long rss_before_kb = rss_kb(server->pid());
  const std::string time_request = R"({"type":"time"})";
  try {
    for (int index = 0; index < 400'000; ++index) slow.send(time_request);
  } catch (const std::exception&) {
    // the server dropped it while we were still writing
  }
  // The fine viewer is answered promptly throughout.
  fine.send_json({{"type", "time"}});
  EXPECT_TRUE(fine.next_of("time", 2s));
  const auto metrics = http_call(server->port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("flashsale_slow_viewers_closed_total 1"), std::string::npos)
      << metrics.substr(0, 2000);
  // 400,000 replies of ~40 bytes were asked for; at most queue_bytes_max (256 KiB) of them may
  // wait in the server. Allocator and sanitizer overhead aside, memory must not have followed.
  // Unbounded, the replies alone would be over 20 MiB. Under ASan every allocation carries
  // redzones and freed memory sits in quarantine, so only a loose bound means anything there.
#if FLASHSALE_ASAN
  constexpr long bound_kb = 192 * 1024;
#else
  constexpr long bound_kb = 12 * 1024;
#endif
  const long grown_kb = rss_kb(server->pid()) - rss_before_kb;
  EXPECT_LT(grown_kb, bound_kb) << "the server grew by " << grown_kb << " KiB";
  std::cout << "SlowViewer: server memory grew by " << grown_kb << " KiB\n";
}

// A stream's viewer is told every change of it without asking again: a drop created in it,
// the pin, going live, the drop's countdown, the end. A stream counts as a subscription.
TEST(ServerStreams, AStreamsViewerIsToldEachChangeWithoutSubscribingAgain) {
  RedisServer redis;
  ServerProcess server(redis, dev_config_with({{"subscriptions_max", "2"}}), "streams");
  const auto host = [&](std::string_view method, const std::string& target,
                        std::string_view body = {}) {
    return http_call(server.port(), method, target, body, host_key);
  };
  const auto created = host("POST", "/api/streams",
                            R"({"id":"show","title":"Friday show",)"
                            R"("video_url":"https://video.example/show"})");
  ASSERT_EQ(created.status, 201u) << created.body;

  Viewer viewer(server.port());
  viewer.sign_in("vera");
  viewer.send_json({{"type", "subscribe"}, {"stream", "nope"}});
  const auto unknown = viewer.next_of("error");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(text(*unknown, "code"), "unknown_stream") << json::serialize(*unknown);
  EXPECT_EQ(text(*unknown, "ref"), "nope");
  viewer.send_json({{"type", "subscribe"}, {"stream", "show"}});
  auto frame = viewer.next_of("stream");
  ASSERT_TRUE(frame);
  EXPECT_EQ(text(*frame, "stream"), "show");
  EXPECT_EQ(text(*frame, "title"), "Friday show");
  EXPECT_EQ(text(*frame, "video_url"), "https://video.example/show");
  EXPECT_EQ(text(*frame, "state"), "scheduled");
  EXPECT_TRUE(frame->at("pinned").is_null());
  EXPECT_TRUE(frame->at("drops").as_array().empty());
  viewer.send_json({{"type", "subscribe"}, {"stream", "show"}});
  const auto again = viewer.next_of("error");
  ASSERT_TRUE(again);
  EXPECT_EQ(text(*again, "code"), "bad_field");
  EXPECT_EQ(text(*again, "ref"), "show");

  const auto shelf_drop = [](const json::object& stream_frame) {
    const auto& drops = stream_frame.at("drops").as_array();
    return drops.empty() ? json::object() : drops.at(0).as_object();
  };
  const auto added = host("POST", "/api/streams/show/drops",
                          json::serialize(json::object{{"id", "mug"},
                                                       {"title", "Mug"},
                                                       {"price_cents", 900},
                                                       {"stock", 5},
                                                       {"per_user_limit", 1},
                                                       {"hold_seconds", 60}}));
  ASSERT_EQ(added.status, 201u) << added.body;
  frame = viewer.next_of("stream");
  ASSERT_TRUE(frame);
  ASSERT_EQ(frame->at("drops").as_array().size(), 1u);
  EXPECT_EQ(text(shelf_drop(*frame), "drop"), "show~mug");
  EXPECT_EQ(text(shelf_drop(*frame), "stream"), "show");
  EXPECT_EQ(text(shelf_drop(*frame), "state"), "scheduled");
  EXPECT_EQ(shelf_drop(*frame).at("stock_left").as_int64(), 5);

  ASSERT_EQ(host("POST", "/api/streams/show/pin", R"({"drop":"mug"})").status, 200u);
  frame = viewer.next_of("stream");
  ASSERT_TRUE(frame);
  EXPECT_EQ(text(*frame, "pinned"), "show~mug");
  ASSERT_EQ(host("POST", "/api/streams/show/live").status, 200u);
  frame = viewer.next_of("stream");
  ASSERT_TRUE(frame);
  EXPECT_EQ(text(*frame, "state"), "live");
  EXPECT_EQ(text(*frame, "pinned"), "show~mug");

  // The pinned drop, followed as any drop: the viewer's second subscription, and its last.
  viewer.send_json({{"type", "subscribe"}, {"drop", "show~mug"}});
  const auto pinned = viewer.next_of("drop");
  ASSERT_TRUE(pinned);
  EXPECT_EQ(text(*pinned, "stream"), "show");
  viewer.send_json({{"type", "subscribe"}, {"stream", "other"}});
  const auto over = viewer.next_of("error");
  ASSERT_TRUE(over);
  EXPECT_EQ(text(*over, "code"), "rate_limited");
  EXPECT_EQ(text(*over, "ref"), "other");

  ASSERT_EQ(host("POST", "/api/drops/show~mug/countdown", R"({"seconds":30})").status, 200u);
  frame = viewer.next_of("stream");
  ASSERT_TRUE(frame);
  EXPECT_EQ(text(shelf_drop(*frame), "state"), "countdown");
  EXPECT_TRUE(shelf_drop(*frame).at("opens_at_ms").is_int64());

  ASSERT_EQ(host("POST", "/api/streams/show/end").status, 200u);
  frame = viewer.next_of("stream");
  ASSERT_TRUE(frame);
  EXPECT_EQ(text(*frame, "state"), "ended");
  EXPECT_TRUE(frame->at("pinned").is_null());
  EXPECT_EQ(text(shelf_drop(*frame), "state"), "closed");

  // Unsubscribed, the stream's place is free again.
  viewer.send_json({{"type", "unsubscribe"}, {"stream", "show"}});
  viewer.send_json({{"type", "subscribe"}, {"stream", "show"}});
  frame = viewer.next_of("stream");
  ASSERT_TRUE(frame);
  EXPECT_EQ(text(*frame, "state"), "ended");
}

}  // namespace
}  // namespace flashsale::testing
