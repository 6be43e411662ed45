// See audit.hpp.
#include "flashsale/journal/audit.hpp"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <limits>
#include <stdexcept>

#include "flashsale/engine/assert.hpp"
#include "flashsale/engine/bytes.hpp"
#include "flashsale/journal/redis_connection.hpp"
#include "replay.hpp"

namespace flashsale::journal {

namespace {

constexpr std::string_view export_magic = "FLASHSALE-JOURNAL-EXPORT 1\n";
constexpr std::size_t bytes_max = std::size_t{1} << 40;

// Sales in 128 bits: a variant may sell 10^9 units at 10^12 cents.
__extension__ using Wide = unsigned __int128;
std::int64_t capped(Wide cents) {
  const auto max = std::numeric_limits<std::int64_t>::max();
  return cents > static_cast<Wide>(max) ? max : static_cast<std::int64_t>(cents);
}

Reply must(RedisConnection& redis, const std::vector<std::string_view>& command) {
  Reply reply = redis.command(command);
  if (reply == nullptr) throw std::runtime_error("redis: " + redis.error());
  if (is_error(reply)) throw std::runtime_error("redis: " + std::string(text_of(reply)));
  return reply;
}

std::optional<std::string> snapshot_of(RedisConnection& redis, const std::string& key) {
  const Reply reply = must(redis, {"GET", key});
  if (reply->type != REDIS_REPLY_STRING) return std::nullopt;
  return std::string(text_of(reply));
}

}  // namespace

JournalCopy read_journal(const RedisEndpoint& endpoint, const std::string& prefix) {
  RedisConnection redis(endpoint, std::chrono::seconds(30));
  if (!redis.ok()) throw std::runtime_error("redis " + endpoint.describe() + ": " + redis.error());
  const std::string stream_key = "{" + prefix + "}:journal";
  const std::string snapshot_key = "{" + prefix + "}:snapshot";
  for (int attempt = 0; attempt < 5; ++attempt) {
    JournalCopy copy;
    copy.snapshot = snapshot_of(redis, snapshot_key);
    std::string from = "-";
    while (true) {
      const Reply range = must(redis, {"XRANGE", stream_key, from, "+", "COUNT", "512"});
      bool malformed = false;
      const auto entries = entries_of(range, malformed);
      if (malformed) throw std::runtime_error(stream_key + ": an entry is not a journal batch");
      if (entries.empty()) break;
      for (const auto& entry : entries) copy.entries.emplace_back(entry.id, entry.batch);
      from = "(" + std::string(entries.back().id);
    }
    // A snapshot written while we read may have trimmed what we were about to read.
    if (snapshot_of(redis, snapshot_key) == copy.snapshot) return copy;
  }
  throw std::runtime_error("the journal kept changing under the reader; try again");
}

void write_export(const JournalCopy& copy, const std::string& path) {
  std::string bytes(export_magic);
  engine::ByteWriter out(bytes);
  out.byte(copy.snapshot ? 1 : 0);
  if (copy.snapshot) out.string(*copy.snapshot);
  out.varint(copy.entries.size());
  for (const auto& [id, batch] : copy.entries) {
    out.string(id);
    out.string(batch);
  }
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!file) throw std::runtime_error("cannot write " + path);
}

JournalCopy read_export(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("cannot read " + path);
  const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (!std::string_view(bytes).starts_with(export_magic))
    throw std::runtime_error(path + ": not a flashsale journal export");
  engine::ByteReader in(std::string_view(bytes).substr(export_magic.size()));
  JournalCopy copy;
  const std::uint8_t has_snapshot = in.byte();
  if (has_snapshot == 1) copy.snapshot = std::string(in.string(bytes_max));
  const std::uint64_t count = in.bounded(bytes.size());
  for (std::uint64_t index = 0; index < count && in.ok(); ++index) {
    std::string id(in.string(64));
    std::string batch(in.string(bytes_max));
    copy.entries.emplace_back(std::move(id), std::move(batch));
  }
  if (!in.done() || has_snapshot > 1) throw std::runtime_error(path + ": damaged export file");
  return copy;
}

