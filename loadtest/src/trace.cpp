// Trace generation from scenarios (toml++), and the JSON Lines form (Boost.JSON).
#include "flashsale/loadtest/trace.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <fstream>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>

#include "flashsale/engine/types.hpp"

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
  // Per variant of the drop: how many of the buyers want it, relatively.
  std::vector<double> demand;
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

// [[drop.variants]]: id, label, price_cents, list_price_cents, stock and demand (a weight,
// default 1) each. The drop's own price_cents and stock are then the variants'.
void load_variants(const toml::table& drop, const std::string& path, Scenario& scenario) {
  const toml::array* variants = drop["variants"].as_array();
  if (variants == nullptr || variants->empty() || variants->size() > engine::variants_max)
    throw std::runtime_error(path + ": drop.variants must be 1-64 [[drop.variants]] tables");
  if (drop.contains("price_cents") || drop.contains("stock"))
    throw std::runtime_error(path +
                             ": a drop with variants sets price_cents and stock per variant");
  std::set<std::string> ids;
  for (const toml::node& node : *variants) {
    const toml::table* table = node.as_table();
    if (table == nullptr) throw std::runtime_error(path + ": drop.variants must hold tables");
    VariantSetup& variant = scenario.drop.variants.emplace_back();
    double demand = 1;
    read(*table, path, "id", variant.id);
    read(*table, path, "label", variant.label);
    read(*table, path, "price_cents", variant.price_cents);
    read(*table, path, "list_price_cents", variant.list_price_cents);
    read(*table, path, "stock", variant.stock);
    read(*table, path, "demand", demand);
    if (!engine::is_valid_variant_id(variant.id) || !ids.insert(variant.id).second)
      throw std::runtime_error(path + ": drop.variants: \"" + variant.id +
                               "\" is not a unique id of 1-32 of [A-Za-z0-9_.-]");
    if (!(demand >= 0))
      throw std::runtime_error(path + ": drop.variants: " + variant.id + ": demand must be >= 0");
    scenario.demand.push_back(demand);
  }
  scenario.drop.price_cents = 0;
  scenario.drop.stock = 0;
  if (std::accumulate(scenario.demand.begin(), scenario.demand.end(), 0.0) <= 0)
    throw std::runtime_error(path + ": drop.variants: some variant must have demand");
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
    read(*drop, path, "per_variant_limit", scenario.drop.per_variant_limit);
    read(*drop, path, "duration_seconds", scenario.drop.duration_seconds);
    if (drop->contains("variants")) load_variants(*drop, path, scenario);
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
  const auto scaled = [scale](std::uint32_t stock) {
    return std::max<std::uint32_t>(1, static_cast<std::uint32_t>(std::llround(stock * scale)));
  };
  if (header.drop.variants.empty()) header.drop.stock = scaled(scenario.drop.stock);
  for (VariantSetup& variant : header.drop.variants) variant.stock = scaled(variant.stock);
  header.countdown_ms = scenario.countdown_ms;
  header.viewers = std::max<std::uint32_t>(
      1, static_cast<std::uint32_t>(std::llround(scenario.viewers * scale)));

  std::mt19937_64 random(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const auto between = [&](std::int64_t low, std::int64_t high) {
    return low + static_cast<std::int64_t>(unit(random) * static_cast<double>(high - low));
  };
  // Drawn only on a drop with variants, so that the traces of the others stay as they were.
  std::discrete_distribution<std::size_t> wanted(scenario.demand.begin(), scenario.demand.end());
  auto& actions = trace.actions;
  for (std::uint32_t user = 0; user < header.viewers; ++user) {
    const std::int64_t connect =
        -scenario.countdown_ms + between(0, std::max<std::int64_t>(1, scenario.connect_spread_ms));
    actions.push_back({connect, user, ActionKind::connect, 1, {}});
    actions.push_back({connect + 10, user, ActionKind::subscribe, 1, {}});
    const std::string id = "c1";
    std::int64_t click = click_time(scenario, random);
    const std::string variant =
        header.drop.variants.empty() ? std::string() : header.drop.variants[wanted(random)].id;
    if (unit(random) < scenario.early_click_share) {
      // Pressed too early: answered not_open (not recorded), so the retry at T-0 is a new try.
      actions.push_back(
          {std::max(connect + 20, between(-2'000, -1)), user, ActionKind::order, 1, id, variant});
      actions.push_back({click, user, ActionKind::retry, 1, id, variant});
    } else {
      actions.push_back({click, user, ActionKind::order, 1, id, variant});
    }
    if (unit(random) < scenario.retry_share)
      actions.push_back({click + scenario.retry_after_ms, user, ActionKind::retry, 1, id, variant});
    if (unit(random) < scenario.reconnect_share) {
      const std::int64_t gone = click + between(50, 500);
      actions.push_back({gone, user, ActionKind::disconnect, 1, {}});
      actions.push_back({gone + between(100, 2'000), user, ActionKind::connect, 1, {}});
      actions.push_back({gone + 2'010, user, ActionKind::subscribe, 1, {}});
      actions.push_back({gone + 2'020, user, ActionKind::retry, 1, id, variant});
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

std::uint64_t DropSetup::units() const {
  if (variants.empty()) return stock;
  std::uint64_t sum = 0;
  for (const VariantSetup& variant : variants) sum += variant.stock;
  return sum;
}

json::object to_json(const DropSetup& drop) {
  json::object body{{"id", drop.id}, {"title", drop.title}};
  if (drop.variants.empty()) {
    body["price_cents"] = drop.price_cents;
    body["stock"] = drop.stock;
  }
  body["per_user_limit"] = drop.per_user_limit;
  body["hold_seconds"] = drop.hold_seconds;
  body["waitlist_limit"] = drop.waitlist_limit;
  body["admission_window_ms"] = drop.admission_window_ms;
  if (!drop.variants.empty()) {
    json::array variants;
    for (const VariantSetup& variant : drop.variants) {
      json::object item{
          {"id", variant.id}, {"label", variant.label}, {"price_cents", variant.price_cents}};
      if (variant.list_price_cents > 0) item["list_price_cents"] = variant.list_price_cents;
      item["stock"] = variant.stock;
      variants.push_back(std::move(item));
    }
    body["variants"] = std::move(variants);
  }
  if (drop.per_variant_limit > 0) body["per_variant_limit"] = drop.per_variant_limit;
  if (drop.duration_seconds > 0) body["duration_seconds"] = drop.duration_seconds;
  return body;
}

namespace {

// The lowest version that holds the trace.
int version_needed(const Trace& trace) {
  const DropSetup& drop = trace.header.drop;
  const bool in_two = !drop.variants.empty() || drop.per_variant_limit > 0 ||
                      drop.duration_seconds > 0 ||
                      std::any_of(trace.actions.begin(), trace.actions.end(),
                                  [](const Action& action) { return !action.variant.empty(); });
  return in_two ? 2 : 1;
}

DropSetup drop_from(const json::object& drop) {
  DropSetup setup;
  setup.id = std::string(drop.at("id").as_string());
  setup.title = std::string(drop.at("title").as_string());
  setup.per_user_limit = drop.at("per_user_limit").to_number<std::uint32_t>();
  setup.hold_seconds = drop.at("hold_seconds").to_number<std::uint32_t>();
  setup.waitlist_limit = drop.at("waitlist_limit").to_number<std::uint32_t>();
  if (const json::value* window = drop.if_contains("admission_window_ms"))
    setup.admission_window_ms = window->to_number<std::int64_t>();
  if (const json::value* limit = drop.if_contains("per_variant_limit"))
    setup.per_variant_limit = limit->to_number<std::uint32_t>();
  if (const json::value* duration = drop.if_contains("duration_seconds"))
    setup.duration_seconds = duration->to_number<std::uint32_t>();
  const json::value* variants = drop.if_contains("variants");
  if (variants == nullptr) {
    setup.price_cents = drop.at("price_cents").to_number<std::int64_t>();
    setup.stock = drop.at("stock").to_number<std::uint32_t>();
    return setup;
  }
  setup.price_cents = 0;
  setup.stock = 0;
  for (const json::value& item : variants->as_array()) {
    VariantSetup& variant = setup.variants.emplace_back();
    variant.id = std::string(item.at("id").as_string());
    if (const json::value* label = item.as_object().if_contains("label"))
      variant.label = std::string(label->as_string());
    variant.price_cents = item.at("price_cents").to_number<std::int64_t>();
    if (const json::value* list = item.as_object().if_contains("list_price_cents"))
      variant.list_price_cents = list->to_number<std::int64_t>();
    variant.stock = item.at("stock").to_number<std::uint32_t>();
  }
  if (setup.variants.empty()) throw std::invalid_argument("drop.variants is empty");
  return setup;
}

}  // namespace

void write_trace(const Trace& trace, const std::string& path) {
  std::ofstream out(path);
  if (!out) throw std::runtime_error("cannot write " + path);
  const TraceHeader& header = trace.header;
  out << json::serialize(json::object{{"flashsale_trace", version_needed(trace)},
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
      if (!action.variant.empty()) line["v"] = action.variant;
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
        if (header.version < 1 || header.version > trace_version) fail("unknown trace version");
        header.scenario = std::string(object.at("scenario").as_string());
        header.seed = object.at("seed").to_number<std::uint64_t>();
        header.scale = object.at("scale").to_number<double>();
        header.countdown_ms = object.at("countdown_ms").to_number<std::int64_t>();
        header.viewers = object.at("viewers").to_number<std::uint32_t>();
        header.drop = drop_from(object.at("drop").as_object());
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
        if (const json::value* variant = object.if_contains("v")) {
          action.variant = std::string(variant->as_string());
          const auto& variants = trace.header.drop.variants;
          if (std::none_of(variants.begin(), variants.end(),
                           [&](const VariantSetup& sold) { return sold.id == action.variant; }))
            fail("a variant the header's drop does not have");
        }
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
