// JsonObject: the one way the server writes JSON — viewer frames (protocol.cpp), host API
// bodies (host_json.cpp), health checks. Appends straight into one string, escaping what needs
// escaping; keys are the caller's literals and are not escaped.
#pragma once

#include <fmt/format.h>

#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace flashsale::gateway {

// Appends `text` as a JSON string literal (quotes included).
void append_json_string(std::string& out, std::string_view text);

class JsonObject {
 public:
  JsonObject() {
    out_.reserve(160);
    out_ += '{';
  }
  // A protocol message: {"type":"<type>", …}.
  explicit JsonObject(std::string_view type) : JsonObject() { text("type", type); }

  JsonObject& text(std::string_view key, std::string_view value) {
    this->key(key);
    append_json_string(out_, value);
    return *this;
  }
  template <std::integral Number>
  JsonObject& number(std::string_view key, Number value) {
    this->key(key);
    fmt::format_to(std::back_inserter(out_), "{}", value);
    return *this;
  }
  JsonObject& number_or_null(std::string_view key, std::optional<std::int64_t> value) {
    if (value) return number(key, *value);
    this->key(key);
    out_ += "null";
    return *this;
  }
  // `json` is already JSON (an object or array written by this writer).
  JsonObject& raw(std::string_view key, std::string_view json) {
    this->key(key);
    out_ += json;
    return *this;
  }
  std::string done() {
    out_ += '}';
    return std::move(out_);
  }

 private:
  void key(std::string_view name) {
    if (out_.size() > 1) out_ += ',';
    out_ += '"';
    out_ += name;
    out_ += "\":";
  }
  std::string out_;
};

// A JSON array of values already written as JSON, or of strings.
class JsonArray {
 public:
  JsonArray() { out_ += '['; }
  JsonArray& raw(std::string_view json) {
    if (out_.size() > 1) out_ += ',';
    out_ += json;
    return *this;
  }
  JsonArray& text(std::string_view value) {
    if (out_.size() > 1) out_ += ',';
    append_json_string(out_, value);
    return *this;
  }
  std::string done() {
    out_ += ']';
    return std::move(out_);
  }

 private:
  std::string out_;
};

}  // namespace flashsale::gateway
