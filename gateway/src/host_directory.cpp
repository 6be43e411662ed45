// See host_directory.hpp.
#include "host_directory.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <span>

#include "clock.hpp"
#include "flashsale/engine/types.hpp"

namespace flashsale::gateway {

namespace {

constexpr std::string_view key_prefix = "fsh_";
constexpr std::size_t secret_hex_length = 64;

// Adds a host unless its id is taken or the table is full: 0 taken, -1 full, else the new
// version. KEYS: hosts, version. ARGV: id, record, hosts_max.
constexpr std::string_view create_lua = R"(
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('INCR', KEYS[2]))";

// Replaces a host's record if it is still the one read: 0 if it changed meanwhile (or is
// gone), else the new version. KEYS: hosts, version. ARGV: id, record read, new record.
constexpr std::string_view replace_lua = R"(
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return redis.call('INCR', KEYS[2]))";

std::string hex(std::span<const unsigned char> bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const unsigned char byte : bytes) fmt::format_to(std::back_inserter(out), "{:02x}", byte);
  return out;
}

std::optional<std::array<unsigned char, 32>> unhex(std::string_view text) {
  std::array<unsigned char, 32> out{};
  if (text.size() != out.size() * 2) return std::nullopt;
  for (std::size_t index = 0; index < out.size(); ++index) {
    const auto [end, problem] =
        std::from_chars(text.data() + 2 * index, text.data() + 2 * index + 2, out[index], 16);
    if (problem != std::errc{} || end != text.data() + 2 * index + 2) return std::nullopt;
  }
  return out;
}

// A fresh key for `id`: 256 bits from the CSPRNG. Nullopt if it has none to give.
std::optional<std::string> new_key(std::string_view id) {
  std::array<unsigned char, secret_hex_length / 2> secret{};
  if (RAND_bytes(secret.data(), static_cast<int>(secret.size())) != 1) return std::nullopt;
  return fmt::format("{}{}_{}", key_prefix, id, hex(secret));
}

std::string record_of(std::string_view key_digest_hex, std::int64_t created_at_ms,
                      std::int64_t revoked_at_ms) {
  return fmt::format("{} {} {}", key_digest_hex, created_at_ms, revoked_at_ms);
}

using Record = HostDirectory::Record;

std::optional<Record> read_record(std::string_view text) {
  const auto first = text.find(' ');
  const auto second = text.find(' ', first + 1);
  if (first == std::string_view::npos || second == std::string_view::npos) return std::nullopt;
  const auto digest = unhex(text.substr(0, first));
  Record record;
  const auto number = [](std::string_view part, std::int64_t& out) {
    const auto [end, problem] = std::from_chars(part.data(), part.data() + part.size(), out);
    return problem == std::errc{} && end == part.data() + part.size();
  };
  if (!digest || !number(text.substr(first + 1, second - first - 1), record.created_at_ms) ||
      !number(text.substr(second + 1), record.revoked_at_ms))
    return std::nullopt;
  record.digest = *digest;
  return record;
}

}  // namespace

std::array<unsigned char, 32> key_digest(std::string_view key) {
  std::array<unsigned char, 32> out{};
  EVP_Digest(key.data(), key.size(), out.data(), nullptr, EVP_sha256(), nullptr);
  return out;
}

std::string_view to_string(HostDirectory::Status status) noexcept {
  switch (status) {
    case HostDirectory::Status::ok:
      return "ok";
    case HostDirectory::Status::already_exists:
      return "already_exists";
    case HostDirectory::Status::unknown_host:
      return "unknown_host";
    case HostDirectory::Status::limit_reached:
      return "limit_reached";
    case HostDirectory::Status::unavailable:
      return "unavailable";
  }
  return "unknown";
}

HostDirectory::HostDirectory(Settings settings)
    : settings_(std::move(settings)),
      hosts_key_("{" + settings_.prefix + "}:hosts"),
      version_key_("{" + settings_.prefix + "}:hosts:version"),
      thread_([this] { run(); }) {}

HostDirectory::~HostDirectory() {
  stop();
}

void HostDirectory::stop() {
  std::deque<Job> abandoned;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard lock(mutex_);
    abandoned.swap(jobs_);
  }
  for (Job& job : abandoned) job.done({Status::unavailable, {}, {}});
}

