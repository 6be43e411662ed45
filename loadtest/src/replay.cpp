// See replay.hpp. Viewers are partitioned over the worker threads by number; all state of a
// viewer lives on its thread, and per-thread tallies are merged once the replay is over.
#include "flashsale/loadtest/replay.hpp"

#include <fmt/format.h>

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "client.hpp"
#include "flashsale/loadtest/histogram.hpp"
#include "flashsale/loadtest/http.hpp"
#include "flashsale/loadtest/trace.hpp"

namespace flashsale::loadtest {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::int64_t bucket_ms = 1'000;  // the report's time resolution
// The report's phases, by when an answer came: the countdown before T-0, the spike (its first
// `spike_ms`), and after, when payments, cancels and the waitlist play out.
constexpr std::int64_t spike_ms = 5'000;
std::string_view phase_of(std::int64_t bucket) {
  const std::int64_t at_ms = bucket * bucket_ms;
  return at_ms < 0 ? "countdown" : at_ms < spike_ms ? "spike" : "after";
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
  std::int64_t sent_wall_ms = 0;
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
  std::uint32_t reserved_ever = 0;
  std::uint32_t released = 0;  // cancelled or expired
};

// One thread's tallies.
struct Tally {
  LatencyHistogram latency;
  std::map<std::int64_t, std::map<std::string, std::uint64_t>> by_status;  // bucket -> status -> n
  std::map<std::int64_t, LatencyHistogram> latency_by_bucket;
  std::map<std::int64_t, std::uint32_t> stock_left;  // bucket -> last value seen
  std::map<std::string, std::pair<std::uint32_t, std::string>> order_owner;  // order_id -> user, id
  // Also read by the progress line on the main thread: atomics, relaxed.
  std::atomic<std::uint64_t> sent{0};
  std::atomic<std::uint64_t> answered{0};
  std::atomic<std::uint64_t> reserved{0};
  std::uint64_t abandoned = 0;   // sent on a connection the trace then dropped
  std::uint64_t unexpected = 0;  // a result with nothing pending for it
  std::uint64_t repeat_mismatches = 0;
  std::uint64_t reserved_before_open = 0;
  std::uint64_t duplicate_order_ids = 0;
  std::uint64_t confirmed = 0;
  std::uint64_t released = 0;
  std::uint64_t over_limit = 0;
};

bool recorded(std::string_view status) {
  return status == "reserved" || status == "waitlisted" || status == "sold_out" ||
         status == "limit_exceeded" || status == "closed";
}

struct Check {
  std::string name;
  bool pass;
  std::string detail;
};

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
  void prepare_drop();
  void tick(std::size_t thread);
  void act(std::size_t thread, const Action& action);
  void send(std::uint32_t user, std::string frame);
  void on_message(std::size_t thread, std::uint32_t user, std::string_view message);
  std::vector<Check> verdict(const json::object& server) const;
  void write_report(const std::vector<Check>& checks, const json::object& server,
                    const json::value& server_process, double elapsed_s) const;

