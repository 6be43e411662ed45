// Protocol v1 parsing and writing, and viewer tokens: every field rule, every error code the
// parser gives, and round trips.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <vector>

#include "flashsale/gateway/json_keys.hpp"
#include "flashsale/gateway/json_writer.hpp"
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

// An order may name its variant; a malformed name is the message's fault, like a bad qty.
TEST_F(Parsing, AnOrderNamesItsVariantOrNone) {
  ASSERT_FALSE(
      parse(R"({"type":"order","drop":"d","client_order_id":"c-1","variant":"red-M.2_x"})"));
  EXPECT_EQ(message.variant, "red-M.2_x");
  ASSERT_FALSE(parse(R"({"type":"order","drop":"d","client_order_id":"c-1"})"));
  EXPECT_TRUE(message.variant.empty()) << "nothing left over from the message before";
  const std::string longest(32, 'v');
  ASSERT_FALSE(
      parse(R"({"type":"order","drop":"d","client_order_id":"c","variant":")" + longest + "\"}"));
  EXPECT_EQ(message.variant, longest);
  for (const std::string& variant :
       std::vector<std::string>{R"("")", R"("a b")", R"("ä")", R"("x/y")", "\"" + longest + "v\"",
                                "7", "null", R"(["M"])"}) {
    const auto problem =
        parse(R"({"type":"order","drop":"d","client_order_id":"c-2","variant":)" + variant + "}");
    ASSERT_TRUE(problem) << variant;
    EXPECT_EQ(problem->code, ErrorCode::bad_field) << variant;
    EXPECT_EQ(problem->ref, "c-2");
    EXPECT_NE(problem->message.find("variant"), std::string::npos) << problem->message;
  }
  EXPECT_EQ(
      parse(R"({"type":"order","drop":"d","client_order_id":"c","variant":"S","variant":"M"})")
          ->code,
      ErrorCode::bad_json);
}

// A drop whose three variants are named, as a spec and a DropInfo the engine would give.
engine::DropInfo three_sizes() {
  engine::DropInfo info;
  info.spec.id = "tee";
  info.spec.title = "Tee";
  info.spec.per_user_limit = 3;
  info.spec.per_variant_limit = 2;
  info.spec.duration_ms = 3'600'000;
  info.spec.variants = {
      {"S", "Small", 1500, 2500, 5}, {"M", "Medium", 1200, 0, 5}, {"L", "Large", 1800, 2500, 0}};
  info.state = engine::DropState::open;
  info.opens_at_ms = 1'000;
  info.closes_at_ms = 3'601'000;
  info.stock_total = 10;
  info.stock_left = 7;
  info.held = 2;
  info.sold = 1;
  for (const engine::VariantSpec& spec : info.spec.variants) {
    engine::VariantInfo& variant = info.variants.emplace_back();
    variant.id = spec.id;
    variant.label = spec.label;
    variant.price_cents = spec.price_cents;
    variant.list_price_cents = spec.list_price_cents;
    variant.stock_total = variant.stock_left = spec.stock;
  }
  info.variants[0].stock_left = 2;
  info.variants[0].held = 2;
  info.variants[0].sold = 1;
  info.variants[2].waitlist_orders = 4;
  return info;
}

TEST(Writing, ADropWithNamedVariantsListsThemForEveryReader) {
  const engine::DropInfo info = three_sizes();
  const auto viewer = boost::json::parse(protocol::drop(info, 99)).as_object();
  EXPECT_EQ(viewer.at("price_cents").as_int64(), 1200) << "announced at its lowest price";
  EXPECT_FALSE(viewer.contains("list_price_cents")) << "list prices are each variant's";
  EXPECT_EQ(viewer.at("per_variant_limit").as_int64(), 2);
  EXPECT_EQ(viewer.at("duration_ms").as_int64(), 3'600'000);
  EXPECT_EQ(viewer.at("closes_at_ms").as_int64(), 3'601'000);
  EXPECT_EQ(boost::json::serialize(viewer.at("variants")),
            R"([{"id":"S","label":"Small","price_cents":1500,"list_price_cents":2500,)"
            R"("stock_total":5,"stock_left":2},)"
            R"({"id":"M","label":"Medium","price_cents":1200,"stock_total":5,"stock_left":5},)"
            R"({"id":"L","label":"Large","price_cents":1800,"list_price_cents":2500,)"
            R"("stock_total":0,"stock_left":0}])");

  JsonObject listing;
  protocol::drop_fields(listing, info, protocol::DropAudience::listing);
  const auto listed = boost::json::parse(listing.done()).as_object();
  EXPECT_EQ(listed.at("variants"), viewer.at("variants"));
  EXPECT_FALSE(listed.contains("per_variant_limit")) << "limits are not the listing's";

  JsonObject host;
  protocol::drop_fields(host, info, protocol::DropAudience::host);
  const auto hosted = boost::json::parse(host.done()).as_object();
  const auto& small = hosted.at("variants").as_array().at(0).as_object();
  EXPECT_EQ(small.at("held").as_int64(), 2);
  EXPECT_EQ(small.at("sold").as_int64(), 1);
  EXPECT_EQ(small.at("waitlist").as_int64(), 0);
  EXPECT_EQ(hosted.at("variants").as_array().at(2).as_object().at("waitlist").as_int64(), 4);

  engine::DropInfo counting = info;
  counting.closes_at_ms.reset();
  EXPECT_TRUE(
      boost::json::parse(protocol::drop(counting, 99)).as_object().at("closes_at_ms").is_null());
}

