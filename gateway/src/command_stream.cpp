// See command_stream.hpp; docs/scaling.md has the whole argument.
#include "command_stream.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <vector>

#include "cluster.hpp"
#include "cluster_codec.hpp"
#include "shard_redis.hpp"

namespace flashsale::gateway {

namespace {

using Clock = std::chrono::steady_clock;
using journal::Reply;

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

std::pair<std::uint64_t, std::uint64_t> id_of(std::string_view id) {
  return cluster::parse_stream_id(id).value_or(std::pair<std::uint64_t, std::uint64_t>{0, 0});
}

// One record of a stream entry: an entry holds one per command its gateway sent in a round.
struct Entry {
  std::string_view id;
  std::optional<std::string_view> record;  // nullopt: a field that is not "r"
};

// [[id, ["r", record, "r", record, …]], …]: one Entry per record, in order. An item of another
// shape is passed over.
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
      if (journal::text_of(fields->element[field]) == "r")
        entry.record = journal::text_of(fields->element[field + 1]);
    }
  }
}

// The entry's command (views into the reply), or nullopt, said, when it is none this engine
// reads: a gateway of another version, or someone else's writes. Such an entry still counts as
// handled, so that it is acknowledged and trimmed away.
std::optional<cluster::Command> command_of(const Entry& entry) {
  auto command = entry.record ? cluster::decode_command(*entry.record) : std::nullopt;
  if (!command) spdlog::warn("command {}: not a command this engine reads; skipped", entry.id);
  return command;
}

// A host call that changes something: done once, answered again from its kept reply.
bool changes_something(const cluster::Command& command) {
  const auto* call = std::get_if<cluster::HostCommand>(&command);
  return call != nullptr && host::changes(call->command);
}

}  // namespace

CommandStream::CommandStream(const GatewayConfig& config, std::uint32_t shard, std::string consumer,
                             journal::Journal& journal, GroupSink& sequencer,
                             CommandApplier& applier, RedisPipe& out, const std::atomic<bool>& stop,
                             std::string_view completed)
    : config_(config),
      shard_(shard),
      consumer_(std::move(consumer)),
      endpoint_(config.journal.redis_endpoint()),
      commands_key_(cluster::commands_key(config.journal.prefix, shard)),
      channel_(cluster::updates_channel(config.journal.prefix, shard)),
      journal_(journal),
      sequencer_(sequencer),
      applier_(applier),
      out_(out),
      stop_(stop),
      completed_(id_of(completed)) {}

bool CommandStream::run() {
  std::unique_ptr<journal::RedisConnection> redis;
  bool claimed = false;
  bool caught_up = false;  // this consumer's own pending entries were read again
  while (!stop_) {
    if (redis == nullptr || !redis->ok()) {
      caught_up = false;  // a read whose reply was lost left entries in our pending list
      if (!connect(redis, endpoint_, config_.journal.redis_timeout, stop_)) continue;
    }
    if (!claimed) {
      if (!take_over(*redis)) continue;
      claimed = true;
    }
    const std::string from =
        caught_up ? ">" : fmt::format("{}-{}", handled_.first, handled_.second);
    const Reply reply = redis->command({"EVAL", read_lua, "2", commands_key_, journal_.lease_key(),
                                        journal_.lease_token(), cluster::consumer_group, consumer_,
                                        std::to_string(read_count), from});
    if (reply == nullptr) continue;
    if (journal::is_error(reply)) {
      const std::string_view text = journal::text_of(reply);
      if (text.starts_with("FENCED")) {
        spdlog::warn("shard {}: {}", shard_, text);
        return false;
      }
      spdlog::warn("shard {}: reading commands: {}", shard_, text);
      nap(std::chrono::milliseconds(100), stop_);
      continue;
    }
    std::vector<Entry> entries;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 &&
        reply->element[0]->elements == 2)
      read_entries(reply->element[0]->element[1], entries);
    for (const Entry& entry : entries) {
      handled(entry.id);
      if (auto command = command_of(entry)) applier_.apply(*command);
    }
    if (!entries.empty()) {
      applier_.submit(std::string(entries.back().id));
    } else if (!caught_up) {
      caught_up = true;
    } else {
      // Nothing new: wait for the next command (or a moment) on the stream itself.
      redis->command({"XREAD", "BLOCK", "10", "COUNT", "1", "STREAMS", commands_key_, "$"});
    }
    acknowledge();
    if (Clock::now() >= heartbeat_at_) {
      // Reads are fenced by their script at once; the journal's own writes are looked at
      // here, once a second, rather than copying its status on every read.
      if (journal::journal_lost(journal_.status().state)) return false;
      out_.push_command({"PUBLISH", channel_, std::string(cluster::heartbeat)});
      heartbeat_at_ = Clock::now() + heartbeat_every;
    }
  }
  return true;
}

