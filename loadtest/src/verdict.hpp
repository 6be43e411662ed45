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

}  // namespace flashsale::loadtest
