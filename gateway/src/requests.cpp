// See requests.hpp.
#include "requests.hpp"

#include <charconv>

namespace flashsale::gateway {

namespace host {

bool changes(const Command& command) {
  return std::visit(
      []<typename Body>(const Body&) {
        return std::is_same_v<Body, CreateDrop> || std::is_same_v<Body, StartCountdown> ||
               std::is_same_v<Body, Restock> || std::is_same_v<Body, CloseDrop> ||
               std::is_same_v<Body, CreateStream> || std::is_same_v<Body, GoLive> ||
               std::is_same_v<Body, Pin> || std::is_same_v<Body, EndStream>;
      },
      command);
}

bool is_list(const Command& command) {
  return std::holds_alternative<ReadDrops>(command) || std::holds_alternative<ListDrops>(command) ||
         std::holds_alternative<ReadStreams>(command);
}

std::string_view shard_key_of(const Command& command) {
  return std::visit(
      []<typename Body>(const Body& body) -> std::string_view {
        if constexpr (std::is_same_v<Body, CreateDrop> || std::is_same_v<Body, CreateStream>) {
          return body.id;
        } else if constexpr (std::is_same_v<Body, ReadDrops> || std::is_same_v<Body, ListDrops> ||
                             std::is_same_v<Body, ReadStreams>) {
          return {};
        } else if constexpr (requires { body.stream; }) {
          return body.stream;
        } else {
          return body.drop;
        }
      },
      command);
}

}  // namespace host

std::string encode_kept_reply(const HostReply& reply) {
  return std::to_string(reply.status) + ' ' + reply.body;
}

std::optional<HostReply> decode_kept_reply(std::string_view kept) {
  HostReply reply;
  const auto [end, problem] = std::from_chars(kept.data(), kept.data() + kept.size(), reply.status);
  if (problem != std::errc{} || end == kept.data() + kept.size() || *end != ' ')
    return std::nullopt;
  reply.body = std::string(end + 1, kept.data() + kept.size());
  return reply;
}

}  // namespace flashsale::gateway
