// ChildProcess: runs a program with its stdout and stderr on pipes, so tests can await the
// lines it prints (with a deadline), signal it (SIGKILL, SIGSTOP, SIGCONT, SIGTERM) and read its
// exit status. Real processes, real signals: what crash tests need.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace flashsale::testing {

class ChildProcess {
 public:
  explicit ChildProcess(std::vector<std::string> arguments);  // argv[0] is the program path
  ~ChildProcess();                                            // SIGKILL and reap, if still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // The next line on stdout (without the newline), or nullopt at end of output or deadline.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  // Reads stderr until a line containing `text` appears; false at end or deadline.
  bool await_stderr(const std::string& text, std::chrono::milliseconds timeout);
  // Every stdout line until the end of output (the process must be ending).
  std::vector<std::string> drain_stdout(std::chrono::milliseconds timeout);

  void signal(int number);
  // Waits for the exit; the exit code, or 128 + signal; nullopt at deadline.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  pid_t pid() const noexcept { return pid_; }
  // For a failure message: how the child ended (exit status or signal) or that it still runs,
  // how long after its start, everything it wrote to stderr and what it wrote to stdout that
  // nobody read. Waits up to `settle` for it to end first; reads only what the pipes hold.
  std::string report(std::chrono::milliseconds settle = std::chrono::milliseconds(0));

 private:
  struct Pipe {
    int fd = -1;
    std::string buffer;
    bool closed = false;
  };
  std::optional<std::string> read_line_from(Pipe& pipe, std::chrono::milliseconds timeout);
  // One read into the pipe's buffer once it is readable (false: not within `timeout_ms`).
  bool read_chunk(Pipe& pipe, int timeout_ms);
  void read_available(Pipe& pipe);  // everything the pipe holds now

  pid_t pid_ = -1;
  std::chrono::steady_clock::time_point started_;
  std::optional<int> status_;
  int raw_status_ = 0;  // as waitpid gave it
  Pipe out_;
  Pipe err_;
  std::string stderr_seen_;
};

// `arguments` run under /usr/bin/env with `environment` (NAME=value) added, if there is any: for
// passwords a program reads from its environment rather than its command line.
std::vector<std::string> with_environment(const std::vector<std::string>& environment,
                                          std::vector<std::string> arguments);

}  // namespace flashsale::testing