std::optional<std::string> HostDirectory::authenticate(std::string_view key) const {
  if (!key.starts_with(key_prefix)) return std::nullopt;
  const auto split = key.rfind('_');
  if (split < key_prefix.size() || key.size() - split - 1 != secret_hex_length) return std::nullopt;
  const std::string id(key.substr(key_prefix.size(), split - key_prefix.size()));
  std::shared_ptr<const Table> table;
  {
    std::lock_guard lock(mutex_);
    table = table_;
  }
  const auto found = table->find(id);
  if (found == table->end() || found->second.revoked_at_ms != 0) return std::nullopt;
  const auto given = key_digest(key);
  if (CRYPTO_memcmp(given.data(), found->second.digest.data(), given.size()) != 0)
    return std::nullopt;
  return id;
}

void HostDirectory::create(std::string id, Done done) {
  submit(Op::create, std::move(id), std::move(done));
}
void HostDirectory::rotate(std::string id, Done done) {
  submit(Op::rotate, std::move(id), std::move(done));
}
void HostDirectory::revoke(std::string id, Done done) {
  submit(Op::revoke, std::move(id), std::move(done));
}
void HostDirectory::list(Done done) {
  submit(Op::list, {}, std::move(done));
}

void HostDirectory::submit(Op op, std::string id, Done done) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_ && jobs_.size() < queue_max) {
      jobs_.push_back({op, std::move(id), std::move(done)});
      wake_.notify_one();
      return;
    }
  }
  done({Status::unavailable, {}, {}});
}

std::size_t HostDirectory::size() const {
  std::lock_guard lock(mutex_);
  return table_->size();
}

bool HostDirectory::knows(std::string_view id) const {
  std::lock_guard lock(mutex_);
  return table_->contains(std::string(id));
}

bool HostDirectory::wait_until_read(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return read_once_.wait_for(lock, timeout, [&] { return has_read_; });
}

void HostDirectory::run() {
  bool first = true;
  while (true) {
    std::optional<Job> job;
    {
      std::unique_lock lock(mutex_);
      if (!first) wake_.wait_for(lock, settings_.poll, [&] { return stopping_ || !jobs_.empty(); });
      first = false;
      if (stopping_) return;
      if (!jobs_.empty()) {
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
    }
    if (job) {
      Result result = connected() ? perform(*job) : Result{Status::unavailable, {}, {}};
      job->done(std::move(result));
    } else if (connected() && !refresh(false)) {
      redis_.reset();
    }
  }
}

bool HostDirectory::connected() {
  if (redis_ && redis_->ok()) return true;
  redis_ = std::make_unique<journal::RedisConnection>(settings_.redis, settings_.timeout);
  if (redis_->ok()) {
    if (unreachable_) spdlog::info("hosts: redis at {} is back", settings_.redis.describe());
    unreachable_ = false;
    return true;
  }
  // Once per outage, not once per poll.
  if (!unreachable_)
    spdlog::warn("hosts: cannot reach redis at {}: {}; the keys last read stay in force",
                 settings_.redis.describe(), redis_->error());
  unreachable_ = true;
  redis_.reset();
  return false;
}

HostDirectory::Result HostDirectory::perform(const Job& job) {
  if (job.op != Op::list) return change(job);
  if (!refresh(true)) return {Status::unavailable, {}, {}};
  Result result;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, entry] : *table_)
      result.hosts.push_back({id, entry.created_at_ms, entry.revoked_at_ms});
  }
  std::sort(result.hosts.begin(), result.hosts.end(),
            [](const Host& one, const Host& other) { return one.id < other.id; });
  return result;
}

