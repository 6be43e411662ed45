// See server_process.hpp.
#include "server_process.hpp"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace flashsale::testing {

ServerProcess::ServerProcess(const RedisServer& redis, std::string config, std::string prefix,
                             std::vector<std::string> extra)
    : arguments_{FLASHSALE_SERVER,  "--config",     std::move(config),
                 "--redis",         redis.socket(), "--journal-prefix",
                 std::move(prefix), "--listen",     "127.0.0.1:0"} {
  arguments_.insert(arguments_.end(), extra.begin(), extra.end());
  start();
}

ServerProcess::~ServerProcess() {
  if (process_) kill();
}

void ServerProcess::start() {
  process_ = std::make_unique<ChildProcess>(arguments_);
  while (true) {
    const auto line = process_->read_line(std::chrono::seconds(30));
    if (!line) throw std::runtime_error("flashsale did not start: " + process_->report());
    {
      std::lock_guard lock(log_mutex_);
      log_ += *line + "\n";
    }
    const auto at = line->find("listening on 127.0.0.1:");
    if (at == std::string::npos) continue;
    port_ = static_cast<unsigned short>(
        std::stoi(line->substr(at + std::string("listening on 127.0.0.1:").size())));
    break;
  }
  drain_after_start();
}

// The server keeps logging; keep reading so its pipe never fills.
void ServerProcess::drain_after_start() {
  log_drain_ = std::thread([this, process = process_.get()] {
    while (const auto line = process->read_line(std::chrono::hours(1))) {
      std::lock_guard lock(log_mutex_);
      log_ += *line + "\n";
    }
  });
}

std::string ServerProcess::log() const {
  std::lock_guard lock(log_mutex_);
  return log_;
}

int ServerProcess::stop() {
  process_->signal(SIGTERM);
  const auto status = process_->wait(std::chrono::seconds(20));
  log_drain_.join();
  process_.reset();
  return status.value_or(-1);
}

void ServerProcess::kill() {
  process_->signal(SIGKILL);
  process_->wait(std::chrono::seconds(20));
  log_drain_.join();
  process_.reset();
}

void ServerProcess::restart() {
  start();
}

std::string write_temp_file(const std::string& name, const std::string& text) {
  const auto path =
      std::filesystem::temp_directory_path() / (std::to_string(getpid()) + "-" + name);
  std::ofstream(path) << text;
  return path.string();
}

}  // namespace flashsale::testing
