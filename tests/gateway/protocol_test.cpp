// Protocol v1 parsing and writing, and viewer tokens: every field rule, every error code the
// parser gives, and round trips.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "flashsale/gateway/json_keys.hpp"
#include "flashsale/gateway/order_ids.hpp"
#include "flashsale/gateway/protocol.hpp"
#include "flashsale/gateway/tokens.hpp"

namespace flashsale::gateway {
namespace {

using protocol::ClientMessage;
using protocol::ClientType;
using protocol::ErrorCode;

class Parsing : public ::testing::Test {
 protected:
  std::optional<protocol::ParseError> parse(std::string_view frame) {
    return protocol::parse(frame, buffer, message);
  }
  protocol::ParseBuffer buffer;
  ClientMessage message;
};

TEST_F(Parsing, ReadsEveryMessageType) {
  ASSERT_FALSE(parse(R"({"type":"hello","user":"alice"})"));
  EXPECT_EQ(message.type, ClientType::hello);
  EXPECT_EQ(message.user, "alice");
  ASSERT_FALSE(parse(R"({"type":"hello","token":"abc.def"})"));
  EXPECT_EQ(message.token, "abc.def");
  ASSERT_FALSE(parse(R"({"type":"subscribe","drop":"chestnut"})"));
  EXPECT_EQ(message.drop, "chestnut");
  ASSERT_FALSE(parse(R"({"type":"unsubscribe","drop":"chestnut"})"));
  EXPECT_EQ(message.type, ClientType::unsubscribe);
  ASSERT_FALSE(
      parse(R"({"type":"order","drop":"d","qty":2,"client_order_id":"c-1","extra":[1,2]})"));
  EXPECT_EQ(message.type, ClientType::order);
  EXPECT_EQ(message.qty, 2u);
  EXPECT_EQ(message.client_order_id, "c-1");
  ASSERT_FALSE(parse(R"({"type":"order","drop":"d","client_order_id":"c-1"})"));
  EXPECT_EQ(message.qty, 1u);  // qty defaults to one unit
  ASSERT_FALSE(parse(R"({"type":"confirm","order_id":"d:7"})"));
  EXPECT_EQ(message.order_id, "d:7");
  ASSERT_FALSE(parse(R"({"type":"cancel","order_id":"d:7"})"));
  EXPECT_EQ(message.type, ClientType::cancel);
  ASSERT_FALSE(parse(R"({"type":"time"})"));
  EXPECT_EQ(message.type, ClientType::time);
}

TEST_F(Parsing, NamesWhatIsWrong) {
  EXPECT_EQ(parse("{nope")->code, ErrorCode::bad_json);
  EXPECT_EQ(parse("[1,2]")->code, ErrorCode::bad_json);
  EXPECT_EQ(parse(R"({"kind":"order"})")->code, ErrorCode::bad_field);
  const auto unknown = parse(R"({"type":"teleport"})");
  EXPECT_EQ(unknown->code, ErrorCode::unknown_type);
  EXPECT_EQ(unknown->ref, "teleport");
  const auto negative = parse(R"({"type":"order","drop":"d","qty":-1,"client_order_id":"c-9"})");
  EXPECT_EQ(negative->code, ErrorCode::bad_field);
  EXPECT_EQ(negative->ref, "c-9");
  EXPECT_EQ(parse(R"({"type":"order","drop":"d","qty":1.5,"client_order_id":"c"})")->code,
            ErrorCode::bad_field);
  EXPECT_EQ(parse(R"({"type":"order","drop":"d","qty":1e300,"client_order_id":"c"})")->code,
            ErrorCode::bad_field);
  EXPECT_EQ(parse(R"({"type":"order","drop":"d","qty":99999999999999999999,"client_order_id":"c"})")
                ->code,
            ErrorCode::bad_field);
  EXPECT_EQ(parse(R"({"type":"order","drop":"d","qty":"1","client_order_id":"c"})")->code,
            ErrorCode::bad_field);
  EXPECT_EQ(parse(R"({"type":"order","drop":"d","client_order_id":""})")->code,
            ErrorCode::bad_field);
  EXPECT_EQ(parse(R"({"type":"order","drop":7,"client_order_id":"c"})")->code,
            ErrorCode::bad_field);
  const std::string long_id(65, 'x');
  EXPECT_EQ(parse(R"({"type":"order","drop":"d","client_order_id":")" + long_id + "\"}")->code,
            ErrorCode::bad_field);
  EXPECT_EQ(parse(R"({"type":"subscribe"})")->code, ErrorCode::bad_field);
  EXPECT_EQ(parse(R"({"type":"hello"})")->code, ErrorCode::bad_field);
  EXPECT_EQ(parse(R"([[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]])")->code, ErrorCode::bad_json);
}

TEST(Writing, ServerMessagesAreValidJsonWithEscapedStrings) {
  engine::DropInfo info;
  info.spec.id = "chestnut";
  info.spec.title = "Chestnuts \"roasted\" \\ 500 g\n";
  info.spec.price_cents = 1990;
  info.stock_total = 10;
  info.stock_left = 4;
  info.state = engine::DropState::open;
  info.opens_at_ms = 1234;
  const auto drop = boost::json::parse(protocol::drop(info, 99)).as_object();
  EXPECT_EQ(drop.at("type").as_string(), "drop");
  EXPECT_EQ(drop.at("title").as_string(), info.spec.title);
  EXPECT_EQ(drop.at("state").as_string(), "open");
  EXPECT_EQ(drop.at("opens_at_ms").as_int64(), 1234);
  info.opens_at_ms.reset();
  EXPECT_TRUE(boost::json::parse(protocol::drop(info, 99)).as_object().at("opens_at_ms").is_null());

  engine::OrderResult reserved;
  reserved.outcome = engine::OrderOutcome::reserved;
  reserved.order = 17;
  reserved.qty = 1;
  reserved.hold_expires_at_ms = 5000;
  const OrderIds ids(OrderIds::random_key());
  const auto result =
      boost::json::parse(protocol::order_result("chestnut", "c\"1", reserved, ids)).as_object();
  EXPECT_EQ(result.at("status").as_string(), "reserved");
  const auto order = ids.parse(result.at("order_id").as_string());
  ASSERT_TRUE(order);
  EXPECT_EQ(order->drop, "chestnut");
  EXPECT_EQ(order->order, 17u);
  EXPECT_EQ(protocol::drop_of_order_id(result.at("order_id").as_string()), "chestnut");
  EXPECT_EQ(result.at("client_order_id").as_string(), "c\"1");
  EXPECT_EQ(result.at("hold_expires_at_ms").as_int64(), 5000);
  const auto error =
      boost::json::parse(protocol::error(ErrorCode::unknown_order, "no such order", "d:1"))
          .as_object();
  EXPECT_EQ(error.at("code").as_string(), "unknown_order");
  EXPECT_EQ(error.at("ref").as_string(), "d:1");
  const auto update =
      boost::json::parse(
          protocol::order_update("d", 3, ids, "c", engine::OrderStatus::reserved, 2, 777))
          .as_object();
  EXPECT_EQ(update.at("status").as_string(), "reserved");
  EXPECT_EQ(update.at("qty").as_int64(), 2);
}

TEST(Protocol, AFieldNamedTwiceIsRefusedWhicheverWayItIsSpelled) {
  protocol::ParseBuffer buffer;
  protocol::ClientMessage message;
  const auto code = [&](std::string_view frame) {
    const auto problem = protocol::parse(frame, buffer, message);
    return problem ? std::string(protocol::to_string(problem->code)) : std::string("ok");
  };
  EXPECT_EQ(code(R"({"type":"order","drop":"a","drop":"b","client_order_id":"c"})"), "bad_json");
  EXPECT_EQ(code(R"({"type":"order","type":"time"})"), "bad_json");
  EXPECT_EQ(code(R"({"type":"time","typ\u0065":"order"})"), "bad_json");
  EXPECT_EQ(code(R"({"type":"cancel","order_id":"d:x","order_id":"d:y"})"), "bad_json");
  // Fields nobody reads may repeat, and a nested object has keys of its own.
  EXPECT_EQ(code(R"({"type":"time","note":1,"note":2})"), "ok");
  EXPECT_EQ(code(R"({"type":"time","extra":{"type":"order","drop":"d"}})"), "ok");
}

TEST(JsonKeys, AnyKeyTwiceInAnyObjectIsFound) {
  EXPECT_FALSE(repeats_a_key(R"({"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]})"));
  EXPECT_TRUE(repeats_a_key(R"({"a":1,"a":1})"));
  EXPECT_TRUE(repeats_a_key(R"({"a":1,"b":{"c":1,"c":2}})"));
  EXPECT_TRUE(repeats_a_key(R"({"a":1,"\u0061":2})"));
  EXPECT_TRUE(repeats_a_key("not json"));
}

