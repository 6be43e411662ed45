// journal_driver: engine + journal in a process of its own, for the crash tests to kill.
//
//   journal_driver surge --redis SOCKET --prefix P --seed N [--ends-in-ms MS]
//     Recovers from the journal, then plays a random surge on four drops forever: batches of
//     orders, confirms and cancels; each batch's events are appended and, once durable, every
//     outcome of the batch is printed on stdout — the acknowledgements a buyer would get:
//       ACK <drop> <user> <client_order_id> <outcome> <order> <variant> <at_ms> <repeated>
//       PAID <drop> <order>          CANCELLED <drop> <order>
//     d0 and d1 sell one unnamed variant (<variant> is "-"), d2 and d3 three sizes at their own
//     prices; d3 is created, on the first run, open for --ends-in-ms (default 3000) and then
//     ends by itself.
//     Exits 3 when fenced (another engine took the journal), 4 when the journal diverged (its
//     Redis lacks batches the driver wrote).
//   journal_driver window --redis SOCKET --prefix P --seed N --orders N --stock S
//     Recovers, then (unless the journal already has it) creates drop "w" with a 60 s admission
//     window and countdown seed N, opening at once. Places orders from users u0..u<N-1> in
//     batches, printing "COLLECTED <n>" once the first n are durable; then jumps engine time to
//     the window's end, so the draw runs, and prints "WINNER <user>" for each reservation, in
//     user order, once durable. Orders already collected before a crash are retried, which
//     changes nothing: a restarted driver continues the same arrival order.
//   journal_driver check --redis SOCKET --prefix P   (acknowledgements on stdin)
//     Recovers and checks that every acknowledged outcome is there unchanged (its variant too),
//     that retrying each (user, client_order_id) returns it, that a drop with a duration
//     answered `closed` to exactly the new orders at or after its end and still ends at that
//     instant after recovery, and every invariant. Prints "CHECKED <n>" and exits 0, or prints
//     what differs and exits 1.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "flashsale/engine/engine.hpp"
#include "flashsale/journal/journal.hpp"

