// Charts for the replay report: inline SVG, no scripts and no fetches, so a report opens from
// a CI artifact as it is. Each chart has a title, one sentence saying what it shows, labelled
// axes with units, and gridlines on round values.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace flashsale::loadtest {

struct ChartSeries {
  std::string name;
  std::map<double, double> points;  // x (seconds from T-0) -> y
};

struct Chart {
  std::string title;
  std::string caption;  // one sentence: what the chart shows and how to read it
  std::string y_unit;   // the y axis's label, with its unit
  std::vector<ChartSeries> series;
  bool stacked = false;  // areas stacked in series order, rather than lines
  // The x axis's span, so that a report's charts line up; by default the points' own.
  std::optional<std::pair<double, double>> x_span;
};

std::string svg_chart(const Chart& chart);

// `text` with <, >, & and " escaped, for HTML text and attribute values.
std::string html_escaped(std::string_view text);

}  // namespace flashsale::loadtest
