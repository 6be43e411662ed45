// See remote_outbox.hpp.
#include "remote_outbox.hpp"

#include "cluster_codec.hpp"

namespace flashsale::gateway {

namespace {

// Answers for a gateway are kept this many entries deep (XADD MAXLEN ~): about ten seconds of
// a surge's answers, should the gateway stall.
constexpr std::string_view gateway_stream_kept = "200000";

template <typename Answer>
void push_answer(RedisPipe& out, std::string stream, const Answer& answer) {
  RedisPipe::Command command;
  command.stream = std::move(stream);
  command.kept = gateway_stream_kept;
  cluster::encode(answer, command.record);
  // Lost with Redis: the buyer's retry of the client_order_id finds the outcome.
  out.push(std::move(command));
}

}  // namespace

RemoteOutbox::RemoteOutbox(RedisPipe& out, std::string stream, std::uint64_t connection,
                           std::uint32_t shard)
    : out_(out), stream_(std::move(stream)), connection_(connection), shard_(shard) {}

void RemoteOutbox::send(SharedFrame frame, FrameKind kind, std::uint32_t drop) {
  send_here(frame, kind, drop);
}

void RemoteOutbox::send_here(const SharedFrame& frame, FrameKind kind, std::uint32_t drop) {
  push_answer(out_, stream_, cluster::FrameAnswer{connection_, kind, shard_, drop, *frame});
}

void RemoteOutbox::send_answer(SharedFrame frame, FrameKind kind, std::uint64_t tag) {
  if (tag == 0) return send(std::move(frame), kind, 0);  // a gateway that numbers no orders
  push_answer(out_, stream_, cluster::OrderAnswer{connection_, kind, tag, *frame});
}

void RemoteOutbox::close_with(SharedFrame frame, std::uint16_t code, std::string) {
  push_answer(out_, stream_, cluster::CloseAnswer{connection_, code, *frame});
}

void RemoteOutbox::forget_subscription(std::string drop) {
  push_answer(out_, stream_, cluster::ForgetAnswer{connection_, drop});
}

ShardFanout::ShardFanout(RedisPipe& out, std::string channel)
    : out_(out), channel_(std::move(channel)) {}

void ShardFanout::publish(std::string drop, SharedFrame frame, FrameKind kind,
                          std::uint32_t drop_index) {
  out_.push_command(
      {"PUBLISH", channel_, cluster::encode_update({kind, drop_index, drop, *frame})});
}

void ShardFanout::gate(std::shared_ptr<const EdgeGate> gate) {
  out_.push_command({"PUBLISH", channel_, cluster::encode_gate(*gate)});
}

void send_host_answer(RedisPipe& out, std::string stream, std::uint64_t call, HostReply reply) {
  push_answer(out, std::move(stream), cluster::HostAnswer{call, std::move(reply)});
}

}  // namespace flashsale::gateway
