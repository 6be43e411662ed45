// The journal: recovery on the engine thread, then a writer thread that group-commits batches
// to Redis. See journal.hpp for the contract and docs/durability.md for why it holds.
#include "flashsale/journal/journal.hpp"

#include <fmt/format.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "flashsale/engine/assert.hpp"
#include "flashsale/engine/event_codec.hpp"
#include "flashsale/journal/records.hpp"
#include "flashsale/journal/redis_connection.hpp"
#include "replay.hpp"
#include "scripts.hpp"
#include "sentinel_watch.hpp"

namespace flashsale::journal {

using Clock = std::chrono::steady_clock;

RedisEndpoint JournalConfig::redis_endpoint() const {
  RedisEndpoint endpoint = RedisEndpoint::parse(redis);
  if (endpoint.password.empty()) {
    endpoint.user = redis_user;
    endpoint.password = redis_password;
  }
  endpoint.sentinel_user = sentinel_user;
  endpoint.sentinel_password = sentinel_password;
  return endpoint;
}

std::string_view to_string(JournalState state) noexcept {
  switch (state) {
    case JournalState::recovering:
      return "recovering";
    case JournalState::ok:
      return "ok";
    case JournalState::redis_unavailable:
      return "redis_unavailable";
    case JournalState::redis_error:
      return "redis_error";
    case JournalState::fenced:
      return "fenced";
    case JournalState::stopped:
      return "stopped";
    case JournalState::too_few_replicas:
      return "too_few_replicas";
    case JournalState::diverged:
      return "diverged";
  }
  return "unknown";
}

bool journal_lost(JournalState state) noexcept {
  return state == JournalState::fenced || state == JournalState::diverged;
}

namespace {

double elapsed_ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

std::string entry_id(std::uint64_t batch) {
  return std::to_string(batch) + "-0";
}

// "<number>-0" → number; 0 for anything else.
std::uint64_t batch_of(std::string_view id) {
  std::uint64_t number = 0;
  const auto [end, problem] = std::from_chars(id.data(), id.data() + id.size(), number);
  if (problem != std::errc{} || std::string_view(end, id.data() + id.size() - end) != "-0")
    return 0;
  return number;
}

// `bytes` from OpenSSL's generator, as hex.
std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> random(bytes);
  if (RAND_bytes(random.data(), static_cast<int>(bytes)) != 1)
    throw std::runtime_error("journal: no random bytes");
  std::string hex;
  for (const unsigned char byte : random) hex += fmt::format("{:02x}", byte);
  return hex;
}

std::string make_token() {
  std::random_device random;
  char host[64] = {};
  gethostname(host, sizeof host - 1);
  return std::to_string(getpid()) + "@" + host + "#" + std::to_string(random()) +
         std::to_string(random());
}

struct PendingSnapshot {
  std::uint64_t covered_sequence = 0;
  std::uint64_t digest = 0;
  std::string bytes;
};

// Error replies a retry may cure: Redis loading its data, busy with a script, out of memory.
bool transient(std::string_view error) {
  for (const std::string_view prefix :
       {"LOADING", "BUSY", "OOM", "TRYAGAIN", "MASTERDOWN", "CLUSTERDOWN", "NOREPLICAS"})
    if (error.starts_with(prefix)) return true;
  return false;
}

// Heads kept for chain_head(): an audit asks right after its own cut, so few are needed.
constexpr std::size_t heads_kept = 4'096;

// A snapshot is one large value, fsynced before Redis answers: it may take longer than a batch.
constexpr std::chrono::milliseconds snapshot_timeout_min{30'000};

}  // namespace

// State shared by the engine thread, the writer and readers of the status.
struct Journal::Shared {
  JournalConfig config;
  RedisEndpoint endpoint;
  std::string lease_key;
  std::string stream_key;
  std::string snapshot_key;
  std::string cursor_key;
  std::string orders_key;
  std::string orders_kept;
  std::string replies_key;
  std::string replies_kept;
  std::string order_id_key;
  std::string token = make_token();
  std::string ttl_ms;
  std::string min_replicas;
  std::string replica_timeout_ms;

  mutable std::mutex mutex;
  std::condition_variable wake;  // the writer's
  mutable std::condition_variable durable_changed;
  // Handed from the engine thread to the writer, under `mutex`.
  std::string open_events;
  std::uint64_t open_first_sequence = 0;
  std::uint32_t open_count = 0;
  engine::TimeMs open_previous_at_ms = 0;
  // Where cut() asked batches to end: bytes and events of the open buffer before the cut.
  struct Cut {
    std::size_t bytes = 0;
    std::uint32_t events = 0;
    std::string cursor;  // the caller's when it cut
  };
  std::deque<Cut> cuts;
  std::string open_cursor;              // the caller's latest, not yet in a batch taken
  bool cursor_dirty = false;            // open_cursor was not yet handed to the writer
  std::deque<OrderRecord> open_orders;  // by sequence
  // Kept replies not yet handed to the writer, as key and value pairs: the next write that
  // stores a cursor (or a batch) takes them all.
  std::vector<std::string> open_replies;
  std::string durable_cursor;
  std::deque<ChainHead> heads;  // the last batches written, oldest first
  std::optional<PendingSnapshot> snapshot;
  bool stopping = false;
  Clock::time_point stop_deadline;
  JournalStatus status;  // counters, under `mutex`
  std::function<void(const DurableBatch&)> on_durable;

  std::atomic<std::uint64_t> durable{0};
  std::atomic<JournalState> state{JournalState::recovering};
  std::atomic<std::size_t> pending_bytes{0};

  // Engine thread only.
  std::uint64_t appended = 0;
  std::uint64_t events_since_snapshot = 0;
  Clock::time_point last_snapshot = Clock::now();

  explicit Shared(JournalConfig journal_config)
      : config(std::move(journal_config)),
        endpoint(config.redis_endpoint()),
        lease_key("{" + config.prefix + "}:lease"),
        stream_key("{" + config.prefix + "}:journal"),
        snapshot_key("{" + config.prefix + "}:snapshot"),
        cursor_key("{" + config.prefix + "}:cursor"),
        orders_key("{" + config.prefix + "}:orders"),
        orders_kept(std::to_string(config.orders_kept)),
        replies_key("{" + config.prefix + "}:replies"),
        replies_kept(std::to_string(config.replies_kept)),
        order_id_key("{" + config.prefix + "}:order-ids-key"),
        ttl_ms(std::to_string(config.lease_ttl.count())),
        min_replicas(std::to_string(config.min_replicas)),
        replica_timeout_ms(std::to_string(config.replica_timeout.count())) {}

