// What an engine says on its status address (StatusServer, `--listen` with --role engine,
// docs/operations.md): which shards it serves, and their journals' states.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flashsale/gateway/config.hpp"
#include "flashsale/journal/journal.hpp"
#include "metrics.hpp"
#include "requests.hpp"

namespace flashsale::gateway {

// What a shard worker reports: whether it serves its shard, and its journal's status then.
struct ShardStatus {
  std::uint32_t shard = 0;
  std::optional<journal::JournalStatus> journal;  // set while serving
};

// 200 {"status":"ok","role":"engine","id":…,"serving":[{"shard":…,"journal":…,
// "durable_sequence":…},…]}, or 503 naming the first served shard whose journal is not ok.
HostReply engine_health(std::string_view id, const std::vector<ShardStatus>& shards);
// The process's metrics (Prometheus text), and per shard whether it is served and its
// journal's state.
std::string engine_metrics(const Metrics& metrics, const std::vector<ShardStatus>& shards);

}  // namespace flashsale::gateway