  std::int64_t bucket_of(Clock::time_point when) const {
    const auto since = std::chrono::duration_cast<std::chrono::milliseconds>(when - t0_).count();
    return static_cast<std::int64_t>(std::floor(static_cast<double>(since) / bucket_ms));
  }

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
  std::atomic<std::uint32_t> stock_left_{0};  // the last value any viewer was told
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
  opens_at_ms_ = opened.at("opens_at_ms").to_number<std::int64_t>();
  stock_left_ = static_cast<std::uint32_t>(opened.at("stock_left").to_number<std::int64_t>());
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
          [this, user = action.user, connection = viewer.connection.get()](bool ok) {
            Viewer& self = viewers_[user];
            if (!ok || self.connection.get() != connection) return;
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
      viewer.pending[action.client_order_id].push_back({scheduled, wall_ms()});
      tally.sent += 1;
      return send(action.user,
                  fmt::format(R"({{"type":"order","drop":"{}","qty":{},"client_order_id":"{}"}})",
                              drop, action.qty, action.client_order_id));
    }
    case ActionKind::confirm:
    case ActionKind::cancel: {
      const auto held =
          viewer.holding.find(action.client_order_id.empty() ? "c1" : action.client_order_id);
      if (held == viewer.holding.end()) return;  // nothing reserved to pay for or give back
      return send(
          action.user,
          fmt::format(R"({{"type":"{}","order_id":"{}"}})",
                      action.kind == ActionKind::confirm ? "confirm" : "cancel", held->second));
    }
    case ActionKind::disconnect:
      for (auto& [id, sent] : viewer.pending) tally.abandoned += sent.size();
      viewer.pending.clear();
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
  const std::string_view type = field(message, "type");
  if (type == "stock") {
    const auto left = number<std::uint32_t>(field(message, "left"));
    tally.stock_left[bucket_of(now)] = left;
    stock_left_.store(left, std::memory_order_relaxed);
    return;
  }
  if (type == "order_update") {
    const std::string status(field(message, "status"));
    const std::string id(field(message, "client_order_id"));
    if (status == "reserved") {
      viewer.holding[id] = std::string(field(message, "order_id"));
      viewer.reserved_ever += 1;
      tally.reserved += 1;
    } else if (status == "confirmed") {
      // Once per order: after a failover the same state may be reported twice
      // (docs/scaling.md, "Each answer once").
      if (viewer.holding.erase(id) > 0) tally.confirmed += 1;
    } else if (status == "cancelled" || status == "expired") {
      if (viewer.holding.erase(id) > 0) {
        viewer.released += 1;
        tally.released += 1;
      }
    }
    return;
  }
  if (type != "order_result") return;
  const std::string id(field(message, "client_order_id"));
  const std::string status(field(message, "status"));
  auto pending = viewer.pending.find(id);
  if (pending == viewer.pending.end() || pending->second.empty()) {
    tally.unexpected += 1;
    return;
  }
  const Sent sent = pending->second.front();
  pending->second.pop_front();
  tally.answered += 1;
  const auto micros = static_cast<std::uint64_t>(std::max<std::int64_t>(
      0, std::chrono::duration_cast<std::chrono::microseconds>(now - sent.scheduled).count()));
  tally.latency.record(micros);
  tally.latency_by_bucket[bucket_of(now)].record(micros);
  tally.by_status[bucket_of(now)][status] += 1;
  if (!recorded(status)) return;
  const std::string order_id(field(message, "order_id"));
  const auto [decision, first] = viewer.decided.try_emplace(id, Decision{status, order_id});
  if (!first) {
    if (decision->second.status != status || decision->second.order_id != order_id)
      tally.repeat_mismatches += 1;
    return;
  }
  if (status != "reserved") return;
  if (sent.sent_wall_ms < opens_at_ms_) tally.reserved_before_open += 1;
  viewer.holding[id] = order_id;
  viewer.reserved_ever += 1;
  tally.reserved += 1;
  if (viewer.reserved_ever - viewer.released > trace_.header.drop.per_user_limit)
    tally.over_limit += 1;
  const auto [owner, fresh] = tally.order_owner.try_emplace(order_id, user, id);
  if (!fresh) tally.duplicate_order_ids += 1;
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
  prepare_drop();
  schedule_.resize(workers_.size());
  next_.assign(workers_.size(), 0);
  for (const Action& action : trace_.actions)
    schedule_[action.user % workers_.size()].push_back(&action);
  fmt::print("replaying {} actions of {} viewers; T-0 in {} ms\n", trace_.actions.size(),
             trace_.header.viewers, opens_at_ms_ - wall_ms());
  const std::string& metrics_base = options_.metrics.empty() ? options_.api : options_.metrics;
  const std::optional<ProcessFigures> before = read_process_figures(metrics_base);
  const auto started = Clock::now();
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
  std::uint64_t answered_before = 0;
  while (Clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    std::uint64_t sent = 0;
    std::uint64_t answered = 0;
    std::uint64_t reserved = 0;
    for (const Tally& tally : tallies_) {
      sent += tally.sent.load(std::memory_order_relaxed);
      answered += tally.answered.load(std::memory_order_relaxed);
      reserved += tally.reserved.load(std::memory_order_relaxed);
    }
    fmt::print("  t={:+.1f}s  sent {}  answered {} ({}/s)  reserved {}  stock left {}\n",
               std::chrono::duration<double>(Clock::now() - t0_).count(), sent, answered,
               answered - answered_before, reserved, stock_left_.load(std::memory_order_relaxed));
    std::fflush(stdout);
    answered_before = answered;
    if (threads_done_ == workers_.size() && sent == answered && Clock::now() > last) break;
  }
  for (std::size_t index = 0; index < viewers_.size(); ++index) {
    asio::post(workers_.io(index), [this, index] {
      if (viewers_[index].connection) viewers_[index].connection->close();
    });
  }
  workers_.join();
  const double elapsed_s = std::chrono::duration<double>(Clock::now() - started).count();

