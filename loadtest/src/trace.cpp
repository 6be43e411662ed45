// Trace generation from scenarios (toml++), and the JSON Lines form (Boost.JSON).
#include "flashsale/loadtest/trace.hpp"

#include <toml++/toml.h>

#include <fmt/format.h>
#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
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
    case ActionKind::pin:
      return "pin";
  }
  return "unknown";
}

namespace {

// A drop of a stream scenario, one [[drops]] table.
struct DropScenario {
  DropSetup drop;  // its id is its name in the stream
  std::vector<double> variant_demand;
  double demand = 1;                   // the share of the viewers who try to buy it
  std::int64_t pin_at_ms = 0;          // from the stream's start
  std::int64_t countdown_ms = 10'000;  // from its pin to its opening
};

// What a scenario says (loadtest/scenarios/*.toml).
struct Scenario {
  std::string name;
  std::uint32_t viewers = 1'000;
  // Replay starts this long before T-0: the drop's countdown, or, in a stream, the lead before
  // its first drop opens.
  std::int64_t countdown_ms = 5'000;
  std::int64_t connect_spread_ms = 3'000;  // viewers arrive over this, from the countdown's start
  DropSetup drop;
  // Per variant of the drop: how many of the buyers want it, relatively.
  std::vector<double> demand;
  // A live stream ([stream] and [[drops]]) instead of one [drop].
  std::optional<StreamSetup> stream;
  std::vector<DropScenario> drops;
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

// [[<where>.variants]]: id, label, price_cents, list_price_cents, stock and demand (a weight,
// default 1) each. The drop's own price_cents and stock are then the variants'.
void load_variants(const toml::table& table, const std::string& path, const std::string& where,
                   DropSetup& drop, std::vector<double>& demands) {
  const std::string name = path + ": " + where + ".variants";
  const toml::array* variants = table["variants"].as_array();
  if (variants == nullptr || variants->empty() || variants->size() > engine::variants_max)
    throw std::runtime_error(name + " must be 1-64 [[" + where + ".variants]] tables");
  if (table.contains("price_cents") || table.contains("stock"))
    throw std::runtime_error(path + ": " + where +
                             ": a drop with variants sets price_cents and stock per variant");
  std::set<std::string> ids;
  for (const toml::node& node : *variants) {
    const toml::table* item = node.as_table();
    if (item == nullptr) throw std::runtime_error(name + " must hold tables");
    VariantSetup& variant = drop.variants.emplace_back();
    double demand = 1;
    read(*item, path, "id", variant.id);
    read(*item, path, "label", variant.label);
    read(*item, path, "price_cents", variant.price_cents);
    read(*item, path, "list_price_cents", variant.list_price_cents);
    read(*item, path, "stock", variant.stock);
    read(*item, path, "demand", demand);
    if (!engine::is_valid_variant_id(variant.id) || !ids.insert(variant.id).second)
      throw std::runtime_error(name + ": \"" + variant.id +
                               "\" is not a unique id of 1-32 of [A-Za-z0-9_.-]");
    if (!(demand >= 0))
      throw std::runtime_error(name + ": " + variant.id + ": demand must be >= 0");
    demands.push_back(demand);
  }
  drop.price_cents = 0;
  drop.stock = 0;
  if (std::accumulate(demands.begin(), demands.end(), 0.0) <= 0)
    throw std::runtime_error(name + ": some variant must have demand");
}

// A [drop] table, or one of [[drops]] (`where` names it in errors).
void load_drop(const toml::table& table, const std::string& path, const std::string& where,
               DropSetup& drop, std::vector<double>& demand) {
  read(table, path, "id", drop.id);
  read(table, path, "title", drop.title);
  read(table, path, "price_cents", drop.price_cents);
  read(table, path, "stock", drop.stock);
  read(table, path, "per_user_limit", drop.per_user_limit);
  read(table, path, "hold_seconds", drop.hold_seconds);
  read(table, path, "waitlist_limit", drop.waitlist_limit);
  read(table, path, "admission_window_ms", drop.admission_window_ms);
  read(table, path, "per_variant_limit", drop.per_variant_limit);
  read(table, path, "duration_seconds", drop.duration_seconds);
  if (table.contains("variants")) load_variants(table, path, where, drop, demand);
}

// [stream] (id, title) and its [[drops]]: each a drop's fields as in [drop], and demand (the
// share of the viewers who try to buy it, 0-1), pin_at_ms (from the stream's start) and
// countdown_ms (from its pin to its opening).
void load_stream(const toml::table& root, const std::string& path, Scenario& scenario) {
  if (root.contains("drop"))
    throw std::runtime_error(path + ": a stream has [[drops]], not a [drop]");
  StreamSetup& stream = scenario.stream.emplace();
  const toml::table& table = *root["stream"].as_table();
  read(table, path, "id", stream.id);
  read(table, path, "title", stream.title);
  if (!engine::is_valid_stream_id(stream.id))
    throw std::runtime_error(path + ": stream.id must be 1-32 of [A-Za-z0-9_.-]");
  const toml::array* drops = root["drops"].as_array();
  if (drops == nullptr || drops->empty() || drops->size() > 64)
    throw std::runtime_error(path + ": a stream has 1-64 [[drops]] tables");
  std::set<std::string> names;
  for (const toml::node& node : *drops) {
    const toml::table* item = node.as_table();
    const std::string where = fmt::format("drops[{}]", scenario.drops.size());
    if (item == nullptr) throw std::runtime_error(path + ": drops must hold tables");
    DropScenario& drop = scenario.drops.emplace_back();
    load_drop(*item, path, where, drop.drop, drop.variant_demand);
    read(*item, path, "demand", drop.demand);
    read(*item, path, "pin_at_ms", drop.pin_at_ms);
    read(*item, path, "countdown_ms", drop.countdown_ms);
    if (drop.drop.id.find('~') != std::string::npos ||
        !engine::is_valid_drop_id(stream.id + "~" + drop.drop.id) ||
        !names.insert(drop.drop.id).second)
      throw std::runtime_error(path + ": " + where + ".id \"" + drop.drop.id +
                               "\" must be a unique name of [A-Za-z0-9_.-], the drop's id "
                               "<stream>~<name> at most 64");
    if (!(drop.demand >= 0 && drop.demand <= 1))
      throw std::runtime_error(path + ": " + where + ".demand must be within 0-1");
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
  if (root["stream"].as_table() != nullptr) {
    load_stream(root, path, scenario);
  } else if (root.contains("drops")) {
    throw std::runtime_error(path + ": [[drops]] belong to a [stream]");
  } else if (const toml::table* drop = root["drop"].as_table()) {
    load_drop(*drop, path, "drop", scenario.drop, scenario.demand);
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

// `stock` times `scale`, at least 1.
std::uint32_t scaled(std::uint32_t stock, double scale) {
  return std::max<std::uint32_t>(1, static_cast<std::uint32_t>(std::llround(stock * scale)));
}

void scale_stock(DropSetup& drop, double scale) {
  if (drop.variants.empty()) drop.stock = scaled(drop.stock, scale);
  for (VariantSetup& variant : drop.variants) variant.stock = scaled(variant.stock, scale);
}

// A stream's trace: T-0 is its first drop's opening; every viewer connects during the lead,
// subscribes to the stream, and tries to buy each drop (by its demand) as it opens, in the
// scenario's arrival shape from that opening.
void generate_stream(const Scenario& scenario, std::uint64_t seed, Trace& trace) {
  TraceHeader& header = trace.header;
  StreamSetup& stream = header.stream.emplace(*scenario.stream);
  std::int64_t first_opening = std::numeric_limits<std::int64_t>::max();
  for (const DropScenario& drop : scenario.drops)
    first_opening = std::min(first_opening, drop.pin_at_ms + drop.countdown_ms);
  std::vector<std::int64_t> pins;
  auto& actions = trace.actions;
  for (std::uint32_t index = 0; index < scenario.drops.size(); ++index) {
    const DropScenario& drop = scenario.drops[index];
    StreamDrop& made = stream.drops.emplace_back(
        StreamDrop{drop.drop, drop.pin_at_ms + drop.countdown_ms - first_opening});
    scale_stock(made.setup, header.scale);
    pins.push_back(drop.pin_at_ms - first_opening);
    actions.push_back({pins.back(), 0, ActionKind::pin, 1, {}, {}, index});
  }
  const std::int64_t first_pin = *std::min_element(pins.begin(), pins.end());
  if (-first_pin > scenario.countdown_ms)
    throw std::runtime_error(fmt::format(
        "{}: countdown_ms must be at least {}: the first pin comes that long before the first "
        "drop opens",
        scenario.name, -first_pin));

  std::mt19937_64 random(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const auto between = [&](std::int64_t low, std::int64_t high) {
    return low + static_cast<std::int64_t>(unit(random) * static_cast<double>(high - low));
  };
  std::vector<std::discrete_distribution<std::size_t>> wanted;
  for (const DropScenario& drop : scenario.drops)
    wanted.emplace_back(drop.variant_demand.begin(), drop.variant_demand.end());
  // A scripted disconnect while a payment is in flight would lose its answer, and with it a
  // confirmation the server counts: a reconnect keeps clear of the viewer's payments (on any
  // drop) in the seconds before it, and of its other reconnects. A payment after it waits for
  // the new connection.
  constexpr std::int64_t in_flight_ms = 2'000, reconnecting_ms = 2'020;
  struct Reconnect {
    std::int64_t gone, back;
    std::uint32_t drop;
    std::string id, variant;
  };
  for (std::uint32_t user = 0; user < header.viewers; ++user) {
    const std::int64_t connect =
        -scenario.countdown_ms + between(0, std::max<std::int64_t>(1, scenario.connect_spread_ms));
    actions.push_back({connect, user, ActionKind::connect, 1, {}});
    actions.push_back({connect + 10, user, ActionKind::subscribe, 1, {}});
    std::vector<std::int64_t> payments;
    std::vector<Reconnect> reconnects;
    for (std::uint32_t index = 0; index < scenario.drops.size(); ++index) {
      if (!(unit(random) < scenario.drops[index].demand)) continue;
      const DropSetup& drop = stream.drops[index].setup;
      const std::int64_t opens = stream.drops[index].opens_ms;
      const std::string id = fmt::format("c{}", index + 1);
      const std::int64_t click = opens + click_time(scenario, random);
      const std::string variant =
          drop.variants.empty() ? std::string() : drop.variants[wanted[index](random)].id;
      if (unit(random) < scenario.early_click_share) {
        // Pressed during the drop's countdown, once it is on screen: answered not_open.
        const std::int64_t early =
            std::max({connect + 20, pins[index] + 500, opens + between(-2'000, -1)});
        actions.push_back({early, user, ActionKind::order, 1, id, variant, index});
        actions.push_back({click, user, ActionKind::retry, 1, id, variant, index});
      } else {
        actions.push_back({click, user, ActionKind::order, 1, id, variant, index});
      }
      if (unit(random) < scenario.retry_share)
        actions.push_back(
            {click + scenario.retry_after_ms, user, ActionKind::retry, 1, id, variant, index});
      if (unit(random) < scenario.reconnect_share) {
        const std::int64_t gone = click + between(50, 500);
        reconnects.push_back({gone, gone + between(100, 2'000), index, id, variant});
      }
      const double choice = unit(random);
      const std::int64_t pay =
          click + between(scenario.pay_after_ms_min, scenario.pay_after_ms_max + 1);
      if (choice < scenario.confirm_share) {
        actions.push_back({pay, user, ActionKind::confirm, 1, id, {}, index});
        payments.push_back(pay);
      } else if (choice < scenario.confirm_share + scenario.cancel_share) {
        actions.push_back({pay, user, ActionKind::cancel, 1, id, {}, index});
        payments.push_back(pay);
      }
    }
    std::vector<std::int64_t> kept;
    for (const Reconnect& reconnect : reconnects) {
      const auto near = [&](std::int64_t at) {
        return at >= reconnect.gone - in_flight_ms && at <= reconnect.gone;
      };
      const auto overlaps = [&](std::int64_t other) {
        return std::abs(other - reconnect.gone) <= in_flight_ms + reconnecting_ms;
      };
      if (std::any_of(payments.begin(), payments.end(), near) ||
          std::any_of(kept.begin(), kept.end(), overlaps))
        continue;
      kept.push_back(reconnect.gone);
      const std::uint32_t index = reconnect.drop;
      actions.push_back({reconnect.gone, user, ActionKind::disconnect, 1, {}});
      actions.push_back({reconnect.back, user, ActionKind::connect, 1, {}});
      actions.push_back({reconnect.gone + 2'010, user, ActionKind::subscribe, 1, {}});
      actions.push_back({reconnect.gone + 2'020, user, ActionKind::retry, 1, reconnect.id,
                         reconnect.variant, index});
    }
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
  header.countdown_ms = scenario.countdown_ms;
  header.viewers = std::max<std::uint32_t>(
      1, static_cast<std::uint32_t>(std::llround(scenario.viewers * scale)));
  const auto in_order = [](const Action& a, const Action& b) {
    return a.t_ms < b.t_ms || (a.t_ms == b.t_ms && a.user < b.user);
  };
  if (scenario.stream) {
    generate_stream(scenario, seed, trace);
    std::stable_sort(trace.actions.begin(), trace.actions.end(), in_order);
    return trace;
  }
  header.drop = scenario.drop;
  scale_stock(header.drop, scale);

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
  std::stable_sort(actions.begin(), actions.end(), in_order);
  return trace;
}

std::uint64_t DropSetup::units() const {
  if (variants.empty()) return stock;
  std::uint64_t sum = 0;
  for (const VariantSetup& variant : variants) sum += variant.stock;
  return sum;
}

std::string StreamSetup::drop_id(std::size_t index) const {
  return id + "~" + drops.at(index).setup.id;
}

std::uint64_t TraceHeader::units() const {
  if (!stream) return drop.units();
  std::uint64_t sum = 0;
  for (const StreamDrop& in_stream : stream->drops) sum += in_stream.setup.units();
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
  if (trace.header.stream) return 3;
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

StreamSetup stream_from(const json::object& stream, const json::array& drops) {
  StreamSetup setup;
  setup.id = std::string(stream.at("id").as_string());
  setup.title = std::string(stream.at("title").as_string());
  if (!engine::is_valid_stream_id(setup.id)) throw std::invalid_argument("stream.id");
  if (drops.empty() || drops.size() > 64) throw std::invalid_argument("a stream has 1-64 drops");
  std::set<std::string> names;
  for (const json::value& item : drops) {
    StreamDrop& drop = setup.drops.emplace_back();
    drop.setup = drop_from(item.as_object());
    drop.opens_ms = item.at("opens_ms").to_number<std::int64_t>();
    if (!engine::is_valid_drop_id(setup.id + "~" + drop.setup.id) ||
        !names.insert(drop.setup.id).second)
      throw std::invalid_argument("drops: \"" + drop.setup.id + "\" is not a unique name");
  }
  return setup;
}

bool names_a_drop(ActionKind kind) {
  return kind == ActionKind::order || kind == ActionKind::retry || kind == ActionKind::confirm ||
         kind == ActionKind::cancel || kind == ActionKind::pin;
}

}  // namespace

void write_trace(const Trace& trace, const std::string& path) {
  std::ofstream out(path);
  if (!out) throw std::runtime_error("cannot write " + path);
  const TraceHeader& header = trace.header;
  json::object first{{"flashsale_trace", version_needed(trace)},
                     {"scenario", header.scenario},
                     {"seed", header.seed},
                     {"scale", header.scale},
                     {"countdown_ms", header.countdown_ms},
                     {"viewers", header.viewers}};
  const StreamSetup* stream = header.stream ? &*header.stream : nullptr;
  if (stream == nullptr) {
    first["drop"] = to_json(header.drop);
  } else {
    first["stream"] = json::object{{"id", stream->id}, {"title", stream->title}};
    json::array drops;
    for (const StreamDrop& drop : stream->drops) {
      json::object item = to_json(drop.setup);
      item["opens_ms"] = drop.opens_ms;
      drops.push_back(std::move(item));
    }
    first["drops"] = std::move(drops);
  }
  out << json::serialize(first) << '\n';
  for (const Action& action : trace.actions) {
    json::object line{{"t", action.t_ms}};
    if (action.kind != ActionKind::pin) line["u"] = action.user;
    line["a"] = to_string(action.kind);
    const bool ordering = action.kind == ActionKind::order || action.kind == ActionKind::retry;
    if (ordering) line["q"] = action.qty;
    // In a stream, a payment names its order: the viewer has one in each drop it bought.
    if (ordering ||
        (stream != nullptr && names_a_drop(action.kind) && action.kind != ActionKind::pin))
      line["c"] = action.client_order_id;
    if (ordering && !action.variant.empty()) line["v"] = action.variant;
    if (stream != nullptr && names_a_drop(action.kind))
      line["d"] = stream->drops.at(action.drop).setup.id;
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
  // In a stream: each drop's pin, and the drop each viewer's client_order_id names.
  std::vector<std::optional<std::int64_t>> pinned_at;
  std::map<std::pair<std::uint32_t, std::string>, std::uint32_t> order_drops;
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
        if (const json::value* stream = object.if_contains("stream")) {
          if (header.version < 3) fail("a stream in a trace of version 1 or 2");
          header.stream = stream_from(stream->as_object(), object.at("drops").as_array());
          pinned_at.resize(header.stream->drops.size());
        } else {
          header.drop = drop_from(object.at("drop").as_object());
        }
        continue;
      }
      const StreamSetup* stream = trace.header.stream ? &*trace.header.stream : nullptr;
      Action action;
      action.t_ms = object.at("t").to_number<std::int64_t>();
      const std::string_view kind = object.at("a").as_string();
      bool known = false;
      for (auto candidate :
           {ActionKind::connect, ActionKind::subscribe, ActionKind::order, ActionKind::retry,
            ActionKind::confirm, ActionKind::cancel, ActionKind::disconnect, ActionKind::pin}) {
        if (to_string(candidate) == kind) {
          action.kind = candidate;
          known = true;
        }
      }
      if (!known || (action.kind == ActionKind::pin && stream == nullptr)) fail("unknown action");
      if (action.kind != ActionKind::pin) {
        action.user = object.at("u").to_number<std::uint32_t>();
        if (action.user >= trace.header.viewers) fail("user beyond the header's viewers");
      }
      const DropSetup* drop = &trace.header.drop;
      if (stream != nullptr && names_a_drop(action.kind)) {
        const std::string_view name = object.at("d").as_string();
        const auto found =
            std::find_if(stream->drops.begin(), stream->drops.end(),
                         [&](const StreamDrop& candidate) { return candidate.setup.id == name; });
        if (found == stream->drops.end()) fail("a drop the header's stream does not have");
        action.drop = static_cast<std::uint32_t>(found - stream->drops.begin());
        drop = &found->setup;
      } else if (object.contains("d")) {
        fail("a drop named outside a stream, or by an action about none");
      }
      if (action.kind == ActionKind::pin) {
        if (pinned_at[action.drop]) fail("a drop pinned twice");
        if (action.t_ms > stream->drops[action.drop].opens_ms) fail("a drop pinned after it opens");
        pinned_at[action.drop] = action.t_ms;
      }
      if (const json::value* id = object.if_contains("c"))
        action.client_order_id = std::string(id->as_string());
      if (action.kind == ActionKind::order || action.kind == ActionKind::retry) {
        action.qty = object.at("q").to_number<std::uint32_t>();
        action.client_order_id = std::string(object.at("c").as_string());
        if (const json::value* variant = object.if_contains("v")) {
          action.variant = std::string(variant->as_string());
          if (std::none_of(drop->variants.begin(), drop->variants.end(),
                           [&](const VariantSetup& sold) { return sold.id == action.variant; }))
            fail("a variant the drop does not have");
        }
        if (stream != nullptr &&
            order_drops.try_emplace({action.user, action.client_order_id}, action.drop)
                    .first->second != action.drop)
          fail("a client_order_id this viewer used in another drop");
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
  for (std::size_t index = 0; index < pinned_at.size(); ++index)
    if (!pinned_at[index])
      throw std::runtime_error(path + ": drop \"" + trace.header.stream->drops[index].setup.id +
                               "\" is never pinned");
  return trace;
}

}  // namespace flashsale::loadtest
