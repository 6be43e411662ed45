// See cluster_engine.hpp; docs/scaling.md has the whole argument.
#include "cluster_engine.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/unordered/unordered_flat_map.hpp>
#include <deque>
#include <thread>

#include "cluster.hpp"
#include "context.hpp"
#include "endpoint.hpp"
#include "flashsale/gateway/protocol.hpp"
#include "host_api.hpp"
#include "redis_pipe.hpp"
#include "sequencer.hpp"

namespace flashsale::gateway {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using journal::Reply;
using StreamId = std::pair<std::uint64_t, std::uint64_t>;

// Answers for a gateway's connections are kept this many entries deep (XADD MAXLEN ~): about
// ten seconds of a surge's answers, should a gateway stall.
constexpr std::string_view gateway_stream_kept = "200000";
constexpr std::size_t read_count = 512;
constexpr auto heartbeat_every = std::chrono::seconds(1);
constexpr auto trim_every = std::chrono::seconds(1);
// Acknowledgements are gathered this long: one XACK of many ids costs Redis less than many.
constexpr auto acknowledge_every = std::chrono::milliseconds(5);

// KEYS[1] commands, KEYS[2] lease; ARGV[1] token, ARGV[2] group, ARGV[3] consumer, ARGV[4]
// count, ARGV[5] '>' (new commands) or an id (this consumer's own pending ones after it).
// Reading is fenced like writing: an engine that lost the shard's lease takes nothing more.
const std::string read_lua = R"(#!lua
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return redis.error_reply('FENCED the shard belongs to another engine')
end
return redis.call('XREADGROUP', 'GROUP', ARGV[2], ARGV[3], 'COUNT', ARGV[4], 'STREAMS', KEYS[1],
                  ARGV[5])
)";

struct Entry {
  std::string_view id;
  std::vector<std::pair<std::string_view, std::string_view>> fields;

  std::string_view operator[](std::string_view name) const {
    for (const auto& [field, value] : fields)
      if (field == name) return value;
    return {};
  }
};

// [[id, ["r", record, "r", record, …]], …]: one Entry per record, in order. What is not of
// that shape is skipped, and said: a gateway of another version, or someone else's writes.
void read_entries(const redisReply* list, std::vector<Entry>& out) {
  if (list == nullptr || list->type != REDIS_REPLY_ARRAY) return;
  for (std::size_t index = 0; index < list->elements; ++index) {
    const redisReply* item = list->element[index];
    if (item->type != REDIS_REPLY_ARRAY || item->elements != 2 ||
        item->element[0]->type != REDIS_REPLY_STRING || item->element[1]->type != REDIS_REPLY_ARRAY)
      continue;
    const redisReply* fields = item->element[1];
    for (std::size_t field = 0; field + 1 < fields->elements; field += 2) {
      Entry& entry = out.emplace_back();
      entry.id = journal::text_of(item->element[0]);
      if (journal::text_of(fields->element[field]) != "r" ||
          !cluster::decode_record(journal::text_of(fields->element[field + 1]), entry.fields)) {
        spdlog::warn("command {}: not a record; skipped", entry.id);
        entry.fields.clear();
      }
    }
  }
}

StreamId id_of(std::string_view id) {
  return cluster::parse_stream_id(id).value_or(StreamId{0, 0});
}

// A gateway's connection, as an engine sees it: what the Sequencer sends it goes to the
// gateway's answer stream, tagged with the connection.
class RemoteOutbox final : public Outbox {
 public:
  RemoteOutbox(RedisPipe& out, std::string stream, std::string connection, std::uint32_t shard)
      : out_(out),
        stream_(std::move(stream)),
        connection_(std::move(connection)),
        shard_(std::to_string(shard)) {}

