// Surge traces (docs/loadtest.md): what every virtual viewer does and when, relative to the
// drop's opening instant T-0. JSON Lines, versioned: a header line, then one action per line in
// time order. `generate` writes them from a scenario (loadtest/scenarios/*.toml); the same
// scenario, scale and seed always give the same trace.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace flashsale::loadtest {

// 2: drops with variants, a per-variant limit or a duration, and orders naming a variant.
// 3: a live stream of several drops, each pinned by the host at its instant, and actions naming
// the drop they are about. A trace is written in the lowest version that holds it, so one
// without any of that reads in builds that know only version 1.
inline constexpr int trace_version = 3;

// One thing the drop sells (a size), as the host API's create body takes it.
struct VariantSetup {
  std::string id;
  std::string label;
  std::int64_t price_cents = 0;
  std::int64_t list_price_cents = 0;  // the price before the deal; 0: none
  std::uint32_t stock = 0;
};

struct DropSetup {
  std::string id = "surge";
  std::string title = "Surge";
  std::int64_t price_cents = 100;  // without variants
  std::uint32_t stock = 100;       // without variants
  std::uint32_t per_user_limit = 1;
  std::uint32_t hold_seconds = 60;
  std::uint32_t waitlist_limit = 0;      // per variant
  std::int64_t admission_window_ms = 0;  // a fair start (docs/protocol.md); 0: none
  // Named variants, each with its own stock and price; empty: the drop sells one, of
  // `price_cents` and `stock`.
  std::vector<VariantSetup> variants = {};
  std::uint32_t per_variant_limit = 0;  // 0: only per_user_limit applies
  std::uint32_t duration_seconds = 0;   // the sale ends by itself this long after T-0; 0: never

  // Units at creation, all variants together.
  std::uint64_t units() const;
};

// The drop's fields as the host API's create body takes them, which is also how a trace's
// header stores them. A drop with variants has no top-level price_cents and stock.
boost::json::object to_json(const DropSetup& drop);

// A drop of a live stream: its create body (`setup.id` is its name in the stream; its id is
// "<stream>~<name>") and its opening instant, in ms from the trace's T-0.
struct StreamDrop {
  DropSetup setup;
  std::int64_t opens_ms = 0;
};

// A live stream (version 3): its drops are created in it beforehand, and the host pins each one
// at its `pin` action and starts its countdown, to open at its `opens_ms`.
struct StreamSetup {
  std::string id;
  std::string title;
  std::vector<StreamDrop> drops;  // 1-64; actions name them by index

  // The id viewers and the host API know drop `index` by.
  std::string drop_id(std::size_t index) const;
};

struct TraceHeader {
  int version = trace_version;  // as read; write_trace writes the lowest that holds the trace
  std::string scenario;
  std::uint64_t seed = 0;
  double scale = 1;
  DropSetup drop;  // without a stream: the one drop
  // With a stream, T-0 is its first drop's opening and `drop` is unused.
  std::optional<StreamSetup> stream;
  std::int64_t countdown_ms = 5'000;  // replay starts this long before T-0
  std::uint32_t viewers = 0;

  // Units at creation, of every drop.
  std::uint64_t units() const;
};

enum class ActionKind : std::uint8_t {
  connect,
  subscribe,
  order,
  retry,
  confirm,
  cancel,
  disconnect,
  pin  // the host's: pin a stream's drop and start its countdown (no viewer)
};
std::string_view to_string(ActionKind kind) noexcept;

struct Action {
  std::int64_t t_ms = 0;   // from T-0; negative before
  std::uint32_t user = 0;  // virtual viewer, 0..viewers-1
  ActionKind kind = ActionKind::connect;
  std::uint32_t qty = 1;        // order, retry
  std::string client_order_id;  // order, retry
  std::string variant = {};     // order, retry: the variant's id, on a drop with variants
  // order, retry, confirm, cancel, pin: the stream's drop it is about, by index (version 3).
  // A viewer's client_order_id names one drop of the stream.
  std::uint32_t drop = 0;
};

struct Trace {
  TraceHeader header;
  std::vector<Action> actions;  // sorted by t_ms, then user
};

// Reads a scenario file and generates its trace. `scale` multiplies viewers and stock (each
// variant's, at least 1). On a drop with variants each viewer orders one, drawn by the
// scenario's demand weights. A scenario with a [stream] has [[drops]], each pinned at its
// instant, and viewers who watch the stream and order each drop as it opens. Throws
// std::runtime_error naming the file and key on a bad scenario.
Trace generate(const std::string& scenario_path, double scale, std::uint64_t seed);

void write_trace(const Trace& trace, const std::string& path);
// Throws std::runtime_error naming the line on a malformed trace.
Trace read_trace(const std::string& path);

}  // namespace flashsale::loadtest
