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
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stop_token>
#include <thread>

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

// `at_ms` rounded down to a multiple of `width`.
std::int64_t floor_to(std::int64_t at_ms, std::int64_t width) {
  return (at_ms >= 0 ? at_ms / width : -((-at_ms + width - 1) / width)) * width;
}

// The report's time bins, by when something happened relative to T-0: 100 ms from 2 s before
// each drop's opening to 5 s after, where a surge rises and is answered within a second, and
// whole seconds elsewhere. A bin is named by its start, in ms. The fine stretches start and
// end on whole seconds, so that the two widths tile.
class Bins {
 public:
  explicit Bins(const std::vector<std::int64_t>& openings_ms) {
    for (const std::int64_t opening : openings_ms)
      fine_from_.push_back(floor_to(opening, coarse_bin_ms) - 2'000);
  }
  std::int64_t width_ms(std::int64_t at_ms) const {
    for (const std::int64_t from : fine_from_)
      if (at_ms >= from && at_ms < from + fine_span_ms) return fine_bin_ms;
    return coarse_bin_ms;
  }
  std::int64_t of(std::int64_t at_ms) const { return floor_to(at_ms, width_ms(at_ms)); }

 private:
  static constexpr std::int64_t fine_span_ms = 7'000, fine_bin_ms = 100, coarse_bin_ms = 1'000;
  std::vector<std::int64_t> fine_from_;
};

// The report's phases of a drop, by when an answer came relative to its opening: the
// countdown before it, the spike (its first `spike_ms`), and after, when payments, cancels and
// the waitlist play out.
constexpr std::int64_t spike_ms = 5'000;
std::string_view phase_of(std::int64_t ms_from_opening) {
  return ms_from_opening < 0 ? "countdown" : ms_from_opening < spike_ms ? "spike" : "after";
}

// A drop the replay sells: the trace's one, or each of its stream's, by index.
struct DropPlan {
  std::string id;  // as viewers and the host API know it
  const DropSetup* setup;
  std::int64_t opens_ms;    // its opening, on the trace's clock
  std::int64_t pin_ms = 0;  // in a stream, when the host pins it
};

std::vector<DropPlan> plans_of(const Trace& trace) {
  const TraceHeader& header = trace.header;
  if (!header.stream) return {{header.drop.id, &header.drop, 0}};
  std::vector<DropPlan> plans;
  for (std::size_t index = 0; index < header.stream->drops.size(); ++index) {
    const StreamDrop& drop = header.stream->drops[index];
    plans.push_back({header.stream->drop_id(index), &drop.setup, drop.opens_ms});
  }
  for (const Action& action : trace.actions)
    if (action.kind == ActionKind::pin) plans[action.drop].pin_ms = action.t_ms;
  return plans;
}

std::vector<std::int64_t> openings_of(const std::vector<DropPlan>& plans) {
  std::vector<std::int64_t> openings;
  for (const DropPlan& plan : plans) openings.push_back(plan.opens_ms);
  return openings;
}

// A stream's drops are pinned within one run: 64 at most, one bit each.
using DropBits = std::uint64_t;
constexpr DropBits bit_of(std::size_t drop) {
  return DropBits{1} << drop;
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
  std::uint32_t drop = 0;
};

struct Decision {
  std::string status;
  std::string order_id;
};

// What an order asked for: in a stream, or on a drop with variants.
struct Asked {
  std::uint32_t drop = 0;
  std::string variant;  // empty on a drop without variants
  std::uint32_t qty = 1;
};

// A viewer's units in one drop.
struct Held {
  std::uint32_t reserved_ever = 0;
  std::uint32_t released = 0;  // cancelled or expired
};

// A viewer's client_order_ids are its own across a stream's drops (the trace says so), so its
// orders are found by them alone, and their drop from `asked`.
struct Viewer {
  std::shared_ptr<Connection> connection;
  bool ready = false;
  std::vector<std::string> waiting;                 // frames sent before the connection was up
  std::map<std::string, std::deque<Sent>> pending;  // by client_order_id
  std::map<std::string, Decision> decided;          // first recorded outcome by client_order_id
  std::map<std::string, std::string> holding;       // client_order_id -> order_id while reserved
  std::map<std::string, Asked> asked;               // by client_order_id
  std::set<std::string> paying;  // order ids with a confirm or cancel not yet answered
  // client_order_ids whose hold is counted in reserved_ever: each once, whichever told of it
  // first (the order's answer, a promotion, or a subscribe telling a returning buyer)
  std::set<std::string> held_ever;
  std::vector<Held> held;  // by drop
  // In a stream: when this connection subscribed to it, and the drops it was shown pinned.
  std::optional<Clock::time_point> subscribed_at;
  DropBits pins_shown = 0;
};

// One thread's tallies: what it saw, and the progress line's counters, which the main thread
// reads while the replay runs (atomics, relaxed).
struct Tally {
  Totals seen;
  // By drop; duplicates within the thread are counted as they come.
  std::vector<std::set<std::string>> order_ids;
  std::atomic<std::uint64_t> sent{0};
  std::atomic<std::uint64_t> answered{0};
  std::atomic<std::uint64_t> reserved{0};
  std::array<std::atomic<std::uint64_t>, progress_statuses.size() + 1> answers{};  // + other
  std::atomic<std::uint64_t> payments_sent{0};
  std::atomic<std::uint64_t> payments_answered{0};  // or abandoned by a disconnect

