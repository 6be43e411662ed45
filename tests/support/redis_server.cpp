// See redis_server.hpp.
#include "redis_server.hpp"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <unistd.h>

#include <random>
#include <stdexcept>

#include "redis_reply.hpp"

namespace flashsale::testing {

RedisServer::RedisServer(std::vector<std::string> extra) : extra_(std::move(extra)) {
  std::random_device random;
  folder_ = std::filesystem::temp_directory_path() /
            ("flashsale-redis-" + std::to_string(getpid()) + "-" + std::to_string(random()));
  std::filesystem::create_directories(folder_);
  socket_ = (folder_ / "redis.sock").string();
  start();
}

RedisServer::~RedisServer() {
  if (process_) kill();
  std::error_code ignored;
  std::filesystem::remove_all(folder_, ignored);
}

void RedisServer::start() {
  std::vector<std::string> arguments{"/usr/bin/redis-server",
                                     FLASHSALE_SOURCE_DIR "/configs/redis.conf",
                                     "--dir",
                                     folder_.string(),
                                     "--port",
                                     "0",
                                     "--unixsocket",
                                     socket_,
                                     "--logfile",
                                     "",
                                     "--daemonize",
                                     "no"};
  arguments.insert(arguments.end(), extra_.begin(), extra_.end());
  process_ = std::make_unique<ChildProcess>(arguments);
  while (true) {
    const auto line = process_->read_line(std::chrono::seconds(20));
    if (!line) throw std::runtime_error("redis-server did not start: " + process_->report());
    if (line->find("eady to accept connections") != std::string::npos)
      break;  // "Ready"/"ready", by version
  }
  log_drain_ = std::thread([process = process_.get()] {
    while (process->read_line(std::chrono::hours(1))) {
    }
  });
}

void RedisServer::kill() {
  process_->signal(SIGKILL);
  process_->wait(std::chrono::seconds(10));
  log_drain_.join();  // the pipe closed with the process
  process_.reset();
}

void RedisServer::pause() {
  process_->signal(SIGSTOP);
}

void RedisServer::resume() {
  process_->signal(SIGCONT);
}

std::string RedisServer::call(const std::vector<std::string>& arguments) const {
  redisContext* context = redisConnectUnix(socket_.c_str());
  if (context == nullptr || context->err != 0) {
    if (context != nullptr) redisFree(context);
    throw std::runtime_error("cannot connect to the test redis");
  }
  std::vector<const char*> pointers;
  std::vector<std::size_t> lengths;
  for (const auto& argument : arguments) {
    pointers.push_back(argument.data());
    lengths.push_back(argument.size());
  }
  auto* reply = static_cast<redisReply*>(redisCommandArgv(
      context, static_cast<int>(arguments.size()), pointers.data(), lengths.data()));
  std::string text = reply != nullptr ? reply_text(reply) : "";
  if (reply != nullptr) freeReplyObject(reply);
  redisFree(context);
  return text;
}

}  // namespace flashsale::testing
