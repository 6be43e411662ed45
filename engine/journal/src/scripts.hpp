// The Lua scripts every journal write goes through. Each starts with `#!lua` (Redis 7
// function flags), which makes Redis refuse it *before it runs* when memory is over
// `maxmemory`: an out-of-memory Redis never half-applies a write, and the journal fails closed.
//
// hold_lease is the fence. The lease key holds the writer's token with a time to live; a
// write proceeds only if this engine still holds it — renewing it as a side effect — or if the
// lease lapsed *and* the stream's top entry is still the one this engine last wrote (nobody
// else recovered and wrote since, so taking the lease back loses nothing). Anything else is
// "FENCED": another engine owns the journal. Recovery keeps its lease by the same rule. And a
// stream that ends before what this engine last wrote is "GAP": after a failover, the new
// primary lacks batches that were written (and, without replicas, acknowledged).
#pragma once

#include <string>

namespace flashsale::journal::detail {

// KEYS[1] lease, KEYS[2] stream; ARGV[1] token, ARGV[2] ttl ms, ARGV[3] expected top id.
// hold_lease() returns 1 (held, renewed), 2 (had lapsed, nobody wrote since: taken back), 0
// (another engine's), or -1 and the top id when the stream ends *before* the expected top: this
// Redis lacks batches the engine wrote (a replica promoted without them), whoever holds the lease.
inline const std::string hold_lease_function = R"(
local function batch_number(id) return tonumber(string.match(id, '^%d+')) end
local function hold_lease()
  local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
  local top_id = '0-0'
  if top[1] then top_id = top[1][1] end
  if batch_number(top_id) < batch_number(ARGV[3]) then return -1, top_id end
  local holder = redis.call('GET', KEYS[1])
  if holder == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
  end
  if holder then return 0 end
  if top_id ~= ARGV[3] then return 0 end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
)";
inline const std::string hold_lease_lua = hold_lease_function + R"(
local held, top_id = hold_lease()
if held == -1 then
  return redis.error_reply('GAP the journal ends at ' .. top_id .. ' but this engine wrote up to ' ..
    ARGV[3])
end
if held == 0 then
  return redis.error_reply('FENCED the journal belongs to another engine')
end
)";

// Writes replies kept for the caller (ARGV[first] on, key and value pairs) to KEYS[key],
// keeping about ARGV[kept] entries.
inline std::string keep_replies_lua(int key, int kept, const std::string& first) {
  return "for i = " + first + ", #ARGV, 2 do\n  redis.call('XADD', KEYS[" + std::to_string(key) +
         "], 'MAXLEN', '~', ARGV[" + std::to_string(kept) +
         "], '*', 'k', ARGV[i], 'v', ARGV[i + 1])\nend\n";
}

// KEYS[3] cursor, KEYS[4] orders, KEYS[5] replies; ARGV[4] entry id, ARGV[5] sealed batch,
// ARGV[6] the caller's cursor ('' leaves it), ARGV[7] how many order entries to keep, ARGV[8]
// how many reply entries, ARGV[9] the number of order records, then each order record as
// `order_fields` values, then the kept replies: the batch, its cursor, its orders and the
// replies land together or not at all. `variant` is last, so that the eleven fields before it
// keep the places they had before variants, for consumers that read an entry by position.
inline constexpr int order_fields = 12;
inline const std::string append_lua = "#!lua\n" + hold_lease_lua + R"(
local id = redis.call('XADD', KEYS[2], ARGV[4], 'b', ARGV[5])
if ARGV[6] ~= '' then redis.call('SET', KEYS[3], ARGV[6]) end
local replies = 10 + tonumber(ARGV[9]) * 12
for i = 10, replies - 1, 12 do
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[7], '*',
    'event', ARGV[i], 'drop', ARGV[i + 1], 'order', ARGV[i + 2], 'order_id', ARGV[i + 3],
    'user', ARGV[i + 4], 'client_order_id', ARGV[i + 5], 'qty', ARGV[i + 6],
    'price_cents', ARGV[i + 7], 'at_ms', ARGV[i + 8], 'sequence', ARGV[i + 9],
    'reason', ARGV[i + 10], 'variant', ARGV[i + 11])
end
)" + keep_replies_lua(5, 8, "replies") +
                                      "return id\n";

// KEYS[3] cursor, KEYS[4] replies; ARGV[4] the caller's cursor, stored alone when no batch
// carries it, ARGV[5] how many reply entries to keep, then the kept replies.
inline const std::string cursor_lua = "#!lua\n" + hold_lease_lua +
                                      "redis.call('SET', KEYS[3], ARGV[4])\n" +
                                      keep_replies_lua(4, 5, "6") + "return 'OK'\n";

// KEYS[3] snapshot; ARGV[4] sealed snapshot, ARGV[5] first entry id to keep, ARGV[6] and
// ARGV[7] the id and bytes of the batch that binds the snapshot to the hash chain: the
// snapshot and its checkpoint are written together or not at all.
inline const std::string snapshot_lua = "#!lua\n" + hold_lease_lua + R"(
redis.call('XADD', KEYS[2], ARGV[6], 'b', ARGV[7])
redis.call('SET', KEYS[3], ARGV[4])
redis.call('XTRIM', KEYS[2], 'MINID', ARGV[5])
return 'OK'
)";

inline const std::string renew_lua = "#!lua\n" + hold_lease_lua + "return 'OK'\n";

// KEYS[1] lease, KEYS[2] stream; ARGV[1] token, ARGV[2] ttl ms, ARGV[3] the stream's top id
// when recovery took the lease. Keeps the lease while recovery reads: hold_lease()'s answer.
inline const std::string touch_lua = "#!lua\n" + hold_lease_function + "return hold_lease()\n";

// KEYS[1] lease; ARGV[1] token. Gives the lease up on a clean stop, so a successor need not
// wait for it to lapse.
inline const std::string release_lua = R"(#!lua
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)";

}  // namespace flashsale::journal::detail