// A drop created as in protocol v1 looks exactly as before; a list price is its only addition.
TEST(Writing, ADropWithoutNamedVariantsHasNoNewFieldsButItsListPrice) {
  engine::DropInfo info;
  info.spec.id = "d";
  info.spec.price_cents = 900;
  info.variants.emplace_back();
  for (const auto audience : {protocol::DropAudience::viewer, protocol::DropAudience::listing,
                              protocol::DropAudience::host}) {
    JsonObject out;
    protocol::drop_fields(out, info, audience);
    const auto drop = boost::json::parse(out.done()).as_object();
    for (const char* added :
         {"variants", "list_price_cents", "per_variant_limit", "duration_ms", "closes_at_ms"})
      EXPECT_FALSE(drop.contains(added)) << added;
  }
  info.spec.list_price_cents = 1200;
  EXPECT_EQ(
      boost::json::parse(protocol::drop(info, 1)).as_object().at("list_price_cents").as_int64(),
      1200);
  const auto stock = boost::json::parse(protocol::stock("d", 3, info)).as_object();
  EXPECT_FALSE(stock.contains("variants"));
}

TEST(Writing, StockAndOrderAnswersNameTheVariants) {
  const engine::DropInfo info = three_sizes();
  EXPECT_EQ(protocol::stock("tee", 7, info),
            R"({"type":"stock","drop":"tee","left":7,"variants":[{"id":"S","left":2},)"
            R"({"id":"M","left":5},{"id":"L","left":0}]})");

  const OrderIds ids(OrderIds::random_key());
  engine::OrderResult reserved;
  reserved.outcome = engine::OrderOutcome::reserved;
  reserved.order = 3;
  reserved.qty = 1;
  reserved.variant = 1;
  reserved.hold_expires_at_ms = 5000;
  const auto result =
      boost::json::parse(protocol::order_result("tee", "c-1", reserved, ids, "M")).as_object();
  EXPECT_EQ(result.at("variant").as_string(), "M");
  EXPECT_FALSE(boost::json::parse(protocol::order_result("tee", "c-1", reserved, ids))
                   .as_object()
                   .contains("variant"));

  engine::OrderResult unknown;
  unknown.outcome = engine::OrderOutcome::unknown_variant;
  unknown.reason = "no variant \"XL\"";
  const auto refused =
      boost::json::parse(protocol::order_result("tee", "c-2", unknown, ids)).as_object();
  EXPECT_EQ(refused.at("status").as_string(), "unknown_variant");
  EXPECT_EQ(refused.at("reason").as_string(), unknown.reason);
  EXPECT_FALSE(refused.contains("order_id"));

  const auto update =
      boost::json::parse(protocol::order_update("tee", 3, ids, "c-1",
                                                engine::OrderStatus::confirmed, 1, 5000, "M"))
          .as_object();
  EXPECT_EQ(update.at("variant").as_string(), "M");
}

