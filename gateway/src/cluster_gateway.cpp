// See cluster_gateway.hpp; docs/scaling.md.
#include "cluster_gateway.hpp"

#include <boost/unordered/unordered_flat_set.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include "clock.hpp"
#include "cluster.hpp"
#include "flashsale/gateway/json_writer.hpp"
#include "flashsale/gateway/protocol.hpp"
#include "host_json.hpp"
#include "topic.hpp"
#include "welcome.hpp"

namespace flashsale::gateway {

using Clock = std::chrono::steady_clock;
using journal::Reply;
using protocol::ErrorCode;

namespace {

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
      .count();
}

std::vector<std::string> command_streams(const GatewayConfig& config) {
  std::vector<std::string> streams;
  for (std::uint32_t shard = 0; shard < config.cluster.shards; ++shard)
    streams.push_back(cluster::commands_key(config.journal.prefix, shard));
  return streams;
}

}  // namespace

// One host call: answered when every shard asked has answered. Under mutex_ until the last.
struct ClusterLink::Gather {
  std::function<void(HostReply)> done;
  std::size_t waiting = 0;
  bool list = false;          // merge the shards' lists
  std::string_view list_key;  // of "drops" or "streams"
  std::vector<HostReply> parts;
};

ClusterLink::ClusterLink(const GatewayConfig& config, std::vector<Fanout*> hubs, Metrics& metrics)
    : config_(config),
      hubs_(std::move(hubs)),
      metrics_(metrics),
      id_(cluster::process_name(config.cluster.id)),
      stream_(cluster::gateway_stream(config.journal.prefix, id_)),
      command_streams_(command_streams(config)),
      next_id_((std::uint64_t{std::random_device{}()} << 30 | std::random_device{}()) | 1),
      heard_ms_(std::make_unique<std::atomic<std::int64_t>[]>(config.cluster.shards)),
      commands_(config.journal.redis_endpoint(), config.journal.redis_timeout,
                config.limits.engine_queue_max, "gateway commands") {
  for (std::uint32_t shard = 0; shard < config.cluster.shards; ++shard) heard_ms_[shard] = 0;
}

ClusterLink::~ClusterLink() {
  stop();
}

void ClusterLink::start() {
  answers_ = std::thread([this] { read_answers(); });
  updates_ = std::thread([this] { read_updates(); });
  spdlog::info("flashsale: gateway {} forwarding to {} shards; answers on {}", id_,
               config_.cluster.shards, stream_);
}

void ClusterLink::stop() {
  stopping_ = true;
  if (answers_.joinable()) answers_.join();
  if (updates_.joinable()) updates_.join();
  std::vector<Connection> open;
  {
    std::lock_guard lock(mutex_);
    for (auto& [outbox, connection] : connections_) open.push_back(std::move(connection));
    connections_.clear();
    by_id_.clear();
    users_.clear();
  }
  for (const Connection& connection : open) tell_left(connection);
  commands_.stop();
  boost::unordered_flat_map<std::uint64_t, Pending> unanswered;
  {
    std::lock_guard lock(mutex_);
    unanswered.swap(host_calls_);
  }
  // The calls' connections go with `unanswered`, outside the lock.
}

bool ClusterLink::alive(std::uint32_t shard) const {
  return steady_ms() - heard_ms_[shard].load(std::memory_order_relaxed) <
         config_.cluster.unserved_after.count();
}

std::uint32_t ClusterLink::shard_of(std::string_view drop) const {
  return cluster::shard_of(drop, config_.cluster.shards);
}

std::uint64_t ClusterLink::connection_of(const std::shared_ptr<Outbox>& from, std::uint32_t shard,
                                         std::uint64_t* order_tag) {
  std::lock_guard lock(mutex_);
  Connection& connection = connections_[from.get()];
  if (connection.id == 0) {
    connection.id = next_id_++;
    by_id_[connection.id] = from;
  }
  if (order_tag != nullptr) {
    *order_tag = next_id_++;
    connection.orders_waiting.push_back(*order_tag);
  }
  if (std::find(connection.shards.begin(), connection.shards.end(), shard) ==
      connection.shards.end())
    connection.shards.push_back(shard);
  return connection.id;
}

