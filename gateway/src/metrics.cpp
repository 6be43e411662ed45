// See metrics.hpp.
#include "metrics.hpp"

#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>

namespace flashsale::gateway {

namespace {

// One sample of a single-series metric, with its HELP and TYPE lines.
template <typename Value>
void line(std::string& out, std::string_view name, std::string_view type, std::string_view help,
          const Value& value) {
  fmt::format_to(std::back_inserter(out), "# HELP {0} {1}\n# TYPE {0} {2}\n{0} {3}\n", name, help,
                 type, value);
}

// When this process started, for process_start_time_seconds: read as the program loads.
const double started_at_s =
    std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();

// The process metrics every Prometheus client library exports, from the kernel's own figures,
// and which build this is. Read at each scrape; counting /proc/self/fd walks one entry per open
// connection, ~1 ms for 20,000.
void render_process(std::string& out) {
  const auto series = [&out](std::string_view name, std::string_view type, std::string_view help,
                             auto value) { line(out, name, type, help, value); };
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& time) { return time.tv_sec + time.tv_usec / 1e6; };
  series("process_cpu_seconds_total", "counter", "User and system CPU time spent in seconds.",
         seconds(usage.ru_utime) + seconds(usage.ru_stime));
  std::uint64_t virtual_pages = 0, resident_pages = 0;
  std::ifstream("/proc/self/statm") >> virtual_pages >> resident_pages;
  const auto page_bytes = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  series("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
         resident_pages * page_bytes);
  series("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
         virtual_pages * page_bytes);
  std::error_code error;
  std::uint64_t open = 0;
  for (auto entry = std::filesystem::directory_iterator("/proc/self/fd", error);
       !error && entry != std::filesystem::directory_iterator(); entry.increment(error))
    open += 1;
  series("process_open_fds", "gauge", "Number of open file descriptors.", open);
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  series("process_max_fds", "gauge", "Maximum number of open file descriptors.",
         static_cast<std::uint64_t>(files.rlim_cur));
  series("process_start_time_seconds", "gauge",
         "Start time of the process since unix epoch in seconds.", started_at_s);
  fmt::format_to(std::back_inserter(out),
                 "# HELP flashsale_build_info The build: version and commit.\n"
                 "# TYPE flashsale_build_info gauge\n"
                 "flashsale_build_info{{version=\"{}\",commit=\"{}\"}} 1\n",
                 FLASHSALE_VERSION, FLASHSALE_COMMIT);
}

}  // namespace