// A subscription names a drop or a stream, never both; a stream's id is at most 32 bytes.
TEST_F(Parsing, ASubscriptionNamesADropOrAStream) {
  ASSERT_FALSE(parse(R"({"type":"subscribe","stream":"live-1"})"));
  EXPECT_EQ(message.type, ClientType::subscribe);
  EXPECT_EQ(message.stream, "live-1");
  EXPECT_TRUE(message.drop.empty());
  ASSERT_FALSE(parse(R"({"type":"unsubscribe","stream":"live-1"})"));
  EXPECT_EQ(message.type, ClientType::unsubscribe);
  EXPECT_EQ(message.stream, "live-1");
  ASSERT_FALSE(parse(R"({"type":"subscribe","drop":"live-1~tee"})"));
  EXPECT_TRUE(message.stream.empty()) << "nothing left over from the message before";
  EXPECT_EQ(message.drop, "live-1~tee");

  const auto both = parse(R"({"type":"subscribe","drop":"d","stream":"s"})");
  ASSERT_TRUE(both);
  EXPECT_EQ(both->code, ErrorCode::bad_field);
  EXPECT_EQ(both->ref, "subscribe");
  const std::string longest(32, 's');
  ASSERT_FALSE(parse(R"({"type":"subscribe","stream":")" + longest + "\"}"));
  for (const std::string& stream :
       std::vector<std::string>{R"("")", "\"" + longest + "s\"", "7", "null", R"(["s"])"}) {
    const auto problem = parse(R"({"type":"subscribe","stream":)" + stream + "}");
    ASSERT_TRUE(problem) << stream;
    EXPECT_EQ(problem->code, ErrorCode::bad_field) << stream;
    EXPECT_NE(problem->message.find("stream"), std::string::npos) << problem->message;
  }
  EXPECT_EQ(parse(R"({"type":"subscribe","stream":"a","stream":"b"})")->code, ErrorCode::bad_json);
  EXPECT_EQ(protocol::to_string(ErrorCode::unknown_stream), "unknown_stream");
}

// A stream's frame: the stream, its pin by drop id, and every drop of it exactly as a `drop`
// frame tells it, without the type.
TEST(Writing, AStreamFrameHoldsEveryDropAsItsDropFrameDoes) {
  engine::StreamInfo info;
  info.index = 2;
  info.spec.id = "live-1";
  info.spec.host = "anna";
  info.spec.title = "Friday \"drops\"";
  info.spec.video_url = "https://video.example/live-1";
  info.state = engine::StreamState::live;
  engine::DropInfo tee = three_sizes();
  tee.index = 5;
  tee.spec.id = "live-1~tee";
  tee.spec.stream = "live-1";
  engine::DropInfo mug;
  mug.index = 7;
  mug.spec.id = "live-1~mug";
  mug.spec.stream = "live-1";
  mug.spec.title = "Mug";
  mug.spec.price_cents = 900;
  mug.variants.emplace_back();
  info.drops = {tee.index, mug.index};
  info.pinned = mug.index;
  const std::vector<engine::DropInfo> drops = {tee, mug};

  const auto frame = boost::json::parse(protocol::stream(info, drops, 99)).as_object();
  EXPECT_EQ(frame.at("type"), "stream");
  EXPECT_EQ(frame.at("stream"), "live-1");
  EXPECT_EQ(frame.at("title").as_string(), info.spec.title);
  EXPECT_EQ(frame.at("video_url"), "https://video.example/live-1");
  EXPECT_EQ(frame.at("state"), "live");
  EXPECT_EQ(frame.at("pinned"), "live-1~mug");
  EXPECT_EQ(frame.at("server_time_ms"), 99);
  EXPECT_FALSE(frame.contains("host")) << "viewers are not told the host's account";
  const auto& shelf = frame.at("drops").as_array();
  ASSERT_EQ(shelf.size(), 2u);
  for (std::size_t index = 0; index < drops.size(); ++index) {
    auto alone = boost::json::parse(protocol::drop(drops[index], 99)).as_object();
    alone.erase("type");
    EXPECT_EQ(shelf[index].as_object(), alone) << index;
  }
  EXPECT_EQ(shelf[0].as_object().at("stream"), "live-1");

  info.pinned.reset();
  info.state = engine::StreamState::scheduled;
  info.spec.video_url = "";
  const auto unpinned = boost::json::parse(protocol::stream(info, drops, 99)).as_object();
  EXPECT_TRUE(unpinned.at("pinned").is_null());
  EXPECT_EQ(unpinned.at("state"), "scheduled");
  EXPECT_EQ(unpinned.at("video_url"), "");
  info.drops.clear();
  EXPECT_TRUE(boost::json::parse(protocol::stream(info, {}, 99))
                  .as_object()
                  .at("drops")
                  .as_array()
                  .empty());
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
