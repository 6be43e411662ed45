// What an engine sends gateways through Redis, on behalf of its engine thread: the frames and
// answers for a gateway's connection (RemoteOutbox, to that gateway's answer stream), a
// shard's drop updates (ShardFanout, to the shard's Pub/Sub channel, once for every gateway),
// and host replies (send_host_answer). Everything goes down one RedisPipe, which merges what
// accumulates for a stream into one entry per round; cluster_codec.hpp has the messages.
//
// Nothing here waits for Redis or retries: what the pipe cannot write is lost, and a buyer's
// retry of its client_order_id finds the outcome (docs/scaling.md). Any thread.
#pragma once

#include <cstdint>
#include <string>

#include "outbox.hpp"
#include "redis_pipe.hpp"
#include "requests.hpp"

namespace flashsale::gateway {

// A gateway's connection, as an engine sees it.
class RemoteOutbox final : public Outbox {
 public:
  // `stream`: the gateway's answer stream; `connection`: the gateway's number for it.
  RemoteOutbox(RedisPipe& out, std::string stream, std::uint64_t connection, std::uint32_t shard);

  void send(SharedFrame frame, FrameKind kind, std::uint32_t drop) override;
  void send_here(const SharedFrame& frame, FrameKind kind, std::uint32_t drop) override;
  // With the order's tag, so that the gateway delivers it once (a failover may send it twice).
  void send_answer(SharedFrame frame, FrameKind kind, std::uint64_t tag) override;
  void close_with(SharedFrame frame, std::uint16_t code, std::string reason) override;
  void forget_subscription(std::string drop) override;
  void shut_down() override {}

 private:
  RedisPipe& out_;
  const std::string stream_;
  const std::uint64_t connection_;
  const std::uint32_t shard_;
};

// A shard's drop updates: encoded once, published once, for every gateway to fan out.
class ShardFanout final : public Fanout {
 public:
  ShardFanout(RedisPipe& out, std::string channel);
  void publish(std::string drop, SharedFrame frame, FrameKind kind,
               std::uint32_t drop_index) override;
  void gate(std::shared_ptr<const EdgeGate> gate) override;

 private:
  RedisPipe& out_;
  const std::string channel_;
};

// The reply to host call `call` of the gateway whose answer stream is `stream`.
void send_host_answer(RedisPipe& out, std::string stream, std::uint64_t call, HostReply reply);

}  // namespace flashsale::gateway