  // How long a reply may take: a WAIT may hold its reply back for replica_timeout.
  std::chrono::milliseconds io_timeout() const {
    return config.redis_timeout +
           (config.min_replicas > 0 ? config.replica_timeout : std::chrono::milliseconds(0));
  }

  // Logs each change of state once, not every retry.
  void set_state(JournalState next, std::string detail) {
    const JournalState previous = state.exchange(next);
    {
      std::lock_guard lock(mutex);
      status.detail = detail;
    }
    if (previous == next) return;
    if (next == JournalState::diverged) {
      spdlog::critical(
          "journal: redis {} lacks batches this engine wrote: {}. This engine stops writing; an "
          "operator must find the Redis that has them (docs/operations.md) before anyone serves",
          endpoint.describe(), detail);
    } else if (next == JournalState::ok) {
      spdlog::info("journal: writing to redis {} again", endpoint.describe());
    } else {
      spdlog::warn("journal: {} ({}): {}", to_string(next), endpoint.describe(), detail);
    }
  }
};

// The writer thread: owns the connection, one batch in flight at a time.
class Journal::Writer {
 public:
  Writer(Shared& shared, std::unique_ptr<RedisConnection> redis, std::uint64_t last_batch,
         const Hash& last_hash, std::uint64_t next_sequence, Clock::time_point lease_touched)
      : shared_(shared),
        redis_(std::move(redis)),
        sealed_hash_(last_hash),
        next_sequence_(next_sequence),
        last_batch_(last_batch),
        top_id_(last_batch == 0 ? "0-0" : entry_id(last_batch)),
        last_lease_touch_(lease_touched),
        thread_([this] { run(); }) {}
  ~Writer() {
    if (thread_.joinable()) thread_.join();
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

  // Any thread: a sentinel announced `primary` (HOST:PORT) as the new primary. A connection to
  // another node is cut, so that the writer reconnects now instead of at its next timeout.
  void primary_switched(const std::string& primary) {
    std::lock_guard lock(connection_mutex_);
    if (redis_ != nullptr && redis_->peer() != primary) {
      spdlog::info("journal: a sentinel announced {} as the primary; leaving {}", primary,
                   redis_->peer());
      redis_->interrupt();
    }
  }

 private:
  struct Batch {
    BatchHeader header;
    std::string stored;
    std::uint64_t last_sequence = 0;
    std::size_t event_bytes = 0;
    std::string cursor;                     // '' leaves the stored one
    std::vector<std::string> order_values;  // detail::order_fields per order record
    std::vector<std::string> reply_values;  // key and value per kept reply
  };

  void run() {
    while (take_work()) {
      if (!connected()) {
        pause();
        continue;
      }
      if (snapshot_) {
        write_snapshot();
      } else if (in_flight_ && written_) {
        await_replicas();
      } else if (in_flight_) {
        write_batch();
      } else if (cursor_) {
        write_cursor();
      } else {
        renew();
      }
      if (journal_lost(shared_.state)) break;
    }
    bool drained = false;
    {
      std::lock_guard lock(shared_.mutex);
      drained = !in_flight_ && shared_.open_count == 0;
    }
    if (!journal_lost(shared_.state) && drained && connected()) release_lease();
  }

  // Waits for something to do; false when it is time to stop.
  bool take_work() {
    std::unique_lock lock(shared_.mutex);
    const auto renew_at = last_lease_touch_ + shared_.config.lease_ttl / 3;
    shared_.wake.wait_until(lock, renew_at, [&] {
      return shared_.stopping || in_flight_ || snapshot_ || shared_.open_count > 0 ||
             shared_.cursor_dirty || cursor_ || snapshot_ready();
    });
    if (!snapshot_ && !in_flight_ && snapshot_ready()) {
      snapshot_ = std::move(shared_.snapshot);
      shared_.snapshot.reset();
    }
    // A position waiting to be written on its own goes first: a batch taken now would store a
    // newer one, which the older must not overwrite afterwards.
    if (!snapshot_ && !in_flight_ && !cursor_ && shared_.open_count > 0) take_batch();
    if (!snapshot_ && !in_flight_ && !cursor_ && shared_.cursor_dirty) {
      cursor_ = shared_.open_cursor;  // nothing to batch: the position goes on its own
      shared_.cursor_dirty = false;
      cursor_replies_ = std::move(shared_.open_replies);
      shared_.open_replies.clear();
    }
    if (shared_.stopping) {
      const bool drained = !snapshot_ && !in_flight_ && !cursor_ && shared_.open_count == 0;
      if (drained || Clock::now() >= shared_.stop_deadline) return false;
    }
    return true;
  }

  // Under the mutex: a snapshot may be written once every event it covers is durable (and a
  // while after a failed attempt, so that batches are not held up behind it).
  bool snapshot_ready() const {
    return shared_.snapshot && shared_.snapshot->covered_sequence <= shared_.durable.load() &&
           Clock::now() >= snapshot_retry_at_;
  }

  // Under the mutex: everything appended so far becomes the next batch (group commit), up to
  // the first cut if there is one, linked to the batch before it.
  void take_batch() {
    Batch batch;
    std::uint32_t count = shared_.open_count;
    std::size_t bytes = shared_.open_events.size();
    if (shared_.cuts.empty()) {
      if (shared_.cursor_dirty) batch.cursor = shared_.open_cursor;
      shared_.cursor_dirty = false;
    } else {
      const Shared::Cut cut = shared_.cuts.front();
      shared_.cuts.pop_front();
      count = cut.events;
      bytes = cut.bytes;
      batch.cursor = cut.cursor;
      for (Shared::Cut& later : shared_.cuts) {
        later.events -= cut.events;
        later.bytes -= cut.bytes;
      }
    }
    const std::uint64_t first = shared_.open_first_sequence;
    batch.header.number = last_batch_ + 1;
    batch.header.first_sequence = first;
    batch.header.event_count = count;
    batch.header.previous = sealed_hash_;
    batch.last_sequence = first + count - 1;
    batch.event_bytes = bytes;
    while (!shared_.open_orders.empty() &&
           shared_.open_orders.front().sequence <= batch.last_sequence) {
      add_order_values(shared_.open_orders.front(), batch.order_values);
      shared_.open_orders.pop_front();
    }
    batch.reply_values = std::move(shared_.open_replies);
    shared_.open_replies.clear();
    batch.stored = seal_batch(batch.header, std::string_view(shared_.open_events).substr(0, bytes));
    shared_.open_events.erase(0, bytes);
    shared_.open_count -= count;
    shared_.open_first_sequence += count;
    sealed_hash_ = sha256(batch.stored);
    next_sequence_ = batch.last_sequence + 1;
    in_flight_ = std::move(batch);
  }

  // A new connection may reach a new primary (a failover): before anything else goes through it,
  // settle the batch whose reply was lost, then hold the lease there and check that the stream
  // ends where this engine last wrote.
  bool connected() {
    if (redis_ != nullptr && redis_->ok()) return true;
    auto redis = std::make_unique<RedisConnection>(shared_.endpoint, shared_.io_timeout());
    if (!redis->ok()) {
      shared_.set_state(JournalState::redis_unavailable, redis->error());
      set_connection(nullptr);
      return false;
    }
    set_connection(std::move(redis));
    if (uncertain_ && !resolve_uncertain()) return false;
    if (journal_lost(shared_.state) || !renew(true)) return false;
    if (shared_.state == JournalState::redis_unavailable) shared_.set_state(JournalState::ok, "");
    return !journal_lost(shared_.state);
  }

  // The top of the stream as this engine expects it: its batch written but not yet on enough
  // replicas counts, since the primary has it.
  std::string expected_top() const {
    return written_ ? entry_id(in_flight_->header.number) : top_id_;
  }

  // WAIT's reply: true when enough replicas have everything this connection wrote. Short of
  // that, the journal stops accepting until they do (fail closed: a batch only the primary
  // holds could be lost with it).
  bool replicated(const Reply& waited, std::string_view what) {
    const long long replicas = waited->type == REDIS_REPLY_INTEGER ? waited->integer : -1;
    if (replicas >= static_cast<long long>(shared_.config.min_replicas)) return true;
    shared_.set_state(
        JournalState::too_few_replicas,
        fmt::format("{} of {} replicas acknowledged {} within {} ms", replicas,
                    shared_.config.min_replicas, what, shared_.config.replica_timeout.count()));
    return false;
  }

  // Pipelines WAIT after whatever was appended; the first reply (nullptr: the connection died)
  // and WAIT's (nullptr unless replicas are asked for and it came).
  std::pair<Reply, Reply> send_and_wait() {
    if (shared_.config.min_replicas > 0)
      redis_->append({"WAIT", shared_.min_replicas, shared_.replica_timeout_ms});
    Reply reply = redis_->read();
    Reply waited = reply != nullptr && shared_.config.min_replicas > 0 ? redis_->read() : nullptr;
    return {std::move(reply), std::move(waited)};
  }

  // The batch is on the primary: asks again whether enough replicas have it, through a write
  // (the lease) so that WAIT counts from this connection's latest offset even when it is new.
  void await_replicas() {
    redis_->append({"EVAL", detail::renew_lua, "2", shared_.lease_key, shared_.stream_key,
                    shared_.token, shared_.ttl_ms, expected_top()});
    const auto [reply, waited] = send_and_wait();
    if (reply == nullptr || waited == nullptr) return connection_lost();
    if (is_error(reply)) return handle_error(text_of(reply));
    last_lease_touch_ = Clock::now();
    if (!replicated(waited, "batch " + std::to_string(in_flight_->header.number))) return pause();
    complete_batch(std::nullopt);
  }

  void connection_lost() {
    uncertain_ = in_flight_.has_value();
    written_ = false;  // the next primary may not have it: read it there
    shared_.set_state(JournalState::redis_unavailable,
                      redis_ != nullptr ? redis_->error() : "connection lost");
    set_connection(nullptr);
    pause();
  }

  // The writer's thread: primary_switched() may look at the connection meanwhile.
  void set_connection(std::unique_ptr<RedisConnection> redis) {
    std::lock_guard lock(connection_mutex_);
    redis_ = std::move(redis);
  }

  // Waits out the backoff, doubling it up to the maximum. A stop cuts it short, but while
  // stopping the writer still waits between attempts (until the stop deadline) rather than spin.
  void pause() {
    std::unique_lock lock(shared_.mutex);
    if (shared_.stopping) {
      shared_.wake.wait_until(lock, std::min(Clock::now() + backoff_, shared_.stop_deadline));
    } else {
      shared_.wake.wait_for(lock, backoff_, [&] { return shared_.stopping; });
    }
    backoff_ = std::min(backoff_ * 2, shared_.config.backoff_max);
  }

  // A write whose reply never came may or may not be in the stream: read it, never re-append
  // blindly. Ours and there: durable. Someone else's there: fenced. Absent: send it again.
  // False while the answer is unknown (Redis unreachable or answering errors).
  bool resolve_uncertain() {
    const std::string id = entry_id(in_flight_->header.number);
    std::vector<StreamEntry> entries;
    if (!read_entries({"XRANGE", shared_.stream_key, id, id}, entries)) return false;
    if (!entries.empty()) {
      uncertain_ = false;
      if (entries[0].batch == in_flight_->stored) {
        spdlog::info("journal: batch {} was written before the connection dropped",
                     in_flight_->header.number);
        written_ = true;
        if (shared_.config.min_replicas == 0) complete_batch(std::nullopt);
      } else {
        shared_.set_state(JournalState::fenced, "another engine wrote batch " + id);
      }
      return true;
    }
    if (!read_entries({"XREVRANGE", shared_.stream_key, "+", "-", "COUNT", "1"}, entries))
      return false;
    uncertain_ = false;
    if (!entries.empty() && batch_of(entries[0].id) > in_flight_->header.number)
      shared_.set_state(JournalState::fenced, "the journal moved past our last batch");
    return true;
  }

  // Runs a stream read. False (after handling it) when the connection died or Redis answered
  // anything but entries: the caller learns nothing this time.
  bool read_entries(const std::vector<std::string_view>& command,
                    std::vector<StreamEntry>& entries) {
    last_reply_ = redis_->command(command);
    if (last_reply_ == nullptr) {
      connection_lost();
      return false;
    }
    bool malformed = false;
    entries = entries_of(last_reply_, malformed);
    if (!malformed) return true;
    shared_.set_state(JournalState::redis_error, is_error(last_reply_)
                                                     ? std::string(text_of(last_reply_))
                                                     : "unreadable reply");
    pause();
    return false;
  }

  // An error reply: fenced, diverged, or a trouble that a retry may cure.
  void handle_error(std::string_view text) {
    if (text.starts_with("FENCED")) {
      shared_.set_state(JournalState::fenced, std::string(text));
    } else if (text.starts_with("GAP")) {
      shared_.set_state(JournalState::diverged, std::string(text));
    } else if (text.starts_with("NOREPLICAS")) {
      // The primary's own min-replicas-to-write: the same trouble as a WAIT that ends short.
      shared_.set_state(JournalState::too_few_replicas, std::string(text));
      pause();
    } else if (text.find("equal or smaller than the target stream top") != std::string_view::npos) {
      uncertain_ = true;
      if (resolve_uncertain() && in_flight_) pause();
    } else {
      shared_.set_state(JournalState::redis_error, std::string(text));
      pause();
    }
  }

  static void add_order_values(const OrderRecord& record, std::vector<std::string>& values) {
    values.emplace_back(record.event);
    values.push_back(record.drop);
    values.push_back(std::to_string(record.order));
    values.push_back(record.order_id);
    values.push_back(record.user);
    values.push_back(record.client_order_id);
    values.push_back(std::to_string(record.qty));
    values.push_back(std::to_string(record.price_cents));
    values.push_back(std::to_string(record.at_ms));
    values.push_back(std::to_string(record.sequence));
    values.emplace_back(record.reason);
    values.push_back(record.variant);
    static_assert(detail::order_fields == 12);
  }

  void write_batch() {
    const Clock::time_point started = Clock::now();
    const std::string id = entry_id(in_flight_->header.number);
    const std::string order_count =
        std::to_string(in_flight_->order_values.size() / detail::order_fields);
    std::vector<std::string_view> command{"EVAL",
                                          detail::append_lua,
                                          "5",
                                          shared_.lease_key,
                                          shared_.stream_key,
                                          shared_.cursor_key,
                                          shared_.orders_key,
                                          shared_.replies_key,
                                          shared_.token,
                                          shared_.ttl_ms,
                                          top_id_,
                                          id,
                                          in_flight_->stored,
                                          in_flight_->cursor,
                                          shared_.orders_kept,
                                          shared_.replies_kept,
                                          order_count};
    command.insert(command.end(), in_flight_->order_values.begin(), in_flight_->order_values.end());
    command.insert(command.end(), in_flight_->reply_values.begin(), in_flight_->reply_values.end());
    redis_->append(command);
    const auto [reply, waited] = send_and_wait();
    if (reply == nullptr) return connection_lost();
    if (is_error(reply)) return handle_error(text_of(reply));
    written_ = true;
    if (shared_.config.min_replicas > 0 &&
        (waited == nullptr || !replicated(waited, "batch " + id))) {
      if (waited == nullptr) return connection_lost();
      return pause();
    }
    complete_batch(Clock::now() - started);
  }

  // The caller's position when no batch was there to carry it.
  void write_cursor() {
    std::vector<std::string_view> command{"EVAL",
                                          detail::cursor_lua,
                                          "4",
                                          shared_.lease_key,
                                          shared_.stream_key,
                                          shared_.cursor_key,
                                          shared_.replies_key,
                                          shared_.token,
                                          shared_.ttl_ms,
                                          top_id_,
                                          *cursor_,
                                          shared_.replies_kept};
    command.insert(command.end(), cursor_replies_.begin(), cursor_replies_.end());
    redis_->append(command);
    const auto [reply, waited] = send_and_wait();
    // Written but on too few replicas counts as not written: it is sent again (idempotent).
    const bool short_of_replicas = reply != nullptr && !is_error(reply) &&
                                   shared_.config.min_replicas > 0 &&
                                   (waited == nullptr || !replicated(waited, "the cursor"));
    if (reply == nullptr || is_error(reply) || short_of_replicas) {
      {
        std::lock_guard lock(shared_.mutex);
        if (!shared_.cursor_dirty) {  // not overtaken by a newer one meanwhile: send it again
          shared_.open_cursor = *cursor_;
          shared_.cursor_dirty = true;
        }
        // Its replies go with the next write that stores a cursor, ahead of newer ones.
        shared_.open_replies.insert(shared_.open_replies.begin(),
                                    std::make_move_iterator(cursor_replies_.begin()),
                                    std::make_move_iterator(cursor_replies_.end()));
      }
      cursor_replies_.clear();
      cursor_.reset();
      if (reply == nullptr || (short_of_replicas && waited == nullptr)) return connection_lost();
      if (short_of_replicas) return pause();
      return handle_error(text_of(reply));
    }
    last_lease_touch_ = Clock::now();
    cursor_replies_.clear();
    std::lock_guard lock(shared_.mutex);
    shared_.durable_cursor = std::move(*cursor_);
    cursor_.reset();
  }

  // `round_trip`: none when the batch was found written after a reconnect, or binds a snapshot.
  void complete_batch(std::optional<Clock::duration> round_trip) {
    Batch& batch = *in_flight_;
    written_ = false;
    last_batch_ = batch.header.number;
    top_id_ = entry_id(last_batch_);
    since_snapshot_.emplace_back(last_batch_, batch.last_sequence);
    last_lease_touch_ = Clock::now();
    backoff_ = shared_.config.backoff_min;
    {
      std::lock_guard lock(shared_.mutex);
      JournalStatus& status = shared_.status;
      status.batches_written += 1;
      status.events_written += batch.header.event_count;
      status.bytes_written += batch.stored.size();
      status.last_batch_events = batch.header.event_count;
      status.last_batch_ms =
          round_trip ? std::chrono::duration<double, std::milli>(*round_trip).count() : 0;
      shared_.pending_bytes -= batch.event_bytes;
      shared_.durable = batch.last_sequence;
      shared_.heads.push_back({batch.header.number, batch.last_sequence, sealed_hash_});
      if (!batch.cursor.empty()) shared_.durable_cursor = batch.cursor;
      if (shared_.heads.size() > heads_kept) shared_.heads.pop_front();
    }
    if (shared_.state != JournalState::ok) shared_.set_state(JournalState::ok, "");
    shared_.durable_changed.notify_all();
    const DurableBatch durable{batch.last_sequence, batch.header.event_count, round_trip};
    in_flight_.reset();
    if (shared_.on_durable) shared_.on_durable(durable);
  }

  // The stream may be trimmed up to the first batch holding an event after the snapshot —
  // but never past the top entry, which the fence compares against — unless its history is
  // kept (MINID 0 trims nothing).
  void write_snapshot() {
    std::uint64_t keep_from = last_batch_;
    for (const auto& [batch, last_sequence] : since_snapshot_) {
      if (last_sequence > snapshot_->covered_sequence) {
        keep_from = batch;
        break;
      }
    }
    SnapshotHeader header{snapshot_->covered_sequence, last_batch_, snapshot_->digest};
    header.chain_batch = last_batch_;  // nothing is in flight: the last sealed is the last written
    header.chain_head = sealed_hash_;
    const std::string stored = seal_snapshot(header, snapshot_->bytes);
    // The batch that binds the snapshot to the chain: no events, the snapshot's hash as its
    // checkpoint, written by the same script.
    Batch binding;
    binding.header.number = last_batch_ + 1;
    binding.header.first_sequence = next_sequence_;
    binding.header.previous = sealed_hash_;
    binding.header.checkpoint = sha256(stored);
    binding.last_sequence = next_sequence_ - 1;
    binding.stored = seal_batch(binding.header, {});
    const std::string binding_id = entry_id(binding.header.number);
    redis_->set_timeout(std::max(shared_.io_timeout(), snapshot_timeout_min));
    redis_->append({"EVAL", detail::snapshot_lua, "3", shared_.lease_key, shared_.stream_key,
                    shared_.snapshot_key, shared_.token, shared_.ttl_ms, top_id_, stored,
                    shared_.config.keep_history ? "0" : entry_id(keep_from), binding_id,
                    binding.stored});
    const auto [reply, waited] = send_and_wait();
    redis_->set_timeout(shared_.io_timeout());
    if (reply == nullptr || is_error(reply)) {
      // Writing it again later is harmless (it replaces the value and trims no further), and
      // batches must not wait behind it meanwhile.
      {
        std::lock_guard lock(shared_.mutex);
        if (!shared_.snapshot) shared_.snapshot = std::move(snapshot_);
      }
      snapshot_.reset();
      snapshot_retry_at_ = Clock::now() + shared_.config.backoff_max;
      if (reply == nullptr) {
        // Whether the script ran is unknown: its batch is settled like any other, by reading
        // the stream (if it is there, so is the snapshot; if not, neither is).
        sealed_hash_ = sha256(binding.stored);
        in_flight_ = std::move(binding);
        return connection_lost();
      }
      return handle_error(text_of(reply));
    }
    sealed_hash_ = sha256(binding.stored);
    in_flight_ = std::move(binding);
    written_ = true;
    while (!since_snapshot_.empty() && since_snapshot_.front().first < keep_from)
      since_snapshot_.pop_front();
    last_lease_touch_ = Clock::now();
    spdlog::info("journal: snapshot of {} events ({} bytes) written; journal kept from batch {}",
                 header.covered_sequence, stored.size(), keep_from);
    snapshot_.reset();
    {
      std::lock_guard lock(shared_.mutex);
      shared_.status.snapshots_written += 1;
    }
    // Like any batch, the binding one is settled once enough replicas have it.
    if (shared_.config.min_replicas > 0 &&
        (waited == nullptr || !replicated(waited, "batch " + binding_id))) {
      if (waited == nullptr) return connection_lost();
      return pause();
    }
    complete_batch(std::nullopt);
  }

  // Renews the lease once a third of its time passed (or at once, `now`), checking the top of
  // the stream as every write does. Replicated, it asks WAIT too, so that an idle journal learns
  // that its replicas are gone (and stops accepting) before an order has to wait to find out.
  // False when the renewal failed (handled).
  bool renew(bool now = false) {
    if (!now && Clock::now() < last_lease_touch_ + shared_.config.lease_ttl / 3) return true;
    redis_->append({"EVAL", detail::renew_lua, "2", shared_.lease_key, shared_.stream_key,
                    shared_.token, shared_.ttl_ms, expected_top()});
    const auto [reply, waited] = send_and_wait();
    if (reply == nullptr || (shared_.config.min_replicas > 0 && waited == nullptr)) {
      connection_lost();
      return false;
    }
    if (is_error(reply)) {
      handle_error(text_of(reply));
      return false;
    }
    last_lease_touch_ = Clock::now();
    const bool replicas_there =
        shared_.config.min_replicas == 0 || replicated(waited, "the lease's renewal");
    if (replicas_there && !written_ && shared_.state != JournalState::ok)
      shared_.set_state(JournalState::ok, "");
    return true;
  }

  void release_lease() {
    redis_->command({"EVAL", detail::release_lua, "1", shared_.lease_key, shared_.token});
  }

  Shared& shared_;
  std::mutex connection_mutex_;  // guards redis_ being replaced against primary_switched()
  std::unique_ptr<RedisConnection> redis_;
  Hash sealed_hash_;             // of the last batch sealed (in flight or written)
  std::uint64_t next_sequence_;  // the first event of the next batch
  std::optional<Batch> in_flight_;
  std::optional<PendingSnapshot> snapshot_;
  std::optional<std::string> cursor_;        // a position being written on its own
  std::vector<std::string> cursor_replies_;  // and the replies it carries
  bool uncertain_ = false;                   // in_flight_ was sent and its reply never came
  bool written_ = false;  // in_flight_ is on the primary, not yet known to be on min_replicas
  Reply last_reply_;      // owns what read_entries' views point into
  std::uint64_t last_batch_;
  std::string top_id_;  // the stream's top entry as this engine last wrote it
  std::deque<std::pair<std::uint64_t, std::uint64_t>> since_snapshot_;  // (batch, last sequence)
  Clock::time_point last_lease_touch_;
  Clock::time_point snapshot_retry_at_;  // after a failed snapshot write, batches go first
  std::chrono::milliseconds backoff_ = shared_.config.backoff_min;
  std::thread thread_;  // last: starts once everything above is ready
};

Journal::Journal(JournalConfig config) : shared_(std::make_unique<Shared>(std::move(config))) {
  // hiredis writes with write(2): a Redis that died would end the process with SIGPIPE
  // instead of giving the writer an error to recover from.
  std::signal(SIGPIPE, SIG_IGN);
  if (!engine::is_valid_drop_id(shared_->config.prefix))
    throw std::invalid_argument("journal prefix must be 1-64 of [A-Za-z0-9_.-]");
  if (shared_->config.lease_ttl < std::chrono::milliseconds(100))
    throw std::invalid_argument("lease ttl must be at least 100 ms");
  // WAIT with a timeout of 0 would wait for ever.
  if (shared_->config.min_replicas > 0 && shared_->config.replica_timeout.count() < 1)
    throw std::invalid_argument("replica timeout must be at least 1 ms");
}

Journal::~Journal() {
  stop(shared_->config.redis_timeout);
}

void Journal::on_durable(std::function<void(const DurableBatch&)> callback) {
  shared_->on_durable = std::move(callback);
}

// Recovery's side of Redis: every read retried through connection losses and transient error
// replies (Redis restarting alongside the engine is common), errors that a retry cannot cure
// thrown.
class Journal::RecoveryRedis {
 public:
  explicit RecoveryRedis(Journal::Shared& shared) : shared_(shared) {}

