// See charts.hpp.
#include "charts.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <tuple>

namespace flashsale::loadtest {

namespace {

constexpr double width = 760, height = 240;
constexpr double left = 64, right = 16, top = 30, bottom = 40;  // the plot's margins
constexpr const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                   "#9467bd", "#8c564b", "#17becf", "#7f7f7f"};

std::string number(double value, double step) {
  if (std::abs(value) >= 1e6) return fmt::format("{:.3g}M", value / 1e6);
  if (std::abs(value) >= 1e4) return fmt::format("{:.3g}k", value / 1e3);
  return step < 1 ? fmt::format("{:.{}f}", value, step < 0.1 ? 2 : 1)
                  : fmt::format("{:.0f}", value);
}

// A round step (1, 2 or 5 times a power of ten) for an axis spanning `span`, giving at most
// about `ticks` gridlines.
double axis_step(double span, int ticks) {
  if (span <= 0) return 1;
  const double raw = span / ticks;
  const double magnitude = std::pow(10, std::floor(std::log10(raw)));
  for (const double factor : {1.0, 2.0, 5.0, 10.0})
    if (raw <= factor * magnitude) return factor * magnitude;
  return 10 * magnitude;
}

}  // namespace

std::string html_escaped(std::string_view text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string svg_chart(const Chart& chart) {
  // Stacked areas draw the running sums: the series' points become cumulative over one set of x.
  std::vector<ChartSeries> drawn = chart.series;
  if (chart.stacked) {
    std::set<double> xs;
    for (const ChartSeries& series : drawn)
      for (const auto& [x, y] : series.points) xs.insert(x);
    std::map<double, double> below;
    for (ChartSeries& series : drawn) {
      std::map<double, double> summed;
      for (const double x : xs) {
        const auto found = series.points.find(x);
        summed[x] = below[x] + (found == series.points.end() ? 0 : found->second);
      }
      series.points = summed;
      below = summed;
    }
  }
  double x_min = 0, x_max = 1, y_max = 0;
  bool any = false;
  for (const ChartSeries& series : drawn)
    for (const auto& [x, y] : series.points) {
      x_min = any ? std::min(x_min, x) : x;
      x_max = any ? std::max(x_max, x) : x;
      y_max = std::max(y_max, y);
      any = true;
    }
  if (chart.x_span) std::tie(x_min, x_max) = *chart.x_span;
  if (x_max <= x_min) x_max = x_min + 1;
  const double y_step = axis_step(y_max > 0 ? y_max : 1, 5);
  const double y_top = std::max(y_step, std::ceil(y_max / y_step) * y_step);
  const double x_step = axis_step(x_max - x_min, 10);
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  const auto px = [&](double x) { return left + (x - x_min) / (x_max - x_min) * plot_w; };
  const auto py = [&](double y) { return top + plot_h - y / y_top * plot_h; };

  std::string out = fmt::format(
      "<figure><h3>{}</h3><p class=\"caption\">{}</p><svg width=\"{}\" height=\"{}\" viewBox=\"0 "
      "0 {} {}\" role=\"img\" aria-label=\"{}\" font-size=\"11\">",
      html_escaped(chart.title), html_escaped(chart.caption), width, height, width, height,
      html_escaped(chart.title));
  // Gridlines and their values.
  for (double y = 0; y <= y_top + y_step / 2; y += y_step)
    out += fmt::format(
        "<line class=\"grid\" x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" "
        "stroke=\"#e4e4e4\"/>"
        "<text x=\"{3}\" y=\"{4:.1f}\" text-anchor=\"end\">{5}</text>",
        left, py(y), width - right, left - 6, py(y) + 4, number(y, y_step));
  for (double x = std::ceil(x_min / x_step) * x_step; x <= x_max + x_step / 1e6; x += x_step)
    out += fmt::format(
        "<line class=\"grid\" x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"{3}\"/>"
        "<text x=\"{0:.1f}\" y=\"{4}\" text-anchor=\"middle\">{5}</text>",
        px(x), top, top + plot_h, std::abs(x) < x_step / 1e6 ? "#999" : "#e4e4e4",
        top + plot_h + 14, number(x, x_step));
  // Axes and their labels.
  out += fmt::format(
      "<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#555\"/>"
      "<line x1=\"{0}\" y1=\"{3}\" x2=\"{0}\" y2=\"{1}\" stroke=\"#555\"/>"
      "<text class=\"x-label\" x=\"{4:.1f}\" y=\"{5}\" text-anchor=\"middle\">seconds from T-0 "
      "(the opening instant)</text>"
      "<text class=\"y-label\" transform=\"translate(14 {6:.1f}) rotate(-90)\" "
      "text-anchor=\"middle\">{7}</text>",
      left, top + plot_h, width - right, top, left + plot_w / 2, height - 6, top + plot_h / 2,
      html_escaped(chart.y_unit));
  // Stacked areas are drawn top first, so each lower band covers the one above's base.
  std::vector<std::size_t> order(drawn.size());
  for (std::size_t index = 0; index < order.size(); ++index) order[index] = index;
  if (chart.stacked) std::reverse(order.begin(), order.end());
  for (const std::size_t index : order) {
    const ChartSeries& series = drawn[index];
    if (series.points.empty()) continue;
    const char* colour = colours[index % std::size(colours)];
    std::string points;
    for (const auto& [x, y] : series.points) points += fmt::format("{:.1f},{:.1f} ", px(x), py(y));
    if (chart.stacked)
      out += fmt::format(
          "<polygon class=\"area\" fill=\"{0}\" fill-opacity=\"0.75\" stroke=\"{0}\" "
          "points=\"{1:.1f},{2:.1f} {3}{4:.1f},{2:.1f}\"/>",
          colour, px(series.points.begin()->first), py(0), points,
          px(series.points.rbegin()->first));
    else
      out += fmt::format(
          "<polyline class=\"line\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" "
          "points=\"{}\"/>",
          colour, points);
  }
  // The legend, in series order.
  double legend_x = left;
  for (std::size_t index = 0; index < drawn.size(); ++index) {
    const char* colour = colours[index % std::size(colours)];
    out += fmt::format(
        "<rect x=\"{0:.1f}\" y=\"8\" width=\"10\" height=\"10\" fill=\"{1}\"/>"
        "<text x=\"{2:.1f}\" y=\"17\">{3}</text>",
        legend_x, colour, legend_x + 14, html_escaped(drawn[index].name));
    legend_x += 24 + 7 * static_cast<double>(drawn[index].name.size());
  }
  return out + "</svg></figure>";
}

}  // namespace flashsale::loadtest
