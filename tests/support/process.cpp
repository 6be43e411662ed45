// See process.hpp.
#include "process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace flashsale::testing {

using Clock = std::chrono::steady_clock;

ChildProcess::ChildProcess(std::vector<std::string> arguments) : started_(Clock::now()) {
  int out[2];
  int err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe: " + std::string(std::strerror(errno)));
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork: " + std::string(std::strerror(errno)));
  if (pid_ == 0) {
    dup2(out[1], STDOUT_FILENO);
    dup2(err[1], STDERR_FILENO);
    std::vector<char*> argv;
    for (auto& argument : arguments) argv.push_back(argument.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    std::fprintf(stderr, "exec %s: %s\n", argv[0], std::strerror(errno));
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  out_.fd = out[0];
  err_.fd = err[0];
}

ChildProcess::~ChildProcess() {
  if (!status_) {
    ::kill(pid_, SIGKILL);
    ::kill(pid_, SIGCONT);
    wait(std::chrono::seconds(10));
  }
  close(out_.fd);
  close(err_.fd);
}

std::optional<std::string> ChildProcess::read_line_from(Pipe& pipe,
                                                        std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  while (true) {
    if (const auto newline = pipe.buffer.find('\n'); newline != std::string::npos) {
      std::string line = pipe.buffer.substr(0, newline);
      pipe.buffer.erase(0, newline + 1);
      if (&pipe == &err_) stderr_seen_ += line + "\n";
      return line;
    }
    if (pipe.closed) return std::nullopt;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    read_chunk(pipe, static_cast<int>(left.count()));
  }
}

bool ChildProcess::read_chunk(Pipe& pipe, int timeout_ms) {
  pollfd ready{pipe.fd, POLLIN, 0};
  if (poll(&ready, 1, timeout_ms) <= 0) return false;
  char chunk[4096];
  const ssize_t got = ::read(pipe.fd, chunk, sizeof chunk);
  if (got <= 0) {
    pipe.closed = true;
  } else {
    pipe.buffer.append(chunk, static_cast<std::size_t>(got));
  }
  return true;
}

std::optional<std::string> ChildProcess::read_line(std::chrono::milliseconds timeout) {
  return read_line_from(out_, timeout);
}

bool ChildProcess::await_stderr(const std::string& text, std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    const auto line = read_line_from(err_, std::max(left, std::chrono::milliseconds(0)));
    if (!line) return false;
    if (line->find(text) != std::string::npos) return true;
  }
}

std::vector<std::string> ChildProcess::drain_stdout(std::chrono::milliseconds timeout) {
  std::vector<std::string> lines;
  const Clock::time_point deadline = Clock::now() + timeout;
  while (auto line = read_line(std::chrono::duration_cast<std::chrono::milliseconds>(
             std::max(deadline - Clock::now(), Clock::duration::zero()))))
    lines.push_back(std::move(*line));
  return lines;
}

void ChildProcess::signal(int number) {
  if (!status_) ::kill(pid_, number);
}

std::optional<int> ChildProcess::wait(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  // A pidfd becomes readable when the child exits: poll it with the deadline, then reap.
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  if (pidfd < 0) throw std::runtime_error("pidfd_open: " + std::string(std::strerror(errno)));
  pollfd exited{pidfd, POLLIN, 0};
  const int ready = poll(&exited, 1, static_cast<int>(timeout.count()));
  close(pidfd);
  if (ready <= 0) return std::nullopt;
  int raw = 0;
  if (waitpid(pid_, &raw, 0) == pid_) {
    raw_status_ = raw;
    status_ = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
  }
  return status_;
}

void ChildProcess::read_available(Pipe& pipe) {
  while (!pipe.closed && read_chunk(pipe, 0)) {
  }
}

std::string ChildProcess::report(std::chrono::milliseconds settle) {
  wait(settle);
  read_available(out_);
  read_available(err_);
  const auto elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_).count();
  std::string said = "pid " + std::to_string(pid_) + ": ";
  if (!status_) {
    said += "still running";
  } else if (WIFEXITED(raw_status_)) {
    said += "exited with status " + std::to_string(WEXITSTATUS(raw_status_));
  } else {
    said += "killed by signal " + std::to_string(WTERMSIG(raw_status_)) + " (" +
            strsignal(WTERMSIG(raw_status_)) + ")";
  }
  said += ", " + std::to_string(elapsed) + " ms after it started";
  said += "\n--- its stderr:\n" + stderr_seen_ + err_.buffer;
  if (!out_.buffer.empty()) said += "\n--- its stdout, unread:\n" + out_.buffer;
  return said;
}

std::vector<std::string> with_environment(const std::vector<std::string>& environment,
                                          std::vector<std::string> arguments) {
  if (environment.empty()) return arguments;
  std::vector<std::string> command{"/usr/bin/env"};
  command.insert(command.end(), environment.begin(), environment.end());
  command.insert(command.end(), std::make_move_iterator(arguments.begin()),
                 std::make_move_iterator(arguments.end()));
  return command;
}

}  // namespace flashsale::testing