  void send(SharedFrame frame, FrameKind kind, std::uint32_t drop) override {
    send_here(frame, kind, drop);
  }
  void send_here(const SharedFrame& frame, FrameKind kind, std::uint32_t drop) override {
    const char digit = static_cast<char>('0' + static_cast<int>(kind));
    push({{"k", {&digit, 1}}, {"s", shard_}, {"d", std::to_string(drop)}, {"f", *frame}});
  }
  void send_answer(SharedFrame frame, FrameKind kind, std::uint64_t tag) override {
    if (tag == 0) return send(std::move(frame), kind, 0);  // a gateway that numbers no orders
    const char digit = static_cast<char>('0' + static_cast<int>(kind));
    push({{"k", {&digit, 1}}, {"n", std::to_string(tag)}, {"f", *frame}});
  }
  void close_with(SharedFrame frame, std::uint16_t code, std::string) override {
    const char kind = cluster::frame_close;
    push({{"k", {&kind, 1}}, {"d", std::to_string(code)}, {"f", *frame}});
  }
  void forget_subscription(std::string drop) override {
    const char kind = cluster::frame_forget;
    push({{"k", {&kind, 1}}, {"d", drop}});
  }
  void shut_down() override {}

 private:
  void push(std::initializer_list<cluster::Field> fields) {
    RedisPipe::Command command;
    command.stream = stream_;
    command.kept = gateway_stream_kept;
    cluster::append_field(command.record, "c", connection_);
    for (const auto& [name, value] : fields) cluster::append_field(command.record, name, value);
    // Lost with Redis: the buyer's retry of the client_order_id finds the outcome.
    out_.push(std::move(command));
  }

  RedisPipe& out_;
  const std::string stream_;
  const std::string connection_;
  const std::string shard_;
};

// A shard's drop updates go to every gateway at once, over Pub/Sub.
class ShardFanout final : public Fanout {
 public:
  ShardFanout(RedisPipe& out, std::string channel) : out_(out), channel_(std::move(channel)) {}
  void publish(std::string drop, SharedFrame frame, FrameKind kind,
               std::uint32_t drop_index) override {
    out_.push_command(
        {"PUBLISH", channel_,
         fmt::format("{} {} {}\n{}", static_cast<int>(kind), drop_index, drop, *frame)});
  }

 private:
  RedisPipe& out_;
  const std::string channel_;
};

// Collects what the host API would submit, so that it goes with the rest of its read. A call
// that is not a read keeps its reply with the cursor that completes it. A call a predecessor
// already did (`replaying`) is not run again: its kept reply answers it.
class GroupSink final : public RequestSink {
 public:
  explicit GroupSink(std::vector<Request>& group) : group_(group) {}

  // For the host call about to be routed: the key its reply is kept under ("" for a read), and
  // whether a predecessor did it (then `kept` is its reply, if one was found).
  void next_call(std::string keep_as, bool replaying, std::optional<HostReply> kept) {
    keep_as_ = std::move(keep_as);
    replaying_ = replaying;
    kept_ = std::move(kept);
  }

  bool submit(Request request) override {
    auto* host = std::get_if<HostRequest>(&request);
    if (host != nullptr && replaying_ && !keep_as_.empty()) {
      host->done(kept_.value_or(http_error(
          503, "reply_lost",
          "the call was carried out before the shard changed engines, but its reply is lost; "
          "read the drop to see its state")));
      return true;
    }
    if (host != nullptr) host->keep_reply_as = keep_as_;
    group_.push_back(std::move(request));
    return true;
  }

 private:
  std::vector<Request>& group_;
  std::string keep_as_;
  bool replaying_ = false;
  std::optional<HostReply> kept_;
};

// What a shard worker reports: whether it serves its shard, and its journal's status then.
struct ShardStatus {
  std::uint32_t shard = 0;
  std::optional<journal::JournalStatus> journal;  // set while serving
};

class ShardWorker {
 public:
  ShardWorker(const GatewayConfig& config, std::uint32_t shard, bool preferred,
              std::string consumer, RedisPipe& out, Metrics& metrics, const std::atomic<bool>& stop)
      : config_(config),
        shard_(shard),
        preferred_(preferred),
        consumer_(std::move(consumer)),
        endpoint_(journal::RedisEndpoint::parse(config.journal.redis)),
        commands_key_(cluster::commands_key(config.journal.prefix, shard)),
        channel_(cluster::updates_channel(config.journal.prefix, shard)),
        out_(out),
        metrics_(metrics),
        stop_(stop),
        thread_([this] { run(); }) {}
  ~ShardWorker() { thread_.join(); }

