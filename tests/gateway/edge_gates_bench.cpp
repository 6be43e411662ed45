// What a returned unit costs the engine thread's edge gates on a sold-out drop with N buyers:
// the unit comes back (a cancel: the gate falls), a new buyer takes it (the gate stands again,
// listing one buyer more), and the gate is published — engine decisions included.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "edge_gates.hpp"

namespace {

using namespace flashsale;
using namespace flashsale::gateway;

class CountingFanout final : public Fanout {
 public:
  void publish(std::string, SharedFrame, FrameKind, std::uint32_t) override {}
  void gate(std::shared_ptr<const EdgeGate> gate) override {
    benchmark::DoNotOptimize(gate->buyers.data());
  }
};

void returned_unit_resold(benchmark::State& state) {
  const auto buyers = static_cast<std::uint32_t>(state.range(0));
  engine::Engine engine;
  engine::Events events;
  CountingFanout fanout;
  EdgeGates gates(engine, {&fanout});
  constexpr engine::TimeMs t0 = 1'700'000'000'000;
  const engine::DropSpec spec{.id = "d",
                              .title = "t",
                              .price_cents = 100,
                              .stock = buyers,
                              .per_user_limit = 1,
                              .hold_ms = 3'600'000};
  engine.create_drop(spec, t0, events);
  engine.start_countdown("d", 0, t0, events);
  std::vector<std::string> users;
  for (std::uint32_t index = 0; index < buyers; ++index) {
    users.push_back("u" + std::to_string(index));
    engine.place_order({"d", users.back(), "c", 1}, t0, events);
  }
  const auto settle = [&] {
    for (const engine::Event& event : events) gates.on_event(event);
    events.clear();
    gates.flush(t0);
  };
  settle();
  engine::OrderNumber next_cancel = 1;
  for (auto _ : state) {
    engine.cancel({"d", next_cancel, users[next_cancel - 1]}, t0, events);
    users.push_back("u" + std::to_string(users.size()));
    engine.place_order({"d", users.back(), "c", 1}, t0, events);
    ++next_cancel;
    settle();
  }
  state.SetItemsProcessed(state.iterations());
}
// A fixed count: setting up a million buyers takes seconds, so the function runs once per size.
BENCHMARK(returned_unit_resold)
    ->Arg(10'000)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Iterations(1'000)
    ->Unit(benchmark::kMicrosecond);

}  // namespace