  Reply call(const std::vector<std::string_view>& arguments, std::string_view what) {
    std::chrono::milliseconds backoff = shared_.config.backoff_min;
    while (true) {
      if (redis_ == nullptr || !redis_->ok()) {
        redis_ = std::make_unique<RedisConnection>(shared_.endpoint, shared_.io_timeout());
        if (!redis_->ok()) {
          spdlog::warn("journal: cannot reach redis {}: {}; retrying in {} ms",
                       shared_.endpoint.describe(), redis_->error(), backoff.count());
          wait(backoff);
          continue;
        }
      }
      Reply reply = redis_->command(arguments);
      if (reply == nullptr) {
        spdlog::warn("journal: redis went away while {}: {}", what, redis_->error());
        redis_.reset();
        wait(backoff);
        continue;
      }
      if (is_error(reply) && transient(text_of(reply))) {
        spdlog::warn("journal: redis answered {} while {}; retrying", text_of(reply), what);
        wait(backoff);
        continue;
      }
      if (is_error(reply))
        throw std::runtime_error("journal: redis refused " + std::string(what) + ": " +
                                 std::string(text_of(reply)));
      return reply;
    }
  }

  // Recovery took the lease when the stream's top entry was `top`; nobody can write while it
  // holds it, so the top stays.
  void lease_taken(std::string top) {
    top_ = std::move(top);
    touched_ = Clock::now();
  }

