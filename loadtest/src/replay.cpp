// See replay.hpp. Viewers are partitioned over worker processes and, within a process, over
// its threads by number; all state of a viewer lives on its thread. Per-thread tallies are
// merged once the replay is over, and a coordinator merges its worker processes' the same way
// (totals.hpp), so the verdict and the report never depend on how the load was spread.
#include "flashsale/loadtest/replay.hpp"

#include <fmt/format.h>

#include <array>
#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "charts.hpp"
#include "child_processes.hpp"
#include "client.hpp"
#include "flashsale/loadtest/histogram.hpp"
#include "flashsale/loadtest/http.hpp"
#include "flashsale/loadtest/trace.hpp"
#include "totals.hpp"
#include "verdict.hpp"

namespace flashsale::loadtest {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

// The report's time bins, by when something happened relative to T-0: 100 ms from 2 s before
// T-0 to 5 s after, where a surge rises and is answered within a second, and whole seconds
// elsewhere. A bin is named by its start, in ms.
constexpr std::int64_t fine_from_ms = -2'000, fine_until_ms = 5'000;
constexpr std::int64_t fine_bin_ms = 100, coarse_bin_ms = 1'000;
std::int64_t bin_width_ms(std::int64_t at_ms) {
  return at_ms >= fine_from_ms && at_ms < fine_until_ms ? fine_bin_ms : coarse_bin_ms;
}
std::int64_t bin_of(std::int64_t at_ms) {
  const std::int64_t width = bin_width_ms(at_ms);
  return (at_ms >= 0 ? at_ms / width : -((-at_ms + width - 1) / width)) * width;
}

// The report's phases, by when an answer came: the countdown before T-0, the spike (its first
// `spike_ms`), and after, when payments, cancels and the waitlist play out.
constexpr std::int64_t spike_ms = 5'000;
std::string_view phase_of(std::int64_t bin_ms) {
  return bin_ms < 0 ? "countdown" : bin_ms < spike_ms ? "spike" : "after";
}

// The server process's own figures (process_cpu_seconds_total, process_resident_memory_bytes)
// from its /metrics; nothing when they cannot be read (metrics on an operations address the
// caller did not give, or a server without them).
struct ProcessFigures {
  double cpu_seconds = 0;
  double resident_bytes = 0;
};
std::optional<ProcessFigures> read_process_figures(const std::string& metrics_base) {
  try {
    const HttpReply reply = http_call(HttpTarget::parse(metrics_base), "GET", "/metrics");
    if (reply.status != 200) return std::nullopt;
    ProcessFigures figures;
    int found = 0;
    std::istringstream lines(reply.body);
    for (std::string line; std::getline(lines, line);) {
      const auto value = [&line] { return std::stod(line.substr(line.find(' ') + 1)); };
      if (line.starts_with("process_cpu_seconds_total ")) figures.cpu_seconds = value(), ++found;
      if (line.starts_with("process_resident_memory_bytes "))
        figures.resident_bytes = value(), ++found;
    }
    if (found != 2) return std::nullopt;
    return figures;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

struct Sent {
  Clock::time_point scheduled;
};

struct Decision {
  std::string status;
  std::string order_id;
};

struct Viewer {
  std::shared_ptr<Connection> connection;
  bool ready = false;
  std::vector<std::string> waiting;                 // frames sent before the connection was up
  std::map<std::string, std::deque<Sent>> pending;  // by client_order_id
  std::map<std::string, Decision> decided;          // first recorded outcome by client_order_id
  std::map<std::string, std::string> holding;       // client_order_id -> order_id while reserved
  // client_order_id -> the variant named and the units asked for, on a drop with variants
  std::map<std::string, std::pair<std::string, std::uint32_t>> asked;
  std::set<std::string> paying;  // order ids with a confirm or cancel not yet answered
  // client_order_ids whose hold is counted in reserved_ever: each once, whichever told of it
  // first (the order's answer, a promotion, or a subscribe telling a returning buyer)
  std::set<std::string> held_ever;
  std::uint32_t reserved_ever = 0;
  std::uint32_t released = 0;  // cancelled or expired
};

// One thread's tallies: what it saw, and the progress line's counters, which the main thread
// reads while the replay runs (atomics, relaxed) and which go into `seen` at the end.
struct Tally {
  Totals seen;
  std::set<std::string> order_ids;  // duplicates within the thread are counted as they come
  std::atomic<std::uint64_t> sent{0};
  std::atomic<std::uint64_t> answered{0};
  std::atomic<std::uint64_t> reserved{0};
  std::array<std::atomic<std::uint64_t>, progress_statuses.size() + 1> answers{};  // + other
  std::atomic<std::uint64_t> payments_sent{0};
  std::atomic<std::uint64_t> payments_answered{0};  // or abandoned by a disconnect

  Totals finish() {
    seen.sent = sent;
    seen.answered = answered;
    seen.reserved = reserved;
    seen.order_ids.assign(order_ids.begin(), order_ids.end());
    return std::move(seen);
  }
};

// The report's line per variant: the server's figures (its drop's `variants`, in its order)
// beside what the viewers were told.
json::array variant_rows(const Totals& seen, const json::object& server) {
  json::array rows;
  const json::value* listed = server.if_contains("variants");
  if (listed == nullptr || !listed->is_array()) return rows;
  for (const json::value& item : listed->as_array()) {
    const json::object& variant = item.as_object();
    const std::string id(variant.at("id").as_string());
    const auto told = seen.variants.find(id);
    const VariantSeen figures = told == seen.variants.end() ? VariantSeen{} : told->second;
    const json::value* label = variant.if_contains("label");
    rows.push_back(
        json::object{{"id", id},
                     {"label", label != nullptr && !label->as_string().empty() ? label->as_string()
                                                                               : json::string(id)},
                     {"price_cents", variant.at("price_cents")},
                     {"stock_total", variant.at("stock_total")},
                     {"stock_left", variant.at("stock_left")},
                     {"held", variant.at("held")},
                     {"sold", variant.at("sold")},
                     {"reserved_seen", figures.reserved},
                     {"released_seen", figures.released},
                     {"confirmed_seen", figures.confirmed}});
  }
  return rows;
}

// Adds the units of the viewer's order `client_order_id` to its variant's `counter`.
void count_variant(const Viewer& viewer, const std::string& client_order_id,
                   std::uint64_t VariantSeen::*counter, Totals& seen) {
  const auto asked = viewer.asked.find(client_order_id);
  if (asked == viewer.asked.end()) return;  // a drop without variants
  seen.variants[asked->second.first].*counter += asked->second.second;
}

// The viewer learned that its order `client_order_id` holds units. Counted once per order: after
// a reconnect, the subscribe's update can arrive before the answer to the retried order.
void count_hold(Viewer& viewer, const std::string& client_order_id, std::string_view order_id,
                std::uint32_t per_user_limit, std::atomic<std::uint64_t>& reserved, Totals& seen) {
  viewer.holding.try_emplace(client_order_id, std::string(order_id));
  if (!viewer.held_ever.insert(client_order_id).second) return;
  viewer.reserved_ever += 1;
  reserved += 1;
  count_variant(viewer, client_order_id, &VariantSeen::reserved, seen);
  if (viewer.reserved_ever - viewer.released > per_user_limit) seen.over_limit += 1;
}

bool recorded(std::string_view status) {
  return status == "reserved" || status == "waitlisted" || status == "sold_out" ||
         status == "limit_exceeded" || status == "closed";
}

// "ws://a/ws,ws://b/ws": several gateways of one deployment.
std::vector<WsTarget> parse_targets(std::string_view urls) {
  std::vector<WsTarget> targets;
  while (!urls.empty()) {
    const auto comma = urls.find(',');
    targets.push_back(parse_ws(urls.substr(0, comma)));
    urls = comma == std::string_view::npos ? std::string_view{} : urls.substr(comma + 1);
  }
  if (targets.empty()) throw std::invalid_argument("--url: at least one WebSocket URL");
  return targets;
}

class Replay {
 public:
  Replay(const ReplayOptions& options, Trace trace)
      : options_(options),
        trace_(std::move(trace)),
        workers_(options.threads),
        viewers_(trace_.header.viewers),
        tallies_(workers_.size()),
        targets_(parse_targets(options.url)) {}

  int run();

 private:
  // The three ways to run: all viewers in this process; a coordinator of worker processes; and
  // one of those workers, which plays its share of the viewers and hands back what it saw.
  int run_whole();
  int coordinate();
  int run_part();

  void prepare_drop();
  void set_opening(std::int64_t opens_at_ms);
  // Plays this process's viewers until the schedule ran out and the grace period passed (or
  // every order was answered), calling `each_second` with the progress so far; what was seen.
  Totals play(const std::function<void(const Progress&)>& each_second);
  void tick(std::size_t thread);
  void act(std::size_t thread, const Action& action);
  void send(std::uint32_t user, std::string frame);
  void on_message(std::size_t thread, std::uint32_t user, std::string_view message);
  // The progress line, and a sample of the server's CPU and memory.
  void show_progress(const Progress& progress);
  // The verdict and the report from everything the viewers saw; the exit status.
  int finish(const Totals& seen, const std::optional<ProcessFigures>& before, double elapsed_s);
  void write_report(const Totals& seen, const std::vector<Check>& checks,
                    const json::object& server, const json::value& server_process,
                    double elapsed_s) const;

  std::int64_t bin_at(Clock::time_point when) const {
    return bin_of(std::chrono::duration_cast<std::chrono::milliseconds>(when - t0_).count());
  }
  // This process's share of the viewers, and the thread each of those lives on.
  bool plays(std::uint32_t user) const { return user % parts_ == part_; }
  std::size_t thread_of(std::uint32_t user) const { return user / parts_ % workers_.size(); }
  const std::string& metrics_base() const {
    return options_.metrics.empty() ? options_.api : options_.metrics;
  }
  // Main thread, while the workers run: the progress so far, the latencies copied on each
  // worker's own thread.
  Progress progress_so_far();

  const ReplayOptions& options_;
  Trace trace_;
  Workers workers_;
  std::vector<Viewer> viewers_;
  std::vector<Tally> tallies_;
  std::vector<WsTarget> targets_;  // viewers spread over them by user number
  std::int64_t opens_at_ms_ = 0;
  Clock::time_point t0_;
  std::vector<std::vector<const Action*>> schedule_;  // per thread, in time order
  std::vector<std::size_t> next_;
  std::vector<std::unique_ptr<asio::steady_timer>> timers_;
  std::atomic<std::size_t> threads_done_{0};
  std::uint32_t part_ = 0;
  std::uint32_t parts_ = 1;
  // The last stock any viewer was told, and when (µs from T-0); a torn pair only misdates one
  // progress line.
  std::atomic<std::uint32_t> stock_left_{0};
  std::atomic<std::int64_t> stock_told_us_{std::numeric_limits<std::int64_t>::min()};
  // The progress line's previous count, and the server's CPU (cores busy) and memory, sampled
  // once a second from its /metrics.
  std::uint64_t answered_before_ = 0;
  std::optional<ProcessFigures> sampled_;
  Clock::time_point sampled_at_;
  struct ServerSample {
    double t_s;
    double cpu_cores;
    double resident_bytes;
  };
  std::vector<ServerSample> server_samples_;
};

void Replay::prepare_drop() {
  const HttpTarget api = HttpTarget::parse(options_.api);
  const DropSetup& drop = trace_.header.drop;
  const auto created =
      http_call(api, "POST", "/api/drops", json::serialize(to_json(drop)), options_.host_key);
  if (created.status != 201 && created.status != 409)
    throw std::runtime_error("cannot create drop " + drop.id + ": " + created.body);
  const auto seconds = (trace_.header.countdown_ms + 999) / 1000;
  const auto started = http_call(api, "POST", "/api/drops/" + drop.id + "/countdown",
                                 fmt::format(R"({{"seconds":{}}})", seconds), options_.host_key);
  if (started.status != 200)
    throw std::runtime_error("cannot start the countdown: " + started.body);
  const json::value opened = json::parse(started.body);
  stock_left_ = static_cast<std::uint32_t>(opened.at("stock_left").to_number<std::int64_t>());
  set_opening(opened.at("opens_at_ms").to_number<std::int64_t>());
}

void Replay::set_opening(std::int64_t opens_at_ms) {
  opens_at_ms_ = opens_at_ms;
  t0_ = Clock::now() + std::chrono::milliseconds(opens_at_ms_ - wall_ms());
}

void Replay::send(std::uint32_t user, std::string frame) {
  Viewer& viewer = viewers_[user];
  if (viewer.ready) {
    viewer.connection->send(std::move(frame));
  } else {
    viewer.waiting.push_back(std::move(frame));
  }
}

void Replay::act(std::size_t thread, const Action& action) {
  Viewer& viewer = viewers_[action.user];
  Tally& tally = tallies_[thread];
  const std::string& drop = trace_.header.drop.id;
  switch (action.kind) {
    case ActionKind::connect: {
      viewer.ready = false;
      const WsTarget& target = targets_[action.user % targets_.size()];
      viewer.connection =
          Connection::make(workers_.io(thread), target,
                           [this, thread, user = action.user](std::string_view message) {
                             on_message(thread, user, message);
                           });
      viewer.connection->open(
          target, options_.sources[action.user % options_.sources.size()],
          fmt::format("{}-v{}", trace_.header.scenario, action.user),
          [this, thread, user = action.user, connection = viewer.connection.get()](bool ok) {
            Viewer& self = viewers_[user];
            if (!ok || self.connection.get() != connection) return;
            tallies_[thread].seen.connections[bin_at(Clock::now())] += 1;
            self.ready = true;
            for (auto& frame : self.waiting) self.connection->send(std::move(frame));
            self.waiting.clear();
          });
      return;
    }
    case ActionKind::subscribe:
      return send(action.user, fmt::format(R"({{"type":"subscribe","drop":"{}"}})", drop));
    case ActionKind::order:
    case ActionKind::retry: {
      const auto scheduled = t0_ + std::chrono::milliseconds(action.t_ms);
      viewer.pending[action.client_order_id].push_back({scheduled});
      tally.sent += 1;
      if (action.variant.empty())
        return send(action.user,
                    fmt::format(R"({{"type":"order","drop":"{}","qty":{},"client_order_id":"{}"}})",
                                drop, action.qty, action.client_order_id));
      viewer.asked[action.client_order_id] = {action.variant, action.qty};
      return send(action.user,
                  fmt::format(R"({{"type":"order","drop":"{}","qty":{},)"
                              R"("client_order_id":"{}","variant":"{}"}})",
                              drop, action.qty, action.client_order_id, action.variant));
    }
    case ActionKind::confirm:
    case ActionKind::cancel: {
      const auto held =
          viewer.holding.find(action.client_order_id.empty() ? "c1" : action.client_order_id);
      if (held == viewer.holding.end()) return;  // nothing reserved to pay for or give back
      if (viewer.paying.insert(held->second).second) tally.payments_sent += 1;
      return send(
          action.user,
          fmt::format(R"({{"type":"{}","order_id":"{}"}})",
                      action.kind == ActionKind::confirm ? "confirm" : "cancel", held->second));
    }
    case ActionKind::disconnect:
      for (auto& [id, sent] : viewer.pending) tally.seen.abandoned += sent.size();
      viewer.pending.clear();
      tally.payments_answered += viewer.paying.size();
      viewer.paying.clear();
      if (viewer.ready) tally.seen.connections[bin_at(Clock::now())] -= 1;
      viewer.ready = false;
      viewer.waiting.clear();
      if (viewer.connection) viewer.connection->close();
      viewer.connection.reset();
      return;
  }
}

void Replay::on_message(std::size_t thread, std::uint32_t user, std::string_view message) {
  Viewer& viewer = viewers_[user];
  Tally& tally = tallies_[thread];
  const auto now = Clock::now();
  Totals& seen = tally.seen;
  seen.frames_in[bin_at(now)] += 1;
  const std::string_view type = field(message, "type");
  if (type == "stock") {
    const auto left = number<std::uint32_t>(field(message, "left"));
    const auto told_us = std::chrono::duration_cast<std::chrono::microseconds>(now - t0_).count();
    seen.stock_left[bin_at(now)] = {told_us, left};
    stock_left_.store(left, std::memory_order_relaxed);
    stock_told_us_.store(told_us, std::memory_order_relaxed);
    return;
  }
  if (type == "error") {
    if (viewer.paying.erase(std::string(field(message, "ref"))) > 0) tally.payments_answered += 1;
    return;
  }
  if (type == "order_update") {
    const std::string status(field(message, "status"));
    const std::string id(field(message, "client_order_id"));
    if (status != "reserved" && viewer.paying.erase(std::string(field(message, "order_id"))) > 0)
      tally.payments_answered += 1;
    if (status == "reserved") {
      // A promotion, or a subscribe telling a buyer of holds it has.
      count_hold(viewer, id, field(message, "order_id"), trace_.header.drop.per_user_limit,
                 tally.reserved, seen);
    } else if (status == "confirmed") {
      // Once per order: after a failover the same state may be reported twice
      // (docs/scaling.md, "Each answer once").
      if (viewer.holding.erase(id) > 0) {
        seen.confirmed += 1;
        count_variant(viewer, id, &VariantSeen::confirmed, seen);
      }
    } else if (status == "cancelled" || status == "expired") {
      if (viewer.holding.erase(id) > 0) {
        viewer.released += 1;
        seen.released += 1;
        count_variant(viewer, id, &VariantSeen::released, seen);
      }
    }
    return;
  }
  if (type != "order_result") return;
  const std::string id(field(message, "client_order_id"));
  const std::string status(field(message, "status"));
  auto pending = viewer.pending.find(id);
  if (pending == viewer.pending.end() || pending->second.empty()) {
    seen.unexpected += 1;
    return;
  }
  const Sent sent = pending->second.front();
  pending->second.pop_front();
  tally.answered += 1;
  const auto micros = static_cast<std::uint64_t>(std::max<std::int64_t>(
      0, std::chrono::duration_cast<std::chrono::microseconds>(now - sent.scheduled).count()));
  seen.latency.record(micros);
  seen.latency_by_bin[bin_at(now)].record(micros);
  seen.by_status[bin_at(now)][status] += 1;
  const auto known = std::find(progress_statuses.begin(), progress_statuses.end(), status);
  tally.answers[static_cast<std::size_t>(known - progress_statuses.begin())].fetch_add(
      1, std::memory_order_relaxed);
  // A sold_out answered at the edge says it is not recorded: a retry is a fresh attempt.
  if (!recorded(status) || field(message, "recorded") == "false") return;
  const std::string order_id(field(message, "order_id"));
  const auto [decision, first] = viewer.decided.try_emplace(id, Decision{status, order_id});
  if (!first) {
    if (decision->second.status != status || decision->second.order_id != order_id)
      seen.repeat_mismatches += 1;
    return;
  }
  if (status != "reserved") return;
  // Decided by the server's clock, which set the hold running: an order sent just before T-0 may
  // fairly arrive after it.
  const std::int64_t decided_at_ms = number<std::int64_t>(field(message, "hold_expires_at_ms")) -
                                     std::int64_t{trace_.header.drop.hold_seconds} * 1000;
  if (decided_at_ms < opens_at_ms_) seen.reserved_before_open += 1;
  const std::uint32_t duration_seconds = trace_.header.drop.duration_seconds;
  if (duration_seconds > 0 && decided_at_ms >= opens_at_ms_ + std::int64_t{duration_seconds} * 1000)
    seen.reserved_after_end += 1;
  count_hold(viewer, id, order_id, trace_.header.drop.per_user_limit, tally.reserved, seen);
  if (!tally.order_ids.insert(order_id).second) seen.duplicate_order_ids += 1;
}

void Replay::tick(std::size_t thread) {
  const auto now = Clock::now();
  auto& actions = schedule_[thread];
  std::size_t& next = next_[thread];
  for (; next < actions.size() && t0_ + std::chrono::milliseconds(actions[next]->t_ms) <= now;
       ++next)
    act(thread, *actions[next]);
  if (next == actions.size()) {
    threads_done_ += 1;
    return;
  }
  timers_[thread]->expires_after(std::chrono::milliseconds(1));
  timers_[thread]->async_wait([this, thread](beast::error_code) { tick(thread); });
}

int Replay::run() {
  raise_file_limit();
  if (options_.part) return run_part();
  return options_.workers > 1 ? coordinate() : run_whole();
}

int Replay::run_whole() {
  prepare_drop();
  fmt::print("replaying {} actions of {} viewers; T-0 in {} ms\n", trace_.actions.size(),
             trace_.header.viewers, opens_at_ms_ - wall_ms());
  const std::optional<ProcessFigures> before = read_process_figures(metrics_base());
  sampled_ = before;
  sampled_at_ = Clock::now();
  const auto started = Clock::now();
  const Totals seen = play([this](const Progress& progress) { show_progress(progress); });
  return finish(seen, before, std::chrono::duration<double>(Clock::now() - started).count());
}

// A worker process speaks JSON lines on its standard output: {"ready": true} once it has read
// the trace, then {"progress": ...} once a second and {"totals": ...} at the end; the coordinator
// reads nothing else from it. It reads one line, {"opens_at_ms": T}, on its standard input.
int Replay::run_part() {
  part_ = options_.part->index;
  parts_ = options_.part->count;
  const auto line = [](std::string_view key, json::value value) {
    fmt::print("{}\n", json::serialize(json::object{{key, std::move(value)}}));
    std::fflush(stdout);
  };
  line("ready", true);
  std::string start;
  if (!std::getline(std::cin, start)) throw std::runtime_error("no start from the coordinator");
  set_opening(json::parse(start).at("opens_at_ms").to_number<std::int64_t>());
  const Totals seen = play([&](const Progress& progress) { line("progress", to_json(progress)); });
  line("totals", to_json(seen));
  return 0;
}

// The workers start first and read the trace (seconds each, for a big one, on shared cores);
// the countdown starts once all are ready, so that none joins its schedule late.
int Replay::coordinate() {
  std::signal(SIGPIPE, SIG_IGN);  // a worker that died is an error from write_line
  struct Worker {
    ChildProcess process;
    bool ready = false;
    Progress progress;
    std::optional<Totals> seen;
  };
  std::vector<Worker> workers;
  for (unsigned index = 0; index < options_.workers; ++index) {
    std::vector<std::string> arguments{"replay",
                                       "--trace",
                                       options_.trace,
                                       "--url",
                                       options_.url,
                                       "--threads",
                                       std::to_string(options_.threads),
                                       "--grace-seconds",
                                       fmt::format("{}", options_.grace_seconds),
                                       "--part",
                                       fmt::format("{}/{}", index, options_.workers),
                                       "--sources"};
    arguments.insert(arguments.end(), options_.sources.begin(), options_.sources.end());
    workers.push_back({ChildProcess(arguments), false, {}, std::nullopt});
  }
  const auto all_ready = [&workers] {
    return std::all_of(workers.begin(), workers.end(), [](const Worker& w) { return w.ready; });
  };
  while (!all_ready()) {
    std::vector<ChildProcess*> starting;
    for (Worker& worker : workers) {
      if (worker.ready) continue;
      if (worker.process.finished_output())
        throw std::runtime_error("a replay worker ended before it was ready");
      starting.push_back(&worker.process);
    }
    wait_for_output(starting, Clock::now() + std::chrono::seconds(1));
    for (Worker& worker : workers)
      worker.process.read_lines([&worker](std::string_view text) {
        worker.ready = json::parse(text).as_object().contains("ready");
      });
  }
  prepare_drop();
  const std::string start = json::serialize(json::object{{"opens_at_ms", opens_at_ms_}});
  for (Worker& worker : workers) worker.process.write_line(start);
  fmt::print("replaying {} actions of {} viewers in {} processes; T-0 in {} ms\n",
             trace_.actions.size(), trace_.header.viewers, options_.workers,
             opens_at_ms_ - wall_ms());
  const std::optional<ProcessFigures> before = read_process_figures(metrics_base());
  sampled_ = before;
  sampled_at_ = Clock::now();
  const auto started = Clock::now();
  auto next_line = Clock::now() + std::chrono::seconds(1);
  for (;;) {
    std::vector<ChildProcess*> running;
    for (Worker& worker : workers)
      if (!worker.process.finished_output()) running.push_back(&worker.process);
    if (running.empty()) break;
    wait_for_output(running, next_line);
    for (Worker& worker : workers)
      worker.process.read_lines([&worker](std::string_view text) {
        const json::object message = json::parse(text).as_object();
        if (const auto* progress = message.if_contains("progress"))
          worker.progress = progress_from_json(*progress);
        else
          worker.seen = totals_from_json(message.at("totals"));
      });
    if (Clock::now() < next_line) continue;
    Progress progress;
    for (const Worker& worker : workers) progress.merge(worker.progress);
    show_progress(progress);
    next_line = Clock::now() + std::chrono::seconds(1);
  }
  Totals seen;
  for (std::size_t index = 0; index < workers.size(); ++index) {
    const int status = workers[index].process.wait();
    if (status != 0 || !workers[index].seen)
      throw std::runtime_error(
          fmt::format("replay worker {} failed (exit status {})", index, status));
    seen.merge(*workers[index].seen);
  }
  return finish(seen, before, std::chrono::duration<double>(Clock::now() - started).count());
}

Totals Replay::play(const std::function<void(const Progress&)>& each_second) {
  schedule_.resize(workers_.size());
  next_.assign(workers_.size(), 0);
  for (const Action& action : trace_.actions)
    if (plays(action.user)) schedule_[thread_of(action.user)].push_back(&action);
  workers_.start();
  for (std::size_t thread = 0; thread < workers_.size(); ++thread) {
    timers_.push_back(std::make_unique<asio::steady_timer>(workers_.io(thread)));
    asio::post(workers_.io(thread), [this, thread] { tick(thread); });
  }
  // Progress once a second until the schedule ran out, then the grace period for answers.
  const auto last =
      trace_.actions.empty() ? t0_ : t0_ + std::chrono::milliseconds(trace_.actions.back().t_ms);
  const auto end = last + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(options_.grace_seconds));
  while (Clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const Progress progress = progress_so_far();
    each_second(progress);
    if (threads_done_ == workers_.size() && progress.sent == progress.answered &&
        progress.payments_sent == progress.payments_answered && Clock::now() > last)
      break;
  }
  for (std::uint32_t user = 0; user < viewers_.size(); ++user) {
    if (!plays(user)) continue;
    asio::post(workers_.io(thread_of(user)), [this, user] {
      if (viewers_[user].connection) viewers_[user].connection->close();
    });
  }
  workers_.join();
  Totals seen;
  for (Tally& tally : tallies_) seen.merge(tally.finish());
  return seen;
}

void Replay::show_progress(const Progress& progress) {
  std::string by_status;
  for (std::size_t index = 0; index < progress.answers.size(); ++index)
    if (progress.answers[index] > 0)
      by_status += fmt::format(
          " {} {}", index < progress_statuses.size() ? progress_statuses[index] : "other",
          progress.answers[index]);
  const double now_s = std::chrono::duration<double>(Clock::now() - t0_).count();
  const bool told = progress.stock.at_us != std::numeric_limits<std::int64_t>::min();
  fmt::print(
      "  t={:+.1f}s  sent {}  answered {} ({}/s):{}  p99 {:.1f} ms  reservations {}  stock "
      "left {}\n",
      now_s, progress.sent, progress.answered, progress.answered - answered_before_, by_status,
      static_cast<double>(progress.latency.percentile(0.99)) / 1e3, progress.reserved,
      told ? progress.stock.left : stock_left_.load(std::memory_order_relaxed));
  std::fflush(stdout);
  answered_before_ = progress.answered;
  if (const auto figures = read_process_figures(metrics_base())) {
    const auto at = Clock::now();
    if (sampled_)
      server_samples_.push_back({now_s,
                                 (figures->cpu_seconds - sampled_->cpu_seconds) /
                                     std::chrono::duration<double>(at - sampled_at_).count(),
                                 figures->resident_bytes});
    sampled_ = figures;
    sampled_at_ = at;
  }
}

int Replay::finish(const Totals& seen, const std::optional<ProcessFigures>& before,
                   double elapsed_s) {
  const auto server_reply = http_call(HttpTarget::parse(options_.api), "GET",
                                      "/api/drops/" + trace_.header.drop.id, {}, options_.host_key);
  const json::object server = json::parse(server_reply.body).as_object();
  const std::vector<Check> checks =
      verdict(seen, server, trace_.header.drop, {options_.assume_stock, wall_ms()});
  json::value server_process;  // null when either reading failed
  if (const auto after = read_process_figures(metrics_base()); before && after)
    server_process = json::object{{"cpu_seconds", after->cpu_seconds - before->cpu_seconds},
                                  {"resident_bytes", after->resident_bytes}};
  write_report(seen, checks, server, server_process, elapsed_s);
  bool pass = true;
  for (const Check& check : checks) {
    fmt::print("  {} {:<34} {}\n", check.pass ? "PASS" : "FAIL", check.name, check.detail);
    pass = pass && check.pass;
  }
  fmt::print("verdict: {} (report in {})\n", pass ? "PASS" : "FAIL", options_.report_dir);
  return pass ? 0 : 1;
}

Progress Replay::progress_so_far() {
  std::vector<std::promise<LatencyHistogram>> copies(workers_.size());
  for (std::size_t thread = 0; thread < workers_.size(); ++thread)
    asio::post(workers_.io(thread), [this, thread, &copies] {
      copies[thread].set_value(tallies_[thread].seen.latency);
    });
  Progress progress;
  for (std::size_t thread = 0; thread < workers_.size(); ++thread) {
    const Tally& tally = tallies_[thread];
    progress.sent += tally.sent.load(std::memory_order_relaxed);
    progress.answered += tally.answered.load(std::memory_order_relaxed);
    progress.reserved += tally.reserved.load(std::memory_order_relaxed);
    progress.payments_sent += tally.payments_sent.load(std::memory_order_relaxed);
    progress.payments_answered += tally.payments_answered.load(std::memory_order_relaxed);
    for (std::size_t index = 0; index < progress.answers.size(); ++index)
      progress.answers[index] += tally.answers[index].load(std::memory_order_relaxed);
    progress.latency.merge(copies[thread].get_future().get());
  }
  progress.stock = {stock_told_us_.load(std::memory_order_relaxed),
                    stock_left_.load(std::memory_order_relaxed)};
  return progress;
}

void Replay::write_report(const Totals& seen, const std::vector<Check>& checks,
                          const json::object& server, const json::value& server_process,
                          double elapsed_s) const {
  const LatencyHistogram& latency = seen.latency;
  const auto& by_status = seen.by_status;
  const auto& latency_by_bin = seen.latency_by_bin;
  const auto& frames_in = seen.frames_in;
  const auto& connection_changes = seen.connections;
  std::map<std::string, std::uint64_t> totals;
  for (const auto& [bin, statuses] : by_status)
    for (const auto& [status, count] : statuses) totals[status] += count;
  const auto ms = [](std::uint64_t micros) { return static_cast<double>(micros) / 1e3; };
  const auto seconds = [](std::int64_t bin) { return static_cast<double>(bin) / 1e3; };
  const auto per_s = [](double count, std::int64_t bin) {
    return count * 1000.0 / static_cast<double>(bin_width_ms(bin));
  };
  json::object report;
  report["version"] = 1;
  report["scenario"] = trace_.header.scenario;
  report["parameters"] = json::object{{"trace", options_.trace},
                                      {"viewers", trace_.header.viewers},
                                      {"stock", trace_.header.drop.units()},
                                      {"scale", trace_.header.scale},
                                      {"seed", trace_.header.seed},
                                      {"threads", options_.threads},
                                      {"workers", options_.workers},
                                      {"url", options_.url}};
  bool pass = true;
  json::array verdict;
  for (const Check& check : checks) {
    verdict.push_back(
        json::object{{"name", check.name}, {"pass", check.pass}, {"detail", check.detail}});
    pass = pass && check.pass;
  }
  report["verdict"] = json::object{{"pass", pass}, {"checks", verdict}};
  json::object statuses;
  for (const auto& [status, count] : totals) statuses[status] = count;
  report["results"] = statuses;
  report["orders"] =
      json::object{{"sent", seen.sent}, {"answered", seen.answered}, {"abandoned", seen.abandoned}};
  report["latency_ms"] = json::object{{"p50", ms(latency.percentile(0.5))},
                                      {"p90", ms(latency.percentile(0.9))},
                                      {"p99", ms(latency.percentile(0.99))},
                                      {"p999", ms(latency.percentile(0.999))},
                                      {"max", ms(latency.max())},
                                      {"samples", latency.count()}};
  std::map<std::string_view, LatencyHistogram> by_phase;
  for (const auto& [bin, histogram] : latency_by_bin) by_phase[phase_of(bin)].merge(histogram);
  json::object phases;
  for (const auto& [phase, histogram] : by_phase)
    phases[phase] = json::object{{"answers", histogram.count()},
                                 {"p50_ms", ms(histogram.percentile(0.5))},
                                 {"p90_ms", ms(histogram.percentile(0.9))},
                                 {"p99_ms", ms(histogram.percentile(0.99))},
                                 {"max_ms", ms(histogram.max())}};
  report["phases"] = phases;
  report["elapsed_s"] = elapsed_s;
  report["server"] = server;
  const json::array variants = variant_rows(seen, server);
  if (!trace_.header.drop.variants.empty()) report["variants"] = variants;
  // The server's CPU over the replay and its memory at the end, from its own /metrics.
  if (!server_process.is_null()) report["server_process"] = server_process;

  // The timeline, bin by bin, and the charts' series from the same figures.
  std::set<std::int64_t> bins;
  for (const auto& entry : by_status) bins.insert(entry.first);
  for (const auto& entry : frames_in) bins.insert(entry.first);
  for (const auto& entry : connection_changes) bins.insert(entry.first);
  std::map<std::string, ChartSeries> rates;
  std::array<ChartSeries, 4> latency_lines{ChartSeries{"p50", {}}, ChartSeries{"p90", {}},
                                           ChartSeries{"p99", {}}, ChartSeries{"max", {}}};
  ChartSeries frames_line{"frames received", {}};
  ChartSeries connections_line{"connections open", {}};
  std::int64_t open = 0;
  json::array timeline;
  for (const std::int64_t bin : bins) {
    const double at_s = seconds(bin);
    json::object point{{"t_s", at_s}, {"width_s", seconds(bin_width_ms(bin))}};
    json::object per_status;
    if (const auto found = by_status.find(bin); found != by_status.end())
      for (const auto& [status, count] : found->second) {
        per_status[status] = per_s(static_cast<double>(count), bin);
        rates[status].name = status;
        rates[status].points[at_s] = per_s(static_cast<double>(count), bin);
      }
    point["orders_per_s"] = per_status;
    if (const auto found = latency_by_bin.find(bin); found != latency_by_bin.end()) {
      const LatencyHistogram& histogram = found->second;
      const std::array<double, 4> figures = {ms(histogram.percentile(0.5)),
                                             ms(histogram.percentile(0.9)),
                                             ms(histogram.percentile(0.99)), ms(histogram.max())};
      point["latency_ms"] = json::object{
          {"p50", figures[0]}, {"p90", figures[1]}, {"p99", figures[2]}, {"max", figures[3]}};
      point["p99_ms"] = figures[2];
      for (std::size_t line = 0; line < figures.size(); ++line)
        latency_lines[line].points[at_s] = figures[line];
    }
    const auto frames = frames_in.find(bin);
    const double frames_rate =
        frames == frames_in.end() ? 0 : per_s(static_cast<double>(frames->second), bin);
    point["frames_per_s"] = frames_rate;
    frames_line.points[at_s] = frames_rate;
    if (const auto change = connection_changes.find(bin); change != connection_changes.end())
      open += change->second;
    point["connections"] = open;
    connections_line.points[at_s] = static_cast<double>(open);
    timeline.push_back(point);
  }
  report["timeline"] = timeline;
  json::array samples;
  ChartSeries cpu_line{"CPU", {}};
  ChartSeries memory_line{"resident memory", {}};
  for (const ServerSample& sample : server_samples_) {
    samples.push_back(json::object{{"t_s", sample.t_s},
                                   {"cpu_cores", sample.cpu_cores},
                                   {"resident_bytes", sample.resident_bytes}});
    cpu_line.points[sample.t_s] = sample.cpu_cores;
    memory_line.points[sample.t_s] = sample.resident_bytes / (1 << 20);
  }
  report["server_samples"] = samples;
  std::filesystem::create_directories(options_.report_dir);
  std::ofstream(options_.report_dir + "/report.json") << json::serialize(report) << '\n';

  // Answers stacked with the statuses a surge is made of first, the rest after.
  std::vector<ChartSeries> stacked;
  for (const std::string_view status : progress_statuses)
    if (const auto found = rates.find(std::string(status)); found != rates.end()) {
      stacked.push_back(std::move(found->second));
      rates.erase(found);
    }
  for (auto& [status, series] : rates) stacked.push_back(std::move(series));
  // Every chart spans the whole run, so that they line up; stock left holds its last value.
  std::pair<double, double> span{0, 1};
  if (!bins.empty())
    span = {seconds(*bins.begin()), seconds(*bins.rbegin() + bin_width_ms(*bins.rbegin()))};
  if (!server_samples_.empty()) span.second = std::max(span.second, server_samples_.back().t_s);
  ChartSeries stock_line{"stock left", {}};
  for (const auto& [bin, told] : seen.stock_left) stock_line.points[seconds(bin)] = told.left;
  if (!stock_line.points.empty())
    stock_line.points[span.second] = stock_line.points.rbegin()->second;

  std::string html = fmt::format(
      "<!doctype html><html><head><meta charset=\"utf-8\"><title>flashsale replay: {0}</title>"
      "<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:820px}}td,th{{padding:2px "
      "8px;text-align:left}}figure{{margin:1.5em 0}}h3{{margin:0 0 .2em}}"
      ".caption{{margin:0 0 .4em;color:#444}}"
      ".pass{{color:#1a7f37}}.fail{{color:#c22;font-weight:bold}}</style></head><body>"
      "<h1>Replay of <code>{0}</code>: <span class=\"{1}\">{2}</span></h1>",
      trace_.header.scenario, pass ? "pass" : "fail", pass ? "PASS" : "FAIL");
  html += "<table><tr><th>check</th><th></th><th>detail</th></tr>";
  for (const Check& check : checks)
    html += fmt::format("<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>", check.name,
                        check.pass ? "pass" : "fail", check.pass ? "pass" : "FAIL", check.detail);
  html += "</table>";
  html += fmt::format(
      "<p>{} viewers, stock {}, scale {}, seed {}; latency p50 {:.2f} ms, p90 {:.2f} ms, p99 "
      "{:.2f} ms, p99.9 {:.2f} ms, max {:.2f} ms over {} answers. Times are seconds from T-0; "
      "bins are 100 ms from 2 s before T-0 to 5 s after, and one second elsewhere.</p>",
      trace_.header.viewers, trace_.header.drop.units(), trace_.header.scale, trace_.header.seed,
      ms(latency.percentile(0.5)), ms(latency.percentile(0.9)), ms(latency.percentile(0.99)),
      ms(latency.percentile(0.999)), ms(latency.max()), latency.count());
  if (!trace_.header.drop.variants.empty()) {
    html +=
        "<h3>Variants</h3><p class=\"caption\">Units, by the server after the replay and by what "
        "its buyers were told: reserved counts every reservation and promotion, released those "
        "cancelled or expired.</p><table><tr><th>variant</th><th>price</th><th>stock</th>"
        "<th>left</th><th>held</th><th>sold</th><th>reserved</th><th>released</th>"
        "<th>confirmed</th></tr>";
    for (const json::value& row : variants) {
      const auto figure = [&row](std::string_view key) {
        return row.at(key).to_number<std::int64_t>();
      };
      html += fmt::format(
          "<tr><td>{}</td><td>{}.{:02}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
          "<td>{}</td><td>{}</td><td>{}</td></tr>",
          html_escaped(row.at("label").as_string()), figure("price_cents") / 100,
          figure("price_cents") % 100, figure("stock_total"), figure("stock_left"), figure("held"),
          figure("sold"), figure("reserved_seen"), figure("released_seen"),
          figure("confirmed_seen"));
    }
    html += "</table>";
  }
  html += svg_chart({"Answers per second, by status",
                     "Order results the viewers received, as a rate per bin, stacked by status: a "
                     "surge shows as a wall of sold_out on a thin band of reserved.",
                     "answers per second", std::move(stacked), true, span});
  html += svg_chart({"Latency over time",
                     "Time from each order's scheduled send to its answer (open loop, so a stall "
                     "shows in full), by the bin the answer came in.",
                     "latency (ms)",
                     {latency_lines.begin(), latency_lines.end()},
                     false,
                     span});
  html += svg_chart({"Stock left",
                     "The stock viewers were last told. After a sell-out it can rise again: holds "
                     "that expire or are cancelled give units back, which the waitlist or new "
                     "orders take.",
                     "units",
                     {std::move(stock_line)},
                     false,
                     span});
  html += svg_chart({"Viewer connections",
                     "Connections the load generator's viewers held open, as the trace connects "
                     "and drops them.",
                     "connections",
                     {std::move(connections_line)},
                     false,
                     span});
  html += svg_chart({"Frames received per second",
                     "Every message the viewers received (results, updates, stock, ticks), as a "
                     "rate per bin: the fan-out the server carried.",
                     "frames per second",
                     {std::move(frames_line)},
                     false,
                     span});
  if (!server_samples_.empty()) {
    html += svg_chart({"Server CPU",
                       "CPU the server process used, in cores busy, sampled each second from "
                       "its own /metrics.",
                       "cores busy",
                       {std::move(cpu_line)},
                       false,
                       span});
    html += svg_chart({"Server memory",
                       "The server process's resident memory, sampled each second from its own "
                       "/metrics.",
                       "resident memory (MiB)",
                       {std::move(memory_line)},
                       false,
                       span});
  }
  html += "</body></html>\n";
  std::ofstream(options_.report_dir + "/report.html") << html;
}

}  // namespace

int replay(const ReplayOptions& options) {
  Replay run(options, read_trace(options.trace));
  return run.run();
}

}  // namespace flashsale::loadtest