bool ClusterLink::take_order_tag(Outbox* connection, std::uint64_t tag) {
  std::lock_guard lock(mutex_);
  return take_order_tag_locked(connection, tag);
}

bool ClusterLink::take_order_tag_locked(Outbox* connection, std::uint64_t tag) {
  const auto found = connections_.find(connection);
  if (found == connections_.end()) return false;
  auto& waiting = found->second.orders_waiting;
  const auto at = std::find(waiting.begin(), waiting.end(), tag);
  if (at == waiting.end()) return false;
  waiting.erase(at);
  return true;
}

bool ClusterLink::send_command(std::uint32_t shard, const cluster::Command& command,
                               std::function<void(std::string_view)> failed) {
  RedisPipe::Command write;
  write.stream = command_streams_[shard];
  cluster::encode(command, write.record);
  write.failed = std::move(failed);
  return commands_.push(std::move(write));
}

bool ClusterLink::submit(Request request) {
  return std::visit(
      [&]<typename Body>(Body& body) -> bool {
        if constexpr (std::is_same_v<Body, CursorMark>)
          return false;  // an engine's, from its command stream: never a gateway's
        else
          return handle(body);
      },
      request);
}

bool ClusterLink::handle(HelloRequest& hello) {
  // Under the lock, so that two hellos of one user cannot both take its last place; the outbox
  // only queues what it is given.
  std::lock_guard lock(mutex_);
  const auto user = users_.try_emplace(hello.user, 0).first;
  if (!welcome_or_refuse(*hello.from, hello.user, user->second, config_.limits, metrics_,
                         wall_ms())) {
    if (user->second == 0) users_.erase(user);
    return true;
  }
  user->second += 1;
  connections_[hello.from.get()].user = hello.user;
  return true;
}

bool ClusterLink::handle(LeaveRequest& leave) {
  Connection gone;
  {
    std::lock_guard lock(mutex_);
    const auto found = connections_.find(leave.from);
    if (found == connections_.end()) return true;
    gone = std::move(found->second);
    connections_.erase(found);
    by_id_.erase(gone.id);
    if (!gone.user.empty()) {
      const auto user = users_.find(gone.user);
      if (user != users_.end() && --user->second == 0) users_.erase(user);
    }
  }
  tell_left(gone);
  return true;
}

void ClusterLink::tell_left(const Connection& gone) {
  if (gone.id == 0) return;  // no engine heard of it
  for (const std::uint32_t shard : gone.shards)
    send_command(shard, cluster::LeaveCommand{id_, gone.id, gone.user}, {});
}

// A stream's subscription goes where the stream is (topic.hpp), as a drop's does.
bool ClusterLink::handle(SubscribeRequest& subscribe) {
  const std::string_view id = topic::shard_key(subscribe.drop);
  const std::uint32_t shard = shard_of(id);
  if (!alive(shard)) {
    const bool stream = topic::stream_of(subscribe.drop).has_value();
    subscribe.from->forget_subscription(subscribe.drop);
    subscribe.from->send(
        share(protocol::error(ErrorCode::unavailable,
                              stream ? "no engine serves this stream right now; retry"
                                     : "no engine serves this drop right now; retry",
                              id)),
        FrameKind::reply);
    return true;
  }
  return send_command(shard,
                      cluster::SubscribeCommand{id_, connection_of(subscribe.from, shard),
                                                subscribe.drop, subscribe.user},
                      {});
}

