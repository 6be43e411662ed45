// See bench.hpp. Each worker thread owns an io_context and its share of the connections; a
// 1 ms timer per thread sends whatever the schedule says is due.
#include "flashsale/loadtest/bench.hpp"

#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/resource.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <charconv>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "client.hpp"
#include "flashsale/loadtest/histogram.hpp"
#include "flashsale/loadtest/http.hpp"

namespace flashsale::loadtest {

using Clock = std::chrono::steady_clock;

namespace {

long rss_kb(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

// Opens `count` connections spread over the workers and source addresses; waits for every
// welcome. `handler(connection_index)` makes each one's message handler.
std::vector<std::shared_ptr<Connection>> connect_all(
    Workers& workers, const BenchOptions& options,
    const std::function<Connection::Handler(std::size_t)>& handler) {
  const WsTarget target = parse_ws(options.url);
  std::vector<std::shared_ptr<Connection>> connections;
  std::atomic<std::size_t> ready{0};
  std::atomic<std::size_t> failed{0};
  const auto started = Clock::now();
  for (std::size_t index = 0; index < options.connections; ++index) {
    auto connection = Connection::make(workers.io(index), target, handler(index));
    connections.push_back(connection);
    asio::post(workers.io(index), [connection, &target, &options, &ready, &failed, index] {
      connection->open(target, options.sources[index % options.sources.size()],
                       fmt::format("{}-u{}", options.run, index),
                       [&ready, &failed](bool ok) { (ok ? ready : failed) += 1; });
    });
    // At most 256 handshakes in flight: an overrun SYN backlog (2,048 here) drops SYNs, and
    // the retries cost seconds.
    while (index + 1 - ready - failed > 256)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  while (ready + failed < options.connections)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  fmt::print("connected {} viewers in {:.2f} s ({} failed)\n", ready.load(),
             std::chrono::duration<double>(Clock::now() - started).count(), failed.load());
  if (failed > 0) throw std::runtime_error("some connections failed");
  return connections;
}

// The end of a run: every connection closed, the workers stopped, their histograms merged.
LatencyHistogram finish(Workers& workers,
                        const std::vector<std::shared_ptr<Connection>>& connections,
                        const std::vector<LatencyHistogram>& histograms) {
  on_each(workers, connections, [](Connection& connection) { connection.close(); });
  workers.join();
  LatencyHistogram all;
  for (const auto& histogram : histograms) all.merge(histogram);
  return all;
}

void create_drop(const BenchOptions& options, const std::string& id, unsigned stock,
                 unsigned per_user_limit) {
  const HttpTarget api = HttpTarget::parse(options.api);
  const auto created =
      http_call(api, "POST", "/api/drops",
                fmt::format(R"({{"id":"{}","title":"bench","price_cents":100,"stock":{},)"
                            R"("per_user_limit":{},"hold_seconds":600,"waitlist_limit":0}})",
                            id, stock, per_user_limit),
                options.host_key);
  if (created.status != 201)
    throw std::runtime_error("cannot create drop " + id + ": " + created.body);
  const auto opened = http_call(api, "POST", "/api/drops/" + id + "/countdown", R"({"seconds":0})",
                                options.host_key);
  if (opened.status != 200) throw std::runtime_error("cannot open drop " + id + ": " + opened.body);
}

void print_latency(std::string_view what, const LatencyHistogram& histogram) {
  fmt::print(
      "{}: p50 {:.2f} ms, p90 {:.2f} ms, p99 {:.2f} ms, p99.9 {:.2f} ms, max {:.2f} ms ({} "
      "samples)\n",
      what, histogram.percentile(0.50) / 1e3, histogram.percentile(0.90) / 1e3,
      histogram.percentile(0.99) / 1e3, histogram.percentile(0.999) / 1e3, histogram.max() / 1e3,
      histogram.count());
}

}  // namespace

namespace {

struct OrdersRun {
  double answered_per_s = 0;
  double p99_ms = 0;
  bool complete = false;  // every order answered
};

OrdersRun run_orders(const BenchOptions& options) {
  raise_file_limit();
  const auto total = static_cast<std::uint64_t>(options.rate * options.seconds);
  const std::uint64_t per_user_drop =
      total / (std::uint64_t{options.connections} * options.drops) + 1;
  if (per_user_drop > 64)
    throw std::runtime_error(
        fmt::format("{} orders per viewer and drop; the server allows 64: add connections or drops",
                    per_user_drop));
  std::vector<std::string> drops;
  for (unsigned index = 0; index < options.drops; ++index) {
    drops.push_back(fmt::format("{}-d{}", options.run, index));
    create_drop(options, drops.back(), options.stock, 1'000'000);
  }
  Workers workers(options.threads);
  std::vector<LatencyHistogram> histograms(workers.size());
  std::mutex statuses_mutex;
  std::map<std::string, std::uint64_t> statuses;
  std::atomic<std::uint64_t> answered{0};
  Clock::time_point start;
  const double interval_us = 1e6 / options.rate;
  workers.start();
  auto connections = connect_all(workers, options, [&](std::size_t index) -> Connection::Handler {
    const std::size_t thread = index % workers.size();
    return [&, thread](std::string_view message) {
      if (field(message, "type") != "order_result") return;
      const auto order = number<std::uint64_t>(field(message, "client_order_id").substr(1));
      const auto scheduled =
          start + std::chrono::microseconds(static_cast<std::int64_t>(order * interval_us));
      histograms[thread].record(static_cast<std::uint64_t>(std::max<std::int64_t>(
          0, std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - scheduled)
                 .count())));
      {
        std::lock_guard lock(statuses_mutex);
        statuses[std::string(field(message, "status"))] += 1;
      }
      answered += 1;
    };
  });

  // Each thread sends the orders of its own connections when they fall due.
  start = Clock::now() + std::chrono::milliseconds(100);
  std::vector<std::unique_ptr<asio::steady_timer>> timers;
  std::vector<std::function<void()>> ticks(workers.size());
  for (std::size_t thread = 0; thread < workers.size(); ++thread) {
    timers.push_back(std::make_unique<asio::steady_timer>(workers.io(thread)));
    ticks[thread] = [&, thread, next = std::uint64_t{0}]() mutable {
      const auto now = Clock::now();
      const auto due = std::min<std::uint64_t>(
          total, now < start ? 0
                             : static_cast<std::uint64_t>(
                                   std::chrono::duration<double, std::micro>(now - start).count() /
                                   interval_us) +
                                   1);
      for (; next < due; ++next) {
        const std::size_t connection = next % connections.size();
        if (connection % workers.size() != thread) continue;
        connections[connection]->send(
            fmt::format(R"({{"type":"order","drop":"{}","qty":1,"client_order_id":"k{}"}})",
                        drops[(next / connections.size()) % drops.size()], next));
      }
      if (next < total) {
        timers[thread]->expires_after(std::chrono::milliseconds(1));
        timers[thread]->async_wait([&, thread](beast::error_code) { ticks[thread](); });
      }
    };
    asio::post(workers.io(thread), [&, thread] { ticks[thread](); });
  }
  const auto deadline = start + std::chrono::duration<double>(options.seconds + 15);
  while (answered < total && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const LatencyHistogram all = finish(workers, connections, histograms);
  fmt::print("offered {} orders at {:.0f}/s over {} connections, {} drops, {} thread(s)\n", total,
             options.rate, options.connections, options.drops, options.threads);
  fmt::print("answered {} in {:.2f} s = {:.0f} orders/s\n", answered.load(), elapsed,
             answered / elapsed);
  for (const auto& [status, count] : statuses) fmt::print("  {:<15} {}\n", status, count);
  print_latency("latency from schedule", all);
  return {answered / elapsed, all.percentile(0.99) / 1e3, answered == total};
}

}  // namespace

int bench_orders(const BenchOptions& options) {
  return run_orders(options).complete ? 0 : 1;
}

// Ramps the offered rate step by step, each step on fresh drops and viewers, until p99 passes
// the bound or orders go unanswered; reports the highest rate held.
int bench_capacity(const BenchOptions& options, double p99_ms_max, double rate_step,
                   double rate_max) {
  double held = 0;
  for (double rate = options.rate; rate <= rate_max; rate += rate_step) {
    BenchOptions step = options;
    step.rate = rate;
    step.run = fmt::format("{}-r{:.0f}", options.run, rate);
    fmt::print("--- offering {:.0f} orders/s\n", rate);
    const OrdersRun result = run_orders(step);
    if (!result.complete || result.p99_ms > p99_ms_max) break;
    held = rate;
  }
  if (held == 0) {
    fmt::print("capacity: not even {:.0f} orders/s held p99 <= {} ms\n", options.rate, p99_ms_max);
    return 1;
  }
  fmt::print("capacity: {:.0f} orders/s with p99 <= {} ms\n", held, p99_ms_max);
  return 0;
}

int bench_fanout(const BenchOptions& options) {
  raise_file_limit();
  const std::string drop = options.run + "-fanout";
  create_drop(options, drop, 1, 1);
  Workers workers(options.threads);
  std::vector<LatencyHistogram> histograms(workers.size());
  std::atomic<std::uint64_t> deliveries{0};
  std::atomic<bool> measuring{false};
  workers.start();
  auto connections = connect_all(workers, options, [&](std::size_t index) -> Connection::Handler {
    const std::size_t thread = index % workers.size();
    return [&, thread](std::string_view message) {
      if (!measuring || field(message, "type") != "drop") return;
      const auto stamped = number<std::int64_t>(field(message, "server_time_ms"));
      histograms[thread].record(
          static_cast<std::uint64_t>(std::max<std::int64_t>(0, wall_ms() - stamped)) * 1000);
      deliveries += 1;
    };
  });
  const std::string subscribe = fmt::format(R"({{"type":"subscribe","drop":"{}"}})", drop);
  on_each(workers, connections,
          [subscribe](Connection& connection) { connection.send(subscribe); });
  std::this_thread::sleep_for(std::chrono::seconds(1));  // let every subscription land first
  measuring = true;
  const HttpTarget api = HttpTarget::parse(options.api);
  const auto start = Clock::now();
  std::uint64_t restocks = 0;
  while (Clock::now() - start < std::chrono::duration<double>(options.seconds)) {
    http_call(api, "POST", "/api/drops/" + drop + "/restock", R"({"add":1})", options.host_key);
    restocks += 1;
    std::this_thread::sleep_until(start +
                                  std::chrono::milliseconds(options.interval_ms * restocks));
  }
  const std::uint64_t expected = restocks * options.connections;
  const auto settle = Clock::now() + std::chrono::seconds(10);
  while (deliveries < expected && Clock::now() < settle)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const LatencyHistogram all = finish(workers, connections, histograms);
  fmt::print(
      "{} restocks to {} subscribers: {} of {} deliveries in {:.2f} s = {:.0f} deliveries/s\n",
      restocks, options.connections, deliveries.load(), expected, elapsed, deliveries / elapsed);
  print_latency("server stamp to viewer (ms resolution)", all);
  return deliveries == expected ? 0 : 1;
}

int bench_idle(const BenchOptions& options) {
  raise_file_limit();
  if (options.server_pid <= 0) throw std::runtime_error("--server-pid is required");
  const std::string drop = options.run + "-idle";
  create_drop(options, drop, 1, 1);
  const long before_kb = rss_kb(options.server_pid);
  Workers workers(options.threads);
  workers.start();
  auto connections =
      connect_all(workers, options, [](std::size_t) { return [](std::string_view) {}; });
  const std::string subscribe = fmt::format(R"({{"type":"subscribe","drop":"{}"}})", drop);
  on_each(workers, connections,
          [subscribe](Connection& connection) { connection.send(subscribe); });
  std::this_thread::sleep_for(std::chrono::duration<double>(options.seconds));
  const long after_kb = rss_kb(options.server_pid);
  fmt::print(
      "server RSS {} KiB before, {} KiB with {} idle subscribed viewers: {:.2f} KiB per "
      "connection\n",
      before_kb, after_kb, options.connections,
      static_cast<double>(after_kb - before_kb) / options.connections);
  on_each(workers, connections, [](Connection& connection) { connection.close(); });
  workers.join();
  return 0;
}

}  // namespace flashsale::loadtest