  const auto server_reply = http_call(HttpTarget::parse(options_.api), "GET",
                                      "/api/drops/" + trace_.header.drop.id, {}, options_.host_key);
  const json::object server = json::parse(server_reply.body).as_object();
  const std::vector<Check> checks = verdict(server);
  json::value server_process;  // null when either reading failed
  if (const auto after = read_process_figures(metrics_base); before && after)
    server_process = json::object{{"cpu_seconds", after->cpu_seconds - before->cpu_seconds},
                                  {"resident_bytes", after->resident_bytes}};
  write_report(checks, server, server_process, elapsed_s);
  bool pass = true;
  for (const Check& check : checks) {
    fmt::print("  {} {:<28} {}\n", check.pass ? "PASS" : "FAIL", check.name, check.detail);
    pass = pass && check.pass;
  }
  fmt::print("verdict: {} (report in {})\n", pass ? "PASS" : "FAIL", options_.report_dir);
  return pass ? 0 : 1;
}

std::vector<Check> Replay::verdict(const json::object& server) const {
  Tally all;
  std::set<std::string> order_ids;
  for (const Tally& tally : tallies_) {
    all.sent += tally.sent;
    all.answered += tally.answered;
    all.abandoned += tally.abandoned;
    all.unexpected += tally.unexpected;
    all.repeat_mismatches += tally.repeat_mismatches;
    all.reserved_before_open += tally.reserved_before_open;
    all.duplicate_order_ids += tally.duplicate_order_ids;
    all.reserved += tally.reserved;
    all.confirmed += tally.confirmed;
    all.released += tally.released;
    all.over_limit += tally.over_limit;
    for (const auto& [order_id, owner] : tally.order_owner)
      if (!order_ids.insert(order_id).second) all.duplicate_order_ids += 1;
  }
  const auto number_of = [&](std::string_view key) {
    return server.at(key).to_number<std::int64_t>();
  };
  const std::int64_t total =
      options_.assume_stock ? *options_.assume_stock : number_of("stock_total");
  std::vector<Check> checks;
  checks.push_back({"every_order_answered_once",
                    all.answered + all.abandoned == all.sent && all.unexpected == 0,
                    fmt::format("{} sent, {} answered, {} abandoned by a disconnect, {} unexpected",
                                all.sent, all.answered, all.abandoned, all.unexpected)});
  checks.push_back(
      {"reserved_within_stock",
       static_cast<std::int64_t>(all.reserved) <= total + static_cast<std::int64_t>(all.released),
       fmt::format("{} reservations seen, stock {} plus {} units returned", all.reserved, total,
                   all.released)});
  checks.push_back(
      {"server_counters_balance",
       number_of("stock_left") + number_of("held") + number_of("sold") == number_of("stock_total"),
       fmt::format("left {} + held {} + sold {} = total {}", number_of("stock_left"),
                   number_of("held"), number_of("sold"), number_of("stock_total"))});
  checks.push_back(
      {"sold_matches_confirmations", number_of("sold") == static_cast<std::int64_t>(all.confirmed),
       fmt::format("server sold {}, buyers told confirmed {}", number_of("sold"), all.confirmed)});
  checks.push_back({"nobody_above_the_limit", all.over_limit == 0,
                    fmt::format("{} viewers over", all.over_limit)});
  checks.push_back({"order_ids_unique", all.duplicate_order_ids == 0,
                    fmt::format("{} order ids given twice", all.duplicate_order_ids)});
  checks.push_back(
      {"no_reservation_before_open", all.reserved_before_open == 0,
       fmt::format("{} reserved for orders sent before T-0", all.reserved_before_open)});
  checks.push_back({"retries_return_the_original", all.repeat_mismatches == 0,
                    fmt::format("{} retries answered differently", all.repeat_mismatches)});
  return checks;
}

