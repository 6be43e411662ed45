#include "redis_pipe.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

namespace flashsale::gateway {

RedisPipe::RedisPipe(journal::RedisEndpoint endpoint, std::chrono::milliseconds timeout,
                     std::size_t queue_max, std::string name)
    : endpoint_(std::move(endpoint)),
      timeout_(timeout),
      queue_max_(queue_max),
      name_(std::move(name)),
      thread_([this] { run(); }) {}

RedisPipe::~RedisPipe() {
  stop();
}

void RedisPipe::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

bool RedisPipe::push(Command command) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= queue_max_) return false;
    queue_.push_back(std::move(command));
    if (queue_.size() > 1) return true;  // woken for the first
  }
  wake_.notify_one();
  return true;
}

bool RedisPipe::connected() const {
  std::lock_guard lock(mutex_);
  return connected_;
}

std::size_t RedisPipe::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void RedisPipe::run() {
  std::vector<Command> round;
  auto backoff = std::chrono::milliseconds(10);
  const auto deadline_after_stop = [&] { return std::chrono::steady_clock::now() + timeout_; };
  std::optional<std::chrono::steady_clock::time_point> stop_deadline;
  while (true) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_ && !stop_deadline) stop_deadline = deadline_after_stop();
      if (queue_.empty()) break;
      if (stop_deadline && std::chrono::steady_clock::now() > *stop_deadline) break;
      round.swap(queue_);
    }
    if (send(round)) {
      backoff = std::chrono::milliseconds(10);
    } else {
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(1'000));
    }
    round.clear();
  }
}

// One round: every command as it is, and every stream's records as one entry; then one read
// per command sent, each reply going to the commands it stands for.
bool RedisPipe::send(std::vector<Command>& round) {
  if (redis_ == nullptr || !redis_->ok())
    redis_ = std::make_unique<journal::RedisConnection>(endpoint_, timeout_);
  struct Sent {
    std::vector<std::string_view> arguments;
    std::vector<std::size_t> commands;  // in `round`
  };
  std::vector<Sent> sent;
  std::vector<std::pair<std::string_view, std::size_t>> streams;  // stream → its entry in `sent`
  for (std::size_t index = 0; index < round.size(); ++index) {
    const Command& command = round[index];
    if (command.stream.empty()) {
      sent.push_back({{command.arguments.begin(), command.arguments.end()}, {index}});
      continue;
    }
    auto found = std::find_if(streams.begin(), streams.end(),
                              [&](const auto& stream) { return stream.first == command.stream; });
    if (found == streams.end()) {
      Sent& entry = sent.emplace_back();
      entry.arguments = {"XADD", command.stream};
      if (!command.kept.empty())
        entry.arguments.insert(entry.arguments.end(), {"MAXLEN", "~", command.kept});
      entry.arguments.push_back("*");
      found = streams.insert(streams.end(), {command.stream, sent.size() - 1});
    }
    Sent& entry = sent[found->second];
    entry.arguments.insert(entry.arguments.end(), {"r", command.record});
    entry.commands.push_back(index);
  }
  const auto fail = [&](const Sent& entry, std::string_view why) {
    for (const std::size_t index : entry.commands)
      if (round[index].failed) round[index].failed(why);
  };
  std::size_t answered = 0;
  if (redis_->ok()) {
    for (const Sent& entry : sent) redis_->append(entry.arguments);
    for (; answered < sent.size(); ++answered) {
      const journal::Reply reply = redis_->read();
      if (reply == nullptr) break;
      if (journal::is_error(reply)) fail(sent[answered], journal::text_of(reply));
    }
  }
  const bool reached = answered == sent.size();
  {
    std::lock_guard lock(mutex_);
    if (connected_ != reached)
      reached ? spdlog::info("{}: writing to redis {}", name_, endpoint_.describe())
              : spdlog::warn("{}: redis {}: {}", name_, endpoint_.describe(), redis_->error());
    connected_ = reached;
  }
  // Not sent, or sent without an answer: the caller decides what a loss means.
  for (std::size_t lost = answered; lost < sent.size(); ++lost)
    fail(sent[lost], "redis unreachable");
  return reached;
}

}  // namespace flashsale::gateway
