// Who may call what: every route of the host API, as the router lists it (api_routes()), called
// by each kind of caller against a real server and redis-server — the stream's own host,
// another host, a revoked host, no key, the operator. A refused call must leave everything as
// it was. A route added to the router without a case here fails the table: every endpoint
// comes with its authorization rule.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>

#include "clients.hpp"
#include "host_api.hpp"
#include "server_process.hpp"

namespace flashsale::testing {
namespace {

namespace json = boost::json;
namespace http = boost::beast::http;
using gateway::ApiRoute;

constexpr std::string_view operator_key = "dev-admin-key";

// How one route is called: its target (the path's {…} filled in for `fixture`), its body, and
// the status its rightful caller gets.
struct Case {
  std::string target;
  std::string body;
  unsigned status = 200;
};

// What a route's rightful caller acts on: a stream of host A's, with a drop in it, and a host
// account for the operator's routes. Fresh for every call that succeeds, so one route's change
// is not the next one's starting point.
struct Fixture {
  std::string stream;
  std::string drop;     // "<stream>~tee"
  std::string subject;  // a host account
};

std::string method_of(const ApiRoute& route) {
  return std::string(http::to_string(route.method));
}

json::object drop_body(std::string_view id) {
  return {{"id", id},   {"title", "Tee"},      {"price_cents", 1200},
          {"stock", 5}, {"per_user_limit", 1}, {"hold_seconds", 60}};
}

std::string fill(std::string_view path, const Fixture& fixture) {
  std::string out(path);
  for (const auto& [hole, value] :
       {std::pair<std::string_view, std::string_view>{"{drop}", fixture.drop},
        {"{stream}", fixture.stream},
        {"{host}", fixture.subject}}) {
    if (const auto at = out.find(hole); at != std::string::npos)
      out.replace(at, hole.size(), value);
  }
  return out;
}

// Every route's call. Unknown routes have none: the table then fails for them.
std::optional<Case> case_for(const ApiRoute& route, const Fixture& fixture, bool as_operator,
                             int serial) {
  const std::string method(http::to_string(route.method));
  const std::string key = method + " " + std::string(route.path);
  const std::string target = fill(route.path, fixture);
  const std::string unique = std::to_string(serial);
  if (key == "POST /api/drops") return Case{target, json::serialize(drop_body("d" + unique)), 201};
  if (key == "GET /api/drops") return Case{target, {}, 200};
  if (key == "GET /api/drops/{drop}") return Case{target, {}, 200};
  if (key == "GET /api/drops/{drop}/audit") return Case{target, {}, 200};
  if (key == "GET /api/drops/{drop}/orders") return Case{target + "?user=v", {}, 200};
  if (key == "POST /api/drops/{drop}/countdown") return Case{target, R"({"seconds":60})", 200};
  if (key == "POST /api/drops/{drop}/restock") return Case{target, R"({"add":2})", 200};
  if (key == "POST /api/drops/{drop}/close") return Case{target, {}, 200};
  if (key == "POST /api/streams") {
    json::object body{{"id", "s" + unique}, {"title", "Live"}};
    if (as_operator) body["host"] = "alice";
    return Case{target, json::serialize(body), 201};
  }
  if (key == "GET /api/streams") return Case{target, {}, 200};
  if (key == "GET /api/streams/{stream}") return Case{target, {}, 200};
  if (key == "POST /api/streams/{stream}/drops")
    return Case{target, json::serialize(drop_body("n" + unique)), 201};
  if (key == "POST /api/streams/{stream}/live") return Case{target, {}, 200};
  if (key == "POST /api/streams/{stream}/pin") return Case{target, R"({"drop":"tee"})", 200};
  if (key == "POST /api/streams/{stream}/unpin") return Case{target, {}, 200};
  if (key == "POST /api/streams/{stream}/end") return Case{target, {}, 200};
  if (key == "POST /api/tokens") return Case{target, R"({"user":"v","ttl_seconds":60})", 200};
  if (key == "POST /api/admin/hosts")
    return Case{target, json::serialize(json::object{{"id", "h" + unique}}), 201};
  if (key == "GET /api/admin/hosts") return Case{target, {}, 200};
  if (key == "POST /api/admin/hosts/{host}/key") return Case{target, {}, 200};
  if (key == "POST /api/admin/hosts/{host}/revoke") return Case{target, {}, 200};
  return std::nullopt;
}

class Authorization : public ::testing::Test {
 protected:
  void SetUp() override {
    // The table sends many wrong keys from one address: past the default limit they would be
    // answered 429 before they are looked at.
    server = std::make_unique<ServerProcess>(
        redis, dev_config_with({}, {{"limits", "host_key_failures_per_minute = 100000"}}), "authz");
    alice = make_host("alice");
    bob = make_host("bob");
    carol = make_host("carol");
    ASSERT_EQ(as_operator("POST", "/api/admin/hosts/carol/revoke").status, 200u);
  }

