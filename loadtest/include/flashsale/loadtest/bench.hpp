// Benchmarks of a running flashsale server (`flashsale-loadtest bench MODE`), open loop: work
// is offered on a schedule whatever the server does, and latency is measured from when each
// order was *scheduled*, not sent, so a stalled server cannot hide its stall (no coordinated
// omission).
//
//   orders   `rate` orders/s for `seconds` over `connections` signed-in viewers and `drops`
//            drops; reports answered orders/s, statuses and latency percentiles.
//   fanout   `connections` viewers subscribed to one drop while the host restocks it every
//            `interval_ms`; each restock is a `drop` message to every viewer. Reports
//            deliveries/s and the delay from the server's stamp to each viewer.
//   capacity `orders` at rising rates until p99 passes a bound: the highest rate held.
//   idle     `connections` viewers signed in and subscribed, then held; reports the server's
//            memory per connection (reading /proc/`server_pid`).
#pragma once

#include <string>
#include <vector>

namespace flashsale::loadtest {

struct BenchOptions {
  std::string url = "ws://127.0.0.1:8080/ws";
  std::string api = "http://127.0.0.1:8080";
  std::string host_key = "dev-host-key";
  unsigned connections = 1'000;
  unsigned threads = 1;
  // Local addresses to spread connections over: each source/destination pair has ~28,000
  // ephemeral ports, and closed connections linger in TIME_WAIT.
  std::vector<std::string> sources = {"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4",
                                      "127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8"};
  double rate = 10'000;  // orders per second
  double seconds = 10;
  unsigned drops = 1;
  unsigned stock = 0;          // per drop; 0 = every order is a sold-out answer
  unsigned interval_ms = 100;  // fanout: between restocks
  int server_pid = 0;          // idle
  std::string run = "run";     // distinguishes the drops and users of one run
};

int bench_orders(const BenchOptions& options);
// `orders` at options.rate, then rate_step more each time, up to rate_max, while p99 stays
// within p99_ms_max and every order is answered: the highest rate held.
int bench_capacity(const BenchOptions& options, double p99_ms_max, double rate_step,
                   double rate_max);
int bench_fanout(const BenchOptions& options);
int bench_idle(const BenchOptions& options);

}  // namespace flashsale::loadtest
