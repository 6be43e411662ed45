// bench_engine: the engine alone on one thread, in decisions per second.
//   reserve       reservations while stock lasts (a distinct buyer each)
//   sold_out      rejections of a sold-out drop by 1M distinct buyers (the surge's bulk)
//                 (both also with a 200 ms admission window: every order arriving inside it,
//                 collected then drawn, timed together; or every order arriving after it;
//                 and on a drop of 10 variants — sizes 38-47 — each order naming one)
//   mixed_surge   a surge with confirms, cancels, expiring holds and waitlist promotions
//   memory_read   the machine's random-read floor the three are judged against
// Each benchmark iteration plays a whole batch on a fresh engine (set up outside the timing)
// and drains the event vector every 4,096 commands, as the gateway does per batch.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "flashsale/engine/engine.hpp"

namespace flashsale::engine {
namespace {

constexpr TimeMs t0 = 1'750'000'000'000;
constexpr std::size_t drain_every = 4096;

const std::vector<std::string>& buyers(std::size_t count) {
  static std::vector<std::string> names;
  while (names.size() < count) names.push_back("user-" + std::to_string(names.size()));
  return names;
}

// The sizes of the variant cases; a drop of one variant when `count` is 1.
const std::vector<std::string>& sizes(std::size_t count) {
  static const std::vector<std::string> one{""};
  static std::vector<std::string> named;
  if (count == 1) return one;
  while (named.size() < count) named.push_back(std::to_string(38 + named.size()));
  return named;
}

// `stock` is split evenly over `variants`.
std::unique_ptr<Engine> open_engine(std::uint32_t stock, std::uint32_t waitlist,
                                    std::uint32_t buyers_count, TimeMs hold_ms, Events& events,
                                    TimeMs window_ms = 0, std::size_t variants = 1) {
  EngineLimits limits;
  limits.decisions_per_drop_reserve = buyers_count + buyers_count / 4;
  limits.decisions_per_drop_max = limits.decisions_per_drop_reserve;
  auto engine = std::make_unique<Engine>(limits);
  DropSpec spec{"chestnut", "Chestnuts", 1990, stock, 1, hold_ms, waitlist};
  spec.admission_window_ms = window_ms;
  if (variants > 1) {
    spec.price_cents = 0;
    spec.stock = 0;
    for (const std::string& size : sizes(variants)) {
      spec.variants.push_back({.id = size,
                               .label = size,
                               .price_cents = 1990,
                               .list_price_cents = 2990,
                               .stock = static_cast<std::uint32_t>(stock / variants)});
    }
  }
  engine->create_drop(spec, t0 - 1, events);
  engine->start_countdown("chestnut", 0, t0, events, 0x5eed);
  events.clear();
  return engine;
}

// range(0) buyers, each ordering once; range(1) orders per call (1: place_order, more:
// place_orders, as the gateway hands the engine a batch at a time); range(2) the admission
// window in ms; range(3) 1: every order arrives inside the window, and the draw at its end is
// timed too; 0: every order arrives once it has closed; range(4) variants, the buyers taking
// them in turn.
void play_orders(benchmark::State& state, std::uint32_t stock) {
  const auto count = static_cast<std::uint32_t>(state.range(0));
  const auto batch = static_cast<std::size_t>(state.range(1));
  const TimeMs window_ms = state.range(2);
  const bool inside = state.range(3) != 0;
  const auto variants = static_cast<std::size_t>(state.range(4));
  const TimeMs at_ms = inside ? t0 : t0 + window_ms;
  const auto& names = buyers(count);
  const auto& variant_ids = sizes(variants);
  std::vector<PlaceOrder> orders;
  for (std::uint32_t buyer = 0; buyer < count; ++buyer)
    orders.push_back({"chestnut", names[buyer], "c-1", 1, variant_ids[buyer % variants]});
  std::vector<OrderResult> results(batch);
  Events events;
  events.reserve(drain_every + batch + 64);
  for (auto _ : state) {
    state.PauseTiming();
    auto engine = open_engine(stock, 0, count, 60'000, events, window_ms, variants);
    state.ResumeTiming();
    for (std::size_t first = 0; first < orders.size(); first += batch) {
      if (batch == 1) {
        results[0] = engine->place_order(orders[first], at_ms, events);
      } else {
        const std::size_t size = std::min(batch, orders.size() - first);
        engine->place_orders(std::span(orders).subspan(first, size), at_ms, events, results);
      }
      benchmark::DoNotOptimize(results.data());
      if (events.size() >= drain_every) events.clear();
    }
    if (inside) engine->advance_time(t0 + window_ms, events);
    state.PauseTiming();
    if (engine->drop_info(0).pending_orders != 0) state.SkipWithError("the window was not drawn");
    engine.reset();
    events.clear();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * count);
}

void BM_reserve(benchmark::State& state) {
  play_orders(state, static_cast<std::uint32_t>(state.range(0)));
}
BENCHMARK(BM_reserve)
    ->ArgNames({"buyers", "batch", "window_ms", "inside", "variants"})
    ->Args({1'000'000, 1, 0, 0, 1})
    ->Args({1'000'000, 256, 0, 0, 1})
    ->Args({1'000'000, 256, 0, 0, 10})
    ->Args({1'000'000, 256, 200, 0, 1})
    ->Args({1'000'000, 256, 200, 1, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_sold_out(benchmark::State& state) {
  play_orders(state, 0);
}
BENCHMARK(BM_sold_out)
    ->ArgNames({"buyers", "batch", "window_ms", "inside", "variants"})
    ->Args({1'000'000, 1, 0, 0, 1})
    ->Args({1'000'000, 256, 0, 0, 1})
    ->Args({1'000'000, 256, 0, 0, 10})
    ->Args({1'000'000, 256, 200, 0, 1})
    ->Args({1'000'000, 256, 200, 1, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// 1M buyers arrive over 4 s of simulated time for 20k units with 1 s holds and a 5k
// waitlist; a quarter of the buyers pay and a tenth cancel 0.2-0.8 s after ordering (only
// those holding units succeed), the other holds expire and go to the waitlist.
struct Step {
  enum class Kind : std::uint8_t { order, confirm, cancel } kind;
  std::uint32_t buyer;
  TimeMs at_ms;
};

void BM_mixed_surge(benchmark::State& state) {
  const auto count = static_cast<std::uint32_t>(state.range(0));
  const auto& names = buyers(count);
  std::mt19937_64 random(7);
  std::vector<Step> steps;
  for (std::uint32_t buyer = 0; buyer < count; ++buyer) {
    const TimeMs at = t0 + static_cast<TimeMs>(buyer) * 4'000 / count;
    steps.push_back({Step::Kind::order, buyer, at});
    const auto roll = random() % 100;
    const TimeMs later = at + 200 + static_cast<TimeMs>(random() % 600);  // within the 1 s hold
    if (roll < 25)
      steps.push_back({Step::Kind::confirm, buyer, later});
    else if (roll < 35)
      steps.push_back({Step::Kind::cancel, buyer, later});
  }
  std::stable_sort(steps.begin(), steps.end(),
                   [](const Step& a, const Step& b) { return a.at_ms < b.at_ms; });
  Events events;
  events.reserve(drain_every + 1024);
  std::vector<OrderNumber> order_of(count, 0);
  std::vector<PlaceOrder> batch;
  std::vector<std::uint32_t> batch_buyers;
  std::vector<OrderResult> results(steps.size());
  for (auto _ : state) {
    state.PauseTiming();
    auto engine = open_engine(20'000, 5'000, count, 1'000, events);
    state.ResumeTiming();
    // Orders of the same millisecond go to the engine as one batch, as the gateway sends them.
    const auto flush = [&](TimeMs at_ms) {
      engine->place_orders(batch, at_ms, events, results);
      for (std::size_t index = 0; index < batch.size(); ++index)
        order_of[batch_buyers[index]] = results[index].order;
      batch.clear();
      batch_buyers.clear();
      if (events.size() >= drain_every) events.clear();
    };
    TimeMs batch_at_ms = t0;
    for (const Step& step : steps) {
      const std::string& user = names[step.buyer];
      if (step.kind == Step::Kind::order) {
        if (step.at_ms != batch_at_ms) flush(batch_at_ms);
        batch_at_ms = step.at_ms;
        batch.push_back({"chestnut", user, "c-1", 1});
        batch_buyers.push_back(step.buyer);
        continue;
      }
      flush(batch_at_ms);
      if (order_of[step.buyer] == 0) continue;
      const OrderAction action{"chestnut", order_of[step.buyer], user};
      const ActionResult result = step.kind == Step::Kind::confirm
                                      ? engine->confirm(action, step.at_ms, events)
                                      : engine->cancel(action, step.at_ms, events);
      benchmark::DoNotOptimize(result);
    }
    flush(batch_at_ms);
    state.PauseTiming();
    engine.reset();
    events.clear();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * steps.size()));
}
BENCHMARK(BM_mixed_surge)->Arg(1'000'000)->Unit(benchmark::kMillisecond)->UseRealTime();

// The machine's floor for a surge of new buyers: random reads over a 64 MiB table (as large as
// the buyer index of a 1M-buyer drop), one after another (each address depends on the last)
// and independent of each other (the CPU overlaps them, as prefetching lets the engine do).
void BM_memory_read(benchmark::State& state) {
  const bool dependent = state.range(0) != 0;
  constexpr std::size_t slots = std::size_t{64} << 20 >> 3;
  std::vector<std::uint64_t> table(slots);
  std::mt19937_64 random(11);
  // Sattolo's shuffle: one cycle through every slot, so the chain never settles in cache.
  for (std::size_t slot = 0; slot < slots; ++slot) table[slot] = slot;
  for (std::size_t slot = slots - 1; slot > 0; --slot)
    std::swap(table[slot], table[random() % slot]);
  std::uint64_t position = 0;
  std::uint64_t sum = 0;
  for (auto _ : state) {
    for (int read = 0; read < 1'000'000; ++read) {
      if (dependent) {
        position = table[position];
      } else {
        sum += table[random() % slots];
      }
    }
  }
  benchmark::DoNotOptimize(position + sum);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 1'000'000);
}
BENCHMARK(BM_memory_read)->ArgName("dependent")->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace flashsale::engine

BENCHMARK_MAIN();
