// See cluster_gateway.hpp; docs/scaling.md.
#include "cluster_gateway.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <random>

#include "cluster.hpp"
#include "flashsale/gateway/protocol.hpp"

namespace flashsale::gateway {

namespace json = boost::json;
namespace http = boost::beast::http;
using Clock = std::chrono::steady_clock;
using journal::Reply;

namespace {

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
      .count();
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Every shard's `{"drops":[…]}`, as one.
HostReply merge_lists(std::vector<HostReply>& parts) {
  json::array drops;
  for (HostReply& part : parts) {
    if (part.status != 200) return std::move(part);
    json::error_code error;
    json::value parsed = json::parse(part.body, error);
    if (error || !parsed.is_object() || !parsed.as_object().contains("drops"))
      return http_error(502, "bad_gateway", "an engine answered with an unreadable list");
    for (json::value& drop : parsed.as_object()["drops"].as_array()) drops.push_back(drop);
  }
  json::object merged;
  merged["drops"] = std::move(drops);
  return {200, json::serialize(merged)};
}

}  // namespace

// One host call: answered when every shard asked has answered.
struct ClusterLink::Gather {
  std::function<void(HostReply)> done;
  std::size_t waiting = 0;
  bool list = false;  // merge the shards' lists
  std::vector<HostReply> parts;
};

ClusterLink::ClusterLink(const GatewayConfig& config, std::vector<Fanout*> hubs, Metrics& metrics)
    : config_(config),
      hubs_(std::move(hubs)),
      metrics_(metrics),
      id_(cluster::process_name(config.cluster.id)),
      stream_(cluster::gateway_stream(config.journal.prefix, id_)),
      commands_(journal::RedisEndpoint::parse(config.journal.redis), config.journal.redis_timeout,
                config.limits.engine_queue_max, "gateway commands"),
      next_id_((std::uint64_t{std::random_device{}()} << 30 | std::random_device{}()) | 1),
      heard_ms_(std::make_unique<std::atomic<std::int64_t>[]>(config.cluster.shards)) {
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
}

bool ClusterLink::alive(std::uint32_t shard) const {
  return steady_ms() - heard_ms_[shard].load(std::memory_order_relaxed) <
         config_.cluster.unserved_after.count();
}

std::string ClusterLink::connection_of(const std::shared_ptr<Outbox>& from, std::uint32_t shard,
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
  return std::to_string(connection.id);
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

bool ClusterLink::send_command(std::uint32_t shard, std::initializer_list<cluster::Field> fields,
                               std::function<void(std::string_view)> failed) {
  RedisPipe::Command command;
  command.stream = cluster::commands_key(config_.journal.prefix, shard);
  cluster::append_field(command.record, "g", id_);
  for (const auto& [name, value] : fields) cluster::append_field(command.record, name, value);
  command.failed = std::move(failed);
  return commands_.push(std::move(command));
}

bool ClusterLink::submit(Request request) {
  return std::visit(
      [&]<typename Body>(Body& body) -> bool {
        if constexpr (std::is_same_v<Body, HelloRequest>) {
          {
            std::lock_guard lock(mutex_);
            std::uint32_t& count = users_[body.user];
            if (count >= config_.limits.connections_per_user) {
              metrics_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
              metrics_.count_limited(Limit::connections_per_user);
              body.from->close_with(
                  share(protocol::error(protocol::ErrorCode::rate_limited,
                                        "too many connections for this user", "hello")),
                  1008, "too many connections for this user");
              return true;
            }
            count += 1;
            connections_[body.from.get()].user = body.user;
          }
          body.from->send(share(protocol::welcome(body.user, wall_ms())), FrameKind::reply);
          return true;
        } else if constexpr (std::is_same_v<Body, LeaveRequest>) {
          Connection gone;
          {
            std::lock_guard lock(mutex_);
            const auto found = connections_.find(body.from);
            if (found == connections_.end()) return true;
            gone = std::move(found->second);
            connections_.erase(found);
            by_id_.erase(gone.id);
            if (!gone.user.empty()) {
              const auto user = users_.find(gone.user);
              if (user != users_.end() && --user->second == 0) users_.erase(user);
            }
          }
          if (gone.id != 0)
            for (const std::uint32_t shard : gone.shards)
              send_command(shard, {{"t", "l"}, {"c", std::to_string(gone.id)}, {"u", gone.user}},
                           {});
          return true;
        } else if constexpr (std::is_same_v<Body, SubscribeRequest>) {
          const std::uint32_t shard = cluster::shard_of(body.drop, config_.cluster.shards);
          if (!alive(shard)) {
            body.from->send(
                share(protocol::error(protocol::ErrorCode::bad_field,
                                      "no engine serves this drop right now; retry", body.drop)),
                FrameKind::reply);
            return true;
          }
          return send_command(
              shard, {{"t", "s"}, {"c", connection_of(body.from, shard)}, {"d", body.drop}}, {});
        } else if constexpr (std::is_same_v<Body, OrderRequest>) {
          const std::uint32_t shard = cluster::shard_of(body.drop, config_.cluster.shards);
          const auto unavailable = [from = std::weak_ptr<Outbox>(body.from), drop = body.drop,
                                    id = body.client_order_id](std::string_view) {
            if (auto alive_from = from.lock())
              alive_from->send(
                  share(protocol::order_result_status(drop, id, "unavailable",
                                                      "no engine serves this drop right now")),
                  FrameKind::order);
          };
          if (!alive(shard)) {
            unavailable({});
            return true;
          }
          std::uint64_t tag = 0;
          const std::string connection = connection_of(body.from, shard, &tag);
          const bool queued = send_command(
              shard,
              {{"t", "o"},
               {"c", connection},
               {"d", body.drop},
               {"u", body.user},
               {"k", body.client_order_id},
               {"q", std::to_string(body.qty)},
               {"n", std::to_string(tag)}},
              [this, tag, from = std::weak_ptr<Outbox>(body.from), unavailable](std::string_view) {
                // Not forwarded: the gateway answers, and owes no other answer.
                if (auto alive_from = from.lock();
                    alive_from && take_order_tag(alive_from.get(), tag))
                  unavailable({});
              });
          if (!queued) take_order_tag(body.from.get(), tag);  // the session answers `busy`
          return queued;
        } else if constexpr (std::is_same_v<Body, ActionRequest>) {
          const auto ref = protocol::parse_order_id(body.order_id);
          const std::uint32_t shard =
              ref ? cluster::shard_of(ref->drop, config_.cluster.shards) : 0;
          if (!ref || !alive(shard)) {
            body.from->send(
                share(protocol::error(
                    ref ? protocol::ErrorCode::bad_field : protocol::ErrorCode::unknown_order,
                    ref ? "no engine serves this drop right now" : "no such order", body.order_id)),
                FrameKind::reply);
            return true;
          }
          return send_command(shard,
                              {{"t", "a"},
                               {"c", connection_of(body.from, shard)},
                               {"u", body.user},
                               {"i", body.order_id},
                               {"x", body.confirm ? "confirm" : "cancel"}},
                              {});
        } else {
          return false;  // host calls are forwarded whole (forward()); cursors are an engine's
        }
      },
      request);
}

void ClusterLink::forward(const HttpRequest& request, std::function<void(HostReply)> done) {
  std::string_view path = request.target();
  path = path.substr(0, path.find('?'));
  auto gather = std::make_shared<Gather>();
  gather->done = std::move(done);
  std::vector<std::uint32_t> shards;
  if (path == "/drops" || (path == "/api/drops" && request.method() == http::verb::get)) {
    gather->list = true;
    for (std::uint32_t shard = 0; shard < config_.cluster.shards; ++shard) shards.push_back(shard);
  } else if (path == "/api/drops") {
    // A new drop goes to its id's shard; a body without one gets the engine's own 400.
    json::error_code error;
    const json::value body = json::parse(request.body(), error);
    const json::value* id =
        !error && body.is_object() ? body.as_object().if_contains("id") : nullptr;
    shards.push_back(id != nullptr && id->is_string()
                         ? cluster::shard_of(id->as_string(), config_.cluster.shards)
                         : 0);
  } else {
    std::string_view rest =
        path.substr(std::min(path.size(), std::string_view("/api/drops/").size()));
    shards.push_back(cluster::shard_of(rest.substr(0, rest.find('/')), config_.cluster.shards));
  }
  for (const std::uint32_t shard : shards) {
    if (!alive(shard)) {
      gather->done(http_error(503, "unavailable",
                              fmt::format("no engine serves shard {} right now; retry", shard)));
      return;
    }
  }
  gather->waiting = shards.size();
  const auto deadline = Clock::now() + config_.cluster.forward_timeout;
  for (const std::uint32_t shard : shards) {
    std::uint64_t id = 0;
    {
      std::lock_guard lock(mutex_);
      id = next_id_++;
      host_calls_[id] = {gather, deadline};
    }
    const bool queued = send_command(
        shard,
        {{"t", "h"},
         {"n", std::to_string(id)},
         {"m", request.method_string()},
         {"p", request.target()},
         {"a", request[http::field::authorization]},
         {"b", request.body()}},
        [this, id](std::string_view) {
          answer_host(id, http_error(503, "unavailable", "redis cannot take the call; retry"));
        });
    if (!queued) answer_host(id, http_error(503, "busy", "the gateway is busy; retry"));
  }
}

void ClusterLink::answer_host(std::uint64_t request, HostReply reply) {
  std::shared_ptr<Gather> gather;
  {
    std::lock_guard lock(mutex_);
    const auto found = host_calls_.find(request);
    if (found == host_calls_.end()) return;  // answered already (or timed out)
    gather = std::move(found->second.gather);
    host_calls_.erase(found);
  }
  gather->parts.push_back(std::move(reply));
  if (--gather->waiting > 0) return;
  gather->done(gather->list ? merge_lists(gather->parts) : std::move(gather->parts.front()));
}

void ClusterLink::expire_host_calls() {
  std::vector<std::uint64_t> late;
  {
    std::lock_guard lock(mutex_);
    const auto now = Clock::now();
    for (const auto& [id, pending] : host_calls_)
      if (now >= pending.deadline) late.push_back(id);
  }
  for (const std::uint64_t id : late)
    answer_host(id, http_error(504, "timeout", "the engine did not answer in time; retry"));
}

// One answer record: to a connection, or to a host call.
void ClusterLink::dispatch(const std::vector<cluster::Field>& record) {
  std::string_view connection, kind, shard, drop, frame, request, status;
  for (const auto& [name, value] : record) {
    if (name == "c")
      connection = value;
    else if (name == "k")
      kind = value;
    else if (name == "s")
      shard = value;
    else if (name == "d")
      drop = value;
    else if (name == "f")
      frame = value;
    else if (name == "n")
      request = value;
  }
  if (!request.empty() && connection.empty()) {  // a host reply: its status rides in "s"
    unsigned code = 503;
    std::uint64_t id = 0;
    std::from_chars(shard.data(), shard.data() + shard.size(), code);
    std::from_chars(request.data(), request.data() + request.size(), id);
    answer_host(id, {code, std::string(frame)});
    return;
  }
  std::uint64_t id = 0;
  std::from_chars(connection.data(), connection.data() + connection.size(), id);
  std::uint64_t tag = 0;  // the answer to one of its orders: delivered once
  std::from_chars(request.data(), request.data() + request.size(), tag);
  std::shared_ptr<Outbox> outbox;
  bool owed = true;
  {
    std::lock_guard lock(mutex_);
    const auto found = by_id_.find(id);
    if (found != by_id_.end()) outbox = found->second.lock();
    if (outbox != nullptr && tag != 0) owed = take_order_tag_locked(outbox.get(), tag);
  }
  if (outbox == nullptr || kind.size() != 1) return;  // gone: a retry finds its outcome
  if (tag != 0) {
    if (!owed) {
      metrics_.answers_repeated.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    outbox->send(share(std::string(frame)), static_cast<FrameKind>(kind[0] - '0'));
    return;
  }
  if (kind[0] == cluster::frame_forget) {
    outbox->forget_subscription(std::string(drop));
  } else if (kind[0] == cluster::frame_close) {
    std::uint16_t code = 1008;
    std::from_chars(drop.data(), drop.data() + drop.size(), code);
    outbox->close_with(share(std::string(frame)), code, "closed by the engine");
  } else {
    std::uint32_t index_in_shard = 0;
    std::uint32_t shard_number = 0;
    std::from_chars(drop.data(), drop.data() + drop.size(), index_in_shard);
    std::from_chars(shard.data(), shard.data() + shard.size(), shard_number);
    outbox->send(share(std::string(frame)), static_cast<FrameKind>(kind[0] - '0'),
                 cluster::global_drop_index(index_in_shard, shard_number, config_.cluster.shards));
  }
}

void ClusterLink::read_answers() {
  const journal::RedisEndpoint endpoint = journal::RedisEndpoint::parse(config_.journal.redis);
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
    std::vector<cluster::Field> record;
    for (std::size_t index = 0; index < entries->elements; ++index) {
      const redisReply* entry = entries->element[index];
      last = std::string(journal::text_of(entry->element[0]));
      const redisReply* fields = entry->element[1];
      for (std::size_t field = 0; field + 1 < fields->elements; field += 2) {
        if (journal::text_of(fields->element[field]) != "r" ||
            !cluster::decode_record(journal::text_of(fields->element[field + 1]), record)) {
          spdlog::warn("answer {}: not a record; skipped", last);
          continue;
        }
        dispatch(record);
      }
    }
  }
  if (redis != nullptr && redis->ok()) redis->command({"DEL", stream_});
}

void ClusterLink::read_updates() {
  const journal::RedisEndpoint endpoint = journal::RedisEndpoint::parse(config_.journal.redis);
  std::vector<std::string> channels;
  for (std::uint32_t shard = 0; shard < config_.cluster.shards; ++shard)
    channels.push_back(cluster::updates_channel(config_.journal.prefix, shard));
  std::unique_ptr<journal::RedisConnection> redis;
  while (!stopping_) {
    if (redis == nullptr || !redis->ok()) {
      // Every owner says "alive" once a second: a silent connection is a dead one.
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
    const std::string_view payload = journal::text_of(message->element[2]);
    if (payload == cluster::alive) continue;
    // "<kind> <drop index> <drop id>\n<frame>"
    const auto line_end = payload.find('\n');
    const auto first_space = payload.find(' ');
    const auto second_space = payload.find(' ', first_space + 1);
    if (line_end == std::string_view::npos || second_space == std::string_view::npos ||
        second_space > line_end || first_space != 1)
      continue;
    std::uint32_t index_in_shard = 0;
    std::from_chars(payload.data() + first_space + 1, payload.data() + second_space,
                    index_in_shard);
    const auto kind = static_cast<FrameKind>(payload[0] - '0');
    const std::string drop(payload.substr(second_space + 1, line_end - second_space - 1));
    const SharedFrame frame = share(std::string(payload.substr(line_end + 1)));
    const std::uint32_t index =
        cluster::global_drop_index(index_in_shard, shard, config_.cluster.shards);
    for (Fanout* hub : hubs_) hub->publish(drop, frame, kind, index);
  }
}

HostReply ClusterLink::health() const {
  if (!commands_.connected() && commands_.queued() > 0)
    return http_error(503, "redis_unavailable", "cannot reach redis");
  for (std::uint32_t shard = 0; shard < config_.cluster.shards; ++shard)
    if (!alive(shard))
      return http_error(503, "shard_unserved", fmt::format("no engine serves shard {}", shard));
  return {200, fmt::format(R"({{"status":"ok","role":"gateway","id":"{}","shards":{}}})", id_,
                           config_.cluster.shards)};
}

}  // namespace flashsale::gateway
