// The binary form of events, as the journal stores them: a kind byte, the time as a zig-zag
// delta from the previous event's, the drop index, then the body's fields as varints and
// length-prefixed strings (deadlines as deltas from the event's own time). An order decided in
// a surge takes about 30 bytes.
//
// Sequence numbers are not stored per event: a journal batch stores its first one and events
// follow without gaps. Decoding validates every enum and length and never reads out of bounds.
#pragma once

#include "flashsale/engine/bytes.hpp"
#include "flashsale/engine/event.hpp"

namespace flashsale::engine {

// A drop's spec, as both events (DropCreated) and snapshots store it. Reading checks lengths
// and ranges of the encoding, not the engine's rules (the caller validates the spec).
void encode_spec(const DropSpec& spec, ByteWriter& out);
DropSpec decode_spec(ByteReader& in);

// Appends `event`. `previous_at_ms` carries the time of the previous event in the same batch
// (start a batch with 0) and is updated.
void encode_event(const Event& event, ByteWriter& out, TimeMs& previous_at_ms);

// Reads one event into `event` (strings point into the reader's input) and gives it
// `sequence`. False when the bytes are malformed; the reader is then failed too.
bool decode_event(ByteReader& in, std::uint64_t sequence, TimeMs& previous_at_ms, Event& event);

}  // namespace flashsale::engine
