// RedisConnection: one synchronous hiredis 0.14 context with timeouts, owned by one thread.
//
// hiredis 0.14 has no async timeouts and no reconnect, and its contexts are not thread-safe;
// the journal's writer thread owns one of these and pipelines through it. A connection that
// failed (I/O error, timeout, protocol error) is dead: `ok()` turns false for good and the owner
// makes a new one. Redis's error replies are not connection failures: they come back as
// replies of type error — except READONLY, which says the node is no longer the primary: the
// connection is dead then too, so that its owner reconnects and finds the new one.
//
// Behind Sentinel, a new connection is made the way Redis's guidelines for Sentinel clients
// say: ask each sentinel in turn for the primary of the named set, connect to the address the
// first one names, and check with ROLE that it is a primary (a failover may be under way). Every
// user of this class (journal, cluster links, audit) finds the current primary by reconnecting.
#pragma once

#include <hiredis/hiredis.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flashsale::journal {

struct ReplyDeleter {
  void operator()(redisReply* reply) const noexcept { freeReplyObject(reply); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

struct HostPort {
  std::string host;
  int port = 0;
};

// Where Redis is, and who we are to it. `password` (and `user`, for a Redis 6+ ACL user) are
// sent with AUTH on every new connection; describe() never shows them, and nothing logs them.
struct RedisEndpoint {
  std::string host;
  int port = 0;
  std::string unix_socket;
  std::string user;
  std::string password;
  // A Sentinel set instead of one address: the primary of `sentinel_master` is asked for on
  // every new connection. The sentinels' own credentials are their own (Sentinel's
  // `requirepass` is set apart from the data nodes'); empty: no AUTH to the sentinels.
  std::vector<HostPort> sentinels;
  std::string sentinel_master;
  std::string sentinel_user;
  std::string sentinel_password;

  // "HOST:PORT", a unix socket path (anything else containing '/'),
  // "redis://[USER[:PASSWORD]@]HOST:PORT" (percent-encoded), or
  // "sentinel://[USER[:PASSWORD]@]HOST:PORT[,HOST:PORT…]/NAME" (the credentials are the data
  // nodes'). Throws std::invalid_argument with a message that never repeats the password.
  static RedisEndpoint parse(std::string_view text);
  // parse, for tools: when the address carries no password, it comes from the environment
  // (FLASHSALE_REDIS_PASSWORD, and FLASHSALE_REDIS_USER for an ACL user), so that it need not be
  // on the command line; the sentinels' from FLASHSALE_SENTINEL_PASSWORD (and _USER).
  static RedisEndpoint from_command_line(std::string_view text);
  bool behind_sentinel() const noexcept { return !sentinels.empty(); }
  std::string describe() const;
};

class RedisConnection {
 public:
  RedisConnection(const RedisEndpoint& endpoint, std::chrono::milliseconds timeout);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  bool ok() const noexcept;
  // The node this connection reached ("HOST:PORT" or the socket): behind Sentinel, the primary
  // it named when the connection was made.
  const std::string& peer() const noexcept { return peer_; }
  // The one call another thread may make, while the owner keeps the connection alive: shuts
  // the socket down, so that a read blocked on it returns at once and the connection is dead.
  void interrupt() noexcept;
  // How long a reply may take from now on.
  void set_timeout(std::chrono::milliseconds timeout);
  std::string error() const;  // why the connection is dead

  // Queues a command (no I/O until a reply is read). Arguments are binary-safe.
  void append(const std::vector<std::string_view>& arguments);
  // Sends what is queued and reads the next reply; null when the connection died.
  Reply read();
  // append + read.
  Reply command(const std::vector<std::string_view>& arguments);

 private:
  // Connects and authenticates; false (with error_ set) on failure.
  bool open(const HostPort& node, const std::string& unix_socket, std::chrono::milliseconds timeout,
            const std::string& user, const std::string& password);
  // Asks the sentinels for the primary; nullopt (with error_ set) if none names one.
  std::optional<HostPort> ask_sentinels(const RedisEndpoint& endpoint,
                                        std::chrono::milliseconds timeout);
  void check_primary();  // ROLE: sets error_ unless this is a primary

  redisContext* context_ = nullptr;
  std::string error_;
  std::string peer_;
};

// One journal stream entry, viewing into its reply.
struct StreamEntry {
  std::string_view id;
  std::string_view batch;  // field "b"
};

// Reads an XRANGE/XREVRANGE reply: [[id, [field, value, …]], …]. Sets `malformed` when
// anything is not of that shape: a journal entry we cannot read must not be passed over.
std::vector<StreamEntry> entries_of(const Reply& reply, bool& malformed);

// Helpers for reading replies.
bool is_error(const Reply& reply) noexcept;
std::string_view text_of(const Reply& reply) noexcept;       // string, status or error text
std::string_view text_of(const redisReply* reply) noexcept;  // the same, of an element

}  // namespace flashsale::journal
