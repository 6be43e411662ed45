// Trace generation from scenarios (toml++), and the JSON Lines form (Boost.JSON).
#include "flashsale/loadtest/trace.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <fstream>
#include <random>
#include <stdexcept>

namespace flashsale::loadtest {

namespace json = boost::json;

std::string_view to_string(ActionKind kind) noexcept {
  switch (kind) {
    case ActionKind::connect:
      return "connect";
    case ActionKind::subscribe:
      return "subscribe";
    case ActionKind::order:
      return "order";
    case ActionKind::retry:
      return "retry";
    case ActionKind::confirm:
      return "confirm";
    case ActionKind::cancel:
      return "cancel";
    case ActionKind::disconnect:
      return "disconnect";
  }
  return "unknown";
}

namespace {

// What a scenario says (loadtest/scenarios/*.toml).
struct Scenario {
  std::string name;
  std::uint32_t viewers = 1'000;
  std::int64_t countdown_ms = 5'000;
  std::int64_t connect_spread_ms = 3'000;  // viewers arrive over this, from the countdown's start
  DropSetup drop;
  std::string shape = "spike";               // spike | uniform | waves
  std::int64_t window_ms = 1'000;            // clicks fall within [0, window) after T-0
  double decay_ms = 300;                     // spike and waves: exponential decay of the click rate
  std::vector<std::int64_t> waves_ms = {0};  // waves: each wave's start
  double early_click_share = 0.03;           // click before T-0 (answered not_open), retry at T-0
  double retry_share = 0.2;                  // send the same client_order_id again later
  std::int64_t retry_after_ms = 300;
  double confirm_share = 0.7;  // of the clickers: pay; cancel_share: cancel; the rest let it lapse
  double cancel_share = 0.1;
  std::int64_t pay_after_ms_min = 2'000;
  std::int64_t pay_after_ms_max = 20'000;
  double reconnect_share = 0.0;  // drop the connection after clicking, come back, retry
};

template <typename T>
void read(const toml::table& table, const std::string& file, const char* key, T& out) {
  const toml::node* node = table.get(key);
  if (node == nullptr) return;
  if constexpr (std::is_same_v<T, std::string>) {
    const auto value = node->value<std::string>();
    if (!value) throw std::runtime_error(file + ": " + key + " must be a string");
    out = *value;
  } else if constexpr (std::is_floating_point_v<T>) {
    const auto value = node->value<double>();
    if (!value) throw std::runtime_error(file + ": " + key + " must be a number");
    out = *value;
  } else {
    const auto value = node->value<std::int64_t>();
    if (!value || *value < 0)
      throw std::runtime_error(file + ": " + key + " must be a whole number >= 0");
    out = static_cast<T>(*value);
  }
}

Scenario load_scenario(const std::string& path) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& error) {
    throw std::runtime_error(path + ": " + std::string(error.description()));
  }
  Scenario scenario;
  read(root, path, "name", scenario.name);
  read(root, path, "viewers", scenario.viewers);
  read(root, path, "countdown_ms", scenario.countdown_ms);
  read(root, path, "connect_spread_ms", scenario.connect_spread_ms);
  if (const toml::table* drop = root["drop"].as_table()) {
    read(*drop, path, "id", scenario.drop.id);
    read(*drop, path, "title", scenario.drop.title);
    read(*drop, path, "price_cents", scenario.drop.price_cents);
    read(*drop, path, "stock", scenario.drop.stock);
    read(*drop, path, "per_user_limit", scenario.drop.per_user_limit);
    read(*drop, path, "hold_seconds", scenario.drop.hold_seconds);
    read(*drop, path, "waitlist_limit", scenario.drop.waitlist_limit);
    read(*drop, path, "admission_window_ms", scenario.drop.admission_window_ms);
  }
  if (const toml::table* arrival = root["arrival"].as_table()) {
    read(*arrival, path, "shape", scenario.shape);
    read(*arrival, path, "window_ms", scenario.window_ms);
    read(*arrival, path, "decay_ms", scenario.decay_ms);
    if (const toml::array* waves = (*arrival)["waves_ms"].as_array()) {
      scenario.waves_ms.clear();
      for (const auto& wave : *waves) scenario.waves_ms.push_back(wave.value_or<std::int64_t>(0));
    }
  }
  if (const toml::table* behaviour = root["behaviour"].as_table()) {
    read(*behaviour, path, "early_click_share", scenario.early_click_share);
    read(*behaviour, path, "retry_share", scenario.retry_share);
    read(*behaviour, path, "retry_after_ms", scenario.retry_after_ms);
    read(*behaviour, path, "confirm_share", scenario.confirm_share);
    read(*behaviour, path, "cancel_share", scenario.cancel_share);
    read(*behaviour, path, "pay_after_ms_min", scenario.pay_after_ms_min);
    read(*behaviour, path, "pay_after_ms_max", scenario.pay_after_ms_max);
    read(*behaviour, path, "reconnect_share", scenario.reconnect_share);
  }
  if (scenario.shape != "spike" && scenario.shape != "uniform" && scenario.shape != "waves")
    throw std::runtime_error(path + ": arrival.shape must be spike, uniform or waves");
  if (scenario.viewers == 0 || scenario.window_ms <= 0 || scenario.waves_ms.empty())
    throw std::runtime_error(
        path + ": viewers, arrival.window_ms and arrival.waves_ms must not be empty or zero");
  if (scenario.pay_after_ms_max < scenario.pay_after_ms_min)
    throw std::runtime_error(path +
                             ": behaviour.pay_after_ms_max must be at least pay_after_ms_min");
  return scenario;
}

