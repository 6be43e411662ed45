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
    : ServerProcess(redis.socket(), {}, std::move(config), std::move(prefix), std::move(extra)) {}

ServerProcess::ServerProcess(std::string redis, const std::vector<std::string>& environment,
                             std::string config, std::string prefix, std::vector<std::string> extra)
    : arguments_(with_environment(environment, {FLASHSALE_SERVER, "--config", std::move(config),
                                                "--redis", std::move(redis), "--journal-prefix",
                                                std::move(prefix), "--listen", "127.0.0.1:0"})) {
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
    log_grew_.notify_all();
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
      {
        std::lock_guard lock(log_mutex_);
        log_ += *line + "\n";
      }
      log_grew_.notify_all();
    }
  });
}

std::string ServerProcess::log() const {
  std::lock_guard lock(log_mutex_);
  return log_;
}

bool ServerProcess::wait_for_log(std::string_view text, std::size_t count,
                                 std::chrono::milliseconds timeout) const {
  std::unique_lock lock(log_mutex_);
  return log_grew_.wait_for(lock, timeout, [&] {
    std::size_t found = 0;
    for (auto at = log_.find(text); at != std::string::npos; at = log_.find(text, at + 1))
      found += 1;
    return found >= count;
  });
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

namespace flashsale::testing {

const std::string dev_config = FLASHSALE_SOURCE_DIR "/configs/dev.toml";

std::string promtool_check_metrics(const std::string& exposition) {
  const std::string path = write_temp_file("metrics.txt", exposition);
  ChildProcess promtool({"/bin/sh", "-c", "promtool check metrics <" + path + " 2>&1"});
  std::string complaints;
  for (const std::string& line : promtool.drain_stdout(std::chrono::seconds(30)))
    complaints += line + "\n";
  const auto status = promtool.wait(std::chrono::seconds(30));
  if (status != 0 && complaints.empty()) complaints = "promtool failed: " + promtool.report();
  return complaints;
}

std::string dev_config_with(const std::vector<std::pair<std::string, std::string>>& changes,
                            const std::vector<std::pair<std::string, std::string>>& added) {
  std::ifstream dev(dev_config);
  std::string config((std::istreambuf_iterator<char>(dev)), std::istreambuf_iterator<char>());
  for (const auto& [key, value] : changes) {
    const auto at = config.find("\n" + key + " = ");
    if (at == std::string::npos) throw std::runtime_error("no key " + key);
    const auto end = config.find('\n', at + 1);
    config.replace(at, end - at, "\n" + key + " = " + value);
  }
  for (const auto& [section, line] : added) {
    const std::string header = "[" + section + "]\n";
    const auto at = config.find(header);
    if (at == std::string::npos) throw std::runtime_error("no section " + section);
    config.insert(at + header.size(), line + "\n");
  }
  return write_temp_file("config.toml", config);
}

}  // namespace flashsale::testing
