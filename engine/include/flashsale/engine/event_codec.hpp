// The binary form of events, as the journal stores them: a kind byte, the time as a zig-zag
// delta from the previous event's, the drop index, then the body's fields as varints and
// length-prefixed strings (deadlines as deltas from the event's own time). An order decided in
// a surge takes about 30 bytes.
//
// Sequence numbers are not stored per event: a journal batch stores its first one and events
// follow without gaps. Decoding validates every enum and length and never reads out of bounds.
//
// The format has a version, which the journal stores with each batch: 5 added the stream events
// and a drop's host and stream (at the end of its spec). Version 4 is still read: its specs end
// before those two fields (they read as empty) and it has no stream events.
#pragma once

#include "flashsale/engine/bytes.hpp"
#include "flashsale/engine/event.hpp"

namespace flashsale::engine {

inline constexpr std::uint8_t event_format_version = 5;
inline constexpr std::uint8_t event_format_version_min = 4;  // the oldest decode_event reads

// A drop's spec, as both events (DropCreated) and snapshots store it. Reading checks lengths
// and ranges of the encoding, not the engine's rules (the caller validates the spec).
// Written in the current version; read in `version`.
void encode_spec(const DropSpec& spec, ByteWriter& out);
DropSpec decode_spec(ByteReader& in, std::uint8_t version = event_format_version);

// Appends `event`. `previous_at_ms` carries the time of the previous event in the same batch
// (start a batch with 0) and is updated.
void encode_event(const Event& event, ByteWriter& out, TimeMs& previous_at_ms);

// Reads one event written in `version` (event_format_version_min ..event_format_version) into
// `event` (strings point into the reader's input) and gives it `sequence`. False when the bytes
// are malformed; the reader is then failed too.
bool decode_event(ByteReader& in, std::uint64_t sequence, TimeMs& previous_at_ms, Event& event,
                  std::uint8_t version = event_format_version);

}  // namespace flashsale::engine
