// RedisServer: a private redis-server for one test, started from configs/redis.conf in a fresh
// temporary folder and reached over a unix socket (no port to collide on). It can be killed
// with SIGKILL and restarted on the same data, as a crash would. Readiness is awaited on the
// server's own "ready to accept connections" line, not guessed with a sleep.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "process.hpp"

namespace flashsale::testing {

class RedisServer {
 public:
  // `extra` are more `--name value` arguments for redis-server.
  explicit RedisServer(std::vector<std::string> extra = {});
  ~RedisServer();  // stops the server and removes its folder

  const std::string& socket() const noexcept { return socket_; }
  void kill();    // SIGKILL, as a crash
  void start();   // on the same folder: the AOF brings the data back
  void pause();   // SIGSTOP: Redis stops answering without closing connections
  void resume();  // SIGCONT
  bool running() const noexcept { return process_ != nullptr; }

  // Runs one command through redis-cli-free hiredis; the reply as text (arrays joined by ' ').
  std::string call(const std::vector<std::string>& arguments) const;

 private:
  std::filesystem::path folder_;
  std::string socket_;
  std::vector<std::string> extra_;
  std::unique_ptr<ChildProcess> process_;
  std::thread log_drain_;  // keeps reading the server's log so its pipe never fills
};

}  // namespace flashsale::testing
