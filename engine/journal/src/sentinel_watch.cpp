// See sentinel_watch.hpp.
#include "sentinel_watch.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <vector>

namespace flashsale::journal {

namespace {

// The backoff between sentinels after one could not be reached.
constexpr std::chrono::milliseconds retry_after{500};
// How long a subscription may stay silent before it is made again: a sentinel that stopped
// without closing the connection is left within this.
constexpr std::chrono::milliseconds quiet_max{5'000};

}  // namespace

SentinelWatch::SentinelWatch(RedisEndpoint endpoint, std::chrono::milliseconds timeout,
                             std::function<void(const std::string&)> switched)
    : endpoint_(std::move(endpoint)),
      timeout_(timeout),
      switched_(std::move(switched)),
      thread_([this] { run(); }) {}

SentinelWatch::~SentinelWatch() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    if (listening_ != nullptr) listening_->interrupt();
  }
  wake_.notify_all();
  thread_.join();
}

void SentinelWatch::run() {
  for (std::size_t turn = 0;; ++turn) {
    const HostPort& at = endpoint_.sentinels[turn % endpoint_.sentinels.size()];
    RedisEndpoint one;
    one.host = at.host;
    one.port = at.port;
    one.user = endpoint_.sentinel_user;
    one.password = endpoint_.sentinel_password;
    RedisConnection sentinel(one, timeout_);
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      listening_ = &sentinel;
    }
    const bool subscribed = sentinel.ok() && listen(sentinel);
    std::unique_lock lock(mutex_);
    listening_ = nullptr;
    if (stopping_) return;
    // A subscription that lapsed is made again at once; a sentinel that refused it is waited on.
    if (!subscribed) wake_.wait_for(lock, retry_after, [&] { return stopping_; });
  }
}

// Until the connection fails, times out or is interrupted; whether the sentinel confirmed the
// subscription. Messages are
// ["message", "+switch-master", "<name> <old ip> <old port> <new ip> <new port>"].
bool SentinelWatch::listen(RedisConnection& sentinel) {
  sentinel.set_timeout(std::max(timeout_, quiet_max));
  sentinel.append({"SUBSCRIBE", "+switch-master"});
  bool subscribed = false;
  while (const Reply reply = sentinel.read()) {
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) return subscribed;
    if (text_of(reply->element[0]) == "subscribe") subscribed = true;
    if (text_of(reply->element[0]) != "message") continue;
    std::vector<std::string_view> words;
    std::string_view payload = text_of(reply->element[2]);
    while (!payload.empty()) {
      const auto space = payload.find(' ');
      words.push_back(payload.substr(0, space));
      payload = space == std::string_view::npos ? std::string_view{} : payload.substr(space + 1);
    }
    if (words.size() == 5 && words[0] == endpoint_.sentinel_master)
      switched_(std::string(words[3]) + ":" + std::string(words[4]));
  }
  return subscribed;
}

}  // namespace flashsale::journal