  // Renews the lease once a quarter of its time passed since the last renewal, so that a slow
  // replay keeps it. Lapsed all the same (a stalled machine) with the stream unchanged, it is
  // taken back: nobody wrote meanwhile. Throws if another engine has it.
  void keep_lease() {
    if (Clock::now() - touched_ < shared_.config.lease_ttl / 4) return;
    const Reply renewed = call({"EVAL", detail::touch_lua, "2", shared_.lease_key,
                                shared_.stream_key, shared_.token, shared_.ttl_ms, top_},
                               "renewing the lease");
    const long long since_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - touched_).count();
    const long long held = renewed->type == REDIS_REPLY_INTEGER ? renewed->integer : 0;
    if (held == 0)
      throw std::runtime_error(fmt::format(
          "journal: another engine took the lease {} during recovery ({} ms after this one last "
          "renewed it, with a time to live of {} ms)",
          shared_.lease_key, since_ms, shared_.config.lease_ttl.count()));
    if (held == 2)
      spdlog::warn(
          "journal: the lease {} lapsed during recovery ({} ms after its last renewal, time to "
          "live {} ms); nobody wrote meanwhile, so it was taken back",
          shared_.lease_key, since_ms, shared_.config.lease_ttl.count());
    touched_ = Clock::now();
  }

