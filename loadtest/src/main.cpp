// flashsale-loadtest: load testing a running flashsale server (docs/loadtest.md): `gen` writes a
// surge trace from a scenario, `capture` one from a real drop's journal, `replay` plays a trace
// open loop and gives a verdict and a report, `compare` sets two reports side by side, `bench`
// measures throughput, fan-out and memory.
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "flashsale/journal/redis_connection.hpp"
#include "flashsale/loadtest/bench.hpp"
#include "flashsale/loadtest/capture.hpp"
#include "flashsale/loadtest/compare.hpp"
#include "flashsale/loadtest/replay.hpp"
#include "flashsale/loadtest/trace.hpp"

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
        bench->add_subcommand("idle", "idle subscribed viewers: server memory per connection"),
        bench->add_subcommand("capacity", "rising order rates until p99 passes a bound")}) {
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
  double p99_ms_max = 20;
  double rate_step = 10'000;
  double rate_max = 1'000'000;
  for (CLI::App* mode : {bench->get_subcommand("orders"), bench->get_subcommand("capacity")}) {
    mode->add_option("--rate", options.rate, "orders per second offered (capacity: the first step)")
        ->check(CLI::PositiveNumber);
    mode->add_option("--drops", options.drops, "drops to spread orders over")
        ->check(CLI::Range(1u, 256u));
    mode->add_option("--stock", options.stock, "units per drop (0: every answer is sold_out)");
  }
  CLI::App* capacity = bench->get_subcommand("capacity");
  capacity->add_option("--p99-ms", p99_ms_max, "the latency bound")->check(CLI::PositiveNumber);
  capacity->add_option("--rate-step", rate_step, "added each step")->check(CLI::PositiveNumber);
  capacity->add_option("--rate-max", rate_max, "stop there")->check(CLI::PositiveNumber);
  bench->get_subcommand("fanout")->add_option("--interval-ms", options.interval_ms,
                                              "between restocks");
  bench->get_subcommand("idle")
      ->add_option("--server-pid", options.server_pid, "the server's pid")
      ->required();
  CLI::App* gen = app.add_subcommand("gen", "write a surge trace from a scenario");
  std::string scenario;
  std::string out;
  double scale = 1;
  std::uint64_t seed = 1;
  gen->add_option("--scenario", scenario, "loadtest/scenarios/NAME.toml")
      ->required()
      ->check(CLI::ExistingFile);
  gen->add_option("--out", out, "trace file to write")->required();
  gen->add_option("--scale", scale, "multiplies viewers and stock")->check(CLI::PositiveNumber);
  gen->add_option("--seed", seed, "random seed");
  CLI::App* replay =
      app.add_subcommand("replay", "play a trace against a server: verdict and report");
  flashsale::loadtest::ReplayOptions replay_options;
  std::uint32_t assume_stock = 0;
  replay->add_option("--trace", replay_options.trace, "trace file")
      ->required()
      ->check(CLI::ExistingFile);
  replay->add_option("--url", replay_options.url,
                     "WebSocket URL; several, comma-separated, spread viewers over gateways");
  replay->add_option("--api", replay_options.api, "host API base URL");
  replay->add_option("--host-key", replay_options.host_key,
                     "host API key: a host's, or for a stream the operator's");
  replay->add_option("--report", replay_options.report_dir,
                     "folder for report.json and report.html");
  replay->add_option("--threads", replay_options.threads, "load generator threads")
      ->check(CLI::Range(1u, 64u));
  replay
      ->add_option("--workers", replay_options.workers,
                   "processes to spread the viewers over (one holds at most ~19,900 sockets)")
      ->check(CLI::Range(1u, 64u));
  // Given by a coordinator to the worker processes it starts; not for people.
  std::string part;
  replay->add_option("--part", part, "K/N: play the viewers whose number mod N is K")->group("");
  replay->add_option("--sources", replay_options.sources,
                     "local addresses to connect from (127.0.0.x)");
  replay->add_option("--grace-seconds", replay_options.grace_seconds,
                     "wait for answers after the last action");
  replay->add_option("--assume-stock", assume_stock,
                     "check against this stock, not the server's (tests the verdict)");
  replay->add_option("--metrics", replay_options.metrics,
                     "base URL of the server's /metrics when not --api (its operations address)");
  CLI::App* capture = app.add_subcommand(
      "capture", "turn a drop's journal (Redis or an export file) into a trace to replay");
  std::string redis, journal_prefix, journal_file, drop;
  capture->add_option("--redis", redis,
                      "Redis HOST:PORT, redis://…, sentinel://…/NAME or a unix socket path");
  capture->add_option("--journal-prefix", journal_prefix, "the journal's key prefix");
  capture->add_option("--file", journal_file, "a `flashsale-audit export` file instead of Redis")
      ->check(CLI::ExistingFile);
  capture->add_option("--drop", drop, "the drop to capture (default: the journal's only one)");
  capture->add_option("--out", out, "trace file to write")->required();
  CLI::App* compare = app.add_subcommand(
      "compare", "compare two replay reports, A the baseline and B the build under test");
  std::string report_a, report_b, compare_html;
  flashsale::loadtest::CompareOptions compare_options;
  compare->add_option("A", report_a, "the baseline's report folder or report.json")->required();
  compare->add_option("B", report_b, "the report folder or report.json under test")->required();
  compare->add_option("--html", compare_html, "also write the table as an HTML page");
  compare->add_option("--noise", compare_options.noise_percent,
                      "changes within this percentage are not marked (default 5)");
  compare->add_option("--latency-floor-ms", compare_options.latency_floor_ms,
                      "latency changes within this are not marked or failed (default 1)");
  compare->add_option("--min-gated-answers", compare_options.min_gated_answers,
                      "a p99 over fewer answers is shown but not gated (default 1000)");
  compare->add_option("--max-p99-increase", compare_options.max_p99_increase_percent,
                      "fail when a p99 (overall or in a phase) grows more, in percent");
  compare->add_option("--max-throughput-drop", compare_options.max_throughput_drop_percent,
                      "fail when peak answers/s falls more, in percent");
  compare->add_option("--max-cpu-increase", compare_options.max_cpu_increase_percent,
                      "fail when the server's CPU seconds grow more, in percent");
  compare->add_option("--max-memory-increase", compare_options.max_memory_increase_percent,
                      "fail when the server's resident memory grows more, in percent");
  CLI11_PARSE(app, argc, argv);
  try {
    if (app.got_subcommand("gen")) {
      const auto trace = flashsale::loadtest::generate(scenario, scale, seed);
      flashsale::loadtest::write_trace(trace, out);
      const auto& stream = trace.header.stream;
      fmt::print("{}: {} viewers, {} units{}, {} actions\n", out, trace.header.viewers,
                 trace.header.units(),
                 stream ? fmt::format(" in {} drops of stream {}", stream->drops.size(), stream->id)
                        : std::string(),
                 trace.actions.size());
      return 0;
    }
    if (app.got_subcommand("capture")) {
      if (journal_file.empty() == (redis.empty() || journal_prefix.empty()))
        throw std::invalid_argument("capture: give --file, or --redis and --journal-prefix");
      auto journal =
          journal_file.empty()
              ? flashsale::journal::read_journal(
                    flashsale::journal::RedisEndpoint::from_command_line(redis), journal_prefix)
              : flashsale::journal::read_export(journal_file);
      flashsale::loadtest::CaptureSummary summary;
      const auto trace = flashsale::loadtest::capture(std::move(journal), drop, &summary);
      flashsale::loadtest::write_trace(trace, out);
      fmt::print("{}: drop {}, {} viewers, {} units, {} actions\n", out, trace.header.drop.id,
                 trace.header.viewers, trace.header.drop.units(), trace.actions.size());
      if (summary.restocks + summary.closes > 0)
        fmt::print("not in the trace (a replay runs without them): {} restocks, {} closes\n",
                   summary.restocks, summary.closes);
      return 0;
    }
    if (app.got_subcommand("compare"))
      return flashsale::loadtest::compare(report_a, report_b, compare_options, compare_html);
    if (app.got_subcommand("replay")) {
      if (assume_stock > 0) replay_options.assume_stock = assume_stock;
      if (!part.empty()) {
        flashsale::loadtest::ReplayOptions::Part share;
        if (std::sscanf(part.c_str(), "%u/%u", &share.index, &share.count) != 2 ||
            share.index >= share.count)
          throw std::invalid_argument("--part: expected K/N with K < N");
        replay_options.part = share;
      }
      return flashsale::loadtest::replay(replay_options);
    }
    if (bench->got_subcommand("capacity"))
      return flashsale::loadtest::bench_capacity(options, p99_ms_max, rate_step, rate_max);
    if (bench->got_subcommand("orders")) return flashsale::loadtest::bench_orders(options);
    if (bench->got_subcommand("fanout")) return flashsale::loadtest::bench_fanout(options);
    return flashsale::loadtest::bench_idle(options);
  } catch (const std::exception& error) {
    fmt::print(stderr, "flashsale-loadtest: {}\n", error.what());
    return 2;
  }
}