TEST(Tokens, MintedTokensVerifyUntilTheyExpire) {
  constexpr std::int64_t lifetime_max = 3'600;
  const std::string token = mint_token("s3cret", "alice", 1'000);
  const TokenCheck good = verify_token("s3cret", token, 999, lifetime_max);
  EXPECT_EQ(good.user, "alice");
  EXPECT_TRUE(good.problem.empty());
  EXPECT_EQ(verify_token("s3cret", token, 1'000, lifetime_max).problem, "expired token");
  EXPECT_EQ(verify_token("other", token, 0, lifetime_max).problem, "bad token signature");
  std::string tampered = token;
  tampered[2] = tampered[2] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(verify_token("s3cret", tampered, 0, lifetime_max).problem.empty());
  EXPECT_FALSE(verify_token("s3cret", "garbage", 0, lifetime_max).problem.empty());
}

// A signed payload is taken at its word only if it has one word: no key twice (which "user"
// would count depends on the parser), and no expiry past the lifetime allowed.
TEST(Tokens, DuplicateKeysAndOverlongLifetimesAreRefused) {
  const std::string far = mint_token("s3cret", "alice", 9'000'000'000'000'000'000);
  EXPECT_EQ(verify_token("s3cret", far, 0, 3'600).problem, "token lives too long");
  const std::string soon = mint_token("s3cret", "alice", 3'600);
  EXPECT_TRUE(verify_token("s3cret", soon, 0, 3'600).problem.empty());
  const auto check = [](std::string_view payload) {
    return verify_token("s3cret", sign_payload("s3cret", payload), 0, 3'600);
  };
  EXPECT_EQ(check(R"({"user":"alice","user":"root","exp":10})").problem, "malformed token payload");
  EXPECT_EQ(check(R"({"user":"alice","exp":10,"x":{"a":1,"a":2}})").problem,
            "malformed token payload");
  EXPECT_EQ(check(R"({"user":"alice","exp":10,"x":{"a":1},"y":{"a":2}})").user, "alice");
}

TEST(Tokens, Base64UrlRoundTrips) {
  for (const std::string bytes :
       {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\x00\x01"}) {
    const auto decoded = base64url_decode(base64url_encode(bytes));
    ASSERT_TRUE(decoded);
    EXPECT_EQ(*decoded, bytes);
  }
  EXPECT_EQ(base64url_encode("foobar"), "Zm9vYmFy");
  EXPECT_FALSE(base64url_decode("Zm9v$"));
}

}  // namespace
}  // namespace flashsale::gateway