bool ClusterLink::handle(OrderRequest& order) {
  const std::uint32_t shard = shard_of(order.drop);
  const auto unavailable = [this, from = std::weak_ptr<Outbox>(order.from), drop = order.drop,
                            id = order.client_order_id] {
    auto asker = from.lock();
    if (asker == nullptr) return;
    metrics_.count_order(protocol::GatewayStatus::unavailable);
    asker->send(share(protocol::order_result_status(drop, id, protocol::GatewayStatus::unavailable,
                                                    "no engine serves this drop right now")),
                FrameKind::order);
  };
  if (!alive(shard)) {
    unavailable();
    return true;
  }
  std::uint64_t tag = 0;
  const std::uint64_t connection = connection_of(order.from, shard, &tag);
  const bool queued = send_command(
      shard,
      cluster::OrderCommand{id_, connection, order.drop, order.user, order.client_order_id,
                            order.qty, tag, order.variant},
      [this, tag, from = std::weak_ptr<Outbox>(order.from), unavailable](std::string_view) {
        // Not forwarded: the gateway answers, and owes no other answer.
        if (auto asker = from.lock(); asker && take_order_tag(asker.get(), tag)) unavailable();
      });
  if (!queued) take_order_tag(order.from.get(), tag);  // the session answers `busy`
  return queued;
}

bool ClusterLink::handle(ActionRequest& action) {
  // The drop routes it; the drop's engine alone can read the rest.
  const std::string_view drop = protocol::drop_of_order_id(action.order_id);
  if (drop.empty()) {
    action.from->send(
        share(protocol::error(ErrorCode::unknown_order, "no such order", action.order_id)),
        FrameKind::reply);
    return true;
  }
  const std::uint32_t shard = shard_of(drop);
  if (!alive(shard)) {
    action.from->send(
        share(protocol::error(ErrorCode::unavailable, "no engine serves this drop right now",
                              action.order_id)),
        FrameKind::reply);
    return true;
  }
  return send_command(shard,
                      cluster::ActionCommand{id_, connection_of(action.from, shard), action.user,
                                             action.order_id, action.confirm},
                      {});
}

// A list goes to every shard and is merged; anything else to the shard of its drop (a new
// drop's: the shard of its id).
bool ClusterLink::handle(HostRequest& request) {
  auto gather = std::make_shared<Gather>();
  gather->done = std::move(request.done);
  gather->list = host::is_list(request.command);
  gather->list_key =
      std::holds_alternative<host::ReadStreams>(request.command) ? "streams" : "drops";
  std::vector<std::uint32_t> shards;
  if (gather->list) {
    for (std::uint32_t shard = 0; shard < config_.cluster.shards; ++shard) shards.push_back(shard);
  } else {
    shards.push_back(shard_of(host::shard_key_of(request.command)));
  }
  for (const std::uint32_t shard : shards) {
    if (!alive(shard)) {
      gather->done(host_json::error(
          503, "unavailable", fmt::format("no engine serves shard {} right now; retry", shard)));
      return true;
    }
  }
  gather->waiting = shards.size();
  const auto deadline = Clock::now() + config_.cluster.forward_timeout;
  for (const std::uint32_t shard : shards) {
    std::uint64_t call = 0;
    {
      std::lock_guard lock(mutex_);
      call = next_id_++;
      host_calls_[call] = {gather, deadline};
    }
    const bool queued = send_command(
        shard, cluster::HostCommand{id_, call, request.command, request.caller},
        [this, call](std::string_view) {
          answer_host(call,
                      host_json::error(503, "unavailable", "redis cannot take the call; retry"));
        });
    if (!queued) answer_host(call, host_json::error(503, "busy", "the gateway is busy; retry"));
  }
  return true;
}

void ClusterLink::answer_host(std::uint64_t call, HostReply reply) {
  std::shared_ptr<Gather> gather;
  {
    // The shards' parts may come from several threads (answers, the pipe's failures, expiry).
    std::lock_guard lock(mutex_);
    const auto found = host_calls_.find(call);
    if (found == host_calls_.end()) return;  // answered already (or timed out)
    gather = std::move(found->second.gather);
    host_calls_.erase(found);
    gather->parts.push_back(std::move(reply));
    if (--gather->waiting > 0) return;
  }
  gather->done(gather->list ? host_json::merge_lists(gather->parts, gather->list_key)
                            : std::move(gather->parts.front()));
}

