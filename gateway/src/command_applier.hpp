// CommandApplier: turns the commands of a shard's stream (cluster_codec.hpp) into requests for
// the shard's engine thread (requests.hpp), and hands each read's requests to it in one step,
// with the read's CursorMark (audits after it). A gateway's connection becomes a RemoteOutbox,
// signed in for its user's order updates the first time it names its user; a host command becomes a
// HostRequest whose reply goes to the asking gateway's answer stream.
//
// One per shard served, used by the shard worker's thread only.
#pragma once

#include <atomic>
#include <boost/unordered/unordered_flat_map.hpp>
#include <memory>
#include <string>
#include <vector>

#include "cluster_codec.hpp"
#include "flashsale/gateway/config.hpp"
#include "redis_pipe.hpp"
#include "requests.hpp"

namespace flashsale::gateway {

// The host replies a shard's journal kept (journal::KeptReply), by key "<gateway>:<call>".
using KeptReplies = boost::unordered_flat_map<std::string, HostReply>;

class CommandApplier {
 public:
  CommandApplier(const GatewayConfig& config, std::uint32_t shard, RedisPipe& out,
                 GroupSink& sequencer, const std::atomic<bool>& stop);

  // Adds `command`'s requests to the group being gathered. `kept` is set for a command a
  // predecessor did (the journal's cursor covers it): a host call that changes something is
  // then answered with its kept reply instead of being done twice; anything else runs again
  // and finds what was recorded.
  void apply(cluster::Command& command, const KeptReplies* kept = nullptr);
  // Hands the group to the engine thread with the mark of the stream entry `last_id` that
  // ends it, waiting for room (a command read is this owner's and must run); returns once it
  // is queued, or `stop` turned true. `journal` is false for commands a predecessor completed:
  // the journal's cursor is past them already.
  void submit(std::string last_id, bool journal = true);

 private:
  struct Remote {
    std::shared_ptr<Outbox> outbox;
    bool signed_in = false;  // registered with the engine thread for its user's updates
  };

  std::shared_ptr<Outbox> outbox_of(std::string_view gateway, std::uint64_t connection,
                                    std::string_view user);
  void apply(const cluster::OrderCommand& order);
  void apply(const cluster::ActionCommand& action);
  void apply(const cluster::SubscribeCommand& subscribe);
  void apply(const cluster::LeaveCommand& leave);
  void apply(cluster::HostCommand& call, const KeptReplies* kept);

  const GatewayConfig& config_;
  const std::uint32_t shard_;
  RedisPipe& out_;
  GroupSink& sequencer_;
  const std::atomic<bool>& stop_;
  std::vector<Request> group_;  // the requests of the entries being read
  // The gateway connections this shard has heard from, until they leave; by gateway and
  // connection number.
  boost::unordered_flat_map<std::string, Remote> remotes_;
};

}  // namespace flashsale::gateway
