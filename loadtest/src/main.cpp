// flashsale-loadtest: load testing a running flashsale server. `bench` measures it open loop
// (docs/loadtest.md); trace generation and replay with a verdict come next (issue: load tester).
#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include "flashsale/loadtest/bench.hpp"

int main(int argc, char** argv) {
  using flashsale::loadtest::BenchOptions;
  CLI::App app{"flashsale-loadtest: load testing a running flashsale server"};
  app.require_subcommand(1);
  CLI::App* bench = app.add_subcommand("bench", "measure a running server (orders, fanout, idle)");
  bench->require_subcommand(1);
  BenchOptions options;
  options.run = fmt::format(
      "b{}", std::chrono::system_clock::now().time_since_epoch().count() % 1'000'000'000);
  for (CLI::App* mode :
       {bench->add_subcommand("orders", "open-loop orders: throughput and latency"),
        bench->add_subcommand("fanout", "restocks to many subscribers: delivery rate and delay"),
        bench->add_subcommand("idle", "idle subscribed viewers: server memory per connection")}) {
    mode->add_option("--url", options.url, "WebSocket URL");
    mode->add_option("--api", options.api, "host API base URL");
    mode->add_option("--host-key", options.host_key, "host API key");
    mode->add_option("--connections", options.connections, "viewers")
        ->check(CLI::Range(1u, 1'000'000u));
    mode->add_option("--threads", options.threads, "load generator threads")
        ->check(CLI::Range(1u, 64u));
    mode->add_option("--sources", options.sources, "local addresses to connect from (127.0.0.x)");
    mode->add_option("--seconds", options.seconds, "how long to offer load or hold connections");
    mode->add_option("--run", options.run, "name prefix for this run's drops and users");
  }
  CLI::App* orders = bench->get_subcommand("orders");
  orders->add_option("--rate", options.rate, "orders per second offered")
      ->check(CLI::PositiveNumber);
  orders->add_option("--drops", options.drops, "drops to spread orders over")
      ->check(CLI::Range(1u, 256u));
  orders->add_option("--stock", options.stock, "units per drop (0: every answer is sold_out)");
  bench->get_subcommand("fanout")->add_option("--interval-ms", options.interval_ms,
                                              "between restocks");
  bench->get_subcommand("idle")
      ->add_option("--server-pid", options.server_pid, "the server's pid")
      ->required();
  CLI11_PARSE(app, argc, argv);
  try {
    if (bench->got_subcommand("orders")) return flashsale::loadtest::bench_orders(options);
    if (bench->got_subcommand("fanout")) return flashsale::loadtest::bench_fanout(options);
    return flashsale::loadtest::bench_idle(options);
  } catch (const std::exception& error) {
    fmt::print(stderr, "flashsale-loadtest: {}\n", error.what());
    return 2;
  }
}
