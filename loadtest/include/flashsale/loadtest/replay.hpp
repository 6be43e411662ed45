// Replaying a surge trace against a running flashsale server (`flashsale-loadtest replay`).
//
// The drop is created (or reused) and its countdown started so that T-0 falls `countdown_ms`
// after the start — or, for a stream, the stream and its drops are created and each drop is
// pinned and counted down at its instant — then every action is sent at its scheduled time
// whatever the server does (open loop), one connection per virtual viewer, and latency is
// measured from the scheduled time. Afterwards the verdict checks what a buyer and an auditor would
// (docs/loadtest.md), and DIR/report.json and DIR/report.html are written. The exit status is 0
// only when every check passes. One process holds at most ~19,900 sockets; `workers` spreads a
// larger audience over several, on one schedule, with the same verdict and report.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace flashsale::loadtest {

struct ReplayOptions {
  std::string trace;
  std::string url = "ws://127.0.0.1:8080/ws";
  std::string api = "http://127.0.0.1:8080";
  // A host's key; for a stream also the operator's (the stream is then host "loadtest"'s).
  std::string host_key = "dev-host-key";
  // Where the server's /metrics is, for its CPU and memory in the report: `api` when empty.
  std::string metrics;
  std::string report_dir = "report";
  unsigned threads = 1;  // per process
  // Processes: above one, this process starts that many workers of itself, each playing a share
  // of the viewers (user number mod workers) from its own sockets, and merges what they saw.
  unsigned workers = 1;
  // Set only in such a worker, by its coordinator: its share (T-0 comes on its standard input).
  struct Part {
    unsigned index = 0;
    unsigned count = 1;
  };
  std::optional<Part> part;
  std::vector<std::string> sources = {"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4",
                                      "127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8"};
  double grace_seconds = 5;  // after the last action, for the last answers
  // The verdict checks against this stock instead of the server's: a way to prove, in a test,
  // that the checker fails when what the server did does not add up.
  std::optional<std::uint32_t> assume_stock;
};

int replay(const ReplayOptions& options);

}  // namespace flashsale::loadtest
