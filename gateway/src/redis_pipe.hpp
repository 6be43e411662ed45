// RedisPipe: a thread that sends commands to Redis as they are queued, pipelining everything
// that accumulated while the previous round was in flight — one write and one read per round,
// however many commands. Used where the sender must not wait for Redis: an engine's answers
// and drop updates to the gateways, a gateway's commands to the engines.
//
// Records for a stream are merged: every record queued for one stream in a round becomes one
// entry (`XADD stream * r <record> r <record> …`), so a surge costs Redis one entry per
// round per stream instead of one per order (cluster.hpp has the record format).
//
// Bounded: past `queue_max` queued commands `push` refuses, and the caller answers `busy`.
// A command that cannot be sent (Redis away: reconnected with backoff) or that Redis refuses
// gets its `failed` called, on the pipe's thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "flashsale/journal/redis_connection.hpp"

namespace flashsale::gateway {

class RedisPipe {
 public:
  struct Command {
    std::vector<std::string> arguments;  // a command of its own, or
    std::string stream;                  // a record for this stream, merged with others
    std::string record;
    std::string_view kept;  // the stream's cap (XADD MAXLEN ~), if any; a literal
    std::function<void(std::string_view error)> failed;  // optional
  };

  RedisPipe(journal::RedisEndpoint endpoint, std::chrono::milliseconds timeout,
            std::size_t queue_max, std::string name);
  ~RedisPipe();  // stop()
  RedisPipe(const RedisPipe&) = delete;
  RedisPipe& operator=(const RedisPipe&) = delete;

  // Any thread.
  bool push(Command command);
  bool push_command(std::vector<std::string> arguments) {
    Command command;
    command.arguments = std::move(arguments);
    return push(std::move(command));
  }
  bool connected() const;  // the last round reached Redis
  std::size_t queued() const;
  // Sends what is queued (for up to `timeout`), then stops: push() refuses from then on, and no
  // `failed` runs once it returns. Idempotent; the owner's thread.
  void stop();

 private:
  void run();
  bool send(std::vector<Command>& round);

  const journal::RedisEndpoint endpoint_;
  const std::chrono::milliseconds timeout_;
  const std::size_t queue_max_;
  const std::string name_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Command> queue_;
  bool stopping_ = false;
  bool connected_ = false;
  std::unique_ptr<journal::RedisConnection> redis_;  // the pipe's thread only
  std::thread thread_;                               // last
};

}  // namespace flashsale::gateway
