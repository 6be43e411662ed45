// Comparing two replays (`flashsale-loadtest compare A B`): two report.json files (or the
// folders holding them), A the baseline and B the build under test, become a table of
// throughput, answers by status, latency per phase and the server's CPU and memory, each change
// marked when it is beyond noise; and a verdict for CI, failing when B crosses a threshold the
// caller gives, or when B's own verdict failed. docs/loadtest.md, "Comparing two builds".
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flashsale::loadtest {

struct CompareOptions {
  // A change smaller than this (percent of A) is noise: shown, not marked.
  double noise_percent = 5;
  // Latencies closer than this are noise whatever the percentage (0.2 ms against 0.3 ms is
  // +50% and means nothing).
  double latency_floor_ms = 1;
  // A p99 over fewer answers than this (in either report) is shown but not gated: over 300
  // answers it is the third slowest, and two runs of one build differ by half.
  double min_gated_answers = 1'000;
  // Thresholds, each off unless given: B fails past any of them.
  std::optional<double> max_p99_increase_percent;     // overall and in every phase
  std::optional<double> max_throughput_drop_percent;  // peak answers per second
  std::optional<double> max_cpu_increase_percent;     // server CPU seconds over the run
  std::optional<double> max_memory_increase_percent;  // server resident memory at the end
};

enum class Better { higher, lower, equal };  // which way a change is an improvement

struct ComparedRow {
  std::string section;  // "throughput", "answers", "latency: spike", "server"
  std::string name;
  std::string unit;
  std::optional<double> a, b;  // absent when a report lacks the figure
  Better better = Better::lower;
  // "" (within noise, or not comparable), "better", "worse", or "differs" for figures that
  // should simply agree (answers by status).
  std::string mark;
};

struct Comparison {
  std::vector<ComparedRow> rows;
  std::vector<std::string> failures;   // empty: B passes
  std::vector<std::string> not_gated;  // thresholds not applied, and why
};

// Throws std::runtime_error when either text is not a replay report.
Comparison compare_reports(std::string_view a_json, std::string_view b_json,
                           const CompareOptions& options);

std::string comparison_text(const Comparison& comparison, std::string_view a_name,
                            std::string_view b_name);
std::string comparison_html(const Comparison& comparison, std::string_view a_name,
                            std::string_view b_name);

// The subcommand: reads A and B (report.json or its folder), prints the table, writes `html`
// if not empty. Exit status 0 when B passes, 1 when it fails, 2 when a report cannot be read.
int compare(const std::string& a, const std::string& b, const CompareOptions& options,
            const std::string& html);

}  // namespace flashsale::loadtest