  // Waits until min_replicas replicas have everything this recovery read: a batch that a
  // predecessor wrote but never saw replicated was never acknowledged, and must not be now (a
  // retry would be answered from it). WAIT counts from this connection's last write, so the
  // lease is touched first, on the same connection.
  void await_replicas() {
    std::chrono::milliseconds backoff = shared_.config.backoff_min;
    while (true) {
      call({"PING"}, "waiting for replicas");  // (re)connected, whatever it takes
      redis_->append({"EVAL", detail::touch_lua, "2", shared_.lease_key, shared_.stream_key,
                      shared_.token, shared_.ttl_ms, top_});
      redis_->append({"WAIT", shared_.min_replicas, shared_.replica_timeout_ms});
      const Reply touched = redis_->read();
      const Reply waited = redis_->read();
      if (touched != nullptr && touched->type == REDIS_REPLY_INTEGER && touched->integer == 0)
        throw std::runtime_error("journal: another engine took the lease " + shared_.lease_key +
                                 " while recovery waited for replicas");
      const bool held = touched != nullptr && touched->type == REDIS_REPLY_INTEGER;
      if (held) touched_ = Clock::now();
      const long long replicas =
          waited != nullptr && waited->type == REDIS_REPLY_INTEGER ? waited->integer : 0;
      if (held && replicas >= static_cast<long long>(shared_.config.min_replicas)) return;
      spdlog::warn(
          "journal: {} of {} replicas have the journal as recovered{}; waiting for them "
          "before serving",
          replicas, shared_.config.min_replicas,
          held                 ? ""
          : touched == nullptr ? " (" + redis_->error() + ")"
                               : " (" + std::string(text_of(touched)) + ")");
      wait(backoff);
    }
  }

