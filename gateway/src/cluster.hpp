// The cluster's layout in Redis (docs/scaling.md has the picture).
//
// A drop belongs to shard fnv1a64(id) % shards (a drop in a stream: of its stream's id); each
// shard is a journal of its own (prefix "<prefix>-s<shard>") whose lease names the engine that
// serves it. Every key of a shard carries the shard's hash tag, so a shard lives in one Redis
// Cluster slot:
//
//   {P-sN}:journal, :snapshot, :lease, :cursor, :orders, :replies   the shard's journal
//                     (journal.hpp)
//   {P-sN}:commands   stream: orders, actions, subscriptions and host calls from gateways,
//                     read by the owning engine with consumer group "engine"
//   {P-sN}:updates    Pub/Sub channel: drop updates (tick, state, stock, drop) and the drops'
//                     edge gates for every gateway, and the owner's heartbeat
//   {P-gw-ID}:out     stream: answers for the connections and host calls of gateway ID
//   {P}:cluster       the deployment's shard count, fixed by the first process to start
//
// What travels in them is typed: cluster_codec.hpp has every message and its fields. This file
// has the record they are all written in (below). Functions and constants: any thread, no Redis.
#pragma once

#include <fmt/format.h>
#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fnv1a.hpp"

namespace flashsale::gateway::cluster {

// FNV-1a of the id: stable across versions and platforms, since a drop's shard must never
// change while its journal exists. A drop in a stream ("<stream>~<name>") is placed by its
// stream's id, so a stream and all its drops share a shard: pinning and the shelf never
// reach across shards. Ids without '~' (every drop before streams) hash whole, as always.
inline std::uint32_t shard_of(std::string_view id, std::uint32_t shards) {
  return static_cast<std::uint32_t>(fnv1a64(id.substr(0, id.find('~'))) % shards);
}

// This process's name in Redis: the configured cluster.id, or "<host>-<pid>".
inline std::string process_name(const std::string& configured) {
  if (!configured.empty()) return configured;
  char host[64] = {};
  gethostname(host, sizeof host - 1);
  return fmt::format("{}-{}", host, getpid());
}

inline std::string shard_prefix(std::string_view prefix, std::uint32_t shard) {
  return std::string(prefix) + "-s" + std::to_string(shard);
}
inline std::string commands_key(std::string_view prefix, std::uint32_t shard) {
  return "{" + shard_prefix(prefix, shard) + "}:commands";
}
inline std::string updates_channel(std::string_view prefix, std::uint32_t shard) {
  return "{" + shard_prefix(prefix, shard) + "}:updates";
}
inline std::string gateway_stream(std::string_view prefix, std::string_view gateway) {
  return "{" + std::string(prefix) + "-gw-" + std::string(gateway) + "}:out";
}
inline std::string cluster_key(std::string_view prefix) {
  return "{" + std::string(prefix) + "}:cluster";
}
inline constexpr std::string_view consumer_group = "engine";

// A drop's index is per shard; a gateway serves drops of every shard, so frames that supersede
// each other per drop are told apart by this instead.
inline std::uint32_t global_drop_index(std::uint32_t drop_index, std::uint32_t shard,
                                       std::uint32_t shards) {
  return drop_index * shards + shard;
}

// A record: named values, each <name>:<length>:<value> with the length in decimal bytes, one
// after the other — binary-safe: a value may hold anything, ':' and NUL bytes included. Both
// streams carry records: each entry holds one or more fields "r" (everything a sender queued
// for that stream while its last write was in flight), each one record, one message.
using Field = std::pair<std::string_view, std::string_view>;

inline void append_field(std::string& record, std::string_view name, std::string_view value) {
  char length[20];
  const auto length_end = std::to_chars(length, length + sizeof length, value.size()).ptr;
  record += name;
  record += ':';
  record.append(length, length_end);
  record += ':';
  record += value;
}

// Takes the first field off `record` (views into it); false if `record` does not start with
// one. No allocation.
inline bool next_field(std::string_view& record, Field& field) {
  const auto name_end = record.find(':');
  if (name_end == std::string_view::npos) return false;
  std::size_t length = 0;
  const char* digits = record.data() + name_end + 1;
  const char* end = record.data() + record.size();
  const auto [length_end, problem] = std::from_chars(digits, end, length);
  if (problem != std::errc{} || length_end == end || *length_end != ':' ||
      static_cast<std::size_t>(end - length_end - 1) < length)
    return false;
  field = {record.substr(0, name_end), std::string_view(length_end + 1, length)};
  record = std::string_view(length_end + 1 + length, end - length_end - 1 - length);
  return true;
}

// The fields of a record (views into it); false if it is not one.
inline bool decode_record(std::string_view record, std::vector<Field>& fields) {
  fields.clear();
  Field field;
  while (!record.empty()) {
    if (!next_field(record, field)) return false;
    fields.push_back(field);
  }
  return true;
}

// Stream ids "<ms>-<seq>", compared as numbers.
inline std::optional<std::pair<std::uint64_t, std::uint64_t>> parse_stream_id(std::string_view id) {
  const auto dash = id.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  std::pair<std::uint64_t, std::uint64_t> parsed;
  const auto first = std::from_chars(id.data(), id.data() + dash, parsed.first);
  const auto second = std::from_chars(id.data() + dash + 1, id.data() + id.size(), parsed.second);
  if (first.ec != std::errc{} || first.ptr != id.data() + dash || second.ec != std::errc{} ||
      second.ptr != id.data() + id.size())
    return std::nullopt;
  return parsed;
}

}  // namespace flashsale::gateway::cluster