  // Any thread.
  ShardStatus status() const {
    std::lock_guard lock(status_mutex_);
    return {shard_, serving_ != nullptr ? std::optional(serving_->status()) : std::nullopt};
  }

 private:
  void run() {
    while (!stop_) {
      if (wait_for_free_lease()) serve();
    }
  }

  // Sleeps up to `duration`, in steps that notice a stop.
  void nap(std::chrono::milliseconds duration) {
    const auto until = Clock::now() + duration;
    while (!stop_ && Clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }

  bool connect(std::unique_ptr<journal::RedisConnection>& redis) {
    if (redis != nullptr && redis->ok()) return true;
    redis = std::make_unique<journal::RedisConnection>(endpoint_, config_.journal.redis_timeout);
    if (redis->ok()) return true;
    nap(std::chrono::milliseconds(200));
    return false;
  }

  // True once this engine should try to take the shard: its lease is free — at once for a
  // preferred shard, or one this engine saw served (its owner died: fail over now); a shard
  // free since this engine started watching is left to its preferred engine for
  // standby_delay, so that each gets its own at start-up.
  bool wait_for_free_lease() {
    const std::string lease_key =
        "{" + cluster::shard_prefix(config_.journal.prefix, shard_) + "}:lease";
    Clock::time_point free_since{};  // {}: held when last looked
    bool seen_held = false;
    std::unique_ptr<journal::RedisConnection> redis;
    while (!stop_) {
      if (!connect(redis)) continue;
      const Reply ttl = redis->command({"PTTL", lease_key});
      if (ttl == nullptr) continue;
      if (ttl->type == REDIS_REPLY_INTEGER && ttl->integer == -2) {
        if (free_since == Clock::time_point{}) free_since = Clock::now();
        if (preferred_ || seen_held || Clock::now() - free_since >= config_.cluster.standby_delay)
          return true;
      } else {
        free_since = {};
        seen_held = true;
      }
      nap(std::chrono::milliseconds(50));
    }
    return false;
  }

  void serve() {
    journal::JournalConfig journal_config = config_.journal;
    journal_config.prefix = cluster::shard_prefix(config_.journal.prefix, shard_);
    journal_config.wait_for_lease = false;  // another standby was quicker: back to watching
    journal::Journal journal(journal_config);
    ShardFanout fanout(out_, channel_);
    Sequencer sequencer(config_, journal, {&fanout}, metrics_);
    journal::RecoveryStats recovered;
    try {
      recovered = sequencer.recover();
    } catch (const journal::LeaseHeld&) {
      return;
    } catch (const std::exception& error) {
      spdlog::error("shard {}: cannot recover: {}", shard_, error.what());
      nap(std::chrono::seconds(1));
      return;
    }
    spdlog::info(
        "shard {}: serving as {} (recovered {} events in {:.1f} ms, after waiting {:.1f} "
        "ms for the lease)",
        shard_, consumer_, recovered.last_sequence, recovered.total_ms, recovered.lease_wait_ms);
    sequencer.start();
    {
      std::lock_guard lock(status_mutex_);
      serving_ = &journal;
    }
    SourceLimits source_limits(config_.limits);
    std::vector<Request> group;
    GroupSink host_calls(group);  // host API calls join the group of their entry
    ServerContext context{config_, host_calls, &journal, metrics_, source_limits};
    Serving serving{journal, sequencer, context, host_calls, id_of(recovered.cursor),
                    {0, 0},  {},        group};
    const bool fenced = !read_commands(serving);
    {
      std::lock_guard lock(status_mutex_);
      serving_ = nullptr;
    }
    sequencer.stop(config_.journal.redis_timeout);
    journal.stop(config_.journal.redis_timeout);
    outboxes_.clear();
    spdlog::info("shard {}: no longer served here ({})", shard_, fenced ? "fenced" : "stopping");
  }

  struct Serving {
    journal::Journal& journal;
    Sequencer& sequencer;
    ServerContext& context;
    GroupSink& host_calls;
    StreamId completed;  // the journal's cursor when recovered: commands up to it are done
    StreamId handled{0, 0};
    std::deque<std::string> unacked;  // read and handled, oldest first
    std::vector<Request>& group;      // the requests of the entries being read
    Clock::time_point heartbeat_at{};
    Clock::time_point trimmed_at{};
    Clock::time_point acknowledged_at{};
  };

  // Until stopped (true) or fenced (false).
  bool read_commands(Serving& serving) {
    std::unique_ptr<journal::RedisConnection> redis;
    bool claimed = false;
    bool caught_up = false;  // this consumer's own pending entries were read again
    while (!stop_) {
      if (redis == nullptr || !redis->ok()) {
        caught_up = false;  // a read whose reply was lost left entries in our pending list
        if (!connect(redis)) continue;
      }
      if (!claimed) {
        if (!take_over(*redis, serving)) continue;
        claimed = true;
      }
      const std::string from =
          caught_up ? ">" : fmt::format("{}-{}", serving.handled.first, serving.handled.second);
      const Reply reply =
          redis->command({"EVAL", read_lua, "2", commands_key_, serving.journal.lease_key(),
                          serving.journal.lease_token(), cluster::consumer_group, consumer_,
                          std::to_string(read_count), from});
      if (reply == nullptr) continue;
      if (journal::is_error(reply)) {
        const std::string_view text = journal::text_of(reply);
        if (text.starts_with("FENCED")) {
          spdlog::warn("shard {}: {}", shard_, text);
          return false;
        }
        spdlog::warn("shard {}: reading commands: {}", shard_, text);
        nap(std::chrono::milliseconds(100));
        continue;
      }
      std::vector<Entry> entries;
      if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 &&
          reply->element[0]->elements == 2)
        read_entries(reply->element[0]->element[1], entries);
      for (const Entry& entry : entries) handle(entry, serving);
      if (!entries.empty()) {
        submit_group(serving, std::string(entries.back().id));
      } else if (!caught_up) {
        caught_up = true;
      } else {
        // Nothing new: wait for the next command (or a moment) on the stream itself.
        redis->command({"XREAD", "BLOCK", "10", "COUNT", "1", "STREAMS", commands_key_, "$"});
      }
      acknowledge(serving);
      if (Clock::now() >= serving.heartbeat_at) {
        // Reads are fenced by their script at once; the journal's own writes are looked at
        // here, once a second, rather than copying its status on every read.
        if (serving.journal.status().state == journal::JournalState::fenced) return false;
        out_.push_command({"PUBLISH", channel_, std::string(cluster::alive)});
        serving.heartbeat_at = Clock::now() + heartbeat_every;
      }
    }
    return true;
  }