void ClusterLink::expire_host_calls() {
  std::vector<std::uint64_t> late;
  {
    std::lock_guard lock(mutex_);
    const auto now = Clock::now();
    for (const auto& [call, pending] : host_calls_)
      if (now >= pending.deadline) late.push_back(call);
  }
  for (const std::uint64_t call : late)
    answer_host(call, host_json::error(504, "timeout", "the engine did not answer in time; retry"));
}

// One answer: to a host call, or to a connection if it is still here (a retry of a lost one
// finds its outcome). Frames wait in courier_ until the read they came in is dispatched.
void ClusterLink::dispatch(cluster::Answer& answer) {
  if (auto* reply = std::get_if<cluster::HostAnswer>(&answer))
    return answer_host(reply->call, std::move(reply->reply));
  std::visit(
      [&]<typename Body>(const Body& body) {
        if constexpr (!std::is_same_v<Body, cluster::HostAnswer>) {
          std::shared_ptr<Outbox> outbox;
          bool owed = true;
          {
            std::lock_guard lock(mutex_);
            const auto found = by_id_.find(body.connection);
            if (found != by_id_.end()) outbox = found->second.lock();
            if constexpr (std::is_same_v<Body, cluster::OrderAnswer>) {
              if (outbox != nullptr) owed = take_order_tag_locked(outbox.get(), body.tag);
            }
          }
          if (outbox == nullptr) return;
          if constexpr (std::is_same_v<Body, cluster::FrameAnswer>) {
            courier_.send(
                std::move(outbox), share(std::string(body.frame)), body.kind,
                cluster::global_drop_index(body.drop_index, body.shard, config_.cluster.shards));
          } else if constexpr (std::is_same_v<Body, cluster::OrderAnswer>) {
            if (!owed) {
              metrics_.answers_repeated.fetch_add(1, std::memory_order_relaxed);
              return;
            }
            courier_.send(std::move(outbox), share(std::string(body.frame)), body.kind);
          } else if constexpr (std::is_same_v<Body, cluster::ForgetAnswer>) {
            courier_.flush();  // frames given before it go first
            outbox->forget_subscription(std::string(body.drop));
          } else if constexpr (std::is_same_v<Body, cluster::CloseAnswer>) {
            courier_.flush();
            outbox->close_with(share(std::string(body.frame)), body.code, "closed by the engine");
          }
        }
      },
      answer);
}

void ClusterLink::read_answers() {
  const journal::RedisEndpoint endpoint = config_.journal.redis_endpoint();
  std::unique_ptr<journal::RedisConnection> redis;
  std::string last = "$";  // a new gateway: nothing before now is ours
  Clock::time_point refreshed{};
  while (!stopping_) {
    expire_host_calls();
    if (redis != nullptr && redis->ok() && Clock::now() >= refreshed) {
      // Engines append with XADD, which keeps a key's time to live: once this gateway is gone,
      // its stream goes a minute later.
      redis->command({"PEXPIRE", stream_, "60000"});
      refreshed = Clock::now() + std::chrono::seconds(10);
    }
    if (redis == nullptr || !redis->ok()) {
      redis = std::make_unique<journal::RedisConnection>(endpoint, config_.journal.redis_timeout);
      if (!redis->ok()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        continue;
      }
      if (last == "$") {
        const Reply top = redis->command({"XREVRANGE", stream_, "+", "-", "COUNT", "1"});
        if (top == nullptr) continue;
        last = top->type == REDIS_REPLY_ARRAY && top->elements > 0
                   ? std::string(journal::text_of(top->element[0]->element[0]))
                   : "0-0";
      }
    }
    const Reply reply =
        redis->command({"XREAD", "COUNT", "1024", "BLOCK", "100", "STREAMS", stream_, last});
    if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY) continue;
    const redisReply* entries = reply->element[0]->element[1];
    for (std::size_t index = 0; index < entries->elements; ++index) {
      const redisReply* entry = entries->element[index];
      last = std::string(journal::text_of(entry->element[0]));
      const redisReply* fields = entry->element[1];
      for (std::size_t field = 0; field + 1 < fields->elements; field += 2) {
        std::optional<cluster::Answer> answer;
        if (journal::text_of(fields->element[field]) == "r")
          answer = cluster::decode_answer(journal::text_of(fields->element[field + 1]));
        if (!answer) {
          spdlog::warn("answer {}: not an answer this gateway reads; skipped", last);
          continue;
        }
        dispatch(*answer);
      }
    }
    courier_.flush();
  }
  if (redis != nullptr && redis->ok()) redis->command({"DEL", stream_});
}

