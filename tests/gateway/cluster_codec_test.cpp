// The cluster's wire codec (gateway/src/cluster_codec.hpp): every message and every host
// command comes back exactly as it went, awkward bytes and extreme numbers included; corrupt
// records — truncated anywhere, lengths past the end, numbers that are not digits or out of
// range, unknown types, missing or repeated fields — decode to nothing; and seeded random
// mutations never crash a decoder, while whatever still decodes re-encodes to the same message
// (FLASHSALE_SEED=<seed> reproduces a run).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <iostream>
#include <limits>
#include <random>
#include <set>

#include "../engine/random_commands.hpp"
#include "cluster.hpp"
#include "cluster_codec.hpp"

namespace flashsale::gateway::cluster {
namespace {

using namespace std::string_view_literals;

constexpr std::uint64_t u64_max = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint32_t u32_max = std::numeric_limits<std::uint32_t>::max();
constexpr std::int64_t i64_max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t i64_min = std::numeric_limits<std::int64_t>::min();

// Values a length-prefixed record must carry intact: separators, digits, NUL bytes, nothing.
const std::string awkward = std::string("k:3:a\0b:12:", 11) + "\xff\n:";
const std::string digits = "1234567890";
const std::string frame = R"({"type":"order_result","drop":"a:b","client_order_id":"7:7"})";
const std::string empty;
const std::string longest_id(64, 'z');  // drop ids, users and client_order_ids: at most 64

template <typename Message>
std::string encoded(const Message& message) {
  std::string record;
  encode(message, record);
  return record;
}

// A create as the host API makes it now: named variants, an opening instant and a duration.
host::CreateDrop create_with_variants() {
  host::CreateDrop create{"tee", "Tee", 0, 0, 3, 60'000, 5, 0, "", "", 0};
  create.variants = {{"S", "Small", 1'500, 2'500, 10},
                     {"M", awkward, 1'200, 0, 0},
                     {longest_id.substr(0, 32), empty, i64_max, i64_min, u32_max}};
  create.per_variant_limit = 2;
  create.duration_ms = 3'600'000;
  create.opens_at_ms = 1'796'300'000'000;
  create.admission_seed = u64_max;
  return create;
}

host::CreateDrop create_with_extremes() {
  host::CreateDrop create{awkward, awkward, 0, 1, 1, 1, 1, 1, awkward, awkward, 1};
  create.variants.assign(engine::variants_max, host::Variant{"v", awkward, -1, -2, 3});
  create.list_price_cents = i64_min;
  create.per_variant_limit = u32_max;
  create.duration_ms = i64_min;
  create.opens_at_ms = i64_max;
  return create;
}

host::CreateDrop create_in_stream() {
  host::CreateDrop create{"live~tee", "Tee", 1'200, 5, 1, 60'000, 0, 0, "", "", 0};
  create.stream = "live";
  return create;
}

std::vector<host::Command> host_commands() {
  return {
      create_with_variants(),
      create_with_extremes(),
      host::CreateDrop{"chestnut", "Roasted chestnuts", 1'250, 100, 2, 60'000, 10, 500, "Food bank",
                       "every unit feeds one", 2'500},
      host::CreateDrop{longest_id, awkward, i64_max, u32_max, u32_max, i64_max, u32_max, i64_max,
                       awkward, awkward, u32_max},
      host::CreateDrop{empty, empty, i64_min, 0, 0, i64_min, 0, i64_min, empty, empty, 0},
      host::CreateDrop{"d", "t", -5, 1, 1, -1, 0, -60'000, "", "", 0},
      host::StartCountdown{"chestnut", 10'000, 0x0123'4567'89ab'cdefULL},
      host::StartCountdown{longest_id, i64_max, u64_max},
      host::StartCountdown{awkward, i64_min, 0},
      host::StartCountdown{"chestnut", 0, 7, 1'796'300'000'000},
      host::StartCountdown{awkward, i64_max, 0, i64_min},
      host::Restock{"chestnut", 5},
      host::Restock{awkward, u32_max},
      host::Restock{"tee", 5, "M"},
      host::Restock{empty, 0, awkward},
      host::CloseDrop{"chestnut"},
      host::CloseDrop{empty},
      host::ReadDrops{},
      host::ListDrops{},
      host::ReadDrop{longest_id},
      host::ReadOrders{"chestnut", "alice"},
      host::ReadOrders{awkward, longest_id},
      host::ReadAudit{digits},
      create_in_stream(),
      host::CreateStream{"live", "alice", "Live tonight", "https://video.example/live"},
      host::CreateStream{awkward, longest_id, awkward, awkward},
      host::CreateStream{empty, empty, empty, empty},
      host::GoLive{"live"},
      host::Pin{"live", "live~tee"},
      host::Pin{awkward, empty},
      host::EndStream{longest_id},
      host::ReadStreams{},
      host::ReadStream{digits},
  };
}

std::vector<Command> commands() {
  std::vector<Command> all = {
      OrderCommand{"g0", 42, "chestnut", "alice", "c-1", 1, 7},
      OrderCommand{awkward, u64_max, longest_id, longest_id, longest_id, u32_max, u64_max},
      OrderCommand{empty, 0, empty, empty, empty, 0, 0},
      OrderCommand{digits, 1, digits, digits, digits, 10, 1},
      OrderCommand{"g0", 42, "tee", "alice", "c-1", 2, 8, "M"},
      OrderCommand{awkward, 0, empty, empty, empty, 0, 0, awkward},
      ActionCommand{"g0", 42, "alice", "chestnut:1", true},
      ActionCommand{awkward, u64_max, longest_id, awkward, false},
      ActionCommand{empty, 0, empty, empty, true},
      SubscribeCommand{"g0", 42, "chestnut", "alice"},
      SubscribeCommand{awkward, u64_max, longest_id, awkward},
      SubscribeCommand{empty, 0, empty, empty},
      SubscribeCommand{"g0", 7, "~live-1", "alice"},  // a stream's topic
      LeaveCommand{"g0", 42, "alice"},
      LeaveCommand{awkward, u64_max, empty},
  };
  // Each host command for each kind of caller: the operator, a host, and (the default) no one.
  const std::array callers = {host::Caller::operator_(), host::Caller::of(longest_id),
                              host::Caller{}};
  std::uint64_t call = 1;
  for (host::Command& command : host_commands()) {
    all.push_back(HostCommand{call % 2 == 0 ? "g1" : awkward, call, std::move(command),
                              callers[call % callers.size()]});
    ++call;
  }
  all.push_back(HostCommand{empty, u64_max, host::ReadDrops{}});
  return all;
}

std::vector<Answer> answers() {
  return {
      FrameAnswer{42, FrameKind::reply, 0, 0, frame},
      FrameAnswer{u64_max, FrameKind::tick, u32_max, u32_max, awkward},
      FrameAnswer{0, FrameKind::stock, 3, 17, empty},
      FrameAnswer{1, FrameKind::drop, 1, 2, digits},
      FrameAnswer{1, FrameKind::state, 1, 2, frame},
      FrameAnswer{1, FrameKind::stream, 1, 2, frame},
      OrderAnswer{42, FrameKind::order, 7, frame},
      OrderAnswer{u64_max, FrameKind::reply, u64_max, awkward},
      OrderAnswer{0, FrameKind::order, 0, empty},
      ForgetAnswer{42, "chestnut"},
      ForgetAnswer{u64_max, awkward},
      ForgetAnswer{0, empty},
      ForgetAnswer{7, "~live-1"},
      CloseAnswer{42, 1008, frame},
      CloseAnswer{u64_max, 65'535, awkward},
      CloseAnswer{0, 0, empty},
      HostAnswer{1, {200, R"({"drops":[]})"}},
      HostAnswer{u64_max, {599, awkward}},
      HostAnswer{0, {100, empty}},
      HostAnswer{9, {503, digits}},
  };
}

std::vector<DropUpdate> updates() {
  return {
      DropUpdate{FrameKind::stock, 3, "chestnut", frame},
      DropUpdate{FrameKind::tick, u32_max, longest_id, awkward},
      DropUpdate{FrameKind::reply, 0, empty, empty},
      DropUpdate{FrameKind::drop, 1, "alive", digits},
      DropUpdate{FrameKind::stream, 2, "~live-1", frame},
  };
}

std::vector<EdgeGate> gates() {
  return {
      EdgeGate{"chestnut", true, 2, true, {1, 0x3a3a3a3a3a3a3a3aULL, u64_max}},
      EdgeGate{longest_id, true, u32_max, false, {}},
      EdgeGate{awkward, false, 0, false, {0}},
      EdgeGate{empty, false, 0, true, {}},
      EdgeGate{"tee", true, 2, false, {7}, {"S", "M", "red-L.2_x"}},
      EdgeGate{"tee", true, 1, true, {}, {longest_id.substr(0, 32)}},
  };
}

std::string encoded_update(const Update& update) {
  if (std::holds_alternative<Heartbeat>(update)) return std::string(heartbeat);
  if (const auto* gate = std::get_if<EdgeGate>(&update)) return encode_gate(*gate);
  return encode_update(std::get<DropUpdate>(update));
}

// Every record of every stream, with the decoder it belongs to.
struct Sample {
  std::string record;
  int stream;  // 0 commands, 1 answers, 2 updates
};
std::vector<Sample> samples() {
  std::vector<Sample> all;
  for (const Command& command : commands()) all.push_back({encoded(command), 0});
  for (const Answer& answer : answers()) all.push_back({encoded(answer), 1});
  for (const DropUpdate& update : updates()) all.push_back({encode_update(update), 2});
  for (const EdgeGate& gate : gates()) all.push_back({encode_gate(gate), 2});
  return all;
}

bool decodes(const Sample& sample, std::string_view record) {
  switch (sample.stream) {
    case 0:
      return decode_command(record).has_value();
    case 1:
      return decode_answer(record).has_value();
    default:
      return decode_update(record).has_value();
  }
}

std::vector<Field> fields_of(std::string_view record) {
  std::vector<Field> fields;
  EXPECT_TRUE(decode_record(record, fields)) << record;
  return fields;
}

std::string record_of(const std::vector<Field>& fields) {
  std::string record;
  for (const auto& [name, value] : fields) append_field(record, name, value);
  return record;
}

// `record` with field `name` set to `value`.
std::string with(std::string_view record, std::string_view name, std::string_view value) {
  std::vector<Field> fields = fields_of(record);
  bool found = false;
  for (auto& field : fields) {
    if (field.first != name) continue;
    field.second = value;
    found = true;
  }
  EXPECT_TRUE(found) << name << " in " << record;
  return record_of(fields);
}

TEST(ClusterCodec, EveryCommandComesBackAsItWent) {
  for (const Command& command : commands()) {
    const std::string record = encoded(command);
    SCOPED_TRACE(record);
    const auto decoded = decode_command(record);
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(decoded->index(), command.index());
    EXPECT_TRUE(*decoded == command);
  }
}

TEST(ClusterCodec, EveryHostCommandHasItsOwnEncoding) {
  std::set<std::size_t> kinds;
  std::set<std::string> types;
  for (host::Command& command : host_commands()) {
    kinds.insert(command.index());
    const HostCommand message{"g0", 5, std::move(command), host::Caller::of("alice")};
    const std::string record = encoded(message);
    SCOPED_TRACE(record);
    const auto decoded = decode_command(record);
    ASSERT_TRUE(decoded.has_value());
    ASSERT_TRUE(std::holds_alternative<HostCommand>(*decoded));
    EXPECT_TRUE(std::get<HostCommand>(*decoded) == message);
    for (const auto& [name, value] : fields_of(record))
      if (name == "t") types.insert(std::string(value));
  }
  EXPECT_EQ(kinds.size(), std::variant_size_v<host::Command>) << "a host command is not tested";
  EXPECT_EQ(types.size(), std::variant_size_v<host::Command>) << "two commands share a type";
}

TEST(ClusterCodec, EveryAnswerComesBackAsItWent) {
  for (const Answer& answer : answers()) {
    const std::string record = encoded(answer);
    SCOPED_TRACE(record);
    const auto decoded = decode_answer(record);
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(decoded->index(), answer.index());
    EXPECT_TRUE(*decoded == answer);
  }
}

TEST(ClusterCodec, UpdatesAndTheHeartbeatComeBackAsTheyWent) {
  for (const DropUpdate& update : updates()) {
    const std::string message = encode_update(update);
    SCOPED_TRACE(message);
    const auto decoded = decode_update(message);
    ASSERT_TRUE(decoded.has_value());
    ASSERT_TRUE(std::holds_alternative<DropUpdate>(*decoded));
    EXPECT_EQ(std::get<DropUpdate>(*decoded), update);
  }
  const auto alive = decode_update(heartbeat);
  ASSERT_TRUE(alive.has_value());
  EXPECT_TRUE(std::holds_alternative<Heartbeat>(*alive));
  for (const EdgeGate& gate : gates()) {
    const std::string message = encode_gate(gate);
    SCOPED_TRACE(message);
    const auto decoded = decode_update(message);
    ASSERT_TRUE(decoded.has_value());
    ASSERT_TRUE(std::holds_alternative<EdgeGate>(*decoded));
    EXPECT_EQ(std::get<EdgeGate>(*decoded), gate);
  }
}

// A gate's buyers are searched by bisection: a message whose buyers are out of order, or not
// whole 8-byte numbers, is refused rather than misread.
TEST(ClusterCodec, AGateWithBuyersOutOfOrderOrCutIsRefused) {
  std::string unsorted = encode_gate(EdgeGate{"d", true, 1, false, {2, 1}});
  EXPECT_FALSE(decode_update(unsorted).has_value());
  const std::string whole = encode_gate(EdgeGate{"d", true, 1, false, {1, 2}});
  auto fields = fields_of(whole);
  for (auto& [name, value] : fields)
    if (name == "b") value = value.substr(0, 12);
  EXPECT_FALSE(decode_update(record_of(fields)).has_value());
}

// A create's variants are a list of records: each must be one, named "variant", with every
// field of a variant; a list longer than a drop may have is refused before it is all read.
TEST(ClusterCodec, ACreatesVariantsAreWholeRecordsAndNoMoreThanADropHas) {
  const std::string record = encoded(HostCommand{"g0", 1, create_with_variants()});
  std::string_view listed;
  for (const auto& [name, value] : fields_of(record))
    if (name == "variants") listed = value;
  ASSERT_FALSE(listed.empty());
  const std::vector<Field> items = fields_of(listed);
  ASSERT_EQ(items.size(), 3u);
  std::string renamed;
  append_field(renamed, "variants", items[0].second);
  EXPECT_FALSE(decode_command(with(record, "variants", renamed))) << "an item not named variant";
  for (const char* field : {"id", "label", "price_cents", "list_price_cents", "stock"}) {
    std::vector<Field> fewer = fields_of(items[0].second);
    std::erase_if(fewer, [&](const Field& one) { return one.first == field; });
    std::string list;
    append_field(list, "variant", record_of(fewer));
    EXPECT_FALSE(decode_command(with(record, "variants", list))) << "without " << field;
  }
  std::string cut;
  append_field(cut, "variant", items[0].second.substr(0, items[0].second.size() - 1));
  EXPECT_FALSE(decode_command(with(record, "variants", cut)));
  std::string many;
  for (std::size_t index = 0; index <= engine::variants_max; ++index)
    append_field(many, "variant", items[0].second);
  EXPECT_FALSE(decode_command(with(record, "variants", many)));

  const std::string gate = encode_gate(EdgeGate{"d", true, 1, false, {}, {"S", "M"}});
  for (const char* bad : {"", ",", "S,", ",M", "S,,M", "S M", "S;M"})
    EXPECT_FALSE(decode_update(with(gate, "v", bad))) << bad;
}

TEST(ClusterCodec, ViewerMessagesAreViewsIntoTheirRecord) {
  const std::string record = encoded(OrderCommand{"g0", 1, "chestnut", "alice", "c-1", 1, 2});
  const auto decoded = decode_command(record);
  ASSERT_TRUE(decoded.has_value());
  const auto& order = std::get<OrderCommand>(*decoded);
  EXPECT_GE(order.drop.data(), record.data());
  EXPECT_LE(order.drop.data() + order.drop.size(), record.data() + record.size());
}

TEST(ClusterCodec, EncodingAppends) {
  std::string record = "r";
  encode(SubscribeCommand{"g0", 1, "chestnut"}, record);
  const std::size_t first = record.size();
  encode(FrameAnswer{1, FrameKind::drop, 0, 0, frame}, record);
  EXPECT_EQ(record.front(), 'r');
  EXPECT_TRUE(decode_command(std::string_view(record).substr(1, first - 1)).has_value());
  EXPECT_TRUE(decode_answer(std::string_view(record).substr(first)).has_value());
}

// The bytes themselves, as cluster_codec.hpp documents them: processes of one deployment must
// agree on them, so a change here is a change of the wire format.
TEST(ClusterCodec, TheWireFormatIsTheDocumentedOne) {
  EXPECT_EQ(encoded(OrderCommand{"g0", 42, "chestnut", "alice", "c-1", 1, 7}),
            "t:1:og:2:g0c:2:42d:8:chestnutu:5:alicek:3:c-1q:1:1n:1:7");
  EXPECT_EQ(encoded(ActionCommand{"g0", 42, "alice", "d:1", false}),
            "t:1:ag:2:g0c:2:42u:5:alicei:3:d:1x:6:cancel");
  EXPECT_EQ(encoded(SubscribeCommand{"g0", 42, "d", "alice"}), "t:1:sg:2:g0c:2:42d:1:du:5:alice");
  // A subscribe from a gateway before 2026-12 names no user, and still reads.
  EXPECT_EQ(std::get<SubscribeCommand>(*decode_command("t:1:sg:2:g0c:2:42d:1:d")),
            (SubscribeCommand{"g0", 42, "d", ""}));
  EXPECT_EQ(encoded(LeaveCommand{"g0", 42, "alice"}), "t:1:lg:2:g0c:2:42u:5:alice");
  const host::Caller alice = host::Caller::of("alice");
  const host::Caller op = host::Caller::operator_();
  EXPECT_EQ(encoded(HostCommand{"g0", 9, host::Restock{"d", 5}, alice}),
            "t:7:restockg:2:g0call:1:9d:1:dadd:1:5by:5:alice");
  EXPECT_EQ(encoded(HostCommand{"g0", 9, host::ListDrops{}, op}), "t:4:listg:2:g0call:1:9op:1:1");
  // A call from a gateway before host accounts names no caller: it read the one host key, which
  // could do anything.
  EXPECT_EQ(std::get<HostCommand>(*decode_command("t:4:listg:2:g0call:1:9")).caller, op);
  EXPECT_EQ(encoded(HostCommand{
                "g0", 9, host::CreateDrop{"d", "T", 5, 6, 1, 1'000, 0, 0, "", "", 0}, alice}),
            "t:6:createg:2:g0call:1:9d:1:dtitle:1:Tprice_cents:1:5stock:1:6per_user_limit:1:1"
            "hold_ms:4:1000waitlist_limit:1:0admission_window_ms:1:0beneficiary:0:"
            "beneficiary_note:0:pledge_bps:1:0list_price_cents:1:0per_variant_limit:1:0"
            "duration_ms:1:0admission_seed:1:0by:5:alice");
  EXPECT_EQ(encoded(HostCommand{"g0", 9, create_in_stream(), alice}),
            "t:6:createg:2:g0call:1:9d:8:live~teetitle:3:Teeprice_cents:4:1200stock:1:5"
            "per_user_limit:1:1hold_ms:5:60000waitlist_limit:1:0admission_window_ms:1:0"
            "beneficiary:0:beneficiary_note:0:pledge_bps:1:0list_price_cents:1:0"
            "per_variant_limit:1:0duration_ms:1:0admission_seed:1:0stream:4:liveby:5:alice");
  EXPECT_EQ(encoded(HostCommand{"g0", 9, host::CreateStream{"live", "alice", "L", ""}, op}),
            "t:13:create_streamg:2:g0call:1:9stream:4:livehost:5:alicetitle:1:Lvideo_url:0:op:1:1");
  EXPECT_EQ(encoded(HostCommand{"g0", 9, host::Pin{"live", "live~tee"}, alice}),
            "t:3:ping:2:g0call:1:9d:8:live~teestream:4:liveby:5:alice");
  EXPECT_EQ(encoded(HostCommand{"g0", 9, host::EndStream{"live"}, alice}),
            "t:3:endg:2:g0call:1:9stream:4:liveby:5:alice");
  host::CreateDrop two{"d", "T", 0, 0, 2, 1'000, 0, 0, "", "", 0};
  two.variants = {{"S", "Small", 5, 7, 1}, {"M", "", 6, 0, 2}};
  two.per_variant_limit = 1;
  two.duration_ms = 60'000;
  two.opens_at_ms = 1'000;
  two.admission_seed = 3;
  EXPECT_EQ(encoded(HostCommand{"g0", 9, two, op}),
            "t:6:createg:2:g0call:1:9d:1:dtitle:1:Tprice_cents:1:0stock:1:0per_user_limit:1:2"
            "hold_ms:4:1000waitlist_limit:1:0admission_window_ms:1:0beneficiary:0:"
            "beneficiary_note:0:pledge_bps:1:0list_price_cents:1:0per_variant_limit:1:1"
            "duration_ms:5:60000admission_seed:1:3"
            "variants:143:"
            "variant:63:id:1:Slabel:5:Smallprice_cents:1:5list_price_cents:1:7stock:1:1"
            "variant:58:id:1:Mlabel:0:price_cents:1:6list_price_cents:1:0stock:1:2"
            "opens_at_ms:4:1000op:1:1");
  EXPECT_EQ(encoded(OrderCommand{"g0", 42, "tee", "alice", "c-1", 1, 7, "M"}),
            "t:1:og:2:g0c:2:42d:3:teeu:5:alicek:3:c-1q:1:1n:1:7v:1:M");
  EXPECT_EQ(encoded(HostCommand{"g0", 9, host::Restock{"d", 5, "M"}, alice}),
            "t:7:restockg:2:g0call:1:9d:1:dadd:1:5v:1:Mby:5:alice");
  EXPECT_EQ(encoded(HostCommand{"g0", 9, host::StartCountdown{"d", 0, 3, 1'000}, alice}),
            "t:9:countdowng:2:g0call:1:9d:1:dopens_in_ms:1:0admission_seed:1:3opens_at_ms:4:1000"
            "by:5:alice");
  EXPECT_EQ(encode_gate(EdgeGate{"d", true, 2, false, {}, {"S", "M"}}),
            "g:1:1d:1:dl:1:2w:1:0b:0:v:3:S,M");
  EXPECT_EQ(encoded(FrameAnswer{42, FrameKind::stock, 1, 3, "{}"}),
            "t:1:fc:2:42k:1:4s:1:1i:1:3f:2:{}");
  EXPECT_EQ(encoded(OrderAnswer{42, FrameKind::order, 7, "{}"}), "t:1:oc:2:42k:1:1n:1:7f:2:{}");
  EXPECT_EQ(encoded(ForgetAnswer{42, "d"}), "t:1:uc:2:42d:1:d");
  EXPECT_EQ(encoded(CloseAnswer{42, 1008, "{}"}), "t:1:xc:2:42code:4:1008f:2:{}");
  EXPECT_EQ(encoded(HostAnswer{9, {201, "{}"}}), "t:1:hcall:1:9status:3:201body:2:{}");
  EXPECT_EQ(encode_update(DropUpdate{FrameKind::stock, 3, "chestnut", "{}"}),
            "k:1:4i:1:3d:8:chestnutf:2:{}");
  EXPECT_EQ(heartbeat, "alive");
}

TEST(ClusterCodec, FieldsMayComeInAnyOrderAndUnknownOnesArePassedOver) {
  for (const Sample& sample : samples()) {
    std::vector<Field> fields = fields_of(sample.record);
    std::reverse(fields.begin(), fields.end());
    fields.emplace_back("from_a_newer_version", "1");
    fields.emplace_back("", "");
    EXPECT_TRUE(decodes(sample, record_of(fields))) << sample.record;
  }
}

// Fields added later, which a record from an older process lacks: a subscribe's user; what
// came with variants (an order's or a restock's variant, a countdown's opening instant, a
// create's fields from list_price_cents on, a gate's variants). An encoder writes them last.
bool optional_field(const Sample& sample, std::string_view name) {
  const std::string_view record = sample.record;
  if (sample.stream == 2) return name == "v";
  if (sample.stream != 0) return false;
  if (record.starts_with("t:1:s")) return name == "u";
  // Whom a host call acts for: absent from a gateway before host accounts.
  if (name == "by" || name == "op") return !record.starts_with("t:1:");
  if (record.starts_with("t:1:o")) return name == "v";
  if (record.starts_with("t:7:restock")) return name == "v";
  if (record.starts_with("t:9:countdown")) return name == "opens_at_ms";
  return record.starts_with("t:6:create") &&
         (name == "list_price_cents" || name == "per_variant_limit" || name == "duration_ms" ||
          name == "admission_seed" || name == "variants" || name == "opens_at_ms" ||
          name == "stream");
}

// Where the record may end and still decode: after its last field that is not optional, or
// after any optional field that follows.
std::vector<std::size_t> whole_ends(const Sample& sample) {
  std::vector<std::size_t> ends;
  std::string prefix;
  bool required_left = true;
  const std::vector<Field> fields = fields_of(sample.record);
  for (std::size_t index = 0; index < fields.size(); ++index) {
    append_field(prefix, fields[index].first, fields[index].second);
    required_left =
        std::any_of(fields.begin() + static_cast<std::ptrdiff_t>(index) + 1, fields.end(),
                    [&](const Field& field) { return !optional_field(sample, field.first); });
    if (!required_left) ends.push_back(prefix.size());
  }
  return ends;
}

TEST(ClusterCodec, EveryTruncationIsRefused) {
  for (const Sample& sample : samples()) {
    const std::vector<std::size_t> ends = whole_ends(sample);
    for (std::size_t size = 0; size < sample.record.size(); ++size) {
      const std::string_view cut = std::string_view(sample.record).substr(0, size);
      EXPECT_EQ(decodes(sample, cut), std::find(ends.begin(), ends.end(), size) != ends.end())
          << sample.record << " cut at " << size;
      // The other streams' decoders take anything too.
      decode_command(cut);
      decode_answer(cut);
      decode_update(cut);
    }
  }
}

TEST(ClusterCodec, EveryMissingFieldIsRefused) {
  for (const Sample& sample : samples()) {
    const std::vector<Field> fields = fields_of(sample.record);
    for (std::size_t left_out = 0; left_out < fields.size(); ++left_out) {
      std::vector<Field> fewer = fields;
      fewer.erase(fewer.begin() + static_cast<std::ptrdiff_t>(left_out));
      EXPECT_EQ(decodes(sample, record_of(fewer)), optional_field(sample, fields[left_out].first))
          << sample.record << " without " << fields[left_out].first;
    }
  }
}

TEST(ClusterCodec, AFieldGivenTwiceIsRefused) {
  for (const Sample& sample : samples()) {
    const std::vector<Field> fields = fields_of(sample.record);
    for (const Field& field : fields) {
      std::vector<Field> twice = fields;
      twice.push_back(field);
      EXPECT_FALSE(decodes(sample, record_of(twice))) << sample.record << " with " << field.first;
    }
  }
}

TEST(ClusterCodec, LengthsPastTheEndAreRefused) {
  for (const Sample& sample : samples()) {
    const std::vector<Field> fields = fields_of(sample.record);
    std::string before;  // the fields before the damaged one, intact
    for (std::size_t index = 0; index < fields.size(); ++index) {
      std::string rest;  // everything after the damaged field's length
      rest += ':';
      rest += fields[index].second;
      for (std::size_t after = index + 1; after < fields.size(); ++after)
        append_field(rest, fields[after].first, fields[after].second);
      for (const std::string& length : {std::to_string(rest.size()), std::string(30, '9')}) {
        std::string damaged = before;
        damaged += fields[index].first;
        damaged += ':';
        damaged += length;
        damaged += rest;
        EXPECT_FALSE(decodes(sample, damaged)) << damaged;
      }
      append_field(before, fields[index].first, fields[index].second);
    }
  }
  std::vector<Field> fields;
  EXPECT_FALSE(decode_record("t:-1:o", fields));
  EXPECT_FALSE(decode_record("t:+1:o", fields));
  EXPECT_FALSE(decode_record("t: 1:o", fields));
  EXPECT_FALSE(decode_record("t:1o", fields));
}

TEST(ClusterCodec, NumbersAreDigitsWithinTheirRange) {
  const std::string order = encoded(OrderCommand{"g0", 1, "d", "u", "k", 1, 2});
  for (const char* bad : {"", "x", "-1", "+1", " 1", "1 ", "1.0", "0x1", "1e3", "4294967296",
                          "99999999999999999999999"})
    EXPECT_FALSE(decode_command(with(order, "q", bad))) << "qty " << bad;
  for (const char* bad : {"-0", "18446744073709551616", "1-"}) {
    EXPECT_FALSE(decode_command(with(order, "c", bad))) << "connection " << bad;
    EXPECT_FALSE(decode_command(with(order, "n", bad))) << "tag " << bad;
  }
  EXPECT_TRUE(decode_command(with(order, "q", "0004294967295")));
  EXPECT_TRUE(decode_command(with(order, "n", "18446744073709551615")));

  const std::string create = encoded(HostCommand{"g0", 1, host::CreateDrop{}});
  for (const char* bad : {"9223372036854775808", "-9223372036854775809", "-", "--1", "+5", "5-"}) {
    EXPECT_FALSE(decode_command(with(create, "price_cents", bad))) << "price " << bad;
    EXPECT_FALSE(decode_command(with(create, "hold_ms", bad))) << "hold " << bad;
  }
  for (const char* field : {"stock", "per_user_limit", "waitlist_limit", "pledge_bps"}) {
    EXPECT_FALSE(decode_command(with(create, field, "4294967296"))) << field;
    EXPECT_FALSE(decode_command(with(create, field, "-1"))) << field;
  }
  EXPECT_TRUE(decode_command(with(create, "price_cents", "-9223372036854775808")));
  const std::string countdown = encoded(HostCommand{"g0", 1, host::StartCountdown{"d", 1, 2}});
  EXPECT_FALSE(decode_command(with(countdown, "admission_seed", "18446744073709551616")));
  EXPECT_FALSE(decode_command(with(countdown, "opens_in_ms", "1s")));
  const std::string restock = encoded(HostCommand{"g0", 1, host::Restock{"d", 1}});
  EXPECT_FALSE(decode_command(with(restock, "add", "-1")));
  EXPECT_FALSE(decode_command(with(restock, "call", "x")));
  const std::string scheduled = encoded(HostCommand{"g0", 1, create_with_variants()});
  for (const char* field : {"per_variant_limit"}) {
    EXPECT_FALSE(decode_command(with(scheduled, field, "4294967296"))) << field;
    EXPECT_FALSE(decode_command(with(scheduled, field, "-1"))) << field;
  }
  for (const char* field : {"list_price_cents", "duration_ms", "opens_at_ms"}) {
    EXPECT_FALSE(decode_command(with(scheduled, field, "9223372036854775808"))) << field;
    EXPECT_FALSE(decode_command(with(scheduled, field, "1s"))) << field;
  }
  EXPECT_FALSE(decode_command(with(scheduled, "admission_seed", "-1")));
  const std::string at = encoded(HostCommand{"g0", 1, host::StartCountdown{"d", 0, 2, 5}});
  EXPECT_FALSE(decode_command(with(at, "opens_at_ms", "")));
  EXPECT_FALSE(decode_command(with(at, "opens_at_ms", "9223372036854775808")));

  const std::string frame_answer = encoded(FrameAnswer{1, FrameKind::tick, 2, 3, frame});
  for (const char* bad : {"7", "255", "256", "-1", "a", ""})
    EXPECT_FALSE(decode_answer(with(frame_answer, "k", bad))) << "kind " << bad;
  EXPECT_FALSE(decode_answer(with(frame_answer, "s", "4294967296")));
  EXPECT_FALSE(decode_answer(with(frame_answer, "i", "-3")));
  const std::string close = encoded(CloseAnswer{1, 1008, frame});
  EXPECT_FALSE(decode_answer(with(close, "code", "65536")));
  const std::string host_answer = encoded(HostAnswer{1, {200, "{}"}});
  for (const char* bad : {"0", "99", "600", "4294967296", "2OO"})
    EXPECT_FALSE(decode_answer(with(host_answer, "status", bad))) << "status " << bad;
  const std::string update = encode_update(DropUpdate{FrameKind::stock, 1, "d", frame});
  EXPECT_FALSE(decode_update(with(update, "k", "7")));
  EXPECT_FALSE(decode_update(with(update, "i", "x")));
}

TEST(ClusterCodec, UnknownTypesAreRefused) {
  const std::string order = encoded(OrderCommand{"g0", 1, "d", "u", "k", 1, 2});
  for (const char* type : {"", "O", "oo", "z", "h", "create ", "Create", "f"})
    EXPECT_FALSE(decode_command(with(order, "t", type))) << type;
  const std::string answer = encoded(OrderAnswer{1, FrameKind::order, 2, frame});
  for (const char* type : {"", "O", "a", "s", "create"})
    EXPECT_FALSE(decode_answer(with(answer, "t", type))) << type;
  const std::string action = encoded(ActionCommand{"g0", 1, "u", "d:1", true});
  for (const char* verb : {"", "Confirm", "1", "confirm "})
    EXPECT_FALSE(decode_command(with(action, "x", verb))) << verb;
  // One stream's records are not another's.
  for (const Command& command : commands()) EXPECT_FALSE(decode_answer(encoded(command)));
  for (const Answer& answer_sample : answers()) {
    EXPECT_FALSE(decode_command(encoded(answer_sample)));
    EXPECT_FALSE(decode_update(encoded(answer_sample)));
  }
}

TEST(ClusterCodec, WhatIsNotARecordIsRefused) {
  for (const char* text : {"", "garbage", "t", "t:", "t:1", "t:1:", ":::", "alive", "alive\n"}) {
    EXPECT_FALSE(decode_command(text)) << text;
    EXPECT_FALSE(decode_answer(text)) << text;
  }
  for (const char* text : {"", "Alive", "alive ", "aliv", "k:1:2"})
    EXPECT_FALSE(decode_update(text)) << text;
}

// Random damage to valid records: decoding must never crash or read out of bounds (run it
// under the sanitizers), and whatever still decodes is a message whose own encoding decodes
// to it again.
TEST(ClusterCodec, RandomMutationsNeverCrashAndWhatDecodesIsAMessage) {
  const std::uint64_t seed = engine::testing::random_base_seed();
  std::cout << "ClusterCodec: seed " << seed << " (FLASHSALE_SEED=" << seed << " reproduces)\n";
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 random(seed);
  const auto below = [&](std::size_t bound) {
    return bound == 0 ? std::size_t{0} : static_cast<std::size_t>(random() % bound);
  };
  constexpr auto alphabet = ":0123456789-tgcduknqixfshoal\0\xff"sv;
  const std::vector<Sample> all = samples();
  std::size_t decoded = 0;
  const std::size_t rounds = 200'000;
  for (std::size_t round = 0; round < rounds; ++round) {
    std::string record = all[below(all.size())].record;
    for (std::size_t mutation = 0, count = 1 + below(4); mutation < count; ++mutation) {
      const std::size_t at = below(record.size() + 1);
      switch (below(6)) {
        case 0:
          if (at < record.size())
            record[at] =
                static_cast<char>(static_cast<unsigned char>(record[at]) ^ (1u << below(8)));
          break;
        case 1:
          if (at < record.size()) record[at] = alphabet[below(alphabet.size())];
          break;
        case 2:
          record.insert(record.begin() + static_cast<std::ptrdiff_t>(at),
                        alphabet[below(alphabet.size())]);
          break;
        case 3:
          record.erase(at, 1 + below(8));
          break;
        case 4:
          record.resize(at);
          break;
        default: {  // a piece of another record
          const std::string& other = all[below(all.size())].record;
          const std::size_t from = below(other.size());
          record.insert(at, other.substr(from, 1 + below(24)));
        }
      }
    }
    SCOPED_TRACE("round " + std::to_string(round));
    if (const auto command = decode_command(record)) {
      ++decoded;
      const std::string again = encoded(*command);
      const auto redecoded = decode_command(again);
      ASSERT_TRUE(redecoded.has_value()) << record;
      ASSERT_TRUE(*redecoded == *command) << record;
    }
    if (const auto answer = decode_answer(record)) {
      ++decoded;
      const std::string again = encoded(*answer);
      const auto redecoded = decode_answer(again);
      ASSERT_TRUE(redecoded.has_value()) << record;
      ASSERT_TRUE(*redecoded == *answer) << record;
    }
    if (const auto update = decode_update(record)) {
      ++decoded;
      const std::string again = encoded_update(*update);
      const auto redecoded = decode_update(again);
      ASSERT_TRUE(redecoded.has_value()) << record;
      ASSERT_TRUE(*redecoded == *update) << record;
    }
  }
  std::cout << "ClusterCodec: " << decoded << " of " << rounds
            << " damaged records still decoded, each to a message\n";
}

}  // namespace
}  // namespace flashsale::gateway::cluster
