// StreamBook: what the engine knows about one live stream. Plain data like DropBook: the rules
// live in engine.cpp, applied only through the stream events. A stream owns no units and no
// orders; it groups drops (each names its stream in its spec) and says which one is on screen.
#pragma once

#include <optional>
#include <vector>

#include "flashsale/engine/event.hpp"

namespace flashsale::engine::detail {

// Why `spec` cannot be a stream, or nullptr when it can.
const char* validate_stream(const StreamSpec& spec);

struct StreamBook {
  StreamBook(StreamIndex stream_index, const StreamSpec& stream_spec)
      : index(stream_index), spec(stream_spec) {}

  const StreamIndex index;
  const StreamSpec spec;  // strings in the arena
  StreamState state = StreamState::scheduled;
  std::optional<DropIndex> pinned;
  std::vector<DropIndex> drops;  // in creation order
};

}  // namespace flashsale::engine::detail
