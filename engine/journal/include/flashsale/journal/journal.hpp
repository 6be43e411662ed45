// Journal: makes the engine's events durable in Redis before anyone is told about them, and
// rebuilds the engine from Redis after a crash.
//
// Write path (group commit): the engine thread appends events; a writer thread sends everything
// that accumulated while its previous write was in flight as one batch — one Lua script call
// that checks the lease and XADDs one stream entry — and publishes the batch's last sequence
// number as durable when Redis has answered. With `appendfsync always` Redis answers after the
// fsync, so "durable" means on disk. Outcomes are released only up to `durable_sequence()`.
//
// Keys, all sharing the hash tag `{prefix}` (so they live in one Redis Cluster slot):
//   {prefix}:journal   stream of sealed batches, entry id "<batch number>-0", field "b"
//   {prefix}:snapshot  the latest snapshot record (records.hpp)
//   {prefix}:lease     the writing engine's token, with a time to live
//   {prefix}:cursor    the caller's position in its own input when the last batch was written
//                      (the cluster's command stream entry id: docs/scaling.md)
//   {prefix}:orders    confirmed, cancelled and expired orders for downstream systems, written
//                      by the same script as the batch holding their events (docs/scaling.md)
//   {prefix}:replies   replies the caller kept (KeptReply), written no later than the cursor
//                      that completes their commands, so that a successor can send them again
//   {prefix}:order-ids-key  32 hex digits, made once (SET NX) by the first recovery: the key of
//                      the order ids buyers see (RecoveryStats::order_id_key_hex)
//
// Single writer: only the holder of the lease may write, and every write is fenced by a Lua
// script that checks the token first, so an engine paused past its lease (and replaced) cannot
// write when it resumes; it sees `fenced` and must stop serving. The same script checks that the
// stream ends where this engine last wrote: a Redis that lost batches (a replica promoted
// without them) is `diverged`, and the engine stops rather than serve a shorter history.
//
// Replicated (min_replicas > 0): a batch is durable once the primary has fsynced it *and* WAIT
// says that many replicas have it; until then nothing of it is released. Behind Sentinel
// (`redis` = sentinel://…) every new connection asks the sentinels for the primary, so a
// failover is followed by reconnecting. docs/durability.md has the whole argument.
//
// Threads: `recover`, `append`, `append_snapshot`, `snapshot_due` are for the engine thread;
// `durable_sequence`, `wait_durable`, `status`, `accepting` for any thread. The writer thread
// owns the Redis connection.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include "flashsale/engine/engine.hpp"
#include "flashsale/journal/records.hpp"
#include "flashsale/journal/redis_connection.hpp"

