// journal_driver as a child process, for the crash and failover tests: start a surge, collect
// the acknowledgements it prints (each one durable), kill it keeping what it printed, and check
// them all through a fresh recovery (`journal_driver check`).
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "../support/process.hpp"
#include "../support/redis_server.hpp"

namespace flashsale::testing {

using namespace std::chrono_literals;

// How journal_driver reaches the journal's Redis: its --redis argument, and the environment
// that carries passwords (NAME=value), kept off its command line as the server keeps them.
struct DriverRedis {
  DriverRedis(const RedisServer& redis) : address(redis.socket()) {}  // NOLINT: a plain Redis
  DriverRedis(std::string redis_address, std::vector<std::string> redis_environment)
      : address(std::move(redis_address)), environment(std::move(redis_environment)) {}
  std::string address;
  std::vector<std::string> environment;
};

inline std::unique_ptr<ChildProcess> start_surge(const DriverRedis& redis,
                                                 const std::string& prefix, std::uint64_t seed,
                                                 std::vector<std::string> extra = {}) {
  std::vector<std::string> arguments = with_environment(
      redis.environment, {FLASHSALE_JOURNAL_DRIVER, "surge", "--redis", redis.address, "--prefix",
                          prefix, "--seed", std::to_string(seed)});
  arguments.insert(arguments.end(), extra.begin(), extra.end());
  return std::make_unique<ChildProcess>(arguments);
}

// Reads acknowledgements until `count` more arrived; false if the driver stopped first.
inline bool collect(ChildProcess& driver, std::vector<std::string>& acks, std::size_t count,
                    std::chrono::milliseconds timeout = 30s) {
  const std::size_t target = acks.size() + count;
  while (acks.size() < target) {
    auto line = driver.read_line(timeout);
    if (!line) return false;
    acks.push_back(std::move(*line));
  }
  return true;
}

// Kills the driver and keeps what it printed before dying: each of those was durable.
inline void kill_and_keep(ChildProcess& driver, std::vector<std::string>& acks) {
  driver.signal(SIGKILL);
  for (auto& line : driver.drain_stdout(10s)) acks.push_back(std::move(line));
  driver.wait(10s);
}

// Runs journal_driver check on the acknowledgements; its verdict line.
inline std::string check(const DriverRedis& redis, const std::string& prefix,
                         const std::vector<std::string>& acks,
                         std::vector<std::string> extra = {}) {
  const std::string input = ::testing::TempDir() + "acks-" + std::to_string(getpid()) + ".txt";
  {
    std::FILE* file = std::fopen(input.c_str(), "w");
    for (const auto& line : acks) std::fputs((line + "\n").c_str(), file);
    std::fclose(file);
  }
  std::string command = "env";
  for (const std::string& variable : redis.environment) command += " '" + variable + "'";
  command += " " + std::string(FLASHSALE_JOURNAL_DRIVER) + " check --redis '" + redis.address +
             "' --prefix " + prefix;
  for (const std::string& argument : extra) command += " " + argument;
  ChildProcess checker({"/bin/sh", "-c", command + " < " + input});
  const auto verdict = checker.read_line(60s);
  const auto status = checker.wait(60s);
  std::remove(input.c_str());
  if (!verdict || status != 0)
    return "check failed: " + (verdict ? "it said '" + *verdict + "'" : "it said nothing") + "; " +
           checker.report();
  return *verdict;
}

}  // namespace flashsale::testing