  // The commands an earlier owner read but did not acknowledge become ours, in their order,
  // before anything new. Those the journal's cursor covers are done, but their answers may not
  // have left before the owner died: they are answered again — orders, confirms and cancels by
  // running them again, which finds their recorded outcome and changes nothing; host calls
  // that change something by their kept reply — and gateways deliver each answer once. The
  // rest run for the first time.
  bool take_over(journal::RedisConnection& redis, Serving& serving) {
    const Reply created = redis.command(
        {"XGROUP", "CREATE", commands_key_, cluster::consumer_group, "0", "MKSTREAM"});
    if (created == nullptr) return false;
    std::optional<KeptReplies> kept;  // read when a done host call needs them
    std::string start = "0-0";
    std::size_t redone = 0;
    std::size_t answered = 0;
    do {
      const Reply reply = redis.command({"XAUTOCLAIM", commands_key_, cluster::consumer_group,
                                         consumer_, "0", start, "COUNT", "256"});
      if (reply == nullptr) return false;
      if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) {
        spdlog::warn("shard {}: XAUTOCLAIM: {}", shard_, journal::text_of(reply));
        return false;
      }
      start = std::string(journal::text_of(reply->element[0]));
      std::vector<Entry> entries;
      read_entries(reply->element[1], entries);
      std::erase_if(entries, [&](const Entry& entry) {
        return id_of(entry.id) <= serving.handled;  // submitted by an attempt that failed later
      });
      for (const Entry& entry : entries) {
        const bool done = id_of(entry.id) <= serving.completed;
        // A failure here leaves the page's earlier requests in the group, and their entries
        // handled: the next attempt skips them and submits the group with its own.
        if (done && entry["t"] == "h" && !kept && !(kept = read_kept_replies(redis, serving)))
          return false;
        handle(entry, serving, done && kept ? &*kept : nullptr);
        (done ? answered : redone) += 1;
      }
      if (!entries.empty())
        submit_group(serving, std::string(entries.back().id),
                     id_of(entries.back().id) > serving.completed);
    } while (start != "0-0" && !stop_);
    if (redone + answered > 0)
      spdlog::info(
          "shard {}: took over {} pending commands: {} done by the previous owner, answered "
          "again; {} run now",
          shard_, redone + answered, answered, redone);
    return true;
  }

  using KeptReplies = boost::unordered_flat_map<std::string, HostReply>;
  // The host replies the shard's journal kept, by key; nullopt if Redis did not answer.
  std::optional<KeptReplies> read_kept_replies(journal::RedisConnection& redis, Serving& serving) {
    const Reply reply = redis.command({"XRANGE", serving.journal.replies_key(), "-", "+"});
    if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY) return std::nullopt;
    KeptReplies kept;
    for (std::size_t index = 0; index < reply->elements; ++index) {
      const redisReply* fields = reply->element[index]->element[1];
      if (fields->type != REDIS_REPLY_ARRAY || fields->elements != 4) continue;
      auto decoded = decode_kept_reply(journal::text_of(fields->element[3]));
      if (decoded) kept[std::string(journal::text_of(fields->element[1]))] = std::move(*decoded);
    }
    return kept;
  }

  // Commands are done for good once their events are durable and their answers are on their
  // way: acknowledged, and trimmed away. The acknowledgement goes down the answers' own pipe,
  // behind those answers, so that Redis never forgets a command whose answer it has not got:
  // an owner dying before its answers left leaves those commands to its successor.
  void acknowledge(Serving& serving) {
    if (Clock::now() < serving.acknowledged_at) return;
    serving.acknowledged_at = Clock::now() + acknowledge_every;
    const std::string released = serving.sequencer.released_mark();
    if (released.empty()) return;
    const StreamId done = id_of(released);
    std::vector<std::string> command{"XACK", commands_key_, std::string(cluster::consumer_group)};
    std::size_t acked = 0;
    while (acked < serving.unacked.size() && id_of(serving.unacked[acked]) <= done) {
      command.push_back(serving.unacked[acked]);
      ++acked;
    }
    if (acked > 0) {
      if (!out_.push_command(std::move(command))) return;
      serving.unacked.erase(serving.unacked.begin(), serving.unacked.begin() + acked);
    }
    if (Clock::now() >= serving.trimmed_at &&
        out_.push_command({"XTRIM", commands_key_, "MINID", released}))
      serving.trimmed_at = Clock::now() + trim_every;
  }

  std::shared_ptr<Outbox> outbox_of(std::string_view gateway, std::string_view connection,
                                    std::string_view user, Serving& serving) {
    std::string key(gateway);
    key += '\0';
    key += connection;
    Remote& remote = outboxes_[key];
    if (remote.outbox == nullptr)
      remote.outbox = std::make_shared<RemoteOutbox>(
          out_, cluster::gateway_stream(config_.journal.prefix, gateway), std::string(connection),
          shard_);
    if (!remote.signed_in && !user.empty()) {
      // Order updates (expiry, promotion, payment) reach the buyer through the connections it
      // ordered from.
      remote.signed_in = true;
      serving.group.push_back(HelloRequest{remote.outbox, std::string(user), true});
    }
    return remote.outbox;
  }

  // The engine thread's queue is bounded; a command read is ours and must run, so wait.
  // The requests of one read, then the mark of its last entry, go to the engine thread at
  // once: it never journals some of them with a cursor that names none of them, or the other
  // way round. The queue is bounded; a command read is ours and must run, so wait for room.
  //
  // An audit ends a journal batch where it reads the state; it goes after the mark, so that
  // the batch it ends carries the cursor of everything before it.
  //
  // `journal` is false for commands a predecessor completed: the cursor is past them already.
  void submit_group(Serving& serving, std::string last_id, bool journal = true) {
    const auto audits = std::stable_partition(
        serving.group.begin(), serving.group.end(), [](const Request& request) {
          const auto* host = std::get_if<HostRequest>(&request);
          return host == nullptr || !host->with_chain_head;
        });
    serving.group.insert(audits, CursorMark{std::move(last_id), journal});
    while (!serving.sequencer.submit_all(serving.group) && !stop_)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    serving.group.clear();
  }

  // `kept`: the command was done by a predecessor, whose kept host replies these are.
  void handle(const Entry& entry, Serving& serving, const KeptReplies* kept = nullptr) {
    if (serving.unacked.empty() || serving.unacked.back() != entry.id)
      serving.unacked.emplace_back(entry.id);  // an entry's records share its id
    serving.handled = std::max(serving.handled, id_of(entry.id));
    const std::string_view type = entry["t"];
    const std::string_view gateway = entry["g"];
    if (type == "h") return handle_host(entry, serving, kept);
    const std::string_view connection = entry["c"];
    if (type == "l") {
      std::string key(gateway);
      key += '\0';
      key += connection;
      outboxes_.erase(key);
      return;
    }
    const std::string_view user = entry["u"];
    auto from = outbox_of(gateway, connection, user, serving);
    if (type == "o") {
      std::uint32_t qty = 0;
      const std::string_view text = entry["q"];
      std::from_chars(text.data(), text.data() + text.size(), qty);
      std::uint64_t tag = 0;
      const std::string_view tag_text = entry["n"];
      std::from_chars(tag_text.data(), tag_text.data() + tag_text.size(), tag);
      serving.group.push_back(OrderRequest{from, std::string(entry["d"]), std::string(user),
                                           std::string(entry["k"]), qty, tag});
    } else if (type == "a") {
      serving.group.push_back(
          ActionRequest{from, entry["x"] == "confirm", std::string(entry["i"]), std::string(user)});
    } else if (type == "s") {
      serving.group.push_back(SubscribeRequest{from, std::string(entry["d"])});
    }
  }

  void handle_host(const Entry& entry, Serving& serving, const KeptReplies* kept) {
    // A read is run again; a call that changes something keeps its reply under this key.
    const bool read = entry["m"] == "GET" || entry["m"] == "HEAD";
    const std::string key = read ? std::string() : fmt::format("{}:{}", entry["g"], entry["n"]);
    std::optional<HostReply> kept_reply;
    if (kept != nullptr && !read) {
      if (const auto found = kept->find(key); found != kept->end()) kept_reply = found->second;
    }
    serving.host_calls.next_call(key, kept != nullptr, std::move(kept_reply));
    HttpRequest request;
    request.method(boost::beast::http::string_to_verb(entry["m"]));
    request.target(entry["p"]);
    request.set(boost::beast::http::field::authorization, entry["a"]);
    request.body() = std::string(entry["b"]);
    auto done = [&out = out_, stream = cluster::gateway_stream(config_.journal.prefix, entry["g"]),
                 id = std::string(entry["n"])](HostReply reply) {
      RedisPipe::Command command;
      command.stream = stream;
      command.kept = gateway_stream_kept;
      command.record = cluster::encode_record(
          {{"n", id}, {"s", std::to_string(reply.status)}, {"f", reply.body}});
      out.push(std::move(command));
    };
    std::optional<HostReply> now = request.target() == "/drops"
                                       ? public_drops(serving.context, done)
                                       : route_api(request, serving.context, done);
    if (now) done(std::move(*now));
  }

  const GatewayConfig& config_;
  const std::uint32_t shard_;
  const bool preferred_;
  const std::string consumer_;
  const journal::RedisEndpoint endpoint_;
  const std::string commands_key_;
  const std::string channel_;
  RedisPipe& out_;
  Metrics& metrics_;
  const std::atomic<bool>& stop_;
  // The gateway connections this shard has heard from, until they leave.
  struct Remote {
    std::shared_ptr<Outbox> outbox;
    bool signed_in = false;  // registered with the engine thread for its user's updates
  };
  boost::unordered_flat_map<std::string, Remote> outboxes_;
  mutable std::mutex status_mutex_;
  const journal::Journal* serving_ = nullptr;  // under status_mutex_, while serving
  std::thread thread_;                         // last
};