namespace flashsale::journal {

class SentinelWatch;

struct JournalConfig {
  std::string redis = "127.0.0.1:6379";  // HOST:PORT, a unix socket path, or redis://…
  // Credentials for AUTH when `redis` carries none (an ACL user, or a password alone). Kept out
  // of `redis` so that they need not be on a command line; never logged.
  std::string redis_user;
  std::string redis_password;
  // The sentinels' own credentials, when `redis` is a sentinel:// set whose sentinels ask for
  // them (Sentinel's requirepass). Never logged.
  std::string sentinel_user;
  std::string sentinel_password;
  RedisEndpoint redis_endpoint() const;  // `redis` with the credentials; throws if malformed
  // A batch is durable once this many replicas have it too (WAIT, after the primary's fsync).
  // 0: the primary's fsync alone, as with a single Redis.
  std::uint32_t min_replicas = 0;
  // How long one WAIT may take. When it ends short of min_replicas the journal stops accepting
  // (`too_few_replicas`) and asks again until the replicas have the batch.
  std::chrono::milliseconds replica_timeout{1'000};
  std::string prefix = "flashsale";  // 1-64 of [A-Za-z0-9_.-]
  std::chrono::milliseconds lease_ttl{5'000};
  // recover() waits while another engine holds the lease; false: it throws LeaseHeld instead
  // (an engine that stands by for many journals watches the leases itself).
  bool wait_for_lease = true;
  std::chrono::milliseconds redis_timeout{2'000};  // connecting, and waiting for a reply
  std::chrono::milliseconds backoff_min{10};       // between reconnects, doubling up to the max
  std::chrono::milliseconds backoff_max{1'000};
  std::uint64_t snapshot_every_events = 1'000'000;
  std::chrono::milliseconds snapshot_every{60'000};
  // A snapshot trims the stream up to itself (recovery needs no more). Kept: nothing is
  // trimmed, so every drop's whole history stays in Redis — for `flashsale-loadtest capture`,
  // and an audit from the first batch — at the cost of Redis memory that only grows (an
  // operator exports, then trims; docs/operations.md) and of recovery reading it all.
  bool keep_history = false;
  // Appended bytes not yet durable; past it `accepting()` is false, so the caller answers
  // `unavailable` instead of deciding more. Bounds memory while Redis is away.
  std::size_t pending_bytes_max = std::size_t{64} << 20;
  // {prefix}:orders keeps about this many entries (XADD MAXLEN ~): downstream consumers must
  // keep up within it, and Redis memory stays bounded whatever they do.
  std::uint64_t orders_kept = 1'000'000;
  // {prefix}:replies keeps about this many: a successor needs only the replies to commands its
  // predecessor completed and had not acknowledged yet.
  std::uint64_t replies_kept = 10'000;
};

// A reply to a caller's command that is not idempotent (a host's restock), kept in
// {prefix}:replies by the write that stores the cursor completing the command, or an earlier
// one (every write takes all the replies appended so far): a successor
// that finds the command done by a predecessor that died before replying sends this instead of
// running it again (docs/scaling.md).
struct KeptReply {
  std::string key;    // the caller's name for the command
  std::string value;  // the reply, in the caller's encoding
};

// An order change that systems downstream act on (payment, fulfilment): appended to
// {prefix}:orders atomically with the batch that holds its event, so a consumer sees exactly
// the changes that are durable, each once.
struct OrderRecord {
  std::uint64_t sequence = 0;  // of its event
  std::string_view event;      // "confirmed", "cancelled" or "expired"
  std::string drop;
  engine::OrderNumber order = 0;
  std::string order_id;  // as buyers see it (the protocol's "order" field)
  std::string user;
  std::string client_order_id;
  std::uint32_t qty = 0;
  std::int64_t price_cents = 0;  // per unit: the variant's price
  engine::TimeMs at_ms = 0;
  std::string_view reason;  // cancelled: "by_buyer" or "drop_closed"; otherwise empty
  std::string variant;      // the variant's id; empty for a drop created without variants
};

enum class JournalState : std::uint8_t {
  recovering = 0,  // before recover() finished
  ok = 1,
  redis_unavailable = 2,  // cannot connect or the connection dropped; retrying with backoff
  redis_error = 3,        // Redis answers with errors (out of memory, loading, …); retrying
  fenced = 4,             // another engine holds the lease: this one must stop serving
  stopped = 5,
  too_few_replicas = 6,  // the last batch is on the primary but not yet on min_replicas; waiting
  diverged = 7,          // Redis lacks batches this engine wrote (a failover lost them): stopped
};
std::string_view to_string(JournalState state) noexcept;
// Fenced or diverged: the journal writes no more, and whoever serves from it must stop.
bool journal_lost(JournalState state) noexcept;

struct JournalStatus {
  JournalState state = JournalState::recovering;
  std::string detail;                   // the last problem, for logs and /healthz
  std::uint64_t appended_sequence = 0;  // last event handed to the journal
  std::uint64_t durable_sequence = 0;   // last event on disk in Redis
  std::size_t pending_bytes = 0;
  std::uint64_t batches_written = 0;
  std::uint64_t events_written = 0;
  std::uint64_t bytes_written = 0;
  std::uint64_t snapshots_written = 0;
  std::uint32_t last_batch_events = 0;
  double last_batch_ms = 0;  // one batch's round trip, fsync included
};

struct RecoveryStats {
  double total_ms = 0;
  double lease_wait_ms = 0;
  std::uint64_t snapshot_sequence = 0;  // 0: started without a snapshot
  std::uint64_t snapshot_bytes = 0;
  std::uint64_t batches_read = 0;
  std::uint64_t events_replayed = 0;
  std::uint64_t journal_bytes_read = 0;
  std::uint64_t last_sequence = 0;
  std::string cursor;  // the caller's position stored with the last batch; empty if none
  // The journal's secret for writing order ids buyers cannot count ({prefix}:order-ids-key,
  // 32 hex digits): made on the first recovery, kept with the journal, so every engine that
  // ever serves it writes and reads the same ids.
  std::string order_id_key_hex;
};

// A batch that became durable (Journal::on_durable).
struct DurableBatch {
  std::uint64_t last_sequence = 0;
  std::uint32_t events = 0;
  // Sent until Redis answered, fsync included; none when the batch was found written after a
  // reconnect, or only binds a snapshot.
  std::optional<std::chrono::steady_clock::duration> round_trip;
};

// recover() found the lease held, with JournalConfig::wait_for_lease = false.
struct LeaseHeld : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Journal {
 public:
  // No I/O yet; throws on a malformed config. Sets SIGPIPE to ignored for the process, so a
  // dead Redis is an error to handle rather than the end of the process.
  explicit Journal(JournalConfig config);
  ~Journal();  // stop() with the configured redis_timeout
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Called on the writer thread after each batch becomes durable. Set it before recover().
  void on_durable(std::function<void(const DurableBatch&)> callback);

  // Blocks until the engine is rebuilt: connects (retrying while Redis is unreachable), takes
  // the lease (waiting, and logging who holds it, while another engine does), restores the
  // snapshot, replays the stream after it, checks the invariants and the snapshot's digest,
  // then starts the writer. `engine` must be fresh. Throws std::runtime_error when the journal
  // is damaged: an engine must not serve from a journal it cannot read.
  RecoveryStats recover(engine::Engine& engine);

  // Engine thread: queues events for the next batch. Never refuses — they already happened —
  // so gate new commands on accepting(). Allocates only as the pending buffer grows.
  // `cursor`, if not empty, is the caller's position in its input that these events complete:
  // it is stored with the batch that holds them (or on its own when there are none), and comes
  // back from recover(). `orders` go to {prefix}:orders with the batch holding their events.
  // `replies` go to {prefix}:replies no later than `cursor` is stored, so they need one.
  void append(std::span<const engine::Event> events, std::string_view cursor = {},
              std::span<const OrderRecord> orders = {}, std::span<const KeptReply> replies = {});

  // Engine thread: ends the batch being gathered at the last event appended, so that one batch
  // ends exactly there and chain_head() can name it: for answers that commit to a state (the
  // audit API). Rare: each cut may cost a batch of its own.
  void cut();
  // Any thread: the written batch that ends at `sequence`, if one does and it is among the
  // last 4,096 written (or the last one recovery read).
  std::optional<ChainHead> chain_head(std::uint64_t sequence) const;

  // Engine thread: whether enough events or time passed since the last snapshot.
  bool snapshot_due() const;
  // Engine thread: takes a snapshot of `engine` (O(state), allocates) and queues it; it is
  // written after every event it covers is durable, and then the stream before it is trimmed.
  void append_snapshot(const engine::Engine& engine);

  // Any thread.
  std::uint64_t durable_sequence() const noexcept;
  std::string durable_cursor() const;  // the last cursor written
  // The token this journal holds its lease with (after recover()): a caller's own reads and
  // writes under the same key prefix can be fenced by the same lease (docs/scaling.md).
  const std::string& lease_token() const noexcept;
  const std::string& lease_key() const noexcept;
  const std::string& replies_key() const noexcept;  // {prefix}:replies: entries of k and v
  bool wait_durable(std::uint64_t sequence, std::chrono::milliseconds timeout) const;
  bool accepting() const noexcept;  // state ok and pending bytes under the bound
  JournalStatus status() const;

  // Writes what is queued (waiting at most `timeout`), releases the lease if all of it is
  // durable, and ends the writer. Idempotent.
  void stop(std::chrono::milliseconds timeout);

 private:
  struct Shared;
  class Writer;
  class RecoveryRedis;
  std::unique_ptr<Shared> shared_;
  std::unique_ptr<Writer> writer_;
  std::unique_ptr<SentinelWatch> watch_;  // behind Sentinel: tells the writer of a failover
};

}  // namespace flashsale::journal
