// Capturing a real drop as a trace (docs/loadtest.md, "capture"): what its buyers did and when,
// read from the drop's verified journal, for `replay` to play against another build.
#pragma once

#include <string>

#include "flashsale/journal/audit.hpp"
#include "flashsale/loadtest/trace.hpp"

namespace flashsale::loadtest {

struct CaptureSummary {
  std::uint32_t restocks = 0;  // host actions a trace cannot carry: replayed without them
  std::uint32_t closes = 0;
};

// The trace of drop `drop_id` (empty: the journal's only drop) as the journal recorded it:
// every recorded order at its arrival time, every confirm and every cancel by a buyer, by
// viewers numbered in the order they first ordered (pseudonyms: a user is the same viewer
// throughout, and no name leaves the journal). What the journal cannot show — unrecorded
// answers (early clicks, answers at the edge), retries that returned an outcome already
// recorded, connections — is not in the trace; each viewer connects during the countdown.
// A journal whose history was kept (journal.history = "kept": its stream still starts at batch
// 1) is read from its start, snapshot or not. Throws std::runtime_error when the journal does
// not verify, the drop is not in it (or was created before its snapshot), or it never opened.
Trace capture(journal::JournalCopy journal, const std::string& drop_id,
              CaptureSummary* summary = nullptr);

}  // namespace flashsale::loadtest
