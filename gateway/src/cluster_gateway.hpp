// ClusterLink: what a `flashsale --role gateway` hands its sessions' requests to. Orders,
// confirms, cancels, subscriptions and host calls go to the command stream of the shard that
// owns the drop (a list of drops to every shard, merged). Answers come back on this gateway's
// own stream and go to the connection or host call that asked; drop updates come over each
// shard's Pub/Sub channel and are handed to every local hub, which fans them out. The viewers'
// protocol is the same as with one process. cluster.hpp has the keys, cluster_codec.hpp the
// messages.
//
// A shard whose owner has not been heard from for cluster.unserved_after (its heartbeat comes
// once a second) is answered for at once, `unavailable`, rather than queued: a command stream
// never grows while no engine reads it for longer than that.
#pragma once

#include <atomic>
#include <boost/unordered/unordered_flat_map.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster_codec.hpp"
#include "courier.hpp"
#include "flashsale/gateway/config.hpp"
#include "metrics.hpp"
#include "outbox.hpp"
#include "redis_pipe.hpp"
#include "requests.hpp"

namespace flashsale::gateway {

class ClusterLink final : public RequestSink {
 public:
  ClusterLink(const GatewayConfig& config, std::vector<Fanout*> hubs, Metrics& metrics);
  ~ClusterLink() override;  // stop()
  ClusterLink(const ClusterLink&) = delete;
  ClusterLink& operator=(const ClusterLink&) = delete;

  void start();
  // After the I/O threads stopped and before their io_contexts go (Server::run), on the thread
  // that owns the link. Its readers stop; the connections still open (cut at the end of the
  // stop's grace, they end with their io_contexts) leave their engines; its pipe sends its last
  // round and stops; and it lets go of the host calls no engine answered (an engine paused or
  // killed). Those hold HTTP connections through their `done`, and a connection that goes
  // closes its socket on its io_context: here, where that still exists and no I/O thread runs.
  // Afterwards nothing of the link runs on another thread, it holds no connection and uses its
  // hubs no more; a connection's leave may still come, and finds it sent. Idempotent.
  void stop();

  // Any thread. Viewers' requests: false when the command queue is full (answer `busy`). A
  // HostRequest, its host key already checked, is always taken (true) and always answered
  // through its `done` — `busy` and `unavailable` included — on any thread: post to your own.
  bool submit(Request request) override;
  // 200 when Redis is reachable and every shard's owner was heard from lately. Any thread.
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

  bool handle(HelloRequest& hello);
  bool handle(LeaveRequest& leave);
  bool handle(SubscribeRequest& subscribe);
  bool handle(OrderRequest& order);
  bool handle(ActionRequest& action);
  bool handle(HostRequest& request);
  void tell_left(const Connection& gone);  // to each shard it was known to

  bool alive(std::uint32_t shard) const;
  std::uint32_t shard_of(std::string_view drop) const;
  // The connection's number for engines, now known to `shard`; with `order_tag`, also a new
  // number for an order it sends, owed an answer.
  std::uint64_t connection_of(const std::shared_ptr<Outbox>& from, std::uint32_t shard,
                              std::uint64_t* order_tag = nullptr);
  // Whether the order answer `tag` for `connection` is owed (and now no longer).
  bool take_order_tag(Outbox* connection, std::uint64_t tag);
  bool take_order_tag_locked(Outbox* connection, std::uint64_t tag);  // under mutex_
  bool send_command(std::uint32_t shard, const cluster::Command& command,
                    std::function<void(std::string_view)> failed);
  void read_answers();
  void dispatch(cluster::Answer& answer);
  void read_updates();
  void answer_host(std::uint64_t call, HostReply reply);
  void expire_host_calls();

  const GatewayConfig& config_;
  const std::vector<Fanout*> hubs_;
  Metrics& metrics_;
  const std::string id_;
  const std::string stream_;                        // this gateway's answers
  const std::vector<std::string> command_streams_;  // per shard

  mutable std::mutex mutex_;
  boost::unordered_flat_map<Outbox*, Connection> connections_;
  boost::unordered_flat_map<std::uint64_t, std::weak_ptr<Outbox>> by_id_;
  boost::unordered_flat_map<std::string, std::uint32_t> users_;  // connections per user
  boost::unordered_flat_map<std::uint64_t, Pending> host_calls_;
  // Connection, order and host call numbers: from a random start, so that a gateway restarted
  // under the same id never takes over what engines still know of its predecessor's
  // connections.
  std::uint64_t next_id_;

  std::unique_ptr<std::atomic<std::int64_t>[]> heard_ms_;  // per shard: its owner's heartbeat
  Courier courier_;  // read_answers() only: a read's frames, one post per I/O thread
  // After the state its failure callbacks use: its last round, sent by stop(), may answer host
  // calls and orders it could not forward.
  RedisPipe commands_;
  std::atomic<bool> stopping_{false};
  std::thread answers_;
  std::thread updates_;
};

}  // namespace flashsale::gateway