// An engine's /healthz and /metrics (`--listen`): which shards it serves, and their journals.
class StatusServer {
 public:
  using Answer = std::function<HostReply(std::string_view target, std::string& content_type)>;

  StatusServer(const std::string& listen, Answer answer)
      : answer_(std::move(answer)), acceptor_(io_, parse_endpoint(listen)) {
    spdlog::info("flashsale: engine status on {}:{} (/healthz, /metrics)",
                 acceptor_.local_endpoint().address().to_string(),
                 acceptor_.local_endpoint().port());
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~StatusServer() {
    io_.stop();
    thread_.join();
  }

 private:
  struct Session {
    explicit Session(tcp::socket socket) : stream(std::move(socket)) {}
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    http::request<http::string_body> request;
    http::response<http::string_body> response;
  };

  void accept() {
    acceptor_.async_accept([this](beast::error_code error, tcp::socket socket) {
      if (error == asio::error::operation_aborted) return;
      if (!error) serve(std::make_shared<Session>(std::move(socket)));
      accept();
    });
  }

  void serve(std::shared_ptr<Session> session) {
    session->stream.expires_after(std::chrono::seconds(5));
    http::async_read(session->stream, session->buffer, session->request,
                     [this, session](beast::error_code error, std::size_t) {
                       if (error) return;
                       std::string content_type = "application/json";
                       HostReply reply = answer_(session->request.target(), content_type);
                       session->response.result(reply.status);
                       session->response.set(http::field::content_type, content_type);
                       session->response.set(http::field::cache_control, "no-store");
                       session->response.keep_alive(false);
                       session->response.body() = std::move(reply.body);
                       session->response.prepare_payload();
                       http::async_write(session->stream, session->response,
                                         [session](beast::error_code, std::size_t) {
                                           beast::error_code ignored;
                                           session->stream.socket().shutdown(
                                               tcp::socket::shutdown_both, ignored);
                                         });
                     });
  }

  Answer answer_;
  asio::io_context io_{1};
  tcp::acceptor acceptor_;
  std::thread thread_;
};

HostReply engine_health(const std::string& id, const std::vector<ShardStatus>& shards) {
  std::string served;
  std::string trouble;
  for (const ShardStatus& shard : shards) {
    if (!shard.journal) continue;
    const std::string_view state = journal::to_string(shard.journal->state);
    served +=
        fmt::format(R"({}{{"shard":{},"journal":"{}","durable_sequence":{}}})",
                    served.empty() ? "" : ",", shard.shard, state, shard.journal->durable_sequence);
    if (shard.journal->state != journal::JournalState::ok && trouble.empty())
      trouble = fmt::format("shard {}: journal {}", shard.shard, state);
  }
  if (!trouble.empty()) return http_error(503, "journal", trouble);
  return {200,
          fmt::format(R"({{"status":"ok","role":"engine","id":"{}","serving":[{}]}})", id, served)};
}

std::string engine_metrics(const Metrics& metrics, const std::vector<ShardStatus>& shards) {
  std::string out = metrics.render(nullptr);
  const auto series = [&](std::string_view name, std::string_view help, auto value) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} gauge\n", name, help, name);
    for (const ShardStatus& shard : shards)
      fmt::format_to(std::back_inserter(out), "{}{{shard=\"{}\"}} {}\n", name, shard.shard,
                     value(shard));
  };
  series("flashsale_shard_served", "1 if this engine serves the shard, 0 if it stands by.",
         [](const ShardStatus& shard) { return shard.journal ? 1 : 0; });
  series("flashsale_shard_journal_ok", "1 if the shard is served and its journal takes writes.",
         [](const ShardStatus& shard) {
           return shard.journal && shard.journal->state == journal::JournalState::ok ? 1 : 0;
         });
  series(
      "flashsale_shard_journal_durable_sequence", "The shard's last durable event.",
      [](const ShardStatus& shard) { return shard.journal ? shard.journal->durable_sequence : 0; });
  series(
      "flashsale_shard_journal_last_batch_ms", "The shard's last journal round trip.",
      [](const ShardStatus& shard) { return shard.journal ? shard.journal->last_batch_ms : 0.0; });
  return out;
}

}  // namespace

