// Applying one journal batch's events to an engine: shared by recovery and flashsale-audit, so
// that both refuse the same things.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "flashsale/engine/engine.hpp"
#include "flashsale/journal/records.hpp"

namespace flashsale::journal::detail {

// Decodes the batch's events and applies those after `after_sequence` (a snapshot has the
// rest), checking that they continue the engine's sequence without a gap and never go back in
// time. Counts the applied ones in `applied`, and shows each to `visit`, if any, once applied.
// An empty string, or what is wrong.
std::string replay_batch(engine::Engine& engine, const BatchHeader& header, std::string_view events,
                         std::uint64_t after_sequence, std::uint64_t& applied,
                         const std::function<void(const engine::Event&)>& visit = {});

}  // namespace flashsale::journal::detail
