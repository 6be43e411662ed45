// Auditing a journal (docs/audit.md): every batch's checksum, every link of the hash chain,
// the snapshot's binding to the chain, then a replay of every event through a fresh engine,
// which yields each drop's totals, checked variant by variant against its confirmed orders. Used by
// `flashsale-audit`; reads Redis only through read_journal, so an export file audits the same way.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "flashsale/journal/journal.hpp"

namespace flashsale::journal {

// A journal as stored: the snapshot record, if any, and the stream's entries in order.
struct JournalCopy {
  std::optional<std::string> snapshot;
  std::vector<std::pair<std::string, std::string>> entries;  // entry id, stored batch
};

// Reads `{prefix}:snapshot` and `{prefix}:journal` (read-only; a serving engine may keep
// writing). Reads again when a snapshot was written meanwhile. Throws std::runtime_error when
// Redis cannot be read.
JournalCopy read_journal(const RedisEndpoint& redis, const std::string& prefix);
// An export file: the same bytes, to audit elsewhere. Both throw std::runtime_error.
void write_export(const JournalCopy& copy, const std::string& path);
JournalCopy read_export(const std::string& path);

// One variant's confirmed sales. Amounts here and in DropTotals are capped at INT64_MAX, as
// the engine's are: only a drop that is no charity's can come near it.
struct VariantTotals {
  std::string id;  // empty for the one variant of a drop created without variants
  std::uint64_t units_sold = 0;
  std::int64_t sales_cents = 0;  // units_sold × the variant's price
};

struct DropTotals {
  std::string id;
  std::string title;
  std::string beneficiary;
  std::uint32_t pledge_bps = 0;
  std::uint64_t units_sold = 0;
  std::uint32_t orders_confirmed = 0;
  std::uint32_t supporters = 0;
  std::int64_t sales_cents = 0;         // the sum of the variants'
  std::int64_t raised_cents = 0;        // engine::pledged_cents(sales_cents, pledge_bps)
  std::vector<VariantTotals> variants;  // at least one, in the drop's order
};
// What a drop's state commits to: the same totals from a replayed journal and from a serving
// engine (the host API's audit), so the two can be compared.
DropTotals totals_of(const engine::DropInfo& info);

// The audit's own arithmetic over a replayed drop: `confirmed_units[i]` is what the confirmed
// orders of variant i add up to, counted order by order (one count per variant: asserted). Each
// variant must balance (stock_left
// + held + sold == stock_total) and have sold exactly those units; the drop's units, stock,
// sales and amount raised must be the sums of its variants' and the pledge of its sales. Empty
// when all of that holds, else the first thing that does not, naming the variant.
std::string check_totals(const engine::DropInfo& info,
                         std::span<const std::uint64_t> confirmed_units);

struct AuditReport {
  std::string problem;  // empty: everything verified; else what failed, and where
  ChainHead head;       // the last batch verified and its hash
  std::uint64_t batches = 0;
  std::uint64_t events_replayed = 0;
  bool from_snapshot = false;
  std::vector<DropTotals> drops;  // when verified
};

// Sees each event the audit replays, in order, after the engine has applied it. Its strings
// point into the JournalCopy.
using EventVisitor = std::function<void(const engine::Event&)>;

// With `head`, the journal must also contain that batch — anywhere in its chain, since later
// batches only extend it — and the totals are those of the state it commits to.
AuditReport audit(const JournalCopy& copy, const std::optional<Hash>& head = std::nullopt,
                  const EventVisitor& visit = {});

}  // namespace flashsale::journal