// A polyline chart as inline SVG: no scripts, no fetches.
std::string svg_chart(
    std::string_view title,
    const std::vector<std::pair<std::string, std::map<std::int64_t, double>>>& series) {
  constexpr int width = 720;
  constexpr int height = 200;
  std::int64_t first = 0;
  std::int64_t last = 1;
  double top = 1;
  for (const auto& [name, points] : series) {
    for (const auto& [x, y] : points) {
      first = std::min(first, x);
      last = std::max(last, x);
      top = std::max(top, y);
    }
  }
  static constexpr const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                            "#9467bd", "#8c564b", "#17becf"};
  std::string out =
      fmt::format(R"(<h3>{}</h3><svg width="{}" height="{}" viewBox="0 0 {} {}" role="img">)",
                  title, width, height + 20, width, height + 20);
  out += fmt::format(R"(<line x1="40" y1="{0}" x2="{1}" y2="{0}" stroke="#999"/>)", height, width);
  out += fmt::format(
      R"(<text x="0" y="12" font-size="11">{:.0f}</text><text x="40" y="{}" font-size="11">{}s</text>)"
      R"(<text x="{}" y="{}" font-size="11">{}s</text>)",
      top, height + 15, first, width - 30, height + 15, last);
  std::size_t colour = 0;
  for (const auto& [name, points] : series) {
    std::string path;
    for (const auto& [x, y] : points) {
      const double px = 40 + static_cast<double>(x - first) /
                                 static_cast<double>(std::max<std::int64_t>(1, last - first)) *
                                 (width - 50);
      const double py = height - y / top * (height - 10);
      path += fmt::format("{:.1f},{:.1f} ", px, py);
    }
    const char* stroke = colours[colour++ % std::size(colours)];
    out += fmt::format(R"(<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/>)",
                       stroke, path);
    out += fmt::format(R"(<text x="{}" y="{}" font-size="11" fill="{}">{}</text>)",
                       50 + 110 * (colour - 1), 24, stroke, name);
  }
  return out + "</svg>";
}

