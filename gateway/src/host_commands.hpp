// Host commands on the engine thread: each typed command (requests.hpp) run against the
// engine, answered with the host API's status and body (docs/protocol.md, "Host API").
// Statuses: 201 created, 400 invalid_argument / unknown_variant, 404 unknown_drop /
// unknown_stream, 409 already_exists / wrong_state / limit_reached, 500 internal for an engine
// status it does not expect.
//
// Authorization happens here, against the engine's own record of who owns what: a caller acts
// only on the streams and drops its host owns (the operator on all), and anything else is
// answered 404 as if it did not exist, with nothing changed. Ids are one namespace for all
// hosts, so creating one another host already uses is still 409 already_exists.
#pragma once

#include <optional>

#include "flashsale/engine/engine.hpp"
#include "host_json.hpp"
#include "requests.hpp"

namespace flashsale::gateway {

struct HostOutcome {
  HostReply reply;
  // An audit of a drop that exists: its body commits to the journal's chain head at this state,
  // so it is written once the batch ending here is (host_json::audit).
  std::optional<journal::DropTotals> audit = std::nullopt;
};

// Engine thread. The caller refuses commands that change something while the journal cannot
// take writes.
HostOutcome execute(const host::Command& command, const host::Caller& caller,
                    engine::Engine& engine, const OrderIds& order_ids, engine::TimeMs now_ms,
                    engine::Events& events);

}  // namespace flashsale::gateway
