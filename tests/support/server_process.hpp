// ServerProcess: the real `flashsale` executable started for a test, on a free port (it listens
// on port 0 and the test reads the port from its "listening on" log line), against a test's
// RedisServer. Stop it with SIGTERM (graceful) or SIGKILL (a crash).
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "process.hpp"
#include "redis_server.hpp"

namespace flashsale::testing {

class ServerProcess {
 public:
  // `config` is a TOML file; `prefix` the journal prefix.
  ServerProcess(const RedisServer& redis, std::string config, std::string prefix,
                std::vector<std::string> extra = {});
  // Against any Redis the server can reach (`--redis`), with `environment` (NAME=value) for
  // what it reads from there: the passwords.
  ServerProcess(std::string redis, const std::vector<std::string>& environment, std::string config,
                std::string prefix, std::vector<std::string> extra = {});
  ~ServerProcess();

  unsigned short port() const noexcept { return port_; }
  // SIGTERM and wait; the exit status.
  int stop();
  void kill();
  pid_t pid() const { return process_->pid(); }
  // Everything the server has logged so far (every start), one line each.
  std::string log() const;
  // Waits until the log has `count` lines containing `text`; false if `timeout` passes first.
  bool wait_for_log(std::string_view text, std::size_t count = 1,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  // Starts again on the same Redis and prefix (a new port).
  void restart();

 private:
  void start();
  void drain_after_start();

  std::vector<std::string> arguments_;
  std::unique_ptr<ChildProcess> process_;
  std::thread log_drain_;
  mutable std::mutex log_mutex_;
  mutable std::condition_variable log_grew_;
  std::string log_;  // under log_mutex_
  unsigned short port_ = 0;
};

// Writes `text` to a fresh file under the test temp folder; its path.
std::string write_temp_file(const std::string& name, const std::string& text);

// What Prometheus' own linter (`promtool check metrics`, Debian's prometheus package) says of a
// /metrics body: "" when it is clean, else its complaints.
std::string promtool_check_metrics(const std::string& exposition);

// configs/dev.toml.
extern const std::string dev_config;
// Writes configs/dev.toml with `key = …` lines replaced, and `added` lines put at the top of
// their [section]s, for a server with other settings; the file's path.
std::string dev_config_with(const std::vector<std::pair<std::string, std::string>>& changes,
                            const std::vector<std::pair<std::string, std::string>>& added = {});

}  // namespace flashsale::testing
