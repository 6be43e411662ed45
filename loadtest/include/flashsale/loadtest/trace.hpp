// Surge traces (docs/loadtest.md): what every virtual viewer does and when, relative to the
// drop's opening instant T-0. JSON Lines, versioned: a header line, then one action per line in
// time order. `generate` writes them from a scenario (loadtest/scenarios/*.toml); the same
// scenario, scale and seed always give the same trace.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace flashsale::loadtest {

inline constexpr int trace_version = 1;

struct DropSetup {
  std::string id = "surge";
  std::string title = "Surge";
  std::int64_t price_cents = 100;
  std::uint32_t stock = 100;
  std::uint32_t per_user_limit = 1;
  std::uint32_t hold_seconds = 60;
  std::uint32_t waitlist_limit = 0;
  std::int64_t admission_window_ms = 0;  // a fair start (docs/protocol.md); 0: none
};

// The drop's fields as the host API's create body takes them, which is also how a trace's
// header stores them.
boost::json::object to_json(const DropSetup& drop);

struct TraceHeader {
  int version = trace_version;
  std::string scenario;
  std::uint64_t seed = 0;
  double scale = 1;
  DropSetup drop;
  std::int64_t countdown_ms = 5'000;  // replay starts this long before T-0
  std::uint32_t viewers = 0;
};

enum class ActionKind : std::uint8_t {
  connect,
  subscribe,
  order,
  retry,
  confirm,
  cancel,
  disconnect
};
std::string_view to_string(ActionKind kind) noexcept;

struct Action {
  std::int64_t t_ms = 0;   // from T-0; negative before
  std::uint32_t user = 0;  // virtual viewer, 0..viewers-1
  ActionKind kind = ActionKind::connect;
  std::uint32_t qty = 1;        // order, retry
  std::string client_order_id;  // order, retry
};

struct Trace {
  TraceHeader header;
  std::vector<Action> actions;  // sorted by t_ms, then user
};

// Reads a scenario file and generates its trace. `scale` multiplies viewers and stock.
// Throws std::runtime_error naming the file and key on a bad scenario.
Trace generate(const std::string& scenario_path, double scale, std::uint64_t seed);

void write_trace(const Trace& trace, const std::string& path);
// Throws std::runtime_error naming the line on a malformed trace.
Trace read_trace(const std::string& path);

}  // namespace flashsale::loadtest