bool shard_count_agrees(const GatewayConfig& config) {
  const journal::RedisEndpoint endpoint = journal::RedisEndpoint::parse(config.journal.redis);
  while (true) {
    journal::RedisConnection redis(endpoint, config.journal.redis_timeout);
    const std::string key = cluster::cluster_key(config.journal.prefix);
    const std::string shards = std::to_string(config.cluster.shards);
    if (redis.command({"SET", key, shards, "NX"}) == nullptr) {
      spdlog::warn("cluster: cannot reach redis {}; retrying", endpoint.describe());
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      continue;
    }
    const Reply stored = redis.command({"GET", key});
    if (stored == nullptr) continue;
    if (journal::text_of(stored) == shards) return true;
    spdlog::error("cluster: this deployment has {} shards ({} in redis), not {}",
                  journal::text_of(stored), key, shards);
    return false;
  }
}

int run_engine_node(const GatewayConfig& config, const std::atomic<bool>& stop) {
  if (!shard_count_agrees(config)) return 2;
  Metrics metrics;
  const std::string consumer = cluster::process_name(config.cluster.id);
  RedisPipe out(journal::RedisEndpoint::parse(config.journal.redis), config.journal.redis_timeout,
                std::size_t{1} << 20, "engine answers");
  std::vector<std::unique_ptr<ShardWorker>> workers;
  const auto& preferred = config.cluster.preferred_shards;
  for (std::uint32_t shard = 0; shard < config.cluster.shards; ++shard) {
    const bool prefers = preferred.empty() ||
                         std::find(preferred.begin(), preferred.end(), shard) != preferred.end();
    workers.push_back(
        std::make_unique<ShardWorker>(config, shard, prefers, consumer, out, metrics, stop));
  }
  spdlog::info(
      "flashsale: engine {} serving or standing by for {} shards (preferring {})", consumer,
      config.cluster.shards,
      preferred.empty() ? std::string("all") : fmt::format("{}", fmt::join(preferred, ",")));
  std::optional<StatusServer> status;
  if (!config.cluster.status_listen.empty()) {
    status.emplace(config.cluster.status_listen,
                   [&](std::string_view target, std::string& content_type) -> HostReply {
                     std::vector<ShardStatus> shards;
                     for (const auto& worker : workers) shards.push_back(worker->status());
                     if (target == "/healthz") return engine_health(consumer, shards);
                     if (target != "/metrics")
                       return http_error(404, "not_found", "/healthz or /metrics");
                     content_type = "text/plain; version=0.0.4";
                     return {200, engine_metrics(metrics, shards)};
                   });
  }
  while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  status.reset();
  workers.clear();  // each returns once `stop` is seen and its shard is handed back
  return 0;
}

}  // namespace flashsale::gateway