// One change, made atomically in Redis and read back at once, so that this gateway refuses a
// revoked key from the moment the operator is told it is revoked.
HostDirectory::Result HostDirectory::change(const Job& job) {
  const engine::TimeMs now_ms = wall_ms();
  Result result;
  Host host{job.id, now_ms, 0};
  journal::Reply reply;
  std::string written;  // the record now in Redis
  if (job.op == Op::create) {
    auto key = new_key(job.id);
    if (!key) return {Status::unavailable, {}, {}};
    const std::string record = record_of(hex(key_digest(*key)), now_ms, 0);
    const std::string max = std::to_string(settings_.hosts_max);
    reply =
        redis_->command({"EVAL", create_lua, "2", hosts_key_, version_key_, job.id, record, max});
    if (!reply || reply->type != REDIS_REPLY_INTEGER) return {Status::unavailable, {}, {}};
    if (reply->integer == 0) return {Status::already_exists, {}, {}};
    if (reply->integer < 0) return {Status::limit_reached, {}, {}};
    result.key = std::move(*key);
  } else {
    // Read, then replace only if nobody changed it meanwhile (another gateway's operator).
    for (int attempt = 0;; ++attempt) {
      reply = redis_->command({"HGET", hosts_key_, job.id});
      if (!reply || reply->type == REDIS_REPLY_ERROR) return {Status::unavailable, {}, {}};
      if (reply->type == REDIS_REPLY_NIL) return {Status::unknown_host, {}, {}};
      const std::string before(journal::text_of(reply));
      const auto record = read_record(before);
      if (!record) return {Status::unavailable, {}, {}};
      host.created_at_ms = record->created_at_ms;
      std::string& after = written;
      if (job.op == Op::rotate) {
        auto key = new_key(job.id);
        if (!key) return {Status::unavailable, {}, {}};
        after = record_of(hex(key_digest(*key)), record->created_at_ms, 0);
        result.key = std::move(*key);
      } else {
        host.revoked_at_ms = record->revoked_at_ms != 0 ? record->revoked_at_ms : now_ms;
        after = record_of(hex(record->digest), record->created_at_ms, host.revoked_at_ms);
      }
      reply = redis_->command(
          {"EVAL", replace_lua, "2", hosts_key_, version_key_, job.id, before, after});
      if (!reply || reply->type != REDIS_REPLY_INTEGER) return {Status::unavailable, {}, {}};
      if (reply->integer != 0) break;
      if (attempt == 3) return {Status::unavailable, {}, {}};
    }
  }
  // Taken here at once, whatever comes next: a revoked or replaced key is refused from now on.
  install(job.id, *read_record(written));
  // Who holds a key is the operators' record to keep: each change is logged, never a key.
  spdlog::info("hosts: {} {}",
               job.op == Op::create   ? "created"
               : job.op == Op::rotate ? "gave a new key to"
                                      : "revoked",
               job.id);
  if (!wait_for_replicas()) return {Status::unavailable, {}, {}};
  if (!refresh(true)) redis_.reset();  // other gateways' changes: the next poll reads them
  result.hosts.push_back(std::move(host));
  return result;
}

void HostDirectory::install(const std::string& id, const Record& record) {
  std::lock_guard lock(mutex_);
  auto table = std::make_shared<Table>(*table_);
  (*table)[id] = record;
  table_ = std::move(table);
}

// Like a journal batch: the change counts once min_replicas replicas have it.
bool HostDirectory::wait_for_replicas() {
  if (settings_.min_replicas == 0) return true;
  const std::string replicas = std::to_string(settings_.min_replicas);
  const std::string timeout = std::to_string(settings_.replica_timeout.count());
  redis_->set_timeout(settings_.timeout + settings_.replica_timeout);
  const journal::Reply reply = redis_->command({"WAIT", replicas, timeout});
  redis_->set_timeout(settings_.timeout);
  return reply && reply->type == REDIS_REPLY_INTEGER &&
         reply->integer >= static_cast<long long>(settings_.min_replicas);
}

bool HostDirectory::refresh(bool force) {
  const journal::Reply version = redis_->command({"GET", version_key_});
  if (!version || version->type == REDIS_REPLY_ERROR) return false;
  // Never changed: "0", so that a directory nobody wrote to yet is read once, as empty.
  const std::string now(version->type == REDIS_REPLY_NIL ? "0" : journal::text_of(version));
  if (!force && now == version_read_) {
    read_at_ms_.store(wall_ms(), std::memory_order_relaxed);
    return true;
  }
  const journal::Reply all = redis_->command({"HGETALL", hosts_key_});
  if (!all || all->type != REDIS_REPLY_ARRAY) return false;
  auto table = std::make_shared<Table>();
  for (std::size_t index = 0; index + 1 < all->elements; index += 2) {
    const std::string_view id = journal::text_of(all->element[index]);
    const auto record = read_record(journal::text_of(all->element[index + 1]));
    if (!record || !engine::is_valid_host_id(id)) {
      spdlog::error("hosts: the record of host \"{}\" in {} is unreadable; it is left out",
                    engine::is_valid_host_id(id) ? id : "?", hosts_key_);
      continue;
    }
    table->emplace(id, *record);
  }
  {
    std::lock_guard lock(mutex_);
    table_ = std::move(table);
    has_read_ = true;
  }
  read_once_.notify_all();
  // The counter read before the table: a change between the two reads is read again next time.
  version_read_ = now;
  read_at_ms_.store(wall_ms(), std::memory_order_relaxed);
  return true;
}

}  // namespace flashsale::gateway
