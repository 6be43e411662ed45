// See verdict.hpp.
#include "verdict.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <boost/json.hpp>
#include <set>

namespace flashsale::loadtest {

namespace json = boost::json;

namespace {

std::int64_t number_in(const json::object& object, std::string_view key) {
  return object.at(key).to_number<std::int64_t>();
}

// Per variant, by the server's `variants` (id, stock_total, stock_left, held, sold) and what
// the viewers saw of each: none oversold, each balancing, each sold what its buyers were told.
void variant_checks(const Totals& seen, const json::object& server, const DropSetup& drop,
                    std::vector<Check>& checks) {
  const json::value* listed = server.if_contains("variants");
  std::set<std::string> expected;
  for (const VariantSetup& variant : drop.variants) expected.insert(variant.id);
  std::set<std::string> found;
  std::string oversold, unbalanced, unconfirmed;
  const auto add = [](std::string& to, const std::string& line) {
    to += (to.empty() ? "" : "; ") + line;
  };
  if (listed != nullptr && listed->is_array()) {
    for (const json::value& item : listed->as_array()) {
      const json::object& variant = item.as_object();
      const std::string id(variant.at("id").as_string());
      found.insert(id);
      const VariantSeen told = seen.variants.contains(id) ? seen.variants.at(id) : VariantSeen{};
      const std::int64_t total = number_in(variant, "stock_total");
      const std::int64_t held_or_sold =
          static_cast<std::int64_t>(told.reserved) - static_cast<std::int64_t>(told.released);
      if (held_or_sold > total)
        add(oversold, fmt::format("{}: {} units held or sold, stock {}", id, held_or_sold, total));
      const std::int64_t left = number_in(variant, "stock_left");
      const std::int64_t held = number_in(variant, "held");
      const std::int64_t sold = number_in(variant, "sold");
      if (left + held + sold != total)
        add(unbalanced, fmt::format("{}: left {} + held {} + sold {} != total {}", id, left, held,
                                    sold, total));
      if (sold != static_cast<std::int64_t>(told.confirmed))
        add(unconfirmed,
            fmt::format("{}: server sold {}, buyers told confirmed {}", id, sold, told.confirmed));
    }
  }
  if (found != expected)
    add(unbalanced, fmt::format("the server's variants ({}) are not the trace's ({})",
                                fmt::join(found, ", "), fmt::join(expected, ", ")));
  for (const auto& [id, told] : seen.variants)
    if (!found.contains(id))
      add(oversold, fmt::format("{}: {} units reserved of a variant the server does not list", id,
                                told.reserved));
  const auto all = [&](std::string_view what) {
    return fmt::format("all {} variants {}", found.size(), what);
  };
  checks.push_back({"no_variant_oversold", oversold.empty(),
                    oversold.empty() ? all("within their stock") : oversold});
  checks.push_back({"variant_counters_balance", unbalanced.empty(),
                    unbalanced.empty() ? all("balance: left + held + sold = total") : unbalanced});
  checks.push_back(
      {"variant_sold_matches_confirmations", unconfirmed.empty(),
       unconfirmed.empty() ? all("sold what their buyers were told confirmed") : unconfirmed});
}

// A drop with a duration ends by itself: closed once its end is past, nothing reserved after.
Check end_check(const Totals& all, const json::object& server, std::int64_t now_ms) {
  const json::value* closes = server.if_contains("closes_at_ms");
  if (closes == nullptr || !closes->is_number())
    return {"ended_by_itself", false, "the server's drop has no closes_at_ms"};
  const auto closes_at_ms = closes->to_number<std::int64_t>();
  const json::value* state = server.if_contains("state");
  const bool closed = state != nullptr && state->is_string() && state->as_string() == "closed";
  if (now_ms < closes_at_ms)
    return {"ended_by_itself", all.reserved_after_end == 0,
            fmt::format("the replay ended {} ms before the sale's end; {} reservations after it",
                        closes_at_ms - now_ms, all.reserved_after_end)};
  return {"ended_by_itself", closed && all.reserved_after_end == 0,
          fmt::format("{} {} ms after its end; {} reservations decided after it",
                      closed ? "closed" : "still not closed", now_ms - closes_at_ms,
                      all.reserved_after_end)};
}

}  // namespace

std::vector<Check> verdict(const Totals& seen, const json::object& server, const DropSetup& drop,
                           const VerdictContext& context) {
  Totals all;
  all.merge(seen);
  all.duplicate_order_ids += seen.duplicates_across();
  const auto number_of = [&](std::string_view key) { return number_in(server, key); };
  const std::int64_t total =
      context.assume_stock ? *context.assume_stock : number_of("stock_total");
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
  checks.push_back({"no_reservation_before_open", all.reserved_before_open == 0,
                    fmt::format("{} reservations decided before T-0", all.reserved_before_open)});
  checks.push_back({"retries_return_the_original", all.repeat_mismatches == 0,
                    fmt::format("{} retries answered differently", all.repeat_mismatches)});
  if (!drop.variants.empty()) variant_checks(seen, server, drop, checks);
  if (drop.duration_seconds > 0) checks.push_back(end_check(all, server, context.now_ms));
  return checks;
}

std::vector<Check> stream_verdict(const Totals& seen, const std::vector<PinCall>& calls) {
  std::string unmade;
  const auto add = [](std::string& to, const std::string& line) {
    to += (to.empty() ? "" : "; ") + line;
  };
  for (const PinCall& call : calls) {
    if (call.pin_status != 200 || call.countdown_status != 200)
      add(unmade, fmt::format("{}: pin answered {}, countdown {}: {}", call.drop, call.pin_status,
                              call.countdown_status, call.refusal));
    else if (call.opens_at_ms != call.planned_opens_at_ms)
      add(unmade, fmt::format("{}: opens {} ms off its planned instant", call.drop,
                              call.opens_at_ms - call.planned_opens_at_ms));
  }
  std::string missed, shown;
  LatencyHistogram latency;
  for (std::size_t index = 0; index < calls.size(); ++index) {
    const PinSeen pin = index < seen.pins.size() ? seen.pins[index] : PinSeen{};
    latency.merge(pin.latency);
    add(shown, fmt::format("{} {}/{}", calls[index].drop, pin.owed - pin.missed, pin.owed));
    if (pin.missed > 0)
      add(missed, fmt::format("{}: {} of {} viewers never shown it", calls[index].drop, pin.missed,
                              pin.owed));
  }
  const auto ms = [](std::uint64_t micros) { return static_cast<double>(micros) / 1e3; };
  const std::string figures =
      fmt::format("{}; pin to screen p50 {:.1f} ms, p99 {:.1f} ms, max {:.1f} ms over {}", shown,
                  ms(latency.percentile(0.5)), ms(latency.percentile(0.99)), ms(latency.max()),
                  latency.count());
  return {{"every_pin_made", unmade.empty(),
           unmade.empty()
               ? fmt::format("{} drops pinned, each opening at its planned instant", calls.size())
               : unmade},
          {"every_viewer_saw_every_pin", missed.empty(),
           missed.empty() ? figures : missed + "; " + figures}};
}

}  // namespace flashsale::loadtest
