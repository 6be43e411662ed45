// What reading a viewer's order costs at the edge: the whole parse, and within it the check
// that no field the protocol reads is named twice (json_keys.hpp). And what a stream's frame
// costs to write, once per change, for a shelf of 1 to 64 drops.
#include <benchmark/benchmark.h>

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "flashsale/engine/engine.hpp"
#include "flashsale/gateway/json_keys.hpp"
#include "flashsale/gateway/protocol.hpp"

namespace {

using namespace flashsale::gateway;

constexpr std::string_view order =
    R"({"type":"order","drop":"chestnuts-2026","qty":1,"client_order_id":"c-3f9a1e"})";

void parse_order(benchmark::State& state) {
  static protocol::ParseBuffer buffer;
  for (auto _ : state) {
    protocol::ClientMessage message;
    benchmark::DoNotOptimize(protocol::parse(order, buffer, message));
  }
}
BENCHMARK(parse_order);

void repeated_field_check(benchmark::State& state) {
  constexpr std::array<std::string_view, 7> fields = {
      "type", "token", "user", "drop", "client_order_id", "qty", "order_id"};
  for (auto _ : state) benchmark::DoNotOptimize(repeats_a_field(order, fields));
}
BENCHMARK(repeated_field_check);

// A live stream with `state.range(0)` drops on its shelf, each with five sizes, one pinned.
void stream_frame(benchmark::State& state) {
  using namespace flashsale::engine;
  Engine engine(EngineLimits{.drops_max = 64});
  Events events;
  engine.create_stream({"market", "host", "Friday night market", "https://video.example/m"}, 0,
                       events);
  std::vector<std::string> ids;
  const std::array<VariantSpec, 5> sizes = {{{"XS", "Extra small", 1'500, 2'500, 20},
                                             {"S", "Small", 1'500, 2'500, 20},
                                             {"M", "Medium", 1'500, 2'500, 20},
                                             {"L", "Large", 1'500, 2'500, 20},
                                             {"XL", "Extra large", 1'500, 2'500, 20}}};
  for (std::int64_t drop = 0; drop < state.range(0); ++drop) {
    ids.push_back("market~tee-" + std::to_string(drop));
    DropSpec spec{
        .id = ids.back(), .title = "Festival tee", .per_user_limit = 1, .hold_ms = 60'000};
    spec.variants.assign(sizes.begin(), sizes.end());
    spec.host = "host";
    spec.stream = "market";
    engine.create_drop(spec, 0, events, TimeMs{10'000}, 1);
  }
  engine.go_live("market", 0, events);
  engine.pin("market", ids.front(), 0, events);
  const StreamInfo info = engine.stream_info(0);
  std::vector<DropInfo> drops;
  for (const DropIndex drop : info.drops) drops.push_back(engine.drop_info(drop));
  std::size_t bytes = 0;
  for (auto _ : state) {
    const std::string frame = protocol::stream(info, drops, 5'000);
    bytes = frame.size();
    benchmark::DoNotOptimize(frame.data());
  }
  state.counters["frame_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(stream_frame)->Arg(1)->Arg(8)->Arg(64);

}  // namespace
