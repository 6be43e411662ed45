// SentinelWatch: listens to the sentinels for a failover of one Redis set, so that the journal
// moves to the new primary when it is announced rather than when its next write fails or times
// out (a primary cut off, not dead, answers nothing until the timeout).
//
// One thread, subscribed to `+switch-master` on one sentinel at a time, moving to the next when
// that one fails or stays silent past the timeout (a quiet channel is the normal case, so the
// subscription is simply made again). It is an accelerator: a switch announced while it was
// between sentinels is still found by the journal's next error, through RedisConnection.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "flashsale/journal/redis_connection.hpp"

namespace flashsale::journal {

class SentinelWatch {
 public:
  // `switched` runs on the watch's thread with the new primary as "HOST:PORT", each time a
  // sentinel announces one for `endpoint.sentinel_master`.
  SentinelWatch(RedisEndpoint endpoint, std::chrono::milliseconds timeout,
                std::function<void(const std::string& primary)> switched);
  ~SentinelWatch();  // stops and joins
  SentinelWatch(const SentinelWatch&) = delete;
  SentinelWatch& operator=(const SentinelWatch&) = delete;

 private:
  void run();
  bool listen(RedisConnection& sentinel);

  const RedisEndpoint endpoint_;
  const std::chrono::milliseconds timeout_;
  const std::function<void(const std::string&)> switched_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  RedisConnection* listening_ = nullptr;  // under mutex_: what stop interrupts
  std::thread thread_;                    // last: starts once everything above is ready
};

}  // namespace flashsale::journal
