// flashsale-demo: a live-stream surge played against the engine alone, in simulated time.
//
// Until the server exists this is what the README's run command shows: a countdown, a crowd
// pressing "buy" around T-0 (some too early), winners paying or cancelling or letting their
// holds lapse, the waitlist taking the units that come back — then the numbers and a full
// invariant check. Everything derives from the printed seed.
#include <fmt/core.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "flashsale/engine/engine.hpp"

namespace {

using namespace flashsale::engine;

struct Click {
  TimeMs at_ms;
  std::uint32_t viewer;
};

struct Tally {
  std::uint64_t by_outcome[8] = {};
  std::uint64_t confirmed = 0;
  std::uint64_t cancelled = 0;
  std::uint64_t events = 0;
  TimeMs sold_out_at_ms = -1;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Plays a simulated flash-sale surge against the engine and checks the result"};
  std::uint32_t viewers = 200'000;
  std::uint32_t stock = 11'483;
  std::uint32_t waitlist = 2'000;
  std::uint64_t seed = std::random_device{}();
  app.add_option("--viewers", viewers, "viewers who press buy")->check(CLI::Range(1u, 10'000'000u));
  app.add_option("--stock", stock, "units on sale")->check(CLI::Range(0u, 1'000'000'000u));
  app.add_option("--waitlist", waitlist, "waitlist places")->check(CLI::Range(0u, 10'000'000u));
  app.add_option("--seed", seed, "random seed (printed; reuse it to replay a run)");
  CLI11_PARSE(app, argc, argv);

  fmt::print("flashsale-demo: {} viewers, {} units, waitlist {}, seed {}\n", viewers, stock,
             waitlist, seed);
  std::mt19937_64 random(seed);
  EngineLimits limits;
  limits.decisions_per_drop_reserve =
      std::max<std::uint32_t>(limits.decisions_per_drop_reserve, viewers + viewers / 8);
  limits.decisions_per_drop_max = std::max(limits.decisions_per_drop_max, viewers * 2);
  Engine engine(limits);
  Events events;
  Tally tally;
  const TimeMs start_ms = 1'750'000'000'000;  // simulated wall clock
  const TimeMs opens_at_ms = start_ms + 10'000;

  DropSpec spec{"chestnut", "Roasted chestnuts, 500 g", 1'990, stock, 1, 60'000, waitlist};
  engine.create_drop(spec, start_ms, events);
  engine.start_countdown("chestnut", opens_at_ms - start_ms, start_ms, events);

  // 3% click early; the rest arrive with an exponential decay after T-0 (mean 400 ms).
  std::vector<Click> clicks;
  clicks.reserve(viewers);
  std::exponential_distribution<double> after_open(1.0 / 400.0);
  std::uniform_int_distribution<TimeMs> early(-2'000, -1);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (std::uint32_t viewer = 0; viewer < viewers; ++viewer) {
    const TimeMs offset =
        unit(random) < 0.03 ? early(random) : static_cast<TimeMs>(after_open(random));
    clicks.push_back({opens_at_ms + offset, viewer});
  }
  std::sort(clicks.begin(), clicks.end(), [](const Click& a, const Click& b) {
    return a.at_ms < b.at_ms || (a.at_ms == b.at_ms && a.viewer < b.viewer);
  });

  const auto wall_start = std::chrono::steady_clock::now();
  std::vector<std::pair<TimeMs, OrderAction>> payments;  // winners act 5-50 s after winning
  std::vector<std::string> users(viewers);
  for (std::uint32_t viewer = 0; viewer < viewers; ++viewer)
    users[viewer] = fmt::format("viewer-{}", viewer);
  std::uniform_int_distribution<TimeMs> think(5'000, 50'000);
  for (const Click& click : clicks) {
    const std::string& user = users[click.viewer];
    OrderResult result = engine.place_order({"chestnut", user, "c-1", 1}, click.at_ms, events);
    if (result.outcome == OrderOutcome::not_open) {  // an early clicker tries again at T-0 + jitter
      result = engine.place_order({"chestnut", user, "c-1", 1},
                                  std::max(click.at_ms, opens_at_ms) + think(random) / 100, events);
    }
    tally.by_outcome[static_cast<int>(result.outcome)] += 1;
    if (result.outcome == OrderOutcome::reserved || result.outcome == OrderOutcome::waitlisted) {
      payments.push_back({click.at_ms + think(random), {"chestnut", result.order, user}});
    }
  }
  // Winners pay (80%), cancel (10%) or let the hold lapse (10%); waitlisted buyers promoted
  // meanwhile pay too when their turn comes.
  std::sort(payments.begin(), payments.end(), [](const auto& a, const auto& b) {
    return a.first < b.first || (a.first == b.first && a.second.order < b.second.order);
  });
  for (const auto& [at_ms, action] : payments) {
    const double choice = unit(random);
    if (choice < 0.8) {
      tally.confirmed += engine.confirm(action, at_ms, events).status == CommandStatus::ok;
    } else if (choice < 0.9) {
      tally.cancelled += engine.cancel(action, at_ms, events).status == CommandStatus::ok;
    }
  }
  engine.advance_time(opens_at_ms + TimeMs{10} * 60'000, events);
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();

  for (const Event& event : events) {
    const auto* changed = std::get_if<StateChanged>(&event.body);
    if (changed && changed->state == DropState::sold_out && tally.sold_out_at_ms < 0)
      tally.sold_out_at_ms = event.at_ms - opens_at_ms;
  }
  engine.check_invariants();
  const DropInfo info = engine.drop_info(0);
  fmt::print("sold out {} ms after T-0 (simulated)\n", tally.sold_out_at_ms);
  for (int outcome = 0; outcome < 8; ++outcome) {
    if (tally.by_outcome[outcome] == 0) continue;
    fmt::print("  {:<15} {:>9}\n", to_string(static_cast<OrderOutcome>(outcome)),
               tally.by_outcome[outcome]);
  }
  fmt::print("after 10 minutes: sold {}, held {}, left {} of {} — confirmed {}, cancelled {}\n",
             info.sold, info.held, info.stock_left, info.stock_total, tally.confirmed,
             tally.cancelled);
  fmt::print("{} commands, {} events in {:.3f} s of wall time; invariants hold; digest {:016x}\n",
             clicks.size() + payments.size(), events.size(), wall_s, engine.digest());
  return 0;
}