  std::unique_ptr<RedisConnection> release() { return std::move(redis_); }
  Clock::time_point touched() const { return touched_; }

 private:
  // Nothing to await: Redis is not there or not ready yet.
  void wait(std::chrono::milliseconds& backoff) {
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, shared_.config.backoff_max);
  }

  Journal::Shared& shared_;
  std::unique_ptr<RedisConnection> redis_;
  std::string top_ = "0-0";
  Clock::time_point touched_ = Clock::now();
};

RecoveryStats Journal::recover(engine::Engine& engine) {
  Shared& shared = *shared_;
  FS_ASSERT(engine.drop_count() == 0 && engine.last_sequence() == 0);
  FS_ASSERT(writer_ == nullptr);
  RecoveryStats stats;
  const Clock::time_point started = Clock::now();
  RecoveryRedis redis(shared);

  // The lease: wait while another engine holds it. A SET whose reply was lost may have taken
  // it for us: the holder's token tells.
  while (true) {
    const Reply taken = redis.call(
        {"SET", shared.lease_key, shared.token, "NX", "PX", shared.ttl_ms}, "taking the lease");
    if (text_of(taken) == "OK") break;
    const Reply holder = redis.call({"GET", shared.lease_key}, "reading the lease");
    if (text_of(holder) == shared.token) break;
    const Reply ttl = redis.call({"PTTL", shared.lease_key}, "reading the lease");
    const long long left_ms = ttl->type == REDIS_REPLY_INTEGER ? ttl->integer : 0;
    if (!shared.config.wait_for_lease)
      throw LeaseHeld("journal: lease " + shared.lease_key + " held by " +
                      std::string(text_of(holder)));
    spdlog::warn("journal: lease {} held by {} for {} ms more; waiting", shared.lease_key,
                 text_of(holder), left_ms);
    // Nothing to await but the other engine's lease running out.
    std::this_thread::sleep_for(std::chrono::milliseconds(
        std::clamp<long long>(left_ms + 1, 1, shared.config.lease_ttl.count() / 4)));
  }
  {
    const Reply top =
        redis.call({"XREVRANGE", shared.stream_key, "+", "-", "COUNT", "1"}, "reading the top");
    bool malformed = false;
    const auto entries = entries_of(top, malformed);
    redis.lease_taken(entries.empty() ? "0-0" : std::string(entries.front().id));
  }
  stats.lease_wait_ms = elapsed_ms(started);
  redis.call({"SET", shared.order_id_key, random_hex(16), "NX"}, "making the order id key");
  stats.order_id_key_hex =
      text_of(redis.call({"GET", shared.order_id_key}, "reading the order id key"));
  if (stats.order_id_key_hex.size() != 32)
    throw std::runtime_error("journal: " + shared.order_id_key + " is not 32 hex digits");

  SnapshotHeader snapshot_header;
  std::optional<Hash> snapshot_hash;
  const Reply snapshot = redis.call({"GET", shared.snapshot_key}, "reading the snapshot");
  if (snapshot->type == REDIS_REPLY_STRING) {
    snapshot_hash = sha256(text_of(snapshot));
    std::string_view bytes;
    if (std::string problem = open_snapshot(text_of(snapshot), snapshot_header, bytes);
        !problem.empty())
      throw std::runtime_error("journal: snapshot " + shared.snapshot_key + ": " + problem);
    if (std::string problem = engine.restore(bytes); !problem.empty())
      throw std::runtime_error("journal: snapshot " + shared.snapshot_key + ": " + problem);
    if (engine.digest() != snapshot_header.digest ||
        engine.last_sequence() != snapshot_header.covered_sequence)
      throw std::runtime_error("journal: snapshot restores to a different digest");
    stats.snapshot_sequence = snapshot_header.covered_sequence;
    stats.snapshot_bytes = snapshot->len;
    redis.keep_lease();
  }

  std::uint64_t last_batch = 0;
  ChainCheck chain = snapshot_hash ? ChainCheck(snapshot_header) : ChainCheck();
  std::string from = "-";
  while (true) {
    const Reply range =
        redis.call({"XRANGE", shared.stream_key, from, "+", "COUNT", "256"}, "reading the journal");
    bool malformed = false;
    const auto entries = entries_of(range, malformed);
    if (malformed)
      throw std::runtime_error("journal " + shared.stream_key +
                               ": an entry is not a journal batch");
    if (entries.empty()) break;
    for (const StreamEntry& entry : entries) {
      BatchHeader header;
      std::string_view events;
      const std::string where = "journal " + shared.stream_key + " entry " + std::string(entry.id);
      if (std::string problem = open_batch(entry.batch, header, events); !problem.empty())
        throw std::runtime_error(where + ": " + problem);
      if (header.number != batch_of(entry.id) || header.number <= last_batch)
        throw std::runtime_error(where + ": batch number does not match its entry");
      if (std::string problem = chain.next(header, entry.batch); !problem.empty())
        throw std::runtime_error("journal " + shared.stream_key +
                                 ": hash chain broken: " + problem);
      if (std::string problem = detail::replay_batch(
              engine, header, events, stats.snapshot_sequence, stats.events_replayed);
          !problem.empty())
        throw std::runtime_error(where + ": " + problem);
      last_batch = header.number;
      stats.batches_read += 1;
      stats.journal_bytes_read += entry.batch.size();
      redis.keep_lease();
    }
    from = "(" + std::string(entries.back().id);
  }
  if (std::string problem = chain.finish(); !problem.empty())
    throw std::runtime_error("journal " + shared.stream_key + ": " + problem);
  if (last_batch < snapshot_header.covered_batch)
    throw std::runtime_error("journal " + shared.stream_key + " ends at batch " +
                             std::to_string(last_batch) + " but the snapshot covers batch " +
                             std::to_string(snapshot_header.covered_batch) +
                             ": entries are missing");
  engine.check_invariants();
  const Reply cursor = redis.call({"GET", shared.cursor_key}, "reading the cursor");
  if (cursor->type == REDIS_REPLY_STRING) stats.cursor = std::string(text_of(cursor));
  shared.durable_cursor = stats.cursor;
  redis.keep_lease();
  if (shared.config.min_replicas > 0) redis.await_replicas();

  stats.last_sequence = engine.last_sequence();
  stats.total_ms = elapsed_ms(started);
  shared.appended = engine.last_sequence();
  shared.durable = engine.last_sequence();
  shared.last_snapshot = Clock::now();
  shared.state = JournalState::ok;
  spdlog::info(
      "journal: recovered {} events ({} from the snapshot, {} replayed from {} batches) in {:.1f} "
      "ms",
      stats.last_sequence, stats.snapshot_sequence, stats.events_replayed, stats.batches_read,
      stats.total_ms);
  for (const ChainHead& head : chain.recent()) shared.heads.push_back(head);
  // The journal writes a snapshot and the batch that binds it in one script: an unbound one is
  // not the snapshot this journal wrote (replaced?). Served from, but flashsale-audit fails.
  if (snapshot_hash && !chain.checkpointed(*snapshot_hash))
    spdlog::warn("journal: snapshot {} is not bound to the hash chain; audits will fail",
                 shared.snapshot_key);
  const Clock::time_point touched = redis.touched();
  writer_ = std::make_unique<Writer>(shared, redis.release(), last_batch, chain.head(),
                                     engine.last_sequence() + 1, touched);
  if (shared.endpoint.behind_sentinel())
    watch_ = std::make_unique<SentinelWatch>(shared.endpoint, shared.config.redis_timeout,
                                             [writer = writer_.get()](const std::string& primary) {
                                               writer->primary_switched(primary);
                                             });
  return stats;
}