  // Where the figures of one drop go: a stream's by drop, else all together.
  Totals& of(std::size_t drop) { return seen.drops.empty() ? seen : seen.drops[drop]; }

  Totals finish() {
    for (std::size_t drop = 0; drop < order_ids.size(); ++drop)
      of(drop).order_ids.assign(order_ids[drop].begin(), order_ids[drop].end());
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

double ms(std::uint64_t micros) {
  return static_cast<double>(micros) / 1e3;
}

json::object latency_json(const LatencyHistogram& latency) {
  return json::object{{"p50", ms(latency.percentile(0.5))},
                      {"p90", ms(latency.percentile(0.9))},
                      {"p99", ms(latency.percentile(0.99))},
                      {"p999", ms(latency.percentile(0.999))},
                      {"max", ms(latency.max())},
                      {"samples", latency.count()}};
}

// Answers by status, over the whole run.
json::object results_json(const Totals& seen) {
  std::map<std::string, std::uint64_t> totals;
  for (const auto& [bin, statuses] : seen.by_status)
    for (const auto& [status, count] : statuses) totals[status] += count;
  json::object results;
  for (const auto& [status, count] : totals) results[status] = count;
  return results;
}

// Adds a drop's answers to `phases`, each by when it came from the drop's opening.
void add_phases(const Totals& seen, std::int64_t opens_ms,
                std::map<std::string_view, LatencyHistogram>& phases) {
  for (const auto& [bin, histogram] : seen.latency_by_bin)
    phases[phase_of(bin - opens_ms)].merge(histogram);
}

json::object phases_json(const std::map<std::string_view, LatencyHistogram>& by_phase) {
  json::object phases;
  for (const auto& [phase, histogram] : by_phase)
    phases[phase] = json::object{{"answers", histogram.count()},
                                 {"p50_ms", ms(histogram.percentile(0.5))},
                                 {"p90_ms", ms(histogram.percentile(0.9))},
                                 {"p99_ms", ms(histogram.percentile(0.99))},
                                 {"max_ms", ms(histogram.max())}};
  return phases;
}

// The checks of one drop of a stream (`drop` its name), of the stream itself (`drop` empty),
// or all of them (null).
bool about(const Check& check, const std::string* drop) {
  return drop == nullptr || check.drop == *drop;
}
const std::string empty_drop;  // `about` the stream's own checks

json::array checks_json(const std::vector<Check>& checks, const std::string* drop) {
  json::array list;
  for (const Check& check : checks) {
    if (!about(check, drop)) continue;
    json::object item{{"name", check.name}, {"pass", check.pass}, {"detail", check.detail}};
    if (!check.drop.empty()) item["drop"] = check.drop;
    list.push_back(std::move(item));
  }
  return list;
}

std::string checks_html(const std::vector<Check>& checks, const std::string* drop) {
  std::string html = "<table><tr><th>check</th><th></th><th>detail</th></tr>";
  for (const Check& check : checks)
    if (about(check, drop))
      html += fmt::format("<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>", check.name,
                          check.pass ? "pass" : "fail", check.pass ? "pass" : "FAIL",
                          html_escaped(check.detail));
  return html + "</table>";
}

// The table of a drop's variants, from variant_rows.
std::string variants_html(const json::array& rows) {
  std::string html =
      "<h3>Variants</h3><p class=\"caption\">Units, by the server after the replay and by what "
      "its buyers were told: reserved counts every reservation and promotion, released those "
      "cancelled or expired.</p><table><tr><th>variant</th><th>price</th><th>stock</th>"
      "<th>left</th><th>held</th><th>sold</th><th>reserved</th><th>released</th>"
      "<th>confirmed</th></tr>";
  for (const json::value& row : rows) {
    const auto figure = [&row](std::string_view key) {
      return row.at(key).to_number<std::int64_t>();
    };
    html += fmt::format(
        "<tr><td>{}</td><td>{}.{:02}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
        "<td>{}</td><td>{}</td><td>{}</td></tr>",
        html_escaped(row.at("label").as_string()), figure("price_cents") / 100,
        figure("price_cents") % 100, figure("stock_total"), figure("stock_left"), figure("held"),
        figure("sold"), figure("reserved_seen"), figure("released_seen"), figure("confirmed_seen"));
  }
  return html + "</table>";
}

// Adds the units of the viewer's order `client_order_id` to its variant's `counter`.
void count_variant(const Viewer& viewer, const std::string& client_order_id,
                   std::uint64_t VariantSeen::*counter, Totals& seen) {
  const auto asked = viewer.asked.find(client_order_id);
  if (asked == viewer.asked.end() || asked->second.variant.empty()) return;
  seen.variants[asked->second.variant].*counter += asked->second.qty;
}

// The viewer learned that its order `client_order_id` in `drop` holds units. Counted once per
// order: after a reconnect, the subscribe's update can arrive before the answer to the retried
// order.
void count_hold(Viewer& viewer, std::uint32_t drop, const std::string& client_order_id,
                std::string_view order_id, std::uint32_t per_user_limit,
                std::atomic<std::uint64_t>& reserved, Totals& seen) {
  viewer.holding.try_emplace(client_order_id, std::string(order_id));
  if (!viewer.held_ever.insert(client_order_id).second) return;
  Held& held = viewer.held[drop];
  held.reserved_ever += 1;
  reserved += 1;
  seen.reserved += 1;
  count_variant(viewer, client_order_id, &VariantSeen::reserved, seen);
  if (held.reserved_ever - held.released > per_user_limit) seen.over_limit += 1;
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
        plans_(plans_of(trace_)),
        bins_(openings_of(plans_)),
        workers_(options.threads),
        viewers_(trace_.header.viewers),
        tallies_(workers_.size()),
        targets_(parse_targets(options.url)) {
    for (Viewer& viewer : viewers_) viewer.held.resize(plans_.size());
    for (Tally& tally : tallies_) {
      tally.order_ids.resize(plans_.size());
      if (!stream()) continue;
      tally.seen.drops.resize(plans_.size());
      tally.seen.pins.resize(plans_.size());
    }
  }

  int run();

 private:
  // The three ways to run: all viewers in this process; a coordinator of worker processes; and
  // one of those workers, which plays its share of the viewers and hands back what it saw.
  int run_whole();
  int coordinate();
  int run_part();

  void prepare_drop();
  // A stream: creates it and its drops and sets it live; T-0 comes `countdown_ms` later.
  void prepare_stream();
  void set_opening(std::int64_t opens_at_ms);
  // The host's part in a stream, on its own thread: each pin, and its drop's countdown, at
  // its instant. Starts once T-0 is set; `join_host` waits for the last pin.
  void start_host();
  void join_host();
  void pin_drops(const std::stop_token& stop);
  // Plays this process's viewers until the schedule ran out and the grace period passed (or
  // every order was answered), calling `each_second` with the progress so far; what was seen.
  Totals play(const std::function<void(const Progress&)>& each_second);
  void tick(std::size_t thread);
  void act(std::size_t thread, const Action& action);
  void send(std::uint32_t user, std::string frame);
  void on_message(std::size_t thread, std::uint32_t user, std::string_view message);
  void on_stream(Tally& tally, Viewer& viewer, std::string_view message, Clock::time_point now);
  // After the play: the pins each viewer still subscribed was owed, and missed.
  void count_pins_owed(Totals& seen) const;
  // The progress line, and a sample of the server's CPU and memory.
  void show_progress(const Progress& progress);
  // The verdict and the report from everything the viewers saw; the exit status.
  int finish(const Totals& seen, const std::optional<ProcessFigures>& before, double elapsed_s);
  // `servers`: each drop as the host API gives it after the replay; `stream_server`: the
  // stream (null without one).
  void write_report(const Totals& seen, const std::vector<Check>& checks,
                    const std::vector<json::object>& servers, const json::value& stream_server,
                    const json::value& server_process, double elapsed_s) const;

  bool stream() const { return trace_.header.stream.has_value(); }
  // The drop of a viewer's order, by its client_order_id.
  std::uint32_t drop_of(const Viewer& viewer, const std::string& client_order_id) const {
    if (!stream()) return 0;
    const auto asked = viewer.asked.find(client_order_id);
    return asked == viewer.asked.end() ? 0 : asked->second.drop;
  }
  std::int64_t bin_at(Clock::time_point when) const {
    return bins_.of(std::chrono::duration_cast<std::chrono::milliseconds>(when - t0_).count());
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
  std::vector<DropPlan> plans_;  // by drop index
  Bins bins_;
  Workers workers_;
  std::vector<Viewer> viewers_;
  std::vector<Tally> tallies_;
  std::vector<WsTarget> targets_;  // viewers spread over them by user number
  std::int64_t opens_at_ms_ = 0;
  Clock::time_point t0_;
  std::vector<Clock::time_point> pin_at_;  // by drop, in a stream: when the host pins it
  // By drop, written by the host thread until join_host; the last drop pinned, for the
  // progress line (-1: none yet).
  std::vector<PinCall> pin_calls_;
  std::atomic<int> last_pinned_{-1};
  std::jthread host_;
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

// The operator names the host a stream is for, an account that must exist: the replay's
// streams are for this one, made if need be (its key, shown once, is not kept: the operator key
// does the rest).
constexpr std::string_view operator_stream_host = "loadtest";

// With the operator key (--host-key dev-admin-key) the stream is created for
// operator_stream_host; with a host's key, for that host. A stream or drop that exists already
// is used as it is (a second replay against one server then fails at the pins of drops already
// open: replay a stream against a fresh server).
void Replay::prepare_stream() {
  const HttpTarget api = HttpTarget::parse(options_.api);
  const StreamSetup& stream = *trace_.header.stream;
  // Only the operator may make a host: 201, or 409 when it exists; a host's key gets 403.
  const auto host =
      http_call(api, "POST", "/api/admin/hosts",
                json::serialize(json::object{{"id", operator_stream_host}}), options_.host_key);
  const bool by_operator = host.status == 201 || host.status == 409;
  if (!by_operator && host.status != 403)
    throw std::runtime_error("--host-key is neither a host's key nor the operator's: " + host.body);
  json::object body{{"id", stream.id}, {"title", stream.title}};
  if (by_operator) body["host"] = operator_stream_host;
  const auto created =
      http_call(api, "POST", "/api/streams", json::serialize(body), options_.host_key);
  if (created.status != 201 && created.status != 409)
    throw std::runtime_error("cannot create stream " + stream.id + ": " + created.body);
  for (const StreamDrop& drop : stream.drops) {
    const auto made = http_call(api, "POST", "/api/streams/" + stream.id + "/drops",
                                json::serialize(to_json(drop.setup)), options_.host_key);
    if (made.status != 201 && made.status != 409)
      throw std::runtime_error("cannot create drop " + drop.setup.id + " in stream " + stream.id +
                               ": " + made.body);
  }
  const auto live =
      http_call(api, "POST", "/api/streams/" + stream.id + "/live", {}, options_.host_key);
  if (live.status != 200 && live.status != 409)
    throw std::runtime_error("cannot set stream " + stream.id + " live: " + live.body);
  set_opening(wall_ms() + trace_.header.countdown_ms);
}

void Replay::set_opening(std::int64_t opens_at_ms) {
  opens_at_ms_ = opens_at_ms;
  t0_ = Clock::now() + std::chrono::milliseconds(opens_at_ms_ - wall_ms());
  pin_at_.clear();
  for (const DropPlan& plan : plans_)
    pin_at_.push_back(t0_ + std::chrono::milliseconds(plan.pin_ms));
}

void Replay::start_host() {
  if (!stream()) return;
  pin_calls_.assign(plans_.size(), {});
  for (std::size_t drop = 0; drop < plans_.size(); ++drop) {
    pin_calls_[drop].drop = plans_[drop].setup->id;
    pin_calls_[drop].planned_opens_at_ms = opens_at_ms_ + plans_[drop].opens_ms;
  }
  host_ = std::jthread([this](const std::stop_token& stop) { pin_drops(stop); });
}

void Replay::join_host() {
  if (host_.joinable()) host_.join();
}

// Open loop, as the viewers: each pin is made at its instant whatever became of the last, and
// the pin-to-screen latency counts from that instant.
void Replay::pin_drops(const std::stop_token& stop) {
  const HttpTarget api = HttpTarget::parse(options_.api);
  const std::string& stream = trace_.header.stream->id;
  std::mutex mutex;
  std::condition_variable_any never;
  for (const Action& action : trace_.actions) {
    if (action.kind != ActionKind::pin) continue;
    const Clock::time_point at = pin_at_[action.drop];
    {
      std::unique_lock lock(mutex);
      never.wait_until(lock, stop, at, [] { return false; });
    }
    if (stop.stop_requested()) return;
    PinCall& call = pin_calls_[action.drop];
    const DropPlan& plan = plans_[action.drop];
    const auto started = Clock::now();
    call.late_ms = std::chrono::duration_cast<std::chrono::milliseconds>(started - at).count();
    try {
      const HttpReply pinned =
          http_call(api, "POST", "/api/streams/" + stream + "/pin",
                    json::serialize(json::object{{"drop", plan.id}}), options_.host_key);
      call.pin_call_ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
      call.pin_status = pinned.status;
      if (pinned.status != 200) {
        call.refusal = pinned.body;
        continue;
      }
      last_pinned_ = static_cast<int>(action.drop);
      const HttpReply counted =
          http_call(api, "POST", "/api/drops/" + plan.id + "/countdown",
                    json::serialize(json::object{{"opens_at_ms", call.planned_opens_at_ms}}),
                    options_.host_key);
      call.countdown_status = counted.status;
      if (counted.status != 200) {
        call.refusal = counted.body;
        continue;
      }
      call.opens_at_ms = json::parse(counted.body).at("opens_at_ms").to_number<std::int64_t>();
    } catch (const std::exception& error) {
      call.refusal = error.what();
    }
  }
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
  const std::string& drop = plans_[action.drop].id;
  switch (action.kind) {
    case ActionKind::connect: {
      viewer.ready = false;
      viewer.subscribed_at.reset();
      viewer.pins_shown = 0;
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
      if (stream()) {
        viewer.subscribed_at = Clock::now();
        return send(action.user, fmt::format(R"({{"type":"subscribe","stream":"{}"}})",
                                             trace_.header.stream->id));
      }
      return send(action.user, fmt::format(R"({{"type":"subscribe","drop":"{}"}})", drop));
    case ActionKind::order:
    case ActionKind::retry: {
      const auto scheduled = t0_ + std::chrono::milliseconds(action.t_ms);
      viewer.pending[action.client_order_id].push_back({scheduled, action.drop});
      tally.sent += 1;
      tally.of(action.drop).sent += 1;
      if (stream() || !action.variant.empty())
        viewer.asked[action.client_order_id] = {action.drop, action.variant, action.qty};
      if (action.variant.empty())
        return send(action.user,
                    fmt::format(R"({{"type":"order","drop":"{}","qty":{},"client_order_id":"{}"}})",
                                drop, action.qty, action.client_order_id));
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
      for (const auto& [id, sent] : viewer.pending)
        for (const Sent& one : sent) tally.of(one.drop).abandoned += 1;
      viewer.pending.clear();
      tally.payments_answered += viewer.paying.size();
      viewer.paying.clear();
      if (viewer.ready) tally.seen.connections[bin_at(Clock::now())] -= 1;
      viewer.ready = false;
      viewer.waiting.clear();
      if (viewer.connection) viewer.connection->close();
      viewer.connection.reset();
      viewer.subscribed_at.reset();
      viewer.pins_shown = 0;
      return;
    case ActionKind::pin:
      return;  // the host's, made by the process that set the stream up
  }
}

void Replay::on_message(std::size_t thread, std::uint32_t user, std::string_view message) {
  Viewer& viewer = viewers_[user];
  Tally& tally = tallies_[thread];
  const auto now = Clock::now();
  tally.seen.frames_in[bin_at(now)] += 1;
  const std::string_view type = field(message, "type");
  if (type == "stock") {
    const auto left = number<std::uint32_t>(field(message, "left"));
    const auto told_us = std::chrono::duration_cast<std::chrono::microseconds>(now - t0_).count();
    tally.seen.stock_left[bin_at(now)] = {told_us, left};
    stock_left_.store(left, std::memory_order_relaxed);
    stock_told_us_.store(told_us, std::memory_order_relaxed);
    return;
  }
  if (type == "stream") return on_stream(tally, viewer, message, now);
  if (type == "error") {
    if (viewer.paying.erase(std::string(field(message, "ref"))) > 0) tally.payments_answered += 1;
    return;
  }
  if (type == "order_update") {
    const std::string status(field(message, "status"));
    const std::string id(field(message, "client_order_id"));
    const std::uint32_t drop = drop_of(viewer, id);
    Totals& seen = tally.of(drop);
    if (status != "reserved" && viewer.paying.erase(std::string(field(message, "order_id"))) > 0)
      tally.payments_answered += 1;
    if (status == "reserved") {
      // A promotion, or a subscribe telling a buyer of holds it has.
      count_hold(viewer, drop, id, field(message, "order_id"), plans_[drop].setup->per_user_limit,
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
        viewer.held[drop].released += 1;
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
    tally.of(drop_of(viewer, id)).unexpected += 1;
    return;
  }
  const Sent sent = pending->second.front();
  pending->second.pop_front();
  const DropPlan& plan = plans_[sent.drop];
  Totals& seen = tally.of(sent.drop);
  tally.answered += 1;
  seen.answered += 1;
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
  // Decided by the server's clock, which set the hold running: an order sent just before its
  // drop's opening may fairly arrive after it.
  const std::int64_t decided_at_ms = number<std::int64_t>(field(message, "hold_expires_at_ms")) -
                                     std::int64_t{plan.setup->hold_seconds} * 1000;
  const std::int64_t opens_at_ms = opens_at_ms_ + plan.opens_ms;
  if (decided_at_ms < opens_at_ms) seen.reserved_before_open += 1;
  const std::uint32_t duration_seconds = plan.setup->duration_seconds;
  if (duration_seconds > 0 && decided_at_ms >= opens_at_ms + std::int64_t{duration_seconds} * 1000)
    seen.reserved_after_end += 1;
  count_hold(viewer, sent.drop, id, order_id, plan.setup->per_user_limit, tally.reserved, seen);
  if (!tally.order_ids[sent.drop].insert(order_id).second) seen.duplicate_order_ids += 1;
}

// The first `stream` frame on a connection that names a drop pinned shows the viewer that pin:
// pushed when the pin came after the subscribe, else told by the subscribe itself.
void Replay::on_stream(Tally& tally, Viewer& viewer, std::string_view message,
                       Clock::time_point now) {
  const std::string_view pinned = field(message, "pinned");
  for (std::size_t drop = 0; drop < plans_.size(); ++drop) {
    if (plans_[drop].id != pinned) continue;
    if ((viewer.pins_shown & bit_of(drop)) != 0) return;
    viewer.pins_shown |= bit_of(drop);
    if (viewer.subscribed_at && *viewer.subscribed_at <= pin_at_[drop])
      tally.seen.pins[drop].latency.record(static_cast<std::uint64_t>(std::max<std::int64_t>(
          0, std::chrono::duration_cast<std::chrono::microseconds>(now - pin_at_[drop]).count())));
    return;
  }
}

void Replay::count_pins_owed(Totals& seen) const {
  for (std::uint32_t user = 0; user < viewers_.size(); ++user) {
    const Viewer& viewer = viewers_[user];
    if (!plays(user) || !viewer.connection || !viewer.subscribed_at) continue;
    for (std::size_t drop = 0; drop < plans_.size(); ++drop) {
      if (pin_at_[drop] < *viewer.subscribed_at) continue;
      seen.pins[drop].owed += 1;
      if ((viewer.pins_shown & bit_of(drop)) == 0) seen.pins[drop].missed += 1;
    }
  }
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
  if (stream()) {
    prepare_stream();
  } else {
    prepare_drop();
  }
  start_host();
  fmt::print("replaying {} actions of {} viewers; T-0 in {} ms\n", trace_.actions.size(),
             trace_.header.viewers, opens_at_ms_ - wall_ms());
  const std::optional<ProcessFigures> before = read_process_figures(metrics_base());
  sampled_ = before;
  sampled_at_ = Clock::now();
  const auto started = Clock::now();
  const Totals seen = play([this](const Progress& progress) { show_progress(progress); });
  join_host();
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
  if (stream()) {
    prepare_stream();
  } else {
    prepare_drop();
  }
  const std::string start = json::serialize(json::object{{"opens_at_ms", opens_at_ms_}});
  for (Worker& worker : workers) worker.process.write_line(start);
  start_host();
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
  join_host();
  return finish(seen, before, std::chrono::duration<double>(Clock::now() - started).count());
}

Totals Replay::play(const std::function<void(const Progress&)>& each_second) {
  schedule_.resize(workers_.size());
  next_.assign(workers_.size(), 0);
  for (const Action& action : trace_.actions)
    if (action.kind != ActionKind::pin && plays(action.user))
      schedule_[thread_of(action.user)].push_back(&action);
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
  if (stream()) count_pins_owed(seen);
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
  // In a stream the viewers hear of stock in the stream's frames, which the replay does not
  // read for it: the line says which drop is on screen instead.
  const int pinned = last_pinned_.load();
  const std::string on_screen =
      !stream()    ? fmt::format("stock left {}", told ? progress.stock.left : stock_left_.load())
         : pinned < 0 ? std::string("nothing pinned")
                   : fmt::format("pinned {}", plans_[static_cast<std::size_t>(pinned)].setup->id);
  fmt::print("  t={:+.1f}s  sent {}  answered {} ({}/s):{}  p99 {:.1f} ms  reservations {}  {}\n",
             now_s, progress.sent, progress.answered, progress.answered - answered_before_,
             by_status, static_cast<double>(progress.latency.percentile(0.99)) / 1e3,
             progress.reserved, on_screen);
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
  const HttpTarget api = HttpTarget::parse(options_.api);
  std::vector<json::object> servers;
  for (const DropPlan& plan : plans_)
    servers.push_back(
        json::parse(http_call(api, "GET", "/api/drops/" + plan.id, {}, options_.host_key).body)
            .as_object());
  const VerdictContext context{options_.assume_stock, wall_ms()};
  std::vector<Check> checks;
  json::value stream_server;  // null without a stream
  if (stream()) {
    checks = stream_verdict(seen, pin_calls_);
    for (std::size_t drop = 0; drop < plans_.size(); ++drop)
      for (Check& check : verdict(seen.drops[drop], servers[drop], *plans_[drop].setup, context)) {
        check.drop = plans_[drop].setup->id;
        checks.push_back(std::move(check));
      }
    stream_server = json::parse(
        http_call(api, "GET", "/api/streams/" + trace_.header.stream->id, {}, options_.host_key)
            .body);
  } else {
    checks = verdict(seen, servers.front(), trace_.header.drop, context);
  }
  json::value server_process;  // null when either reading failed
  if (const auto after = read_process_figures(metrics_base()); before && after)
    server_process = json::object{{"cpu_seconds", after->cpu_seconds - before->cpu_seconds},
                                  {"resident_bytes", after->resident_bytes}};
  write_report(seen, checks, servers, stream_server, server_process, elapsed_s);
  bool pass = true;
  for (const Check& check : checks) {
    fmt::print("  {} {:<34} {}\n", check.pass ? "PASS" : "FAIL",
               check.drop.empty() ? check.name : check.drop + ": " + check.name, check.detail);
    pass = pass && check.pass;
  }
  fmt::print("verdict: {} (report in {})\n", pass ? "PASS" : "FAIL", options_.report_dir);
  return pass ? 0 : 1;
}

Progress Replay::progress_so_far() {
  std::vector<std::promise<LatencyHistogram>> copies(workers_.size());
  for (std::size_t thread = 0; thread < workers_.size(); ++thread)
    asio::post(workers_.io(thread), [this, thread, &copies] {
      const Totals& seen = tallies_[thread].seen;
      LatencyHistogram latency = seen.latency;
      for (const Totals& drop : seen.drops) latency.merge(drop.latency);
      copies[thread].set_value(latency);
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
                          const std::vector<json::object>& servers,
                          const json::value& stream_server, const json::value& server_process,
                          double elapsed_s) const {
  const Totals all = seen.combined();
  const LatencyHistogram& latency = all.latency;
  const auto& by_status = all.by_status;
  const auto& latency_by_bin = all.latency_by_bin;
  const auto& frames_in = all.frames_in;
  const auto& connection_changes = all.connections;
  const auto seconds = [](std::int64_t bin) { return static_cast<double>(bin) / 1e3; };
  const auto per_s = [this](double count, std::int64_t bin) {
    return count * 1000.0 / static_cast<double>(bins_.width_ms(bin));
  };
  // Each drop's figures, and its phases from its own opening; the run's phases add them up.
  const auto drop_seen = [&](std::size_t drop) -> const Totals& {
    return stream() ? seen.drops[drop] : seen;
  };
  std::map<std::string_view, LatencyHistogram> by_phase;
  for (std::size_t drop = 0; drop < plans_.size(); ++drop)
    add_phases(drop_seen(drop), plans_[drop].opens_ms, by_phase);
  json::object report;
  report["version"] = 1;
  report["scenario"] = trace_.header.scenario;
  json::object parameters{{"trace", options_.trace},        {"viewers", trace_.header.viewers},
                          {"stock", trace_.header.units()}, {"scale", trace_.header.scale},
                          {"seed", trace_.header.seed},     {"threads", options_.threads},
                          {"workers", options_.workers},    {"url", options_.url}};
  if (stream()) parameters["drops"] = plans_.size();
  report["parameters"] = std::move(parameters);
  bool pass = true;
  for (const Check& check : checks) pass = pass && check.pass;
  report["verdict"] = json::object{{"pass", pass}, {"checks", checks_json(checks, nullptr)}};
  report["results"] = results_json(all);
  report["orders"] =
      json::object{{"sent", all.sent}, {"answered", all.answered}, {"abandoned", all.abandoned}};
  report["latency_ms"] = latency_json(latency);
  report["phases"] = phases_json(by_phase);
  report["elapsed_s"] = elapsed_s;
  report["server"] = stream() ? stream_server : json::value(servers.front());
  std::vector<json::array> variants;  // by drop
  for (std::size_t drop = 0; drop < plans_.size(); ++drop)
    variants.push_back(variant_rows(drop_seen(drop), servers[drop]));
  if (!stream() && !trace_.header.drop.variants.empty()) report["variants"] = variants.front();
  LatencyHistogram pin_to_screen;
  if (stream()) {
    const StreamSetup& stream_setup = *trace_.header.stream;
    json::array drops;
    for (std::size_t drop = 0; drop < plans_.size(); ++drop) {
      const DropPlan& plan = plans_[drop];
      const Totals& figures = seen.drops[drop];
      const PinSeen& pin = seen.pins[drop];
      const PinCall& call = pin_calls_[drop];
      pin_to_screen.merge(pin.latency);
      std::map<std::string_view, LatencyHistogram> phases;
      add_phases(figures, plan.opens_ms, phases);
      bool drop_pass = true;
      for (const Check& check : checks)
        if (check.drop == plan.setup->id) drop_pass = drop_pass && check.pass;
      json::object item{{"id", plan.id},
                        {"name", plan.setup->id},
                        {"title", plan.setup->title},
                        {"pinned_at_s", seconds(plan.pin_ms)},
                        {"opens_at_s", seconds(plan.opens_ms)},
                        {"stock", plan.setup->units()},
                        {"verdict", json::object{{"pass", drop_pass},
                                                 {"checks", checks_json(checks, &plan.setup->id)}}},
                        {"results", results_json(figures)},
                        {"orders", json::object{{"sent", figures.sent},
                                                {"answered", figures.answered},
                                                {"abandoned", figures.abandoned}}},
                        {"latency_ms", latency_json(figures.latency)},
                        {"phases", phases_json(phases)},
                        {"server", servers[drop]},
                        {"pin", json::object{{"owed", pin.owed},
                                             {"shown", pin.owed - pin.missed},
                                             {"missed", pin.missed},
                                             {"late_ms", call.late_ms},
                                             {"call_ms", call.pin_call_ms},
                                             {"pin_to_screen_ms", latency_json(pin.latency)}}}};
      if (!plan.setup->variants.empty()) item["variants"] = variants[drop];
      drops.push_back(std::move(item));
    }
    report["stream"] = json::object{{"id", stream_setup.id},
                                    {"title", stream_setup.title},
                                    {"pin_to_screen_ms", latency_json(pin_to_screen)}};
    report["drops"] = std::move(drops);
  }
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
    json::object point{{"t_s", at_s}, {"width_s", seconds(bins_.width_ms(bin))}};
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
    span = {seconds(*bins.begin()), seconds(*bins.rbegin() + bins_.width_ms(*bins.rbegin()))};
  if (!server_samples_.empty()) span.second = std::max(span.second, server_samples_.back().t_s);
  ChartSeries stock_line{"stock left", {}};
  for (const auto& [bin, told] : all.stock_left) stock_line.points[seconds(bin)] = told.left;
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
  // The run's checks; in a stream, the stream's, each drop's coming in its own section.
  html += checks_html(checks, stream() ? &empty_drop : nullptr);
  html += fmt::format(
      "<p>{} viewers, stock {}, scale {}, seed {}; latency p50 {:.2f} ms, p90 {:.2f} ms, p99 "
      "{:.2f} ms, p99.9 {:.2f} ms, max {:.2f} ms over {} answers. Times are seconds from T-0{}; "
      "bins are 100 ms from 2 s before {} to 5 s after, and one second elsewhere.</p>",
      trace_.header.viewers, trace_.header.units(), trace_.header.scale, trace_.header.seed,
      ms(latency.percentile(0.5)), ms(latency.percentile(0.9)), ms(latency.percentile(0.99)),
      ms(latency.percentile(0.999)), ms(latency.max()), latency.count(),
      stream() ? ", the first drop's opening" : "", stream() ? "each drop's opening" : "T-0");
  if (!stream() && !trace_.header.drop.variants.empty()) html += variants_html(variants.front());
  if (stream()) {
    html += fmt::format(
        "<h2>Stream <code>{}</code>: {}</h2><h3>Pins</h3><p class=\"caption\">Each drop pinned "
        "by the host at its instant: the viewers subscribed to the stream before it (on a "
        "connection kept to the end) that were shown it, and pin to screen, from the pin's "
        "scheduled instant to the <code>stream</code> frame naming it, p50 {:.1f} ms and p99 "
        "{:.1f} ms over {} viewers.</p><table><tr><th>drop</th><th>pinned at</th>"
        "<th>opens at</th><th>shown</th><th>missed</th><th>p50</th><th>p90</th><th>p99</th>"
        "<th>max</th><th>pin call</th></tr>",
        html_escaped(trace_.header.stream->id), html_escaped(trace_.header.stream->title),
        ms(pin_to_screen.percentile(0.5)), ms(pin_to_screen.percentile(0.99)),
        pin_to_screen.count());
    for (std::size_t drop = 0; drop < plans_.size(); ++drop) {
      const PinSeen& pin = seen.pins[drop];
      html += fmt::format(
          "<tr><td>{}</td><td>{:+.1f} s</td><td>{:+.1f} s</td><td>{} of {}</td><td>{}</td>"
          "<td>{:.1f} ms</td><td>{:.1f} ms</td><td>{:.1f} ms</td><td>{:.1f} ms</td>"
          "<td>{:.1f} ms, {} ms late</td></tr>",
          html_escaped(plans_[drop].setup->id), seconds(plans_[drop].pin_ms),
          seconds(plans_[drop].opens_ms), pin.owed - pin.missed, pin.owed, pin.missed,
          ms(pin.latency.percentile(0.5)), ms(pin.latency.percentile(0.9)),
          ms(pin.latency.percentile(0.99)), ms(pin.latency.max()), pin_calls_[drop].pin_call_ms,
          pin_calls_[drop].late_ms);
    }
    html += "</table>";
    for (std::size_t drop = 0; drop < plans_.size(); ++drop) {
      const DropPlan& plan = plans_[drop];
      const Totals& figures = seen.drops[drop];
      bool drop_pass = true;
      for (const Check& check : checks)
        if (check.drop == plan.setup->id) drop_pass = drop_pass && check.pass;
      std::string answers;
      for (const auto& [status, count] : results_json(figures))
        answers += fmt::format("{}{} {}", answers.empty() ? "" : ", ",
                               count.to_number<std::uint64_t>(), status);
      html += fmt::format(
          "<h2>Drop <code>{}</code>, {}: <span class=\"{}\">{}</span></h2><p>Pinned at {:+.1f} "
          "s, opening at {:+.1f} s; stock {}; {} orders sent, answered {}{}; latency p50 "
          "{:.2f} ms, p99 {:.2f} ms, max {:.2f} ms.</p>",
          html_escaped(plan.setup->id), html_escaped(plan.setup->title),
          drop_pass ? "pass" : "fail", drop_pass ? "PASS" : "FAIL", seconds(plan.pin_ms),
          seconds(plan.opens_ms), plan.setup->units(), figures.sent, figures.answered,
          answers.empty() ? "" : ": " + answers, ms(figures.latency.percentile(0.5)),
          ms(figures.latency.percentile(0.99)), ms(figures.latency.max()));
      html += checks_html(checks, &plan.setup->id);
      if (!plan.setup->variants.empty()) html += variants_html(variants[drop]);
    }
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
  // A stream's viewers follow its frames, not each drop's stock.
  if (!stock_line.points.empty())
    html += svg_chart({"Stock left",
                       "The stock viewers were last told. After a sell-out it can rise again: "
                       "holds that expire or are cancelled give units back, which the waitlist "
                       "or new orders take.",
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