// The commands an earlier owner read but did not acknowledge become ours, in their order,
// before anything new. Those the journal's cursor covers are done, but their answers may not
// have left before the owner died: they are answered again — orders, confirms and cancels by
// running them again, which finds their recorded outcome and changes nothing; host calls that
// change something by their kept reply — and gateways deliver each answer once. The rest run
// for the first time.
bool CommandStream::take_over(journal::RedisConnection& redis) {
  const Reply created =
      redis.command({"XGROUP", "CREATE", commands_key_, cluster::consumer_group, "0", "MKSTREAM"});
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
      return id_of(entry.id) <= handled_;  // submitted by an attempt that failed later
    });
    std::vector<std::optional<cluster::Command>> commands;
    bool replies_needed = false;
    for (const Entry& entry : entries) {
      commands.push_back(command_of(entry));
      replies_needed |= id_of(entry.id) <= completed_ && commands.back().has_value() &&
                        changes_something(*commands.back());
    }
    // Before any of the page is handled: a failure leaves all of it to the next attempt.
    if (replies_needed && !kept && !(kept = read_kept_replies(redis))) return false;
    for (std::size_t index = 0; index < entries.size(); ++index) {
      const bool done = id_of(entries[index].id) <= completed_;
      handled(entries[index].id);
      if (commands[index]) applier_.apply(*commands[index], done && kept ? &*kept : nullptr);
      (done ? answered : redone) += 1;
    }
    if (!entries.empty())
      applier_.submit(std::string(entries.back().id), id_of(entries.back().id) > completed_);
  } while (start != "0-0" && !stop_);
  if (redone + answered > 0)
    spdlog::info(
        "shard {}: took over {} pending commands: {} done by the previous owner, answered "
        "again; {} run now",
        shard_, redone + answered, answered, redone);
  return true;
}

// The host replies the shard's journal kept, by key; nullopt if Redis did not answer.
std::optional<KeptReplies> CommandStream::read_kept_replies(journal::RedisConnection& redis) {
  const Reply reply = redis.command({"XRANGE", journal_.replies_key(), "-", "+"});
  if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY) return std::nullopt;
  KeptReplies kept;
  for (std::size_t index = 0; index < reply->elements; ++index) {
    const redisReply* entry = reply->element[index];
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2) continue;
    const redisReply* fields = entry->element[1];  // k <key> v <reply>
    if (fields->type != REDIS_REPLY_ARRAY || fields->elements != 4) continue;
    auto decoded = decode_kept_reply(journal::text_of(fields->element[3]));
    if (decoded) kept[std::string(journal::text_of(fields->element[1]))] = std::move(*decoded);
  }
  return kept;
}

// An entry handed to the applier: acknowledged once released. An entry's records share its id.
void CommandStream::handled(std::string_view id) {
  if (unacked_.empty() || unacked_.back() != id) unacked_.emplace_back(id);
  handled_ = std::max(handled_, id_of(id));
}

// Commands are done for good once their events are durable and their answers are on their
// way: acknowledged, and trimmed away. The acknowledgement goes down the answers' own pipe,
// behind those answers, so that Redis never forgets a command whose answer it has not got:
// an owner dying before its answers left leaves those commands to its successor.
void CommandStream::acknowledge() {
  if (Clock::now() < acknowledged_at_) return;
  acknowledged_at_ = Clock::now() + acknowledge_every;
  const std::string released = sequencer_.released_mark();
  if (released.empty()) return;
  const StreamId done = id_of(released);
  std::vector<std::string> command{"XACK", commands_key_, std::string(cluster::consumer_group)};
  std::size_t acked = 0;
  while (acked < unacked_.size() && id_of(unacked_[acked]) <= done) {
    command.push_back(unacked_[acked]);
    ++acked;
  }
  if (acked > 0) {
    if (!out_.push_command(std::move(command))) return;
    unacked_.erase(unacked_.begin(), unacked_.begin() + static_cast<std::ptrdiff_t>(acked));
  }
  if (Clock::now() >= trimmed_at_ && out_.push_command({"XTRIM", commands_key_, "MINID", released}))
    trimmed_at_ = Clock::now() + trim_every;
}

}  // namespace flashsale::gateway