void Journal::append(std::span<const engine::Event> events, std::string_view cursor,
                     std::span<const OrderRecord> orders, std::span<const KeptReply> replies) {
  if (events.empty() && cursor.empty()) return;
  Shared& shared = *shared_;
  FS_ASSERT(writer_ != nullptr);
  FS_ASSERT(replies.empty() || !cursor.empty());
  {
    std::lock_guard lock(shared.mutex);
    if (!cursor.empty()) {
      shared.open_cursor = cursor;
      shared.cursor_dirty = true;
    }
    for (const KeptReply& reply : replies) {
      shared.open_replies.push_back(reply.key);
      shared.open_replies.push_back(reply.value);
    }

    const std::size_t before = shared.open_events.size();
    engine::ByteWriter out(shared.open_events);
    for (const engine::Event& event : events) {
      FS_ASSERT(event.sequence == shared.appended + 1);
      if (shared.open_count == 0) {
        shared.open_first_sequence = event.sequence;
        shared.open_previous_at_ms = 0;
      }
      engine::encode_event(event, out, shared.open_previous_at_ms);
      shared.open_count += 1;
      shared.appended = event.sequence;
    }
    shared.pending_bytes += shared.open_events.size() - before;
    shared.status.appended_sequence = shared.appended;
    for (const OrderRecord& order : orders) {
      // Each record belongs to one of these events: it rides with the batch that holds it.
      FS_ASSERT(!events.empty() && order.sequence >= events.front().sequence &&
                order.sequence <= events.back().sequence);
      shared.open_orders.push_back(order);
    }
  }
  shared.events_since_snapshot += events.size();
  shared.wake.notify_one();
}

