#include "totals.hpp"

#include <boost/json.hpp>
#include <set>
#include <utility>

namespace flashsale::loadtest {

namespace json = boost::json;

namespace {

constexpr std::array<std::pair<std::string_view, std::uint64_t Totals::*>, 12> counters = {{
    {"sent", &Totals::sent},
    {"answered", &Totals::answered},
    {"abandoned", &Totals::abandoned},
    {"unexpected", &Totals::unexpected},
    {"repeat_mismatches", &Totals::repeat_mismatches},
    {"reserved_before_open", &Totals::reserved_before_open},
    {"reserved_after_end", &Totals::reserved_after_end},
    {"duplicate_order_ids", &Totals::duplicate_order_ids},
    {"reserved", &Totals::reserved},
    {"confirmed", &Totals::confirmed},
    {"released", &Totals::released},
    {"over_limit", &Totals::over_limit},
}};

json::value histogram_json(const LatencyHistogram& histogram) {
  json::array buckets;
  for (const auto& [index, count] : histogram.buckets())
    buckets.push_back(json::array{index, count});
  return json::object{{"max", histogram.max()}, {"buckets", std::move(buckets)}};
}

LatencyHistogram histogram_from(const json::value& value) {
  std::vector<std::pair<std::size_t, std::uint64_t>> buckets;
  for (const json::value& bucket : value.at("buckets").as_array())
    buckets.emplace_back(bucket.at(0).to_number<std::size_t>(),
                         bucket.at(1).to_number<std::uint64_t>());
  return LatencyHistogram::from_buckets(buckets, value.at("max").to_number<std::uint64_t>());
}

json::value stock_json(const StockSeen& stock) {
  return json::array{stock.at_us, stock.left};
}
StockSeen stock_from(const json::value& value) {
  return {value.at(0).to_number<std::int64_t>(), value.at(1).to_number<std::uint32_t>()};
}
void keep_latest(StockSeen& into, const StockSeen& other) {
  if (other.at_us >= into.at_us) into = other;
}

// A map by time bin as [[bin, value], ...]: JSON keys are strings, bins are numbers.
template <class Value, class Encode>
json::array bins_json(const std::map<std::int64_t, Value>& bins, Encode encode) {
  json::array array;
  for (const auto& [bin, value] : bins) array.push_back(json::array{bin, encode(value)});
  return array;
}
template <class Value, class Decode>
std::map<std::int64_t, Value> bins_from(const json::value& value, Decode decode) {
  std::map<std::int64_t, Value> bins;
  for (const json::value& entry : value.as_array())
    bins.emplace(entry.at(0).to_number<std::int64_t>(), decode(entry.at(1)));
  return bins;
}

}  // namespace

void Totals::merge(const Totals& other) {
  for (const auto& [name, counter] : counters) this->*counter += other.*counter;
  order_ids.insert(order_ids.end(), other.order_ids.begin(), other.order_ids.end());
  for (const auto& [id, seen] : other.variants) {
    VariantSeen& mine = variants[id];
    mine.reserved += seen.reserved;
    mine.released += seen.released;
    mine.confirmed += seen.confirmed;
  }
  latency.merge(other.latency);
  for (const auto& [bin, statuses] : other.by_status)
    for (const auto& [status, count] : statuses) by_status[bin][status] += count;
  for (const auto& [bin, histogram] : other.latency_by_bin) latency_by_bin[bin].merge(histogram);
  for (const auto& [bin, seen] : other.stock_left) {
    const auto [mine, fresh] = stock_left.try_emplace(bin, seen);
    if (!fresh) keep_latest(mine->second, seen);
  }
  for (const auto& [bin, frames] : other.frames_in) frames_in[bin] += frames;
  for (const auto& [bin, change] : other.connections) connections[bin] += change;
  if (drops.size() < other.drops.size()) drops.resize(other.drops.size());
  for (std::size_t index = 0; index < other.drops.size(); ++index)
    drops[index].merge(other.drops[index]);
  if (pins.size() < other.pins.size()) pins.resize(other.pins.size());
  for (std::size_t index = 0; index < other.pins.size(); ++index) {
    pins[index].owed += other.pins[index].owed;
    pins[index].missed += other.pins[index].missed;
    pins[index].latency.merge(other.pins[index].latency);
  }
}

Totals Totals::combined() const {
  Totals all = *this;
  all.drops.clear();
  for (const Totals& drop : drops) all.merge(drop);
  return all;
}

std::uint64_t Totals::duplicates_across() const {
  std::set<std::string_view> seen;
  std::uint64_t duplicates = 0;
  for (const std::string& id : order_ids)
    if (!seen.insert(id).second) duplicates += 1;
  return duplicates;
}

void Progress::merge(const Progress& other) {
  sent += other.sent;
  answered += other.answered;
  reserved += other.reserved;
  payments_sent += other.payments_sent;
  payments_answered += other.payments_answered;
  for (std::size_t index = 0; index < answers.size(); ++index)
    answers[index] += other.answers[index];
  keep_latest(stock, other.stock);
  latency.merge(other.latency);
}

json::value to_json(const Totals& totals) {
  json::object object;
  for (const auto& [name, counter] : counters) object[name] = totals.*counter;
  json::array order_ids;
  for (const std::string& id : totals.order_ids) order_ids.push_back(json::string(id));
  object["order_ids"] = std::move(order_ids);
  json::object variants;
  for (const auto& [id, seen] : totals.variants)
    variants[id] = json::array{seen.reserved, seen.released, seen.confirmed};
  object["variants"] = std::move(variants);
  object["latency"] = histogram_json(totals.latency);
  object["by_status"] = bins_json(totals.by_status, [](const auto& statuses) {
    json::object counts;
    for (const auto& [status, count] : statuses) counts[status] = count;
    return counts;
  });
  object["latency_by_bin"] = bins_json(totals.latency_by_bin, histogram_json);
  object["stock_left"] = bins_json(totals.stock_left, stock_json);
  object["frames_in"] = bins_json(totals.frames_in, [](std::uint64_t n) { return n; });
  object["connections"] = bins_json(totals.connections, [](std::int64_t n) { return n; });
  json::array drops;
  for (const Totals& drop : totals.drops) drops.push_back(to_json(drop));
  object["drops"] = std::move(drops);
  json::array pins;
  for (const PinSeen& pin : totals.pins)
    pins.push_back(json::array{pin.owed, pin.missed, histogram_json(pin.latency)});
  object["pins"] = std::move(pins);
  return object;
}

Totals totals_from_json(const json::value& value) {
  Totals totals;
  for (const auto& [name, counter] : counters)
    totals.*counter = value.at(name).to_number<std::uint64_t>();
  for (const json::value& id : value.at("order_ids").as_array())
    totals.order_ids.emplace_back(id.as_string());
  for (const auto& [id, seen] : value.at("variants").as_object())
    totals.variants.emplace(std::string(id), VariantSeen{seen.at(0).to_number<std::uint64_t>(),
                                                         seen.at(1).to_number<std::uint64_t>(),
                                                         seen.at(2).to_number<std::uint64_t>()});
  totals.latency = histogram_from(value.at("latency"));
  totals.by_status = bins_from<std::map<std::string, std::uint64_t>>(
      value.at("by_status"), [](const json::value& counts) {
        std::map<std::string, std::uint64_t> statuses;
        for (const auto& [status, count] : counts.as_object())
          statuses.emplace(status, count.to_number<std::uint64_t>());
        return statuses;
      });
  totals.latency_by_bin = bins_from<LatencyHistogram>(value.at("latency_by_bin"), histogram_from);
  totals.stock_left = bins_from<StockSeen>(value.at("stock_left"), stock_from);
  totals.frames_in = bins_from<std::uint64_t>(
      value.at("frames_in"), [](const json::value& n) { return n.to_number<std::uint64_t>(); });
  totals.connections = bins_from<std::int64_t>(
      value.at("connections"), [](const json::value& n) { return n.to_number<std::int64_t>(); });
  for (const json::value& drop : value.at("drops").as_array())
    totals.drops.push_back(totals_from_json(drop));
  for (const json::value& pin : value.at("pins").as_array())
    totals.pins.push_back({pin.at(0).to_number<std::uint64_t>(),
                           pin.at(1).to_number<std::uint64_t>(), histogram_from(pin.at(2))});
  return totals;
}

json::value to_json(const Progress& progress) {
  json::array answers;
  for (const std::uint64_t count : progress.answers) answers.push_back(count);
  return json::object{{"sent", progress.sent},
                      {"answered", progress.answered},
                      {"reserved", progress.reserved},
                      {"payments_sent", progress.payments_sent},
                      {"payments_answered", progress.payments_answered},
                      {"answers", std::move(answers)},
                      {"stock", stock_json(progress.stock)},
                      {"latency", histogram_json(progress.latency)}};
}

Progress progress_from_json(const json::value& value) {
  Progress progress;
  progress.sent = value.at("sent").to_number<std::uint64_t>();
  progress.answered = value.at("answered").to_number<std::uint64_t>();
  progress.reserved = value.at("reserved").to_number<std::uint64_t>();
  progress.payments_sent = value.at("payments_sent").to_number<std::uint64_t>();
  progress.payments_answered = value.at("payments_answered").to_number<std::uint64_t>();
  const json::array& answers = value.at("answers").as_array();
  if (answers.size() != progress.answers.size()) throw std::invalid_argument("progress answers");
  for (std::size_t index = 0; index < answers.size(); ++index)
    progress.answers[index] = answers[index].to_number<std::uint64_t>();
  progress.stock = stock_from(value.at("stock"));
  progress.latency = histogram_from(value.at("latency"));
  return progress;
}

}  // namespace flashsale::loadtest