void Replay::write_report(const std::vector<Check>& checks, const json::object& server,
                          const json::value& server_process, double elapsed_s) const {
  LatencyHistogram latency;
  std::map<std::int64_t, std::map<std::string, std::uint64_t>> by_status;
  std::map<std::int64_t, LatencyHistogram> latency_by_bucket;
  std::map<std::int64_t, std::uint32_t> stock_left;
  std::map<std::string, std::uint64_t> totals;
  for (const Tally& tally : tallies_) {
    latency.merge(tally.latency);
    for (const auto& [bucket, statuses] : tally.by_status)
      for (const auto& [status, count] : statuses) {
        by_status[bucket][status] += count;
        totals[status] += count;
      }
    for (const auto& [bucket, histogram] : tally.latency_by_bucket)
      latency_by_bucket[bucket].merge(histogram);
    for (const auto& [bucket, left] : tally.stock_left) stock_left[bucket] = left;
  }
  const auto ms = [](std::uint64_t micros) { return static_cast<double>(micros) / 1e3; };
  json::object report;
  report["version"] = 1;
  report["scenario"] = trace_.header.scenario;
  report["parameters"] = json::object{{"trace", options_.trace},
                                      {"viewers", trace_.header.viewers},
                                      {"stock", trace_.header.drop.stock},
                                      {"scale", trace_.header.scale},
                                      {"seed", trace_.header.seed},
                                      {"threads", options_.threads},
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
  report["latency_ms"] = json::object{{"p50", ms(latency.percentile(0.5))},
                                      {"p90", ms(latency.percentile(0.9))},
                                      {"p99", ms(latency.percentile(0.99))},
                                      {"p999", ms(latency.percentile(0.999))},
                                      {"max", ms(latency.max())},
                                      {"samples", latency.count()}};
  std::map<std::string_view, LatencyHistogram> by_phase;
  for (const auto& [bucket, histogram] : latency_by_bucket)
    by_phase[phase_of(bucket)].merge(histogram);
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
  // The server's CPU over the replay and its memory at the end, from its own /metrics.
  if (!server_process.is_null()) report["server_process"] = server_process;
  json::array timeline;
  std::vector<std::pair<std::string, std::map<std::int64_t, double>>> rate_series;
  std::map<std::string, std::map<std::int64_t, double>> rates;
  std::map<std::int64_t, double> p99_series;
  std::map<std::int64_t, double> stock_series;
  for (const auto& [bucket, counts] : by_status) {
    json::object point{{"t_s", bucket}};
    json::object per_status;
    for (const auto& [status, count] : counts) {
      per_status[status] = count;
      rates[status][bucket] = static_cast<double>(count) * 1000.0 / bucket_ms;
    }
    point["orders_per_s"] = per_status;
    const auto histogram = latency_by_bucket.find(bucket);
    if (histogram != latency_by_bucket.end()) {
      point["p99_ms"] = ms(histogram->second.percentile(0.99));
      p99_series[bucket] = ms(histogram->second.percentile(0.99));
    }
    timeline.push_back(point);
  }
  for (const auto& [bucket, left] : stock_left) stock_series[bucket] = left;
  report["timeline"] = timeline;
  std::filesystem::create_directories(options_.report_dir);
  std::ofstream(options_.report_dir + "/report.json") << json::serialize(report) << '\n';

  for (auto& [status, points] : rates) rate_series.emplace_back(status, points);
  std::string html = fmt::format(
      "<!doctype html><html><head><meta charset=\"utf-8\"><title>flashsale replay: {0}</title>"
      "<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:800px}}td,th{{padding:2px "
      "8px;text-align:left}}"
      ".pass{{color:#2a7}}.fail{{color:#c22;font-weight:bold}}</style></head><body>"
      "<h1>Replay of <code>{0}</code>: <span class=\"{1}\">{2}</span></h1>",
      trace_.header.scenario, pass ? "pass" : "fail", pass ? "PASS" : "FAIL");
  html += "<table><tr><th>check</th><th></th><th>detail</th></tr>";
  for (const Check& check : checks)
    html += fmt::format("<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>", check.name,
                        check.pass ? "pass" : "fail", check.pass ? "pass" : "FAIL", check.detail);
  html += "</table>";
  html += fmt::format(
      "<p>{} viewers, stock {}, scale {}, seed {}; latency p50 {:.2f} ms, p99 {:.2f} ms, p99.9 "
      "{:.2f} ms, "
      "max {:.2f} ms over {} answers.</p>",
      trace_.header.viewers, trace_.header.drop.stock, trace_.header.scale, trace_.header.seed,
      ms(latency.percentile(0.5)), ms(latency.percentile(0.99)), ms(latency.percentile(0.999)),
      ms(latency.max()), latency.count());
  html += svg_chart("Orders answered per second, by status", rate_series);
  html += svg_chart("p99 latency (ms) per second", {{"p99", p99_series}});
  html += svg_chart("Stock left", {{"left", stock_series}});
  html += "</body></html>\n";
  std::ofstream(options_.report_dir + "/report.html") << html;
}

}  // namespace

int replay(const ReplayOptions& options) {
  Replay run(options, read_trace(options.trace));
  return run.run();
}

}  // namespace flashsale::loadtest
