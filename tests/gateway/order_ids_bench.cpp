// bench_order_ids: what an order id costs the gateway, per call, on one thread and on two.
//   format/N            an order number to its id, drop id N bytes long (one AES block,
//                       the drop's FNV-1a tag, base64url, the returned string)
//   parse/N             an id back to the number (base64url, one AES block, the tag)
//   parse_refused/N     an id moved to another drop: the same work, then a tag mismatch
//   format_and_parse    both, from 1 and 2 threads on one instance (per-thread contexts)
//   sequential_format   the id this replaces, "<drop>:<number>" with fmt, for scale
// N is 16 (a typical drop id) and 64 (engine::drop_id_length_max). Run a Release-like build
// (-O2); the order numbers cycle through 4,096 so no branch predictor learns one id.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <string>
#include <vector>

#include "flashsale/gateway/order_ids.hpp"

namespace flashsale::gateway {
namespace {

constexpr engine::OrderNumber orders = 4096;  // a power of two: the index is a mask

const OrderIds& instance() {
  static const OrderIds ids(OrderIds::random_key());
  return ids;
}

// A drop id of `length` bytes, from the characters drop ids may use.
std::string drop_of(std::int64_t length, char first = 's') {
  std::string drop(static_cast<std::size_t>(length), '.');
  for (std::size_t i = 0; i < drop.size(); ++i) drop[i] = static_cast<char>(first + i % 7);
  return drop;
}

// The ids of orders 1..orders in `drop`.
std::vector<std::string> ids_of(std::string_view drop) {
  std::vector<std::string> made;
  for (engine::OrderNumber order = 1; order <= orders; ++order)
    made.push_back(instance().format(drop, order));
  return made;
}

void format(benchmark::State& state) {
  const OrderIds& ids = instance();
  const std::string drop = drop_of(state.range(0));
  engine::OrderNumber order = 1;
  for (auto _ : state) {
    benchmark::DoNotOptimize(ids.format(drop, order));
    order = (order & (orders - 1)) + 1;
  }
}
BENCHMARK(format)->Arg(16)->Arg(64);

void parse(benchmark::State& state) {
  const OrderIds& ids = instance();
  const std::vector<std::string> texts = ids_of(drop_of(state.range(0)));
  std::size_t i = 0;
  for (auto _ : state) {
    const auto ref = ids.parse(texts[i]);
    if (!ref) state.SkipWithError("a genuine id was refused");
    benchmark::DoNotOptimize(ref);
    i = (i + 1) & (orders - 1);
  }
}
BENCHMARK(parse)->Arg(16)->Arg(64);

void parse_refused(benchmark::State& state) {
  const OrderIds& ids = instance();
  std::vector<std::string> texts;
  const std::string other = drop_of(state.range(0), 'a');
  for (const std::string& id : ids_of(drop_of(state.range(0))))
    texts.push_back(other + id.substr(id.rfind(':')));
  std::size_t i = 0;
  for (auto _ : state) {
    const auto ref = ids.parse(texts[i]);
    if (ref) state.SkipWithError("an id moved to another drop was accepted");
    benchmark::DoNotOptimize(ref);
    i = (i + 1) & (orders - 1);
  }
}
BENCHMARK(parse_refused)->Arg(16)->Arg(64);

void format_and_parse(benchmark::State& state) {
  const OrderIds& ids = instance();
  const std::string drop = drop_of(16);
  engine::OrderNumber order = 1;
  for (auto _ : state) {
    const std::string id = ids.format(drop, order);
    const auto ref = ids.parse(id);
    if (!ref || ref->order != order) state.SkipWithError("round trip failed");
    order = (order & (orders - 1)) + 1;
  }
}
BENCHMARK(format_and_parse)->Threads(1)->Threads(2)->UseRealTime();

void sequential_format(benchmark::State& state) {
  const std::string drop = drop_of(16);
  engine::OrderNumber order = 1;
  for (auto _ : state) {
    benchmark::DoNotOptimize(fmt::format("{}:{}", drop, order));
    order = (order & (orders - 1)) + 1;
  }
}
BENCHMARK(sequential_format);

}  // namespace
}  // namespace flashsale::gateway