// When viewer clicks "buy", in ms after T-0.
std::int64_t click_time(const Scenario& scenario, std::mt19937_64& random) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  if (scenario.shape == "uniform")
    return static_cast<std::int64_t>(unit(random) * static_cast<double>(scenario.window_ms));
  const std::int64_t start =
      scenario.shape == "waves" ? scenario.waves_ms[random() % scenario.waves_ms.size()] : 0;
  // Exponential decay, truncated to the window by redrawing.
  std::exponential_distribution<double> decay(1.0 / std::max(1.0, scenario.decay_ms));
  for (;;) {
    const auto after = static_cast<std::int64_t>(decay(random));
    if (after < scenario.window_ms) return start + after;
  }
}

}  // namespace

Trace generate(const std::string& scenario_path, double scale, std::uint64_t seed) {
  const Scenario scenario = load_scenario(scenario_path);
  if (scale <= 0) throw std::runtime_error("scale must be positive");
  Trace trace;
  TraceHeader& header = trace.header;
  header.scenario = scenario.name;
  header.seed = seed;
  header.scale = scale;
  header.drop = scenario.drop;
  header.drop.stock = std::max<std::uint32_t>(
      1, static_cast<std::uint32_t>(std::llround(scenario.drop.stock * scale)));
  header.countdown_ms = scenario.countdown_ms;
  header.viewers = std::max<std::uint32_t>(
      1, static_cast<std::uint32_t>(std::llround(scenario.viewers * scale)));

  std::mt19937_64 random(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const auto between = [&](std::int64_t low, std::int64_t high) {
    return low + static_cast<std::int64_t>(unit(random) * static_cast<double>(high - low));
  };
  auto& actions = trace.actions;
  for (std::uint32_t user = 0; user < header.viewers; ++user) {
    const std::int64_t connect =
        -scenario.countdown_ms + between(0, std::max<std::int64_t>(1, scenario.connect_spread_ms));
    actions.push_back({connect, user, ActionKind::connect, 1, {}});
    actions.push_back({connect + 10, user, ActionKind::subscribe, 1, {}});
    const std::string id = "c1";
    std::int64_t click = click_time(scenario, random);
    if (unit(random) < scenario.early_click_share) {
      // Pressed too early: answered not_open (not recorded), so the retry at T-0 is a new try.
      actions.push_back(
          {std::max(connect + 20, between(-2'000, -1)), user, ActionKind::order, 1, id});
      actions.push_back({click, user, ActionKind::retry, 1, id});
    } else {
      actions.push_back({click, user, ActionKind::order, 1, id});
    }
    if (unit(random) < scenario.retry_share)
      actions.push_back({click + scenario.retry_after_ms, user, ActionKind::retry, 1, id});
    if (unit(random) < scenario.reconnect_share) {
      const std::int64_t gone = click + between(50, 500);
      actions.push_back({gone, user, ActionKind::disconnect, 1, {}});
      actions.push_back({gone + between(100, 2'000), user, ActionKind::connect, 1, {}});
      actions.push_back({gone + 2'010, user, ActionKind::subscribe, 1, {}});
      actions.push_back({gone + 2'020, user, ActionKind::retry, 1, id});
    }
    const double choice = unit(random);
    const std::int64_t pay =
        click + between(scenario.pay_after_ms_min, scenario.pay_after_ms_max + 1);
    if (choice < scenario.confirm_share) {
      actions.push_back({pay, user, ActionKind::confirm, 1, id});
    } else if (choice < scenario.confirm_share + scenario.cancel_share) {
      actions.push_back({pay, user, ActionKind::cancel, 1, id});
    }
  }
  std::stable_sort(actions.begin(), actions.end(), [](const Action& a, const Action& b) {
    return a.t_ms < b.t_ms || (a.t_ms == b.t_ms && a.user < b.user);
  });
  return trace;
}

json::object to_json(const DropSetup& drop) {
  return {{"id", drop.id},
          {"title", drop.title},
          {"price_cents", drop.price_cents},
          {"stock", drop.stock},
          {"per_user_limit", drop.per_user_limit},
          {"hold_seconds", drop.hold_seconds},
          {"waitlist_limit", drop.waitlist_limit},
          {"admission_window_ms", drop.admission_window_ms}};
}

void write_trace(const Trace& trace, const std::string& path) {
  std::ofstream out(path);
  if (!out) throw std::runtime_error("cannot write " + path);
  const TraceHeader& header = trace.header;
  out << json::serialize(json::object{{"flashsale_trace", header.version},
                                      {"scenario", header.scenario},
                                      {"seed", header.seed},
                                      {"scale", header.scale},
                                      {"countdown_ms", header.countdown_ms},
                                      {"viewers", header.viewers},
                                      {"drop", to_json(header.drop)}})
      << '\n';
  for (const Action& action : trace.actions) {
    json::object line{{"t", action.t_ms}, {"u", action.user}, {"a", to_string(action.kind)}};
    if (action.kind == ActionKind::order || action.kind == ActionKind::retry) {
      line["q"] = action.qty;
      line["c"] = action.client_order_id;
    }
    out << json::serialize(line) << '\n';
  }
}

Trace read_trace(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  Trace trace;
  std::string text;
  std::size_t number = 0;
  const auto fail = [&](const std::string& what) {
    throw std::runtime_error(path + ":" + std::to_string(number) + ": " + what);
  };
  while (std::getline(in, text)) {
    number += 1;
    json::error_code error;
    const json::value value = json::parse(text, error);
    if (error || !value.is_object()) fail("not a JSON object");
    const json::object& object = value.as_object();
    try {
      if (number == 1) {
        TraceHeader& header = trace.header;
        header.version = static_cast<int>(object.at("flashsale_trace").to_number<std::int64_t>());
        if (header.version != trace_version) fail("unknown trace version");
        header.scenario = std::string(object.at("scenario").as_string());
        header.seed = object.at("seed").to_number<std::uint64_t>();
        header.scale = object.at("scale").to_number<double>();
        header.countdown_ms = object.at("countdown_ms").to_number<std::int64_t>();
        header.viewers = object.at("viewers").to_number<std::uint32_t>();
        const json::object& drop = object.at("drop").as_object();
        header.drop.id = std::string(drop.at("id").as_string());
        header.drop.title = std::string(drop.at("title").as_string());
        header.drop.price_cents = drop.at("price_cents").to_number<std::int64_t>();
        header.drop.stock = drop.at("stock").to_number<std::uint32_t>();
        header.drop.per_user_limit = drop.at("per_user_limit").to_number<std::uint32_t>();
        header.drop.hold_seconds = drop.at("hold_seconds").to_number<std::uint32_t>();
        header.drop.waitlist_limit = drop.at("waitlist_limit").to_number<std::uint32_t>();
        if (const json::value* window = drop.if_contains("admission_window_ms"))
          header.drop.admission_window_ms = window->to_number<std::int64_t>();
        continue;
      }
      Action action;
      action.t_ms = object.at("t").to_number<std::int64_t>();
      action.user = object.at("u").to_number<std::uint32_t>();
      const std::string_view kind = object.at("a").as_string();
      bool known = false;
      for (auto candidate :
           {ActionKind::connect, ActionKind::subscribe, ActionKind::order, ActionKind::retry,
            ActionKind::confirm, ActionKind::cancel, ActionKind::disconnect}) {
        if (to_string(candidate) == kind) {
          action.kind = candidate;
          known = true;
        }
      }
      if (!known) fail("unknown action");
      if (action.user >= trace.header.viewers) fail("user beyond the header's viewers");
      if (action.kind == ActionKind::order || action.kind == ActionKind::retry) {
        action.qty = object.at("q").to_number<std::uint32_t>();
        action.client_order_id = std::string(object.at("c").as_string());
      }
      if (!trace.actions.empty() && action.t_ms < trace.actions.back().t_ms)
        fail("actions out of time order");
      trace.actions.push_back(std::move(action));
    } catch (const std::exception& problem) {
      if (std::string_view(problem.what()).starts_with(path)) throw;
      fail(std::string("bad field: ") + problem.what());
    }
  }
  if (number == 0) fail("empty trace");
  return trace;
}

}  // namespace flashsale::loadtest
