// See replay.hpp.
#include "replay.hpp"

#include "flashsale/engine/event_codec.hpp"

namespace flashsale::journal::detail {

std::string replay_batch(engine::Engine& engine, const BatchHeader& header, std::string_view events,
                         std::uint64_t after_sequence, std::uint64_t& applied,
                         const std::function<void(const engine::Event&)>& visit) {
  engine::ByteReader in(events);
  engine::TimeMs previous_at_ms = 0;
  for (std::uint32_t index = 0; index < header.event_count; ++index) {
    engine::Event event;
    const std::uint64_t sequence = header.first_sequence + index;
    if (!engine::decode_event(in, sequence, previous_at_ms, event, header.version))
      return "undecodable event " + std::to_string(sequence);
    if (sequence <= after_sequence) continue;
    if (sequence != engine.last_sequence() + 1)
      return "event " + std::to_string(sequence) + " out of sequence after " +
             std::to_string(engine.last_sequence());
    if (event.at_ms < engine.now_ms())
      return "event " + std::to_string(sequence) + " goes back in time";
    engine.apply(event);
    applied += 1;
    if (visit) visit(event);
  }
  if (!in.done()) return "trailing bytes";
  return {};
}

}  // namespace flashsale::journal::detail
