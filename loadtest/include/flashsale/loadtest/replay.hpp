// Replaying a surge trace against a running flashsale server (`flashsale-loadtest replay`).
//
// The drop is created (or reused) and its countdown started so that T-0 falls `countdown_ms`
// after the start; then every action is sent at its scheduled time whatever the server does
// (open loop), one connection per virtual viewer, and latency is measured from the scheduled
// time. Afterwards the verdict checks what a buyer and an auditor would (docs/loadtest.md), and
// DIR/report.json and DIR/report.html are written. The exit status is 0 only when every check
// passes.
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
  std::string host_key = "dev-host-key";
  // Where the server's /metrics is, for its CPU and memory in the report: `api` when empty.
  std::string metrics;
  std::string report_dir = "report";
  unsigned threads = 1;
  std::vector<std::string> sources = {"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4",
                                      "127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8"};
  double grace_seconds = 5;  // after the last action, for the last answers
  // The verdict checks against this stock instead of the server's: a way to prove, in a test,
  // that the checker fails when what the server did does not add up.
  std::optional<std::uint32_t> assume_stock;
};

int replay(const ReplayOptions& options);

}  // namespace flashsale::loadtest
