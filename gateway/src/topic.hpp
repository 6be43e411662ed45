// What a viewer follows, by one name on every path its updates take: a session's subscriptions,
// the hubs' subscriber lists, Releases and the fanouts, and in a cluster the subscribe commands,
// the `forget` answers and the updates channel (cluster_codec.hpp). A drop is followed by its
// id; a stream by '~' and its id. No drop id begins with '~' (engine::is_valid_drop_id: a '~'
// comes after a stream's id), so the two never meet, and a drop and a stream may share an id.
// Pure functions: any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace flashsale::gateway::topic {

inline constexpr char stream_mark = '~';

inline std::string of_stream(std::string_view stream) {
  std::string topic;
  topic.reserve(stream.size() + 1);
  topic += stream_mark;
  topic += stream;
  return topic;
}

// The stream a topic names; nullopt for a drop's.
inline std::optional<std::string_view> stream_of(std::string_view topic) {
  if (!topic.starts_with(stream_mark)) return std::nullopt;
  return topic.substr(1);
}

// What places the topic on a shard (cluster::shard_of): the stream's id, or the drop's.
inline std::string_view shard_key(std::string_view topic) {
  return stream_of(topic).value_or(topic);
}

}  // namespace flashsale::gateway::topic
