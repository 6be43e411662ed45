// See log_format.hpp.
#include "log_format.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <string_view>

#include "flashsale/gateway/json_writer.hpp"

namespace flashsale::gateway {

namespace {

// "journal" in "journal: recovered …": a leading word of letters, digits, '_' and '-'.
std::string_view component_of(std::string_view text) {
  const auto colon = text.find(": ");
  if (colon == std::string_view::npos || colon == 0 || colon > 32) return "flashsale";
  const std::string_view word = text.substr(0, colon);
  const bool plain = std::all_of(word.begin(), word.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
  return plain ? word : "flashsale";
}

}  // namespace

void JsonLines::format(const spdlog::details::log_msg& message, spdlog::memory_buf_t& out) {
  const std::string_view text(message.payload.data(), message.payload.size());
  const auto since_epoch = message.time.time_since_epoch();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count() % 1000;
  std::string line =
      fmt::format(R"({{"time":"{:%Y-%m-%dT%H:%M:%S}.{:03}Z","level":)",
                  std::chrono::time_point_cast<std::chrono::seconds>(message.time), ms);
  const auto level = spdlog::level::to_string_view(message.level);
  append_json_string(line, std::string_view(level.data(), level.size()));
  line += R"(,"component":)";
  append_json_string(line, component_of(text));
  line += R"(,"message":)";
  append_json_string(line, text);
  line += "}\n";
  out.append(line.data(), line.data() + line.size());
}

}  // namespace flashsale::gateway
