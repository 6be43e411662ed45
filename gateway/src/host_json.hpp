// The host API's JSON bodies (docs/protocol.md, "Host API"), written with JsonObject like the
// viewer frames. Pure functions: any thread.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "flashsale/engine/engine.hpp"
#include "flashsale/gateway/order_ids.hpp"
#include "flashsale/gateway/protocol.hpp"
#include "flashsale/journal/audit.hpp"
#include "flashsale/journal/journal.hpp"
#include "requests.hpp"

namespace flashsale::gateway::host_json {

// {"error":{"code":"…","message":"…"}}
HostReply error(unsigned status, std::string_view code, std::string_view message);

// One drop, as the host sees it.
std::string drop(const engine::DropInfo& info);
// {"drops":[…]}: every drop, as the host or (listing) anyone sees it.
std::string drops(const engine::Engine& engine, protocol::DropAudience audience);
// {"orders":[…]}: a buyer's orders in a drop, each with its variant's id when the drop has
// named variants.
std::string orders(const engine::DropInfo& drop, std::span<const engine::OrderInfo> orders,
                   const OrderIds& order_ids);
// What a drop's sale commits to (journal::totals_of), and the journal's chain head at that
// state (docs/audit.md).
std::string audit(const journal::DropTotals& totals, const journal::ChainHead& head);
// {"token":"…"}
std::string token(std::string_view token);

// Every shard's {"drops":[…]} as one; the first part that is not a 200 instead.
HostReply merge_drop_lists(std::vector<HostReply>& parts);

}  // namespace flashsale::gateway::host_json
