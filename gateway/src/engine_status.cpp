// See engine_status.hpp.
#include "engine_status.hpp"

#include <fmt/format.h>

#include "flashsale/gateway/json_writer.hpp"
#include "host_json.hpp"

namespace flashsale::gateway {

HostReply engine_health(std::string_view id, const std::vector<ShardStatus>& shards) {
  JsonArray served;
  for (const ShardStatus& shard : shards) {
    if (!shard.journal) continue;
    const std::string_view state = journal::to_string(shard.journal->state);
    if (shard.journal->state != journal::JournalState::ok)
      return host_json::error(503, "journal",
                              fmt::format("shard {}: journal {}", shard.shard, state));
    served.raw(JsonObject()
                   .number("shard", shard.shard)
                   .text("journal", state)
                   .number("durable_sequence", shard.journal->durable_sequence)
                   .done());
  }
  return {200, JsonObject()
                   .text("status", "ok")
                   .text("role", "engine")
                   .text("id", id)
                   .raw("serving", served.done())
                   .done()};
}

std::string engine_metrics(const Metrics& metrics, const std::vector<ShardStatus>& shards) {
  std::string out = metrics.render(nullptr);
  const auto series = [&](std::string_view name, std::string_view help, auto value) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} gauge\n", name, help, name);
    for (const ShardStatus& shard : shards)
      fmt::format_to(std::back_inserter(out), "{}{{shard=\"{}\"}} {}\n", name, shard.shard,
                     value(shard));
  };
  series("flashsale_shard_served", "1 if this engine serves the shard, 0 if it stands by.",
         [](const ShardStatus& shard) { return shard.journal ? 1 : 0; });
  series("flashsale_shard_journal_ok", "1 if the shard is served and its journal takes writes.",
         [](const ShardStatus& shard) {
           return shard.journal && shard.journal->state == journal::JournalState::ok ? 1 : 0;
         });
  series(
      "flashsale_shard_journal_durable_sequence", "The shard's last durable event.",
      [](const ShardStatus& shard) { return shard.journal ? shard.journal->durable_sequence : 0; });
  series("flashsale_shard_journal_last_batch_seconds", "The shard's last journal round trip.",
         [](const ShardStatus& shard) {
           return shard.journal ? shard.journal->last_batch_ms / 1000.0 : 0.0;
         });
  return out;
}

}  // namespace flashsale::gateway