  HttpReply call(std::string_view method, std::string_view target, std::string_view body,
                 std::string_view key) {
    return http_call(server->port(), method, target, body, key);
  }
  HttpReply as_operator(std::string_view method, std::string_view target,
                        std::string_view body = {}) {
    return call(method, target, body, operator_key);
  }
  std::string make_host(const std::string& id) {
    const auto made =
        as_operator("POST", "/api/admin/hosts", json::serialize(json::object{{"id", id}}));
    EXPECT_EQ(made.status, 201u) << made.body;
    return std::string(made.json().at("key").as_string());
  }
  Fixture fixture() {
    const std::string id = std::to_string(++serial);
    Fixture made{"live" + id, "live" + id + "~tee", "subject" + id};
    EXPECT_EQ(call("POST", "/api/streams",
                   json::serialize(json::object{{"id", made.stream}, {"title", "Live"}}), alice)
                  .status,
              201u);
    EXPECT_EQ(call("POST", "/api/streams/" + made.stream + "/drops",
                   json::serialize(drop_body("tee")), alice)
                  .status,
              201u);
    make_host(made.subject);
    return made;
  }
  // Everything a call could change, as the operator sees it.
  std::string state() {
    std::string all;
    for (const char* target : {"/api/streams", "/api/drops", "/api/admin/hosts"})
      all += as_operator("GET", target).body;
    return all;
  }

