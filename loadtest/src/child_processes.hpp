// Worker processes of the load generator: this same executable started with other arguments,
// its standard input written and its standard output read by the parent as lines, its standard
// error left to the terminal.
// Internal to the loadtest target.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace flashsale::loadtest {

class ChildProcess {
 public:
  // Starts /proc/self/exe with `arguments` (argv[1...]); throws when it cannot.
  explicit ChildProcess(const std::vector<std::string>& arguments);
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&&) = delete;
  ChildProcess(const ChildProcess&) = delete;
  // A child still running is killed and reaped: no worker outlives its coordinator's failure.
  ~ChildProcess();

  // Writes `line` and a newline to the child's standard input; throws when it cannot.
  void write_line(std::string_view line);
  // Hands every complete line written so far to `on_line`, without blocking.
  void read_lines(const std::function<void(std::string_view)>& on_line);
  // True once the child closed its standard output (exited, usually).
  bool finished_output() const { return output_ < 0; }
  int output() const { return output_; }
  // Waits for the child to exit: its exit status, or 128 + the signal that ended it.
  int wait();

 private:
  pid_t pid_ = -1;
  int input_ = -1;
  int output_ = -1;
  std::string partial_;  // the start of a line not yet ended
};

// Blocks until one of `children` has output to read or has closed it, or until `deadline`.
void wait_for_output(const std::vector<ChildProcess*>& children,
                     std::chrono::steady_clock::time_point deadline);

}  // namespace flashsale::loadtest
