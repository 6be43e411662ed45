// What the loops of a shard worker's thread share (cluster_engine.cpp, lease_watch.cpp,
// command_stream.cpp): waiting that notices a stop, and a Redis connection made again once it
// broke. Each connection belongs to the thread that made it.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "flashsale/journal/redis_connection.hpp"

namespace flashsale::gateway {

// Sleeps up to `duration`, in steps that notice `stop`.
inline void nap(std::chrono::milliseconds duration, const std::atomic<bool>& stop) {
  const auto until = std::chrono::steady_clock::now() + duration;
  while (!stop && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

// True once `redis` is connected (made again if it was missing or broken). False when Redis
// cannot be reached, after a pause, so that a caller retrying at once does not spin.
inline bool connect(std::unique_ptr<journal::RedisConnection>& redis,
                    const journal::RedisEndpoint& endpoint, std::chrono::milliseconds timeout,
                    const std::atomic<bool>& stop) {
  if (redis != nullptr && redis->ok()) return true;
  redis = std::make_unique<journal::RedisConnection>(endpoint, timeout);
  if (redis->ok()) return true;
  nap(std::chrono::milliseconds(200), stop);
  return false;
}

}  // namespace flashsale::gateway
