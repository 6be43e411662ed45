// See command_applier.hpp; docs/scaling.md has the exactly-once argument.
#include "command_applier.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <thread>

#include "cluster.hpp"
#include "host_json.hpp"
#include "remote_outbox.hpp"

namespace flashsale::gateway {

namespace {

// The gateway's id, a NUL, and the connection's number as its 8 bytes: with a short id, the key
// fits std::string's inline buffer and a command costs no allocation for it.
std::string remote_key(std::string_view gateway, std::uint64_t connection) {
  std::string key(gateway);
  key += '\0';
  key.append(reinterpret_cast<const char*>(&connection), sizeof connection);
  return key;
}

}  // namespace

CommandApplier::CommandApplier(const GatewayConfig& config, std::uint32_t shard, RedisPipe& out,
                               GroupSink& sequencer, const std::atomic<bool>& stop)
    : config_(config), shard_(shard), out_(out), sequencer_(sequencer), stop_(stop) {}

void CommandApplier::apply(cluster::Command& command, const KeptReplies* kept) {
  std::visit(
      [&]<typename Body>(Body& body) {
        if constexpr (std::is_same_v<Body, cluster::HostCommand>)
          apply(body, kept);
        else
          apply(body);
      },
      command);
}

// The requests of one read, then the mark of its last entry, go to the engine thread at once:
// it never journals some of them with a cursor that names none of them, or the other way round.
//
// An audit ends a journal batch where it reads the state; it goes after the mark, so that the
// batch it ends carries the cursor of everything before it.
void CommandApplier::submit(std::string last_id, bool journal) {
  const auto audits =
      std::stable_partition(group_.begin(), group_.end(), [](const Request& request) {
        const auto* call = std::get_if<HostRequest>(&request);
        return call == nullptr || !std::holds_alternative<host::ReadAudit>(call->command);
      });
  group_.insert(audits, CursorMark{std::move(last_id), journal});
  while (!sequencer_.submit_all(group_) && !stop_)
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  group_.clear();
}

std::shared_ptr<Outbox> CommandApplier::outbox_of(std::string_view gateway,
                                                  std::uint64_t connection, std::string_view user) {
  Remote& remote = remotes_[remote_key(gateway, connection)];
  if (remote.outbox == nullptr)
    remote.outbox = std::make_shared<RemoteOutbox>(
        out_, cluster::gateway_stream(config_.journal.prefix, gateway), connection, shard_);
  if (!remote.signed_in && !user.empty()) {
    // Order updates (expiry, promotion, payment) reach the buyer through the connections it
    // ordered from.
    remote.signed_in = true;
    group_.push_back(HelloRequest{remote.outbox, std::string(user), true});
  }
  return remote.outbox;
}

void CommandApplier::apply(const cluster::OrderCommand& order) {
  auto from = outbox_of(order.gateway, order.connection, order.user);
  group_.push_back(OrderRequest{std::move(from), std::string(order.drop), std::string(order.user),
                                std::string(order.client_order_id), std::string(order.variant),
                                order.qty, order.tag, QueueSlot(),
                                std::chrono::steady_clock::now()});
}

void CommandApplier::apply(const cluster::ActionCommand& action) {
  auto from = outbox_of(action.gateway, action.connection, action.user);
  group_.push_back(ActionRequest{std::move(from), action.confirm, std::string(action.order_id),
                                 std::string(action.user)});
}

void CommandApplier::apply(const cluster::SubscribeCommand& subscribe) {
  auto from = outbox_of(subscribe.gateway, subscribe.connection, subscribe.user);
  group_.push_back(
      SubscribeRequest{std::move(from), std::string(subscribe.drop), std::string(subscribe.user)});
}

void CommandApplier::apply(const cluster::LeaveCommand& leave) {
  remotes_.erase(remote_key(leave.gateway, leave.connection));
}

// A call that changes something keeps its reply under "<gateway>:<call>", with the cursor that
// completes it, for a successor to send again; a read is run again instead.
void CommandApplier::apply(cluster::HostCommand& call, const KeptReplies* kept) {
  const bool changes = host::changes(call.command);
  std::string keep_as = changes ? fmt::format("{}:{}", call.gateway, call.call) : std::string();
  auto done = [&out = out_, stream = cluster::gateway_stream(config_.journal.prefix, call.gateway),
               number = call.call](HostReply reply) {
    send_host_answer(out, stream, number, std::move(reply));
  };
  if (kept != nullptr && changes) {  // done by a predecessor: not again
    const auto found = kept->find(keep_as);
    done(found != kept->end()
             ? found->second
             : host_json::error(503, "reply_lost",
                                "the call was carried out before the shard changed engines, but "
                                "its reply is lost; read the drop to see its state"));
    return;
  }
  group_.push_back(HostRequest{std::move(call.command), std::move(call.caller), std::move(done),
                               std::move(keep_as)});
}

}  // namespace flashsale::gateway