std::string Metrics::render(const journal::JournalStatus* status) const {
  std::string out;
  const auto series = [&out](std::string_view name, std::string_view type, std::string_view help,
                             auto value) { line(out, name, type, help, value); };
  const auto load = [](const Counter& counter) { return counter.load(std::memory_order_relaxed); };
  render_process(out);
  series("flashsale_connections", "gauge", "Open WebSocket connections.", load(connections_open));
  series("flashsale_http_connections", "gauge", "Open plain HTTP connections.",
         load(http_connections_open));
  series("flashsale_connections_accepted_total", "counter", "Connections accepted.",
         load(connections_accepted));
  series("flashsale_connections_refused_total", "counter",
         "Connections refused over connections_max.", load(connections_refused));
  series("flashsale_messages_in_total", "counter", "WebSocket messages received.",
         load(messages_in));
  series("flashsale_messages_out_total", "counter", "WebSocket messages sent.", load(messages_out));
  series("flashsale_frames_superseded_total", "counter",
         "Stale tick/stock frames replaced by newer ones for slow viewers.",
         load(frames_superseded));
  series("flashsale_slow_viewers_closed_total", "counter", "Viewers closed for not keeping up.",
         load(slow_viewers_closed));
  series("flashsale_idle_viewers_closed_total", "counter",
         "Viewers closed for answering neither messages nor pings.", load(idle_viewers_closed));
  series("flashsale_protocol_errors_total", "counter", "Error messages sent to clients.",
         load(protocol_errors));
  series("flashsale_tls_handshakes_failed_total", "counter",
         "TLS handshakes that failed or took too long.", load(tls_handshakes_failed));
  series("flashsale_proxy_headers_refused_total", "counter",
         "Connections from a trusted proxy closed for a missing or bad PROXY header.",
         load(proxy_headers_refused));
  if (const std::uint64_t expires = load(tls_expires_at_s); expires != 0) {
    series("flashsale_tls_certificate_expiry_seconds", "gauge",
           "When the TLS certificate in use expires (Unix time).", expires);
    series("flashsale_tls_reloads_failed_total", "counter",
           "Certificate reloads (SIGHUP) that kept the old certificate.", load(tls_reloads_failed));
  }
  if (const std::uint64_t read_at_ms = load(host_accounts_read_at_ms); read_at_ms != 0) {
    series("flashsale_host_accounts", "gauge", "Host accounts, active and revoked, as last read.",
           load(host_accounts));
    const auto now_ms =
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count());
    series("flashsale_host_accounts_read_age_seconds", "gauge",
           "Since this gateway last read the host accounts from Redis (every 500 ms when it can).",
           static_cast<double>(now_ms - std::min(now_ms, read_at_ms)) / 1000.0);
  }
  out +=
      "# HELP flashsale_orders_total Order results sent, by status.\n# TYPE flashsale_orders_total "
      "counter\n";
  for (std::size_t index = 0; index < order_statuses.size(); ++index)
    fmt::format_to(std::back_inserter(out), "flashsale_orders_total{{status=\"{}\"}} {}\n",
                   order_statuses[index], load(orders[index]));
  series("flashsale_orders_at_edge_total", "counter",
         "Orders answered sold_out by this process's I/O threads without asking an engine "
         "(also in flashsale_orders_total).",
         load(orders_at_edge));
  out +=
      "# HELP flashsale_limited_total Requests refused by an abuse limit, by limit.\n"
      "# TYPE flashsale_limited_total counter\n";
  for (std::size_t index = 0; index < limit_names.size(); ++index)
    fmt::format_to(std::back_inserter(out), "flashsale_limited_total{{limit=\"{}\"}} {}\n",
                   limit_names[index], load(limited[index]));
  series("flashsale_engine_queue_depth", "gauge", "Requests waiting for the engine thread.",
         load(engine_queue_depth));
  series("flashsale_engine_queue_max", "gauge",
         "The engine thread's queue bound (limits.engine_queue_max); past it orders get busy.",
         load(engine_queue_max));
  series("flashsale_engine_batches_total", "counter", "Batches the engine thread processed.",
         load(engine_batches));
  series("flashsale_releases_pending", "gauge", "Messages held until their events are durable.",
         load(releases_pending));
  series("flashsale_answers_repeated_total", "counter",
         "Order answers a gateway received again after a failover and did not deliver twice.",
         load(answers_repeated));
  order_latency.render(out, "flashsale_order_seconds",
                       "Orders from their frame read to their answer handed to the I/O thread.");
  order_queue_wait.render(out, "flashsale_order_queue_seconds",
                          "Orders from their frame read until the engine thread decides them.");
  order_durable_wait.render(out, "flashsale_order_durable_seconds",
                            "Orders from their decision until durable and released.");
  fanout_lag.render(out, "flashsale_fanout_lag_seconds",
                    "Drop updates' wait for each I/O thread that sends them to its viewers.");
  Histogram::render_header(out, "flashsale_host_call_seconds",
                           "Host API calls from their request read to their reply, by route.");
  for (std::size_t route = 0; route < host_calls.size(); ++route) {
    const std::string_view name = route < host_route_tokens    ? host::command_names[route]
                                  : route == host_route_tokens ? "tokens"
                                  : route == host_route_hosts  ? "hosts"
                                                               : "refused";
    host_calls[route].render_series(out, "flashsale_host_call_seconds",
                                    fmt::format("route=\"{}\"", name));
  }
  // Every role has every histogram, so one dashboard reads them all; a gateway's journal ones
  // and an engine's host calls stay empty.
  recovery.render(out, "flashsale_recovery_seconds", "Recoveries of a journal, each one's time.");
  journal_round_trip.render(out, "flashsale_journal_round_trip_seconds",
                            "Journal batches from sent until Redis answered, fsync included.");
  journal_batch_events.render(out, "flashsale_journal_batch_events",
                              "Events in each journal batch written.");
  if (status == nullptr) return out;  // a gateway: the engines hold the journals
  const journal::JournalStatus& journal = *status;
  series("flashsale_journal_durable_sequence", "gauge", "Last durable event.",
         journal.durable_sequence);
  series("flashsale_journal_pending_bytes", "gauge", "Journal bytes not yet durable.",
         journal.pending_bytes);
  series("flashsale_journal_batches_total", "counter", "Journal batches written.",
         journal.batches_written);
  series("flashsale_journal_events_total", "counter", "Events written to the journal.",
         journal.events_written);
  series("flashsale_journal_last_batch_events", "gauge", "Events in the last journal batch.",
         journal.last_batch_events);
  series("flashsale_journal_last_batch_seconds", "gauge",
         "Round trip of the last journal batch, fsync included.", journal.last_batch_ms / 1000.0);
  fmt::format_to(
      std::back_inserter(out),
      "# HELP flashsale_journal_state Journal state (1 for the current one).\n"
      "# TYPE flashsale_journal_state gauge\nflashsale_journal_state{{state=\"{}\"}} 1\n",
      journal::to_string(journal.state));
  return out;
}

}  // namespace flashsale::gateway