void Journal::cut() {
  Shared& shared = *shared_;
  {
    std::lock_guard lock(shared.mutex);
    const std::uint32_t before = shared.cuts.empty() ? 0 : shared.cuts.back().events;
    if (shared.open_count == before) return;  // a batch already ends at the last event
    shared.cuts.push_back({shared.open_events.size(), shared.open_count, shared.open_cursor});
    shared.cursor_dirty = false;
    shared.open_previous_at_ms = 0;  // the next batch's times start afresh
  }
  shared.wake.notify_one();
}

std::optional<ChainHead> Journal::chain_head(std::uint64_t sequence) const {
  std::lock_guard lock(shared_->mutex);
  // The oldest batch ending there: the one the cut produced. A later one ending at the same
  // event (a snapshot's binding batch) commits to the same state, but the first is the answer
  // that stays the same.
  std::optional<ChainHead> found;
  for (auto head = shared_->heads.rbegin(); head != shared_->heads.rend(); ++head) {
    if (head->last_sequence == sequence) found = *head;
    if (head->last_sequence < sequence) break;
  }
  return found;
}

bool Journal::snapshot_due() const {
  const Shared& shared = *shared_;
  if (shared.events_since_snapshot == 0) return false;
  return shared.events_since_snapshot >= shared.config.snapshot_every_events ||
         Clock::now() - shared.last_snapshot >= shared.config.snapshot_every;
}

void Journal::append_snapshot(const engine::Engine& engine) {
  Shared& shared = *shared_;
  PendingSnapshot snapshot{engine.last_sequence(), engine.digest(), engine.snapshot()};
  {
    std::lock_guard lock(shared.mutex);
    shared.snapshot = std::move(snapshot);  // a newer one replaces one not yet written
  }
  shared.events_since_snapshot = 0;
  shared.last_snapshot = Clock::now();
  shared.wake.notify_one();
}

std::uint64_t Journal::durable_sequence() const noexcept {
  return shared_->durable.load();
}

std::string Journal::durable_cursor() const {
  std::lock_guard lock(shared_->mutex);
  return shared_->durable_cursor;
}

const std::string& Journal::lease_token() const noexcept {
  return shared_->token;
}

const std::string& Journal::lease_key() const noexcept {
  return shared_->lease_key;
}

const std::string& Journal::replies_key() const noexcept {
  return shared_->replies_key;
}

bool Journal::wait_durable(std::uint64_t sequence, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(shared_->mutex);
  return shared_->durable_changed.wait_for(lock, timeout,
                                           [&] { return shared_->durable.load() >= sequence; });
}

bool Journal::accepting() const noexcept {
  return shared_->state.load() == JournalState::ok &&
         shared_->pending_bytes.load() < shared_->config.pending_bytes_max;
}

JournalStatus Journal::status() const {
  std::lock_guard lock(shared_->mutex);
  JournalStatus status = shared_->status;
  status.state = shared_->state.load();
  status.durable_sequence = shared_->durable.load();
  status.pending_bytes = shared_->pending_bytes.load();
  return status;
}

void Journal::stop(std::chrono::milliseconds timeout) {
  if (writer_ == nullptr) return;
  watch_.reset();  // before the writer it calls
  {
    std::lock_guard lock(shared_->mutex);
    shared_->stopping = true;
    shared_->stop_deadline = Clock::now() + timeout;
  }
  shared_->wake.notify_one();
  writer_->join();
  writer_.reset();
  if (shared_->state != JournalState::fenced) shared_->state = JournalState::stopped;
  shared_->durable_changed.notify_all();
}

}  // namespace flashsale::journal
