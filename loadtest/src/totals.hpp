// What a replay observed, in a form that merges: thread into process, and worker process into
// the coordinator (as JSON, over a pipe), so that a replay run by one process and one run by
// many (`replay --workers N`) write their verdict and report from the same figures by the same
// code. Internal to the loadtest target.
#pragma once

#include <array>
#include <boost/json/value.hpp>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "flashsale/loadtest/histogram.hpp"

namespace flashsale::loadtest {

// The statuses the progress line counts one by one; any other is "other".
inline constexpr std::array<std::string_view, 8> progress_statuses = {
    "reserved", "waitlisted", "sold_out",     "limit_exceeded",
    "not_open", "busy",       "rate_limited", "unavailable"};

// The stock a viewer was last told in a time bin, and when (µs from T-0): across threads and
// processes the latest telling wins.
struct StockSeen {
  std::int64_t at_us = std::numeric_limits<std::int64_t>::min();  // never told
  std::uint32_t left = 0;
};

// One named variant's units, by the variant each viewer ordered.
struct VariantSeen {
  std::uint64_t reserved = 0;   // units of every reservation and promotion a viewer was told of
  std::uint64_t released = 0;   // of those, cancelled or expired
  std::uint64_t confirmed = 0;  // of those, paid

  friend bool operator==(const VariantSeen&, const VariantSeen&) = default;
};

// A stream's drop pinned by the host, as its viewers saw it: the `stream` frame naming it
// pinned, from the pin's scheduled instant (open loop, as every latency here).
struct PinSeen {
  // Viewers who subscribed to the stream before the pin on a connection the trace kept open to
  // the end; and those of them never shown the drop pinned on it.
  std::uint64_t owed = 0;
  std::uint64_t missed = 0;
  // Pin to screen, for every viewer shown it on a connection subscribed before the pin.
  LatencyHistogram latency;
};

// Time bins are named by their start, in ms from T-0.
struct Totals {
  std::uint64_t sent = 0;
  std::uint64_t answered = 0;
  std::uint64_t abandoned = 0;   // sent on a connection the trace then dropped
  std::uint64_t unexpected = 0;  // a result with nothing pending for it
  std::uint64_t repeat_mismatches = 0;
  std::uint64_t reserved_before_open = 0;
  std::uint64_t reserved_after_end = 0;   // on a drop with a duration, decided after it ran out
  std::uint64_t duplicate_order_ids = 0;  // within one thread; across them, from order_ids
  std::uint64_t reserved = 0;
  std::uint64_t confirmed = 0;
  std::uint64_t released = 0;
  std::uint64_t over_limit = 0;
  std::vector<std::string> order_ids;           // of every reservation a viewer was told of
  std::map<std::string, VariantSeen> variants;  // by id, on a drop with named variants
  LatencyHistogram latency;
  std::map<std::int64_t, std::map<std::string, std::uint64_t>> by_status;  // status -> n
  std::map<std::int64_t, LatencyHistogram> latency_by_bin;
  std::map<std::int64_t, StockSeen> stock_left;
  std::map<std::int64_t, std::uint64_t> frames_in;   // every message from the server
  std::map<std::int64_t, std::int64_t> connections;  // opened minus closed by the viewers
  // A stream: what its viewers did and were told in each of its drops, by the drop's index
  // (orders and their answers are counted there, not above), and each drop's pin.
  std::vector<Totals> drops;
  std::vector<PinSeen> pins;

  void merge(const Totals& other);
  // The whole run: these figures with every drop's added.
  Totals combined() const;
  // Order ids given to more than one reservation, across everything merged.
  std::uint64_t duplicates_across() const;
};

// The progress line's figures, once a second.
struct Progress {
  std::uint64_t sent = 0;
  std::uint64_t answered = 0;
  std::uint64_t reserved = 0;
  std::array<std::uint64_t, progress_statuses.size() + 1> answers{};  // + other
  std::uint64_t payments_sent = 0;                                    // confirms and cancels
  std::uint64_t payments_answered = 0;
  StockSeen stock;
  LatencyHistogram latency;

  void merge(const Progress& other);
};

boost::json::value to_json(const Totals& totals);
boost::json::value to_json(const Progress& progress);
// Both throw std::exception on anything but what to_json wrote.
Totals totals_from_json(const boost::json::value& value);
Progress progress_from_json(const boost::json::value& value);

}  // namespace flashsale::loadtest