AuditReport audit(const JournalCopy& copy, const std::optional<Hash>& head,
                  const EventVisitor& visit) {
  AuditReport report;
  engine::EngineLimits limits;
  limits.decisions_per_drop_reserve = 0;  // sized as it grows: an audit is not a surge
  limits.drops_max = 100'000;
  limits.streams_max = 100'000;
  limits.drops_per_stream_max = 100'000;
  limits.decisions_per_drop_max = 0xffffffff;  // whatever the engine that wrote it allowed
  engine::Engine engine(limits);
  SnapshotHeader snapshot;
  if (copy.snapshot) {
    report.from_snapshot = true;
    std::string_view bytes;
    if (std::string problem = open_snapshot(*copy.snapshot, snapshot, bytes); !problem.empty()) {
      report.problem = "snapshot: " + problem;
      return report;
    }
    if (std::string problem = engine.restore(bytes); !problem.empty()) {
      report.problem = "snapshot: " + problem;
      return report;
    }
    if (engine.digest() != snapshot.digest || engine.last_sequence() != snapshot.covered_sequence) {
      report.problem = "snapshot: it restores to another state than its digest says";
      return report;
    }
    report.head = {snapshot.chain_batch, snapshot.covered_sequence, snapshot.chain_head};
  }
  // First the chain and the snapshot's binding to it, then the replay: only a journal whose
  // every byte is vouched for is replayed.
  ChainCheck chain = copy.snapshot ? ChainCheck(snapshot) : ChainCheck();
  struct Checked {
    BatchHeader header;
    std::string_view events;
    Hash hash;
  };
  std::vector<Checked> batches;
  for (std::size_t position = 0; position < copy.entries.size(); ++position) {
    const auto& [id, stored] = copy.entries[position];
    const std::string where =
        "entry " + id + " (position " + std::to_string(position + 1) + " in the stream)";
    BatchHeader header;
    std::string_view events;
    if (std::string problem = open_batch(stored, header, events); !problem.empty()) {
      report.problem = where + ": " + problem;
      return report;
    }
    if (id != std::to_string(header.number) + "-0") {
      report.problem = where + ": holds batch " + std::to_string(header.number);
      return report;
    }
    if (std::string problem = chain.next(header, stored); !problem.empty()) {
      report.problem = where + ": " + problem;
      return report;
    }
    batches.push_back({header, events, chain.head()});
  }
  if (std::string problem = chain.finish(); !problem.empty()) {
    report.problem = problem;
    return report;
  }
  if (copy.snapshot && !chain.checkpointed(sha256(*copy.snapshot))) {
    report.problem =
        "snapshot: no batch carries its checkpoint: it is not the snapshot the journal wrote";
    return report;
  }
  // Replay up to the expected head, if any, and report the totals there.
  auto last = batches.end();
  if (!batches.empty()) last = std::prev(batches.end());
  if (head) {
    last = std::find_if(batches.begin(), batches.end(),
                        [&](const Checked& batch) { return batch.hash == *head; });
    if (last == batches.end()) {
      report.problem = "the head " + to_hex(*head) + " is not in the journal's chain";
      return report;
    }
    if (last->header.first_sequence + last->header.event_count - 1 < snapshot.covered_sequence) {
      report.problem = "the head " + to_hex(*head) +
                       " is older than the journal's snapshot: its totals are no longer in it";
      return report;
    }
  }
  for (auto batch = batches.begin(); last != batches.end() && batch <= last; ++batch) {
    const std::size_t position = static_cast<std::size_t>(batch - batches.begin());
    if (std::string problem =
            detail::replay_batch(engine, batch->header, batch->events, snapshot.covered_sequence,
                                 report.events_replayed, visit);
        !problem.empty()) {
      report.problem = "entry " + copy.entries[position].first + " (position " +
                       std::to_string(position + 1) + " in the stream): " + problem;
      return report;
    }
    report.batches += 1;
  }
  if (last != batches.end()) {
    report.head = {last->header.number, last->header.first_sequence + last->header.event_count - 1,
                   last->hash};
  }
  engine.check_invariants();
  for (engine::DropIndex index = 0; index < engine.drop_count(); ++index) {
    const engine::DropInfo info = engine.drop_info(index);
    std::vector<std::uint64_t> confirmed_units(info.variants.size());
    for (engine::OrderNumber order = 1; order <= info.orders; ++order) {
      const auto found = engine.order_info(index, order);
      if (found && found->status == engine::OrderStatus::confirmed &&
          found->variant < confirmed_units.size())
        confirmed_units[found->variant] += found->qty;
    }
    if (std::string problem = check_totals(info, confirmed_units); !problem.empty()) {
      report.problem = "drop " + std::string(info.spec.id) + ": " + problem;
      report.drops.clear();
      return report;
    }
    report.drops.push_back(totals_of(info));
  }
  return report;
}

