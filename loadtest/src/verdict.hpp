// The replay's verdict (docs/loadtest.md): what a buyer and an auditor would check, from what
// the viewers saw — merged over threads and processes — and the drop as the host API gives it
// once the replay is over. Apart from `replay` so that a test can hand it figures that must
// fail. Internal to the loadtest target.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "flashsale/loadtest/trace.hpp"
#include "totals.hpp"

namespace flashsale::loadtest {

struct Check {
  std::string name;
  bool pass = false;
  std::string detail;
  std::string drop = {};  // in a stream, the drop a check of one drop is about (its name)
};

struct VerdictContext {
  // Replaces the server's stock_total in `reserved_within_stock` (ReplayOptions::assume_stock).
  std::optional<std::uint32_t> assume_stock;
  std::int64_t now_ms = 0;  // Unix ms when `server` was read
};

// Eight checks for every drop. On a drop with named variants (`drop.variants`) three more,
// naming each variant, of the server's `variants`, that fails them. On a drop with a duration
// one more: once its end (the server's `closes_at_ms`) is past, the drop is closed and nothing
// was reserved after it.
std::vector<Check> verdict(const Totals& seen, const boost::json::object& server,
                           const DropSetup& drop, const VerdictContext& context);

// What the host's calls at a stream drop's pin gave: the pin, then the countdown to the
// drop's planned opening.
struct PinCall {
  std::string drop;         // its name in the stream
  unsigned pin_status = 0;  // 0: not made, or no answer
  unsigned countdown_status = 0;
  std::string refusal;  // the body of a call not answered 200, or why it failed
  std::int64_t planned_opens_at_ms = 0;
  std::int64_t opens_at_ms = 0;  // as the server answered the countdown
  std::int64_t late_ms = 0;      // the pin call's start after its scheduled instant
  double pin_call_ms = 0;        // the pin call's own time
};

// The stream's own checks, over every drop's pin: each made as planned (`every_pin_made`), and
// shown to every viewer still subscribed (`every_viewer_saw_every_pin`, with the pin-to-screen
// latency in its detail). `seen.pins` and `calls` are by drop index.
std::vector<Check> stream_verdict(const Totals& seen, const std::vector<PinCall>& calls);

}  // namespace flashsale::loadtest
