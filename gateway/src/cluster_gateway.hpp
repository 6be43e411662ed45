// ClusterLink: what a `flashsale --role gateway` hands its sessions' requests to. Orders,
// confirms, cancels and subscriptions go to the command stream of the shard that owns the
// drop; host API calls too (a list to every shard, merged). Answers come back on this
// gateway's own stream and go to the connection (or HTTP call) that asked; drop updates come
// over each shard's Pub/Sub channel and are handed to every local hub, which fans them out.
// The viewers' protocol is the same as with one process. cluster.hpp has the keys and formats.
//
// A shard whose owner has not been heard from for cluster.unserved_after (its heartbeat comes
// once a second) is answered
// for at once, `unavailable`, rather than queued: a command stream never grows while no engine
// reads it for longer than that.
#pragma once

#include <atomic>
#include <boost/unordered/unordered_flat_map.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "flashsale/gateway/config.hpp"
#include "host_api.hpp"
#include "metrics.hpp"
#include "outbox.hpp"
#include "redis_pipe.hpp"
#include "sequencer.hpp"

namespace flashsale::gateway {

class ClusterLink final : public RequestSink {
 public:
  ClusterLink(const GatewayConfig& config, std::vector<Fanout*> hubs, Metrics& metrics);
  ~ClusterLink() override;  // stop()
  ClusterLink(const ClusterLink&) = delete;
  ClusterLink& operator=(const ClusterLink&) = delete;

  void start();
  void stop();

  // Any thread.
  bool submit(Request request) override;
  // A host API call or GET /drops, already authorized. `done` runs on the link's thread.
  void forward(const HttpRequest& request, std::function<void(HostReply)> done);
  // 200 when Redis is reachable and every shard's owner was heard from lately.
  HostReply health() const;

 private:
  struct Connection {
    std::uint64_t id = 0;
    std::string user;
    std::vector<std::uint32_t> shards;  // told about this connection: told when it leaves
    // The tags of its orders forwarded and not yet answered: an answer whose tag is not here
    // was delivered already (a failover sends some twice) and is dropped.
    std::vector<std::uint64_t> orders_waiting;
  };
  struct Gather;
  struct Pending {
    std::shared_ptr<Gather> gather;
    std::chrono::steady_clock::time_point deadline;
  };

  bool alive(std::uint32_t shard) const;
  std::string connection_of(const std::shared_ptr<Outbox>& from, std::uint32_t shard,
                            std::uint64_t* order_tag = nullptr);
  // Whether the order answer `tag` for `connection` is owed (and now no longer).
  bool take_order_tag(Outbox* connection, std::uint64_t tag);
  bool take_order_tag_locked(Outbox* connection, std::uint64_t tag);  // under mutex_
  bool send_command(std::uint32_t shard,
                    std::initializer_list<std::pair<std::string_view, std::string_view>> fields,
                    std::function<void(std::string_view)> failed);
  void read_answers();
  void dispatch(const std::vector<std::pair<std::string_view, std::string_view>>& record);
  void read_updates();
  void answer_host(std::uint64_t request, HostReply reply);
  void expire_host_calls();

  const GatewayConfig& config_;
  const std::vector<Fanout*> hubs_;
  Metrics& metrics_;
  const std::string id_;
  const std::string stream_;  // this gateway's answers
  RedisPipe commands_;

  mutable std::mutex mutex_;
  boost::unordered_flat_map<Outbox*, Connection> connections_;
  boost::unordered_flat_map<std::uint64_t, std::weak_ptr<Outbox>> by_id_;
  boost::unordered_flat_map<std::string, std::uint32_t> users_;  // connections per user
  boost::unordered_flat_map<std::uint64_t, Pending> host_calls_;
  // Connection and host call ids: from a random start, so that a gateway restarted under the
  // same id never takes over what engines still know of its predecessor's connections.
  std::uint64_t next_id_;

  std::unique_ptr<std::atomic<std::int64_t>[]> heard_ms_;  // per shard: its owner's heartbeat
  std::atomic<bool> stopping_{false};
  std::thread answers_;
  std::thread updates_;
};

}  // namespace flashsale::gateway