void ClusterLink::read_updates() {
  const journal::RedisEndpoint endpoint = config_.journal.redis_endpoint();
  std::vector<std::string> channels;
  for (std::uint32_t shard = 0; shard < config_.cluster.shards; ++shard)
    channels.push_back(cluster::updates_channel(config_.journal.prefix, shard));
  std::unique_ptr<journal::RedisConnection> redis;
  // Drops whose standing gate came over this connection: a new connection may have missed
  // their fall or a new buyer, so they fall until their engine renews them.
  boost::unordered_flat_set<std::string> gated;
  while (!stopping_) {
    if (redis == nullptr || !redis->ok()) {
      for (const std::string& drop : gated) {
        auto fallen = std::make_shared<EdgeGate>();
        fallen->drop = drop;
        for (Fanout* hub : hubs_) hub->gate(fallen);
      }
      gated.clear();
      // Every owner says it is alive once a second: a silent connection is a dead one.
      redis = std::make_unique<journal::RedisConnection>(endpoint, config_.cluster.unserved_after);
      if (!redis->ok()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        continue;
      }
      std::vector<std::string_view> subscribe{"SUBSCRIBE"};
      subscribe.insert(subscribe.end(), channels.begin(), channels.end());
      redis->append(subscribe);
    }
    const Reply message = redis->read();
    if (message == nullptr || message->type != REDIS_REPLY_ARRAY || message->elements != 3 ||
        journal::text_of(message->element[0]) != "message")
      continue;
    const std::string_view channel = journal::text_of(message->element[1]);
    const auto shard = static_cast<std::uint32_t>(
        std::find(channels.begin(), channels.end(), channel) - channels.begin());
    if (shard >= channels.size()) continue;
    heard_ms_[shard].store(steady_ms(), std::memory_order_relaxed);
    const auto update = cluster::decode_update(journal::text_of(message->element[2]));
    if (!update || std::holds_alternative<cluster::Heartbeat>(*update)) continue;
    if (auto* gate = std::get_if<EdgeGate>(&*update)) {
      if (gate->sold_out) {
        gated.insert(gate->drop);
      } else {
        gated.erase(gate->drop);
      }
      const auto shared = std::make_shared<const EdgeGate>(std::move(*gate));
      for (Fanout* hub : hubs_) hub->gate(shared);
      continue;
    }
    const auto& drop_update = std::get<cluster::DropUpdate>(*update);
    const std::string drop(drop_update.drop);
    const SharedFrame frame = share(std::string(drop_update.frame));
    const std::uint32_t index =
        cluster::global_drop_index(drop_update.drop_index, shard, config_.cluster.shards);
    for (Fanout* hub : hubs_) hub->publish(drop, frame, drop_update.kind, index);
  }
}

HostReply ClusterLink::health() const {
  if (!commands_.connected() && commands_.queued() > 0)
    return host_json::error(503, "redis_unavailable", "cannot reach redis");
  for (std::uint32_t shard = 0; shard < config_.cluster.shards; ++shard)
    if (!alive(shard))
      return host_json::error(503, "shard_unserved",
                              fmt::format("no engine serves shard {}", shard));
  return {200, JsonObject()
                   .text("status", "ok")
                   .text("role", "gateway")
                   .text("id", id_)
                   .number("shards", config_.cluster.shards)
                   .done()};
}

}  // namespace flashsale::gateway