namespace {

using namespace flashsale;
using engine::Engine;
using engine::Events;
using engine::OrderOutcome;
using engine::TimeMs;

constexpr int exit_fenced = 3;
constexpr int exit_diverged = 4;

// The exit code for a journal that writes no more.
int exit_lost(const journal::Journal& journal) {
  return journal.status().state == journal::JournalState::diverged ? exit_diverged : exit_fenced;
}

TimeMs wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Held {
  std::string drop;
  engine::OrderNumber order;
  std::string user;
};

// Waits until everything the engine produced is durable; false when fenced or diverged.
bool await_durable(journal::Journal& journal, const Engine& engine) {
  while (!journal.wait_durable(engine.last_sequence(), std::chrono::seconds(1))) {
    if (journal::journal_lost(journal.status().state)) return false;
  }
  return true;
}

const std::vector<std::string_view> sizes{"s", "m", "l"};

// The variant id an order got, "-" for a drop's unnamed variant.
std::string variant_name(const Engine& engine, engine::DropIndex drop, std::uint8_t variant) {
  const std::string_view id = engine.drop_info(drop).variants.at(variant).id;
  return id.empty() ? "-" : std::string(id);
}

int surge(journal::Journal& journal, std::uint64_t seed, TimeMs ends_in_ms) {
  Engine engine;
  journal.recover(engine);
  Events events;
  for (const char* drop : {"d0", "d1", "d2", "d3"}) {
    if (engine.find_drop(drop)) continue;
    // Charity drops with odd prices and pledge, so that rounding shows.
    engine::DropSpec spec{drop, "driver drop", 1'999, 300, 3, 1'500, 40};
    spec.beneficiary = "Mountain school";
    spec.pledge_bps = 1'234;
    const bool sized = drop == std::string_view("d2") || drop == std::string_view("d3");
    if (sized) {
      spec.price_cents = 0;
      spec.stock = 0;
      spec.per_variant_limit = 2;
      for (std::size_t size = 0; size < sizes.size(); ++size) {
        spec.variants.push_back(
            {sizes[size], "size", 1'999 + 500 * static_cast<std::int64_t>(size), 3'999, 100});
      }
    }
    if (drop == std::string_view("d3")) spec.duration_ms = ends_in_ms;
    engine.create_drop(spec, wall_ms(), events, wall_ms());
  }
  journal.append(events);
  events.clear();
  if (!await_durable(journal, engine)) return exit_lost(journal);

  std::mt19937_64 random(seed);
  std::vector<Held> held;
  std::vector<std::string> lines;
  while (true) {
    if (!journal.accepting()) {
      if (journal::journal_lost(journal.status().state)) return exit_lost(journal);
      // Redis is away: fail closed (no orders taken) until the writer reports it back.
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    const int commands = 1 + static_cast<int>(random() % 48);
    for (int command = 0; command < commands; ++command) {
      const TimeMs now = wall_ms();
      if (random() % 5 != 0 || held.empty()) {
        const std::string drop = "d" + std::to_string(random() % 4);
        const std::string user = "u" + std::to_string(random() % 2'000);
        const std::string client_order_id = "c" + std::to_string(random() % 4);
        const std::string_view variant = drop >= "d2" ? sizes[random() % sizes.size()] : "";
        const auto result = engine.place_order(
            {drop, user, client_order_id, static_cast<std::uint32_t>(1 + random() % 2), variant},
            now, events);
        if (!engine::is_recorded(result.outcome)) continue;
        lines.push_back("ACK " + drop + " " + user + " " + client_order_id + " " +
                        std::string(to_string(result.outcome)) + " " +
                        std::to_string(result.order) + " " +
                        variant_name(engine, result.drop, result.variant) + " " +
                        std::to_string(engine.now_ms()) + " " + (result.repeated ? "1" : "0"));
        if (result.outcome == OrderOutcome::reserved && !result.repeated)
          held.push_back({drop, result.order, user});
      } else {
        const std::size_t pick = random() % held.size();
        const Held order = held[pick];
        held[pick] = held.back();
        held.pop_back();
        const bool pay = random() % 3 != 0;
        const engine::OrderAction action{order.drop, order.order, order.user};
        const auto result =
            pay ? engine.confirm(action, now, events) : engine.cancel(action, now, events);
        if (result.status == engine::CommandStatus::ok)
          lines.push_back(std::string(pay ? "PAID " : "CANCELLED ") + order.drop + " " +
                          std::to_string(order.order));
      }
    }
    journal.append(events);
    events.clear();
    if (journal.snapshot_due()) journal.append_snapshot(engine);
    if (!await_durable(journal, engine)) return exit_lost(journal);
    for (const std::string& line : lines) std::fputs((line + "\n").c_str(), stdout);
    std::fflush(stdout);
    lines.clear();
  }
}

int window(journal::Journal& journal, std::uint64_t seed, std::uint32_t orders,
           std::uint32_t stock) {
  Engine engine;
  journal.recover(engine);
  Events events;
  if (!engine.find_drop("w")) {
    engine::DropSpec spec{"w", "window drop", 100, stock, 1, 600'000, 0};
    spec.admission_window_ms = 60'000;
    engine.create_drop(spec, wall_ms(), events);
    engine.start_countdown("w", 0, wall_ms(), events, seed);
  }
  journal.append(events);
  events.clear();
  if (!await_durable(journal, engine)) return exit_lost(journal);
  constexpr std::uint32_t batch = 50;
  for (std::uint32_t first = 0; first < orders; first += batch) {
    for (std::uint32_t user = first; user < std::min(orders, first + batch); ++user) {
      const auto result =
          engine.place_order({"w", "u" + std::to_string(user), "c", 1}, wall_ms(), events);
      if (result.outcome != OrderOutcome::pending) {
        std::printf("UNEXPECTED %s\n", std::string(to_string(result.outcome)).c_str());
        return 1;
      }
    }
    journal.append(events);
    events.clear();
    if (!await_durable(journal, engine)) return exit_lost(journal);
    std::printf("COLLECTED %u\n", std::min(orders, first + batch));
    std::fflush(stdout);
  }
  const engine::DropInfo info = engine.drop_info(*engine.find_drop("w"));
  engine.advance_time(*info.opens_at_ms + info.spec.admission_window_ms, events);
  journal.append(events);
  events.clear();
  if (!await_durable(journal, engine)) return exit_lost(journal);
  std::vector<std::string> winners;
  for (std::uint32_t user = 0; user < orders; ++user) {
    const std::string name = "u" + std::to_string(user);
    const auto decided = engine.find_decision("w", name, "c");
    if (decided && decided->outcome == OrderOutcome::reserved) winners.push_back(name);
  }
  for (const std::string& winner : winners) std::printf("WINNER %s\n", winner.c_str());
  std::printf("DONE\n");
  std::fflush(stdout);
  return 0;
}

int check(journal::Journal& journal) {
  Engine engine;
  journal.recover(engine);
  Events events;
  std::string line;
  std::uint64_t checked = 0;
  const auto mismatch = [&](const std::string& what) {
    std::printf("MISMATCH %s: %s\n", what.c_str(), line.c_str());
    return 1;
  };
  while (std::getline(std::cin, line)) {
    std::istringstream fields(line);
    std::string kind;
    std::string drop;
    fields >> kind >> drop;
    const auto index = engine.find_drop(drop);
    if (!index) return mismatch("unknown drop");
    if (kind == "ACK") {
      std::string user, client_order_id, outcome, variant;
      engine::OrderNumber order = 0;
      TimeMs at_ms = 0;
      int repeated = 0;
      fields >> user >> client_order_id >> outcome >> order >> variant >> at_ms >> repeated;
      const auto found = engine.find_decision(drop, user, client_order_id);
      if (!found) return mismatch("acknowledged outcome missing");
      if (to_string(found->outcome) != outcome || found->order != order)
        return mismatch("outcome changed");
      if (variant_name(engine, *index, found->variant) != variant)
        return mismatch("variant changed");
      const auto retry =
          engine.place_order({drop, user, client_order_id, 1}, engine.now_ms(), events);
      if (!retry.repeated || retry.outcome != found->outcome || retry.order != order)
        return mismatch("retry did not return the original outcome");
      // Nothing but the end closes a drop here: a new order is closed exactly from its instant.
      const auto closes_at = engine.drop_info(*index).closes_at_ms;
      if (closes_at && repeated == 0 && (at_ms >= *closes_at) != (outcome == "closed"))
        return mismatch("the sale did not end at its instant");
    } else {
      engine::OrderNumber order = 0;
      fields >> order;
      const auto info = engine.order_info(*index, order);
      const auto expected =
          kind == "PAID" ? engine::OrderStatus::confirmed : engine::OrderStatus::cancelled;
      if (!info || info->status != expected) return mismatch("order status changed");
    }
    checked += 1;
  }
  // The amount raised, recomputed by hand from the recovered orders at their variants' prices.
  for (engine::DropIndex drop = 0; drop < engine.drop_count(); ++drop) {
    const engine::DropInfo info = engine.drop_info(drop);
    std::uint64_t confirmed_value = 0;
    for (engine::OrderNumber order = 1; order <= info.orders; ++order) {
      const auto found = engine.order_info(drop, order);
      if (found->status == engine::OrderStatus::confirmed)
        confirmed_value += std::uint64_t{found->qty} * info.variants.at(found->variant).price_cents;
    }
    const auto expected =
        static_cast<std::int64_t>(confirmed_value * info.spec.pledge_bps / 10'000);
    if (info.raised_cents != expected) {
      std::printf("MISMATCH raised %lld, by hand %lld\n", static_cast<long long>(info.raised_cents),
                  static_cast<long long>(expected));
      return 1;
    }
  }
  // A sale that had not ended by the crash still ends at its instant, not a moment earlier.
  for (engine::DropIndex drop = 0; drop < engine.drop_count(); ++drop) {
    const auto closes_at = engine.drop_info(drop).closes_at_ms;
    if (!closes_at) continue;
    const bool ended = engine.drop_info(drop).state == engine::DropState::closed;
    if (ended != (engine.now_ms() >= *closes_at)) {
      std::printf("MISMATCH the end at %lld, recovered at %lld\n",
                  static_cast<long long>(*closes_at), static_cast<long long>(engine.now_ms()));
      return 1;
    }
    if (ended) continue;
    engine.advance_time(*closes_at - 1, events);
    const bool early = engine.drop_info(drop).state == engine::DropState::closed;
    engine.advance_time(*closes_at, events);
    if (early || engine.drop_info(drop).state != engine::DropState::closed) {
      std::printf("MISMATCH the recovered sale did not end at its instant\n");
      return 1;
    }
  }
  engine.check_invariants();
  std::printf("CHECKED %llu\n", static_cast<unsigned long long>(checked));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"engine + journal, for crash tests"};
  app.require_subcommand(1);
  journal::JournalConfig config;
  std::uint64_t seed = 1;
  std::uint32_t orders = 1'000;
  std::uint32_t stock = 10;
  TimeMs ends_in_ms = 3'000;
  std::int64_t lease_ms = 500;
  std::int64_t timeout_ms = 1'000;
  for (CLI::App* mode : {app.add_subcommand("surge", "play a surge"),
                         app.add_subcommand("window", "collect an admission window and draw"),
                         app.add_subcommand("check", "check acknowledgements from stdin")}) {
    mode->add_option("--redis", config.redis, "redis socket path, HOST:PORT or sentinel://…")
        ->required();
    mode->add_option("--min-replicas", config.min_replicas, "replicas that must have a batch");
    mode->add_option("--prefix", config.prefix, "journal prefix")->required();
    mode->add_option("--lease-ms", lease_ms, "lease time to live");
    mode->add_option("--timeout-ms", timeout_ms, "redis timeout");
    mode->add_option("--snapshot-every", config.snapshot_every_events, "events between snapshots");
  }
  app.get_subcommand("surge")->add_option("--seed", seed, "random seed");
  app.get_subcommand("surge")->add_option("--ends-in-ms", ends_in_ms, "d3's sale duration");
  CLI::App* window_mode = app.get_subcommand("window");
  window_mode->add_option("--seed", seed, "the countdown's admission seed");
  window_mode->add_option("--orders", orders, "orders in the window");
  window_mode->add_option("--stock", stock, "units");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_default_logger(spdlog::stderr_logger_mt("driver"));
  config.lease_ttl = std::chrono::milliseconds(lease_ms);
  config.redis_timeout = std::chrono::milliseconds(timeout_ms);
  // Credentials as the server takes them: never on the command line.
  for (const auto& [variable, field] :
       {std::pair{"FLASHSALE_REDIS_USER", &config.redis_user},
        std::pair{"FLASHSALE_REDIS_PASSWORD", &config.redis_password},
        std::pair{"FLASHSALE_SENTINEL_USER", &config.sentinel_user},
        std::pair{"FLASHSALE_SENTINEL_PASSWORD", &config.sentinel_password}})
    if (const char* value = std::getenv(variable)) *field = value;
  config.backoff_max = std::chrono::milliseconds(200);
  journal::Journal journal(config);
  if (app.got_subcommand("surge")) return surge(journal, seed, ends_in_ms);
  if (app.got_subcommand("window")) return window(journal, seed, orders, stock);
  const int result = check(journal);
  journal.stop(std::chrono::seconds(1));
  return result;
}
