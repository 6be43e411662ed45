// ByteWriter / ByteReader: the little binary vocabulary of snapshots and journal batches —
// LEB128 varints, zig-zag signed varints, fixed little-endian 64-bit words and
// length-prefixed strings.
//
// The reader never trusts its input: every read checks bounds and a failed read leaves the
// reader failed (`ok()` false) and returns zeros, so a decoder reads on and checks once.
// Neither allocates except the writer's growing string.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace flashsale::engine {

class ByteWriter {
 public:
  explicit ByteWriter(std::string& out) : out_(out) {}

  void varint(std::uint64_t value) {
    while (value >= 0x80) {
      out_.push_back(static_cast<char>(value | 0x80));
      value >>= 7;
    }
    out_.push_back(static_cast<char>(value));
  }
  void signed_varint(std::int64_t value) {
    varint((static_cast<std::uint64_t>(value) << 1) ^ static_cast<std::uint64_t>(value >> 63));
  }
  void fixed64(std::uint64_t value) {
    char bytes[8];
    for (int index = 0; index < 8; ++index) bytes[index] = static_cast<char>(value >> (8 * index));
    out_.append(bytes, 8);
  }
  void byte(std::uint8_t value) { out_.push_back(static_cast<char>(value)); }
  void string(std::string_view text) {
    varint(text.size());
    out_.append(text);
  }
  void raw(std::string_view bytes) { out_.append(bytes); }
  std::size_t size() const noexcept { return out_.size(); }

 private:
  std::string& out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}

  std::uint64_t varint() {
    std::uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (position_ >= in_.size()) return fail();
      const auto part = static_cast<std::uint8_t>(in_[position_++]);
      value |= std::uint64_t{part & 0x7fu} << shift;
      if ((part & 0x80u) == 0) return value;
    }
    return fail();
  }
  std::int64_t signed_varint() {
    const std::uint64_t value = varint();
    return static_cast<std::int64_t>((value >> 1) ^ (~(value & 1) + 1));
  }
  std::uint64_t fixed64() {
    if (in_.size() - position_ < 8 || position_ > in_.size()) return fail();
    std::uint64_t value = 0;
    for (int index = 0; index < 8; ++index)
      value |= std::uint64_t{static_cast<std::uint8_t>(in_[position_ + index])} << (8 * index);
    position_ += 8;
    return value;
  }
  std::uint8_t byte() {
    if (position_ >= in_.size()) return static_cast<std::uint8_t>(fail());
    return static_cast<std::uint8_t>(in_[position_++]);
  }
  // A view into the input; empty (and failed) when the length runs past the end or `max`.
  std::string_view string(std::size_t max) {
    const std::uint64_t length = varint();
    if (!ok_ || length > max || length > in_.size() - position_) {
      fail();
      return {};
    }
    const std::string_view text = in_.substr(position_, length);
    position_ += length;
    return text;
  }
  // The next `count` bytes as a view; empty (and failed) past the end.
  std::string_view take(std::size_t count) {
    if (!ok_ || count > in_.size() - position_) {
      fail();
      return {};
    }
    const std::string_view bytes = in_.substr(position_, count);
    position_ += count;
    return bytes;
  }
  // A varint that must not exceed `max` (fails otherwise).
  std::uint64_t bounded(std::uint64_t max) {
    const std::uint64_t value = varint();
    return value <= max ? value : fail();
  }

  // Marks the input bad (a decoder found a value out of range): later reads return zeros.
  void reject() { fail(); }

  bool ok() const noexcept { return ok_; }
  bool done() const noexcept { return ok_ && position_ == in_.size(); }
  std::size_t position() const noexcept { return position_; }
  std::string_view rest() const noexcept { return in_.substr(position_); }

 private:
  std::uint64_t fail() {
    ok_ = false;
    position_ = in_.size();
    return 0;
  }

  std::string_view in_;
  std::size_t position_ = 0;
  bool ok_ = true;
};

}  // namespace flashsale::engine
