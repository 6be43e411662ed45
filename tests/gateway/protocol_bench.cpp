// What reading a viewer's order costs at the edge: the whole parse, and within it the check
// that no field the protocol reads is named twice (json_keys.hpp).
#include <benchmark/benchmark.h>

#include <array>
#include <string_view>

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

}  // namespace
