// See compare.hpp.
#include "flashsale/loadtest/compare.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "charts.hpp"

namespace flashsale::loadtest {

namespace json = boost::json;

namespace {

json::object read_report(std::string_view text, std::string_view which) {
  json::error_code error;
  json::value parsed = json::parse(text, error);
  if (error || !parsed.is_object() || !parsed.as_object().contains("results") ||
      !parsed.as_object().contains("latency_ms"))
    throw std::runtime_error(fmt::format("{} is not a replay report (report.json)", which));
  return std::move(parsed.as_object());
}

std::optional<double> number_at(const json::object& object, std::string_view key) {
  const json::value* value = object.if_contains(key);
  if (value == nullptr || !value->is_number()) return std::nullopt;
  return value->to_number<double>();
}

const json::object* object_at(const json::object& object, std::string_view key) {
  const json::value* value = object.if_contains(key);
  return value != nullptr && value->is_object() ? &value->as_object() : nullptr;
}

// The busiest report bucket's answers per second.
std::optional<double> peak_answers_per_s(const json::object& report) {
  const json::value* timeline = report.if_contains("timeline");
  if (timeline == nullptr || !timeline->is_array()) return std::nullopt;
  double peak = 0;
  for (const json::value& point : timeline->as_array()) {
    const json::object* rates =
        point.is_object() ? object_at(point.as_object(), "orders_per_s") : nullptr;
    if (rates == nullptr) continue;
    double sum = 0;
    for (const auto& entry : *rates)
      if (entry.value().is_number()) sum += entry.value().to_number<double>();
    peak = std::max(peak, sum);
  }
  return peak;
}

class Builder {
 public:
  explicit Builder(const CompareOptions& options) : options_(options) {}

  // Adds a row, marked when its change is beyond noise.
  void row(std::string section, std::string name, std::string unit, std::optional<double> a,
           std::optional<double> b, Better better, double floor = 0) {
    ComparedRow row{std::move(section), std::move(name), std::move(unit), a, b, better, ""};
    if (a && b) {
      const double difference = *b - *a;
      const bool beyond_noise =
          std::abs(difference) > floor &&
          (*a == 0 ? difference != 0 : 100 * std::abs(difference / *a) > options_.noise_percent);
      if (beyond_noise) {
        switch (better) {
          case Better::equal:
            row.mark = "differs";
            break;
          case Better::higher:
            row.mark = difference > 0 ? "better" : "worse";
            break;
          case Better::lower:
            row.mark = difference < 0 ? "better" : "worse";
            break;
        }
      }
    }
    comparison_.rows.push_back(std::move(row));
  }

  // B fails when its change in the wrong direction is beyond `threshold` percent (and beyond
  // the absolute floor).
  void limit(const std::optional<double>& threshold, std::string_view what, std::optional<double> a,
             std::optional<double> b, Better better, double floor = 0) {
    if (!threshold || !a || !b || *a == 0) return;
    const double worse_by = 100 * (better == Better::lower ? *b - *a : *a - *b) / *a;
    if (worse_by > *threshold && std::abs(*b - *a) > floor)
      comparison_.failures.push_back(fmt::format("{}: {:.4g} → {:.4g}, {:.1f}% worse (limit {}%)",
                                                 what, *a, *b, worse_by, *threshold));
  }
  void fail(std::string failure) { comparison_.failures.push_back(std::move(failure)); }
  void not_gated(std::string why) { comparison_.not_gated.push_back(std::move(why)); }
  Comparison take() { return std::move(comparison_); }

