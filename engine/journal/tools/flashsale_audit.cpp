// flashsale-audit: checks a journal and prints what it commits to (docs/audit.md).
//
//   flashsale-audit --redis HOST:PORT|SOCKET --journal-prefix NAME [--expect-head HEX]
//
// --expect-head: a head recorded earlier (the audit API's); the journal must lead through it,
// and the totals printed are those of the state it commits to.
//   flashsale-audit --file EXPORT [--expect-head HEX]
//   flashsale-audit export --redis … --journal-prefix NAME --out EXPORT
//
// Exit status: 0 when every checksum, every link of the hash chain and the snapshot's binding
// verify and every event replays (and the head is the expected one, if given); 1 when anything
// fails, with what and where on stderr; 2 when the journal cannot be read at all.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "flashsale/journal/audit.hpp"

namespace {

using namespace flashsale;

std::string money(std::int64_t cents) {
  return fmt::format("¥{}.{:02}", cents / 100, cents % 100);
}

int verify(const journal::JournalCopy& copy, const std::string& expect_head) {
  std::optional<journal::Hash> head;
  if (!expect_head.empty()) {
    head = journal::from_hex(expect_head);
    if (!head) {
      fmt::print(stderr, "flashsale-audit: --expect-head must be 64 hex digits\n");
      return 2;
    }
  }
  const journal::AuditReport report = journal::audit(copy, head);
  if (!report.problem.empty()) {
    fmt::print(stderr, "flashsale-audit: FAILED: {}\n", report.problem);
    return 1;
  }
  fmt::print("verified: {} batches{}, {} events replayed\n", report.batches,
             report.from_snapshot ? " after the snapshot" : "", report.events_replayed);
  fmt::print("head: {} (batch {}, event {})\n", journal::to_hex(report.head.hash),
             report.head.batch, report.head.last_sequence);
  for (const journal::DropTotals& drop : report.drops) {
    fmt::print("drop {}: sold {} units in {} confirmed orders to {} buyers, sales {}", drop.id,
               drop.units_sold, drop.orders_confirmed, drop.supporters, money(drop.sales_cents));
    if (drop.pledge_bps > 0)
      fmt::print("; raised {} for {} ({} bps)", money(drop.raised_cents), drop.beneficiary,
                 drop.pledge_bps);
    fmt::print("\n");
    // A drop created without variants has one, unnamed: the line above says it all.
    if (drop.variants.size() == 1 && drop.variants[0].id.empty()) continue;
    for (const journal::VariantTotals& variant : drop.variants)
      fmt::print("  variant {}: sold {} units, sales {}\n", variant.id, variant.units_sold,
                 money(variant.sales_cents));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Checks a flashsale journal's hash chain and replays it (docs/audit.md)"};
  std::string redis;
  std::string prefix;
  std::string file;
  std::string expect_head;
  std::string out;
  app.add_option("--redis", redis,
                 "Redis HOST:PORT, redis://…, sentinel://…/NAME or a unix socket path");
  app.add_option("--journal-prefix", prefix, "the journal's key prefix");
  app.add_option("--file", file, "an export file instead of Redis");
  app.add_option("--expect-head", expect_head, "fail unless the chain ends at this hash (hex)");
  CLI::App* exporting = app.add_subcommand("export", "copy a journal from Redis to a file");
  exporting
      ->add_option("--redis", redis,
                   "Redis HOST:PORT, redis://…, sentinel://…/NAME or a unix socket path")
      ->required();
  exporting->add_option("--journal-prefix", prefix, "the journal's key prefix")->required();
  exporting->add_option("--out", out, "the export file to write")->required();
  CLI11_PARSE(app, argc, argv);
  try {
    if (exporting->parsed()) {
      const journal::JournalCopy copy =
          journal::read_journal(journal::RedisEndpoint::from_command_line(redis), prefix);
      journal::write_export(copy, out);
      fmt::print("exported {} entries{} to {}\n", copy.entries.size(),
                 copy.snapshot ? " and the snapshot" : "", out);
      return 0;
    }
    if (file.empty() == (redis.empty() || prefix.empty())) {
      std::cerr << "flashsale-audit: give --file, or --redis and --journal-prefix\n";
      return 2;
    }
    const journal::JournalCopy copy =
        file.empty()
            ? journal::read_journal(journal::RedisEndpoint::from_command_line(redis), prefix)
            : journal::read_export(file);
    return verify(copy, expect_head);
  } catch (const std::exception& error) {
    std::cerr << "flashsale-audit: " << error.what() << "\n";
    return 2;
  }
}