  RedisServer redis;
  std::unique_ptr<ServerProcess> server;
  std::string alice;
  std::string bob;
  std::string carol;
  int serial = 0;
};

TEST_F(Authorization, EveryRouteAnswersEachCallerByTheTableAndARefusalChangesNothing) {
  for (const ApiRoute& route : gateway::api_routes()) {
    const std::string name =
        std::string(http::to_string(route.method)) + " " + std::string(route.path);
    SCOPED_TRACE(name);
    const bool operator_only = route.access == ApiRoute::Access::operator_only;
    const Fixture refused_on = fixture();
    const auto refusal = case_for(route, refused_on, false, ++serial);
    ASSERT_TRUE(refusal) << name << " has no case in the authorization table";

    const std::string before = state();
    // No key, a wrong key, a revoked host's key: 401 on every route.
    EXPECT_EQ(call(method_of(route), refusal->target, refusal->body, "").status, 401u);
    EXPECT_EQ(
        call(method_of(route), refusal->target, refusal->body, "fsh_alice_" + std::string(64, '0'))
            .status,
        401u);
    EXPECT_EQ(call(method_of(route), refusal->target, refusal->body, carol).status, 401u);
    // Another host: an operator's route is forbidden; host A's stream or drop does not exist.
    const bool names_one = route.path.find('{') != std::string_view::npos;
    const auto other = call(method_of(route), refusal->target, refusal->body, bob);
    if (operator_only) {
      EXPECT_EQ(other.status, 403u) << other.body;
    } else if (names_one) {
      EXPECT_EQ(other.status, 404u) << other.body;
    }
    if (operator_only || names_one) {
      EXPECT_EQ(state(), before) << "a refused call changed something";
    }

    // The rightful callers: host A (on a host route), and the operator.
    if (!operator_only) {
      const auto own = case_for(route, fixture(), false, ++serial);
      const auto reply = call(method_of(route), own->target, own->body, alice);
      EXPECT_EQ(reply.status, own->status) << reply.body;
    } else {
      const auto reply = call(method_of(route), refusal->target, refusal->body, alice);
      EXPECT_EQ(reply.status, 403u) << reply.body;
    }
    const auto by_operator = case_for(route, fixture(), true, ++serial);
    const auto reply = call(method_of(route), by_operator->target, by_operator->body, operator_key);
    EXPECT_EQ(reply.status, by_operator->status) << reply.body;
  }
}

// What another host's lists show: its own things only.
TEST_F(Authorization, AHostListsOnlyItsOwnStreamsAndDrops) {
  const Fixture mine = fixture();
  const auto streams = call("GET", "/api/streams", {}, bob);
  ASSERT_EQ(streams.status, 200u);
  EXPECT_TRUE(streams.json().at("streams").as_array().empty()) << streams.body;
  const auto drops = call("GET", "/api/drops", {}, bob);
  ASSERT_EQ(drops.status, 200u);
  EXPECT_TRUE(drops.json().at("drops").as_array().empty()) << drops.body;
  const auto own = call("GET", "/api/streams", {}, alice);
  ASSERT_EQ(own.status, 200u);
  ASSERT_EQ(own.json().at("streams").as_array().size(), 1u);
  EXPECT_EQ(own.json().at("streams").at(0).at("id").as_string(), mine.stream);
}

// A key is refused from the moment the operator is told it is revoked or replaced.
TEST_F(Authorization, ARotatedKeyStopsAtOnceAndTheNewOneWorks) {
  ASSERT_EQ(call("GET", "/api/streams", {}, bob).status, 200u);
  const auto rotated = as_operator("POST", "/api/admin/hosts/bob/key");
  ASSERT_EQ(rotated.status, 200u) << rotated.body;
  const std::string fresh(rotated.json().at("key").as_string());
  EXPECT_NE(fresh, bob);
  EXPECT_EQ(call("GET", "/api/streams", {}, bob).status, 401u);
  EXPECT_EQ(call("GET", "/api/streams", {}, fresh).status, 200u);
  ASSERT_EQ(as_operator("POST", "/api/admin/hosts/bob/revoke").status, 200u);
  EXPECT_EQ(call("GET", "/api/streams", {}, fresh).status, 401u);
  // The list keeps the revoked host, marked so; only digests are stored, so no key is shown.
  const auto hosts = as_operator("GET", "/api/admin/hosts");
  ASSERT_EQ(hosts.status, 200u);
  EXPECT_EQ(hosts.body.find(fresh), std::string::npos);
  bool listed = false;
  const json::value listing = hosts.json();
  for (const json::value& host : listing.at("hosts").as_array())
    if (host.at("id").as_string() == "bob") {
      listed = true;
      EXPECT_EQ(host.at("state").as_string(), "revoked");
    }
  EXPECT_TRUE(listed) << hosts.body;
  // Prometheus sees them too: alice, bob (revoked) and carol (revoked).
  const std::string metrics = call("GET", "/metrics", {}, {}).body;
  EXPECT_NE(metrics.find("\nflashsale_host_accounts 3\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\nflashsale_host_accounts_read_age_seconds "), std::string::npos);
}

// Killed (-9) and started again: the hosts (kept in Redis) and the streams, their drops and
// pins (journaled) are all as every acknowledged call left them; the revoked stay revoked.
TEST_F(Authorization, HostsStreamsAndPinsSurviveAKill) {
  const Fixture kept = fixture();
  ASSERT_EQ(call("POST", "/api/streams/" + kept.stream + "/live", {}, alice).status, 200u);
  const auto pinned =
      call("POST", "/api/streams/" + kept.stream + "/pin", R"({"drop":"tee"})", alice);
  ASSERT_EQ(pinned.status, 200u) << pinned.body;
  EXPECT_EQ(pinned.json().at("pinned").as_string(), kept.drop);
  const std::string before = call("GET", "/api/streams/" + kept.stream, {}, alice).body;
  server->kill();
  server->restart();
  const auto after = call("GET", "/api/streams/" + kept.stream, {}, alice);
  ASSERT_EQ(after.status, 200u) << after.body;
  EXPECT_EQ(after.body, before);
  EXPECT_EQ(after.json().at("state").as_string(), "live");
  EXPECT_EQ(call("GET", "/api/streams", {}, carol).status, 401u);
  EXPECT_EQ(call("GET", "/api/streams/" + kept.stream, {}, bob).status, 404u);
}

}  // namespace
}  // namespace flashsale::testing