DropTotals totals_of(const engine::DropInfo& info) {
  DropTotals totals{std::string(info.spec.id),
                    std::string(info.spec.title),
                    std::string(info.spec.beneficiary),
                    info.spec.pledge_bps,
                    info.sold,
                    info.orders_confirmed,
                    info.supporters,
                    info.sales_cents,
                    engine::pledged_cents(info.sales_cents, info.spec.pledge_bps),
                    {}};
  for (const engine::VariantInfo& variant : info.variants)
    totals.variants.push_back(
        {std::string(variant.id), variant.sold,
         capped(Wide{variant.sold} * static_cast<Wide>(variant.price_cents))});
  return totals;
}

std::string check_totals(const engine::DropInfo& info,
                         std::span<const std::uint64_t> confirmed_units) {
  FS_ASSERT(confirmed_units.size() == info.variants.size());
  std::uint64_t stock_total = 0, sold = 0;
  Wide sales = 0;
  for (std::size_t index = 0; index < info.variants.size(); ++index) {
    const engine::VariantInfo& variant = info.variants[index];
    const std::string name =
        variant.id.empty() ? std::string("its variant") : "variant " + std::string(variant.id);
    if (std::uint64_t{variant.stock_left} + variant.held + variant.sold != variant.stock_total)
      return name + " does not balance: left " + std::to_string(variant.stock_left) + " + held " +
             std::to_string(variant.held) + " + sold " + std::to_string(variant.sold) +
             " != total " + std::to_string(variant.stock_total);
    if (variant.sold != confirmed_units[index])
      return name + " sold " + std::to_string(variant.sold) +
             " units, but its confirmed orders hold " + std::to_string(confirmed_units[index]);
    stock_total += variant.stock_total;
    sold += variant.sold;
    sales += Wide{variant.sold} * static_cast<Wide>(variant.price_cents);
  }
  if (stock_total != info.stock_total || sold != info.sold)
    return "its variants' stock (" + std::to_string(stock_total) + ") and units sold (" +
           std::to_string(sold) + ") do not add up to its own (" +
           std::to_string(info.stock_total) + ", " + std::to_string(info.sold) + ")";
  if (capped(sales) != info.sales_cents)
    return "its variants' sales add up to " + std::to_string(capped(sales)) + " cents, not the " +
           std::to_string(info.sales_cents) + " it reports";
  if (engine::pledged_cents(info.sales_cents, info.spec.pledge_bps) != info.raised_cents)
    return "it reports " + std::to_string(info.raised_cents) + " cents raised, but " +
           std::to_string(info.spec.pledge_bps) + " bps of its sales is " +
           std::to_string(engine::pledged_cents(info.sales_cents, info.spec.pledge_bps));
  return {};
}

}  // namespace flashsale::journal
