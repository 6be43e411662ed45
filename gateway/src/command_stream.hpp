// CommandStream: a shard owner's end of the shard's command stream ({P-sN}:commands). First it
// claims what its predecessors read and never acknowledged; then it reads new commands with a
// Lua script that checks the shard's lease first (an engine that lost the lease takes nothing
// more), hands them to the CommandApplier one read at a time, acknowledges (XACK) and trims
// (XTRIM) what the engine thread has released, and tells the gateways it is alive once a second.
//
// Exactly once (docs/scaling.md): a command is acknowledged only once its events are durable
// and its answers are on their way, and the acknowledgement goes down the answers' own pipe,
// behind them. Commands a predecessor completed (the recovered journal cursor covers them) are
// answered again, not done again.
//
// Used by the shard worker's thread only.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>

#include "command_applier.hpp"
#include "flashsale/gateway/config.hpp"
#include "flashsale/journal/journal.hpp"
#include "redis_pipe.hpp"

namespace flashsale::gateway {

class CommandStream {
 public:
  // `completed`: the journal's cursor when recovered — the commands up to it are done.
  CommandStream(const GatewayConfig& config, std::uint32_t shard, std::string consumer,
                journal::Journal& journal, GroupSink& sequencer, CommandApplier& applier,
                RedisPipe& out, const std::atomic<bool>& stop, std::string_view completed);

  // Serves the stream until `stop` (true) or until the shard's lease is lost (false: fenced).
  bool run();

 private:
  using StreamId = std::pair<std::uint64_t, std::uint64_t>;

  bool take_over(journal::RedisConnection& redis);
  std::optional<KeptReplies> read_kept_replies(journal::RedisConnection& redis);
  void handled(std::string_view id);
  void acknowledge();

  const GatewayConfig& config_;
  const std::uint32_t shard_;
  const std::string consumer_;
  const journal::RedisEndpoint endpoint_;
  const std::string commands_key_;
  const std::string channel_;
  journal::Journal& journal_;
  GroupSink& sequencer_;
  CommandApplier& applier_;
  RedisPipe& out_;
  const std::atomic<bool>& stop_;

  const StreamId completed_;
  StreamId handled_{0, 0};           // the last entry handed to the applier
  std::deque<std::string> unacked_;  // read and handled, oldest first
  std::chrono::steady_clock::time_point heartbeat_at_{};
  std::chrono::steady_clock::time_point trimmed_at_{};
  std::chrono::steady_clock::time_point acknowledged_at_{};
};

}  // namespace flashsale::gateway
