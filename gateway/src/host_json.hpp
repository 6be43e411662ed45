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
#include "host_directory.hpp"
#include "requests.hpp"

namespace flashsale::gateway::host_json {

// {"error":{"code":"…","message":"…"}}
HostReply error(unsigned status, std::string_view code, std::string_view message);

// One drop, as the host sees it.
std::string drop(const engine::DropInfo& info);
// {"drops":[…]}: every drop announced (its countdown started), as anyone may see it.
std::string public_drops(const engine::Engine& engine);
// {"orders":[…]}: a buyer's orders in a drop, each with its variant's id when the drop has
// named variants.
std::string orders(const engine::DropInfo& drop, std::span<const engine::OrderInfo> orders,
                   const OrderIds& order_ids);
// What a drop's sale commits to (journal::totals_of), and the journal's chain head at that
// state (docs/audit.md).
std::string audit(const journal::DropTotals& totals, const journal::ChainHead& head);
// A host account: {"id","state":"active"|"revoked","created_at_ms"[,"revoked_at_ms"][,"key"]};
// the key only when just made.
std::string host_account(const HostDirectory::Host& host, std::string_view key);
// {"hosts":[…]}: the configured host first (if any, `configured`), marked "configured":true,
// then `hosts`.
std::string host_accounts(std::span<const HostDirectory::Host> hosts, std::string_view configured);
// {"token":"…"}
std::string token(std::string_view token);

// One stream: {"id","host","title","video_url","state","pinned":<drop id>|null,"drops":[ids]},
// and with `shelf` its drops as the host sees them ("shelf":[…], in creation order).
std::string stream(const engine::Engine& engine, const engine::StreamInfo& info, bool shelf);
// {"streams":[…]}: every stream `caller` may act on.
std::string streams(const engine::Engine& engine, const host::Caller& caller);
// {"drops":[…]}: every drop `caller` may act on, as the host sees it.
std::string drops(const engine::Engine& engine, const host::Caller& caller);

// Every shard's {"<key>":[…]} as one; the first part that is not a 200 instead.
HostReply merge_lists(std::vector<HostReply>& parts, std::string_view key);

}  // namespace flashsale::gateway::host_json
