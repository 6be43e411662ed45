// Host accounts: who may call the host API, each host with a key of its own
// (docs/operations.md, "Hosts and keys"). The operator creates, lists, rotates and revokes
// them; a host's credential then acts only on its own streams and drops (host_commands.hpp).
//
// They live in Redis beside the journals, not in one: every gateway checks every key, whatever
// shard a host's streams are on.
//
//   {P}:hosts          hash: id -> "<key's SHA-256, hex> <created_at_ms> <revoked_at_ms>"
//   {P}:hosts:version  a counter every change raises
//
// Only the digest is stored; a key is shown once, when it is made. A change is written by a
// Lua script (one round trip, atomic), with WAIT for journal.min_replicas like a journal batch,
// so it is as durable as an acknowledged order. Every process keeps the whole table in memory
// and reads it again when the counter moves: at once after its own change, and by polling the
// counter every `poll` (500 ms) for other gateways' — so a revocation is refused at once by the
// gateway that made it, and everywhere within one poll and a round trip. Until the first read,
// only the configured keys work; while Redis is away, the keys last read stay in force.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "flashsale/journal/redis_connection.hpp"

namespace flashsale::gateway {

class HostDirectory {
 public:
  struct Host {
    std::string id;
    std::int64_t created_at_ms = 0;
    std::int64_t revoked_at_ms = 0;  // 0: active
  };
  enum class Status : std::uint8_t {
    ok,
    already_exists,  // create: the id is taken (revoked hosts keep theirs)
    unknown_host,    // rotate, revoke: no such host
    limit_reached,   // create: hosts_max hosts exist
    unavailable,     // Redis did not take the change (or too few replicas have it)
  };
  struct Result {
    Status status = Status::ok;
    std::vector<Host> hosts;  // list: all of them; create, rotate, revoke: the one changed
    std::string key;          // create, rotate: the new key, shown this once
  };
  using Done = std::function<void(Result)>;
  // One host as Redis keeps it.
  struct Record {
    std::array<unsigned char, 32> digest{};  // of the key
    std::int64_t created_at_ms = 0;
    std::int64_t revoked_at_ms = 0;
  };

  struct Settings {
    journal::RedisEndpoint redis;
    std::string prefix;
    std::chrono::milliseconds timeout{2'000};
    std::uint32_t hosts_max = 10'000;
    std::uint32_t min_replicas = 0;
    std::chrono::milliseconds replica_timeout{1'000};
    std::chrono::milliseconds poll{500};
  };

  explicit HostDirectory(Settings settings);
  ~HostDirectory();  // stop()
  HostDirectory(const HostDirectory&) = delete;
  HostDirectory& operator=(const HostDirectory&) = delete;

  // Any thread, no I/O: the active host whose key `key` is. Keys are "fsh_<id>_<64 hex>"; the
  // digests are compared in constant time.
  std::optional<std::string> authenticate(std::string_view key) const;
  // Any thread: blocks until the table has been read once (true), or `timeout` passes.
  bool wait_until_read(std::chrono::milliseconds timeout) const;
  // Any thread, no I/O: whether `id` names a host, active or revoked, as last read.
  bool knows(std::string_view id) const;
  // Any thread, no I/O: how many hosts, and when (Unix ms) Redis last answered a read of them,
  // changed or not; 0 before the first.
  std::size_t size() const;
  std::int64_t read_at_ms() const { return read_at_ms_.load(std::memory_order_relaxed); }

  // The operator's calls, any thread; each is done on the directory's thread, which calls
  // `done` (post to your own). At most `queue_max` wait; past it, `unavailable` at once.
  void create(std::string id, Done done);
  void rotate(std::string id, Done done);  // a new key; the old one stops; a revoked host returns
  void revoke(std::string id, Done done);  // its key stops; the id stays taken
  void list(Done done);

  void stop();  // idempotent; waiting calls are answered `unavailable`

 private:
  enum class Op : std::uint8_t { create, rotate, revoke, list };
  struct Job {
    Op op;
    std::string id;
    Done done;
  };
  using Table = std::unordered_map<std::string, Record>;

  void submit(Op op, std::string id, Done done);
  void run();
  Result perform(const Job& job);
  Result change(const Job& job);
  bool wait_for_replicas();
  void install(const std::string& id, const Record& record);
  // Reads the table again if the counter moved (or `force`); false if Redis did not answer.
  bool refresh(bool force);
  bool connected();

  static constexpr std::size_t queue_max = 64;
  const Settings settings_;
  const std::string hosts_key_;
  const std::string version_key_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  mutable std::condition_variable read_once_;
  bool has_read_ = false;
  std::atomic<std::int64_t> read_at_ms_{0};
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::shared_ptr<const Table> table_ = std::make_shared<Table>();

  // The directory's thread only.
  std::unique_ptr<journal::RedisConnection> redis_;
  std::string version_read_;  // the counter at the last read of the table; empty: none yet
  bool unreachable_ = false;  // since the last failed connection
  std::thread thread_;        // last
};

std::string_view to_string(HostDirectory::Status status) noexcept;

// A key's SHA-256: what the directory stores, and what every key is compared as.
std::array<unsigned char, 32> key_digest(std::string_view key);

}  // namespace flashsale::gateway
