// See json_keys.hpp. Both checks are SAX handlers for Boost.JSON's basic_parser: they watch the
// keys go by and fail the parse at the first repeat.
#include "flashsale/gateway/json_keys.hpp"

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace flashsale::gateway {

namespace {

namespace json = boost::json;

// Everything but keys and objects passes; a check derives and names what it watches.
struct KeysOnly {
  // No bounds of its own: the text has parsed already, within the caller's.
  constexpr static std::size_t max_object_size = std::size_t(-1);
  constexpr static std::size_t max_array_size = std::size_t(-1);
  constexpr static std::size_t max_key_size = std::size_t(-1);
  constexpr static std::size_t max_string_size = std::size_t(-1);

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_array_begin(json::error_code&) { return true; }
  bool on_array_end(std::size_t, json::error_code&) { return true; }
  bool on_string_part(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(std::int64_t, json::string_view, json::error_code&) { return true; }
  bool on_uint64(std::uint64_t, json::string_view, json::error_code&) { return true; }
  bool on_double(double, json::string_view, json::error_code&) { return true; }
  bool on_bool(bool, json::error_code&) { return true; }
  bool on_null(json::error_code&) { return true; }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }
};

// Every key of every object, kept per open object.
class EveryKey : public KeysOnly {
 public:
  bool on_object_begin(json::error_code&) {
    keys_.emplace_back();
    return true;
  }
  bool on_object_end(std::size_t, json::error_code&) {
    keys_.pop_back();
    return true;
  }
  bool on_key_part(json::string_view part, std::size_t, json::error_code&) {
    key_.append(part.data(), part.size());
    return true;
  }
  bool on_key(json::string_view part, std::size_t, json::error_code& error) {
    key_.append(part.data(), part.size());
    std::vector<std::string>& seen = keys_.back();
    const bool repeated = std::find(seen.begin(), seen.end(), key_) != seen.end();
    seen.push_back(std::move(key_));
    key_.clear();
    if (repeated) error = json::error::syntax;
    return !repeated;
  }

 private:
  std::vector<std::vector<std::string>> keys_;
  std::string key_;
};

// The named fields of the top-level object, one bit each.
class NamedFields : public KeysOnly {
 public:
  explicit NamedFields(std::span<const std::string_view> fields) : fields_(fields) {}

  bool on_object_begin(json::error_code&) {
    depth_ += 1;
    if (depth_ == 1) seen_ = 0;
    return true;
  }
  bool on_object_end(std::size_t, json::error_code&) {
    depth_ -= 1;
    return true;
  }
  bool on_key_part(json::string_view part, std::size_t, json::error_code&) {
    append(part);
    return true;
  }
  bool on_key(json::string_view part, std::size_t, json::error_code& error) {
    append(part);
    const std::size_t size = std::exchange(key_size_, 0);
    if (depth_ != 1 || size > key_.size()) return true;
    const std::string_view key(key_.data(), size);
    for (std::size_t index = 0; index < fields_.size(); ++index) {
      if (fields_[index] != key) continue;
      const std::uint32_t bit = std::uint32_t{1} << index;
      if ((seen_ & bit) != 0) {
        error = json::error::syntax;
        return false;
      }
      seen_ |= bit;
    }
    return true;
  }

 private:
  // Keys longer than the buffer are no field's: their size runs past it and they never match.
  void append(json::string_view part) {
    if (key_size_ + part.size() <= key_.size())
      std::copy(part.begin(), part.end(), key_.begin() + static_cast<std::ptrdiff_t>(key_size_));
    key_size_ += part.size();
  }

  std::span<const std::string_view> fields_;
  std::array<char, 16> key_{};
  std::size_t key_size_ = 0;
  int depth_ = 0;
  std::uint32_t seen_ = 0;
};

template <class Handler, class... Arguments>
bool fails(std::string_view text, Arguments&&... arguments) {
  json::basic_parser<Handler> parser(json::parse_options{}, std::forward<Arguments>(arguments)...);
  json::error_code error;
  parser.write_some(false, text.data(), text.size(), error);
  return static_cast<bool>(error);
}

}  // namespace

bool repeats_a_key(std::string_view json) {
  return fails<EveryKey>(json);
}

bool repeats_a_field(std::string_view json, std::span<const std::string_view> fields) {
  return fails<NamedFields>(json, fields);
}

}  // namespace flashsale::gateway