 private:
  const CompareOptions& options_;
  Comparison comparison_;
};

// `count_key`: where each report says over how many answers its percentiles are.
void compare_latency(Builder& out, const CompareOptions& options, std::string section,
                     std::string_view what, const json::object* a, const json::object* b,
                     std::string_view suffix, std::string_view count_key) {
  const auto at = [](const json::object* object, std::string_view key) {
    return object != nullptr ? number_at(*object, key) : std::nullopt;
  };
  const auto percentile = [&](const json::object* object, std::string_view key) {
    return at(object, fmt::format("{}{}", key, suffix));
  };
  for (const std::string_view key : {"p50", "p90", "p99", "max"})
    out.row(section, std::string(key), "ms", percentile(a, key), percentile(b, key), Better::lower,
            options.latency_floor_ms);
  const double answers = std::min(at(a, count_key).value_or(options.min_gated_answers),
                                  at(b, count_key).value_or(options.min_gated_answers));
  if (options.max_p99_increase_percent && answers < options.min_gated_answers) {
    out.not_gated(fmt::format("p99 {}: {:.0f} answers, fewer than {:.0f}", what, answers,
                              options.min_gated_answers));
    return;
  }
  out.limit(options.max_p99_increase_percent, fmt::format("p99 {}", what), percentile(a, "p99"),
            percentile(b, "p99"), Better::lower, options.latency_floor_ms);
}

std::string read_file(const std::string& path) {
  std::filesystem::path file = path;
  if (std::filesystem::is_directory(file)) file /= "report.json";
  std::ifstream in(file);
  if (!in) throw std::runtime_error(fmt::format("cannot read {}", file.string()));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string shown(const std::optional<double>& value, std::string_view unit) {
  if (!value) return "-";
  if (unit == "ms") return fmt::format("{:.2f}", *value);
  if (unit == "MiB" || unit == "s") return fmt::format("{:.1f}", *value);
  return fmt::format("{:.0f}", *value);
}

std::string change_of(const ComparedRow& row) {
  if (!row.a || !row.b) return "";
  if (*row.a == 0) return *row.b == 0 ? "0%" : "new";
  return fmt::format("{:+.1f}%", 100 * (*row.b - *row.a) / *row.a);
}

}  // namespace

Comparison compare_reports(std::string_view a_json, std::string_view b_json,
                           const CompareOptions& options) {
  const json::object a = read_report(a_json, "A");
  const json::object b = read_report(b_json, "B");
  Builder out(options);

  const auto passed = [](const json::object& report) {
    const json::object* verdict = object_at(report, "verdict");
    const json::value* pass = verdict != nullptr ? verdict->if_contains("pass") : nullptr;
    return pass != nullptr && pass->is_bool() && pass->get_bool();
  };
  out.row("verdict", "checks passed", "", passed(a) ? 1 : 0, passed(b) ? 1 : 0, Better::higher);
  if (!passed(b)) out.fail("B's own verdict failed");

  const auto peak_a = peak_answers_per_s(a), peak_b = peak_answers_per_s(b);
  out.row("throughput", "peak answers/s", "/s", peak_a, peak_b, Better::higher);
  out.limit(options.max_throughput_drop_percent, "peak answers/s", peak_a, peak_b, Better::higher);

  const json::object& results_a = a.at("results").as_object();
  const json::object& results_b = b.at("results").as_object();
  std::set<std::string> statuses;
  for (const auto& entry : results_a) statuses.emplace(entry.key());
  for (const auto& entry : results_b) statuses.emplace(entry.key());
  for (const std::string& status : statuses)
    out.row("answers", status, "", number_at(results_a, status).value_or(0),
            number_at(results_b, status).value_or(0), Better::equal);

  compare_latency(out, options, "latency: all", "overall", object_at(a, "latency_ms"),
                  object_at(b, "latency_ms"), "", "samples");
  const json::object* phases_a = object_at(a, "phases");
  const json::object* phases_b = object_at(b, "phases");
  for (const std::string_view phase : {"countdown", "spike", "after"}) {
    const json::object* in_a = phases_a != nullptr ? object_at(*phases_a, phase) : nullptr;
    const json::object* in_b = phases_b != nullptr ? object_at(*phases_b, phase) : nullptr;
    if (in_a == nullptr && in_b == nullptr) continue;
    out.row(fmt::format("latency: {}", phase), "answers", "",
            in_a ? number_at(*in_a, "answers") : std::nullopt,
            in_b ? number_at(*in_b, "answers") : std::nullopt, Better::equal);
    compare_latency(out, options, fmt::format("latency: {}", phase),
                    fmt::format("in the {}", phase), in_a, in_b, "_ms", "answers");
  }

  const json::object* server_a = object_at(a, "server_process");
  const json::object* server_b = object_at(b, "server_process");
  const auto server = [&](const json::object* report, std::string_view key, double scale) {
    const auto value = report != nullptr ? number_at(*report, key) : std::nullopt;
    return value ? std::optional<double>(*value * scale) : std::nullopt;
  };
  const auto cpu_a = server(server_a, "cpu_seconds", 1), cpu_b = server(server_b, "cpu_seconds", 1);
  out.row("server", "CPU", "s", cpu_a, cpu_b, Better::lower);
  out.limit(options.max_cpu_increase_percent, "server CPU seconds", cpu_a, cpu_b, Better::lower);
  constexpr double mib = 1.0 / (1 << 20);
  const auto memory_a = server(server_a, "resident_bytes", mib);
  const auto memory_b = server(server_b, "resident_bytes", mib);
  out.row("server", "resident memory", "MiB", memory_a, memory_b, Better::lower);
  out.limit(options.max_memory_increase_percent, "server resident memory", memory_a, memory_b,
            Better::lower);
  return out.take();
}

std::string comparison_text(const Comparison& comparison, std::string_view a_name,
                            std::string_view b_name) {
  std::string out = fmt::format("A: {}\nB: {}\n\n{:<22} {:<16} {:>12} {:>12} {:>9}  {}\n", a_name,
                                b_name, "", "", "A", "B", "change", "");
  std::string_view section;
  for (const ComparedRow& row : comparison.rows) {
    out += fmt::format("{:<22} {:<16} {:>12} {:>12} {:>9}  {}\n",
                       row.section == section ? "" : row.section,
                       row.unit.empty() ? row.name : fmt::format("{} ({})", row.name, row.unit),
                       shown(row.a, row.unit), shown(row.b, row.unit), change_of(row), row.mark);
    section = row.section;
  }
  if (!comparison.not_gated.empty()) out += "\nNot gated:\n";
  for (const std::string& why : comparison.not_gated) out += fmt::format("  {}\n", why);
  out += comparison.failures.empty() ? "\nB passes\n" : "\nB fails:\n";
  for (const std::string& failure : comparison.failures) out += fmt::format("  {}\n", failure);
  return out;
}

std::string comparison_html(const Comparison& comparison, std::string_view a_name,
                            std::string_view b_name) {
  const bool pass = comparison.failures.empty();
  std::string out = fmt::format(
      "<!doctype html><html><head><meta charset=\"utf-8\"><title>flashsale: B against A</title>"
      "<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:900px}}"
      "td,th{{padding:2px 10px;text-align:right}}td:first-child,td:nth-child(2),th:first-child"
      "{{text-align:left}}tr.section td{{border-top:1px solid #ccc}}.better{{color:#1a7f37}}"
      ".worse,.fail{{color:#c22;font-weight:bold}}.differs{{color:#9a6700}}.pass{{color:#1a7f37}}"
      "</style></head><body><h1>B against A: <span class=\"{}\">{}</span></h1>"
      "<p>A (baseline): <code>{}</code><br>B: <code>{}</code></p>"
      "<p>Changes beyond noise are marked; latencies in ms, from each action's scheduled "
      "time.</p><table><tr><th></th><th></th><th>A</th><th>B</th><th>change</th><th></th></tr>",
      pass ? "pass" : "fail", pass ? "passes" : "fails", html_escaped(a_name),
      html_escaped(b_name));
  std::string_view section;
  for (const ComparedRow& row : comparison.rows) {
    out += fmt::format(
        "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td>"
        "<td class=\"{}\">{}</td></tr>",
        row.section == section ? "" : " class=\"section\"",
        row.section == section ? "" : html_escaped(row.section),
        html_escaped(row.unit.empty() ? row.name : fmt::format("{} ({})", row.name, row.unit)),
        shown(row.a, row.unit), shown(row.b, row.unit), row.mark, change_of(row), row.mark,
        row.mark);
    section = row.section;
  }
  out += "</table>";
  if (!comparison.not_gated.empty()) {
    out += "<h2>Not gated</h2><ul>";
    for (const std::string& why : comparison.not_gated)
      out += fmt::format("<li>{}</li>", html_escaped(why));
    out += "</ul>";
  }
  if (!pass) {
    out += "<h2 class=\"fail\">Why B fails</h2><ul>";
    for (const std::string& failure : comparison.failures)
      out += fmt::format("<li>{}</li>", html_escaped(failure));
    out += "</ul>";
  }
  return out + "</body></html>\n";
}

int compare(const std::string& a, const std::string& b, const CompareOptions& options,
            const std::string& html) {
  Comparison comparison;
  try {
    const std::string a_json = read_file(a);
    comparison = compare_reports(a_json, read_file(b), options);
  } catch (const std::exception& error) {
    fmt::print(stderr, "flashsale-loadtest compare: {}\n", error.what());
    return 2;
  }
  fmt::print("{}", comparison_text(comparison, a, b));
  if (!html.empty()) std::ofstream(html) << comparison_html(comparison, a, b);
  return comparison.failures.empty() ? 0 : 1;
}

}  // namespace flashsale::loadtest
