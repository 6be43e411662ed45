// The HTTP contract (contracts/openapi.json, served at /api/openapi.json) against the router:
// every route the host API serves is documented, and nothing under /api/ is documented that the
// server does not serve. Responses are checked against it by tests/contracts, from the traffic
// the server tests record.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <set>
#include <string>
#include <utility>

#include "host_api.hpp"
#include "web_assets.hpp"

namespace flashsale::gateway {
namespace {

using Operation = std::pair<std::string, std::string>;  // method (lower case), path

TEST(Contract, TheOpenApiDocumentListsEveryApiRouteAndNoOther) {
  const WebAsset* document = find_web_asset("/api/openapi.json");
  ASSERT_NE(document, nullptr) << "the contract is served at /api/openapi.json";
  const boost::json::object paths =
      boost::json::parse(document->body).at("paths").as_object();
  std::set<Operation> documented;
  for (const auto& [path, item] : paths) {
    if (!std::string_view(path).starts_with("/api/")) continue;
    for (const auto& [method, operation] : item.as_object())
      if (method != "parameters" && method != "summary" && method != "description")
        documented.emplace(method, path);
  }
  std::set<Operation> served;
  for (const ApiRoute& route : api_routes()) {
    std::string method(boost::beast::http::to_string(route.method));
    for (char& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    served.emplace(method, route.path);
  }
  // The contracts themselves: pages, not routes of the host API.
  for (const char* contract : {"/api/openapi.json", "/api/asyncapi.json"}) {
    EXPECT_NE(find_web_asset(contract), nullptr) << contract;
    served.emplace("get", contract);
  }
  for (const Operation& operation : served)
    EXPECT_TRUE(documented.contains(operation))
        << operation.first << " " << operation.second << " is served but not documented";
  for (const Operation& operation : documented)
    EXPECT_TRUE(served.contains(operation))
        << operation.first << " " << operation.second << " is documented but not served";
}

// The documents are what the server serves: valid JSON, of the versions the tools check.
TEST(Contract, BothDocumentsAreServedAsJson) {
  const WebAsset* openapi = find_web_asset("/api/openapi.json");
  const WebAsset* asyncapi = find_web_asset("/api/asyncapi.json");
  ASSERT_NE(openapi, nullptr);
  ASSERT_NE(asyncapi, nullptr);
  EXPECT_EQ(openapi->content_type, "application/json");
  EXPECT_EQ(boost::json::parse(openapi->body).at("openapi").as_string(), "3.1.0");
  EXPECT_EQ(boost::json::parse(asyncapi->body).at("asyncapi").as_string(), "3.0.0");
}

}  // namespace
}  // namespace flashsale::gateway
