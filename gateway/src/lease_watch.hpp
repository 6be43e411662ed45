// Lease watching: when an engine should try to take a shard (docs/scaling.md, "Ownership and
// failover"). Every engine watches the lease of every shard it does not serve; whoever recovers
// the shard's journal first takes the lease, and the others go back to watching.
#pragma once

#include <atomic>
#include <cstdint>

#include "flashsale/gateway/config.hpp"

namespace flashsale::gateway {

// Blocks until this engine should try to take `shard`, and returns true; false once `stop`
// turns true. A shard's lease must be free: at once for a `preferred` shard, or for one this
// call saw served (its owner died: fail over now); a shard free since the call began is left to
// its preferred engine for cluster.standby_delay, so that each engine gets its own shards at
// start-up without any election. Polls Redis every 50 ms, on the calling thread.
bool wait_for_free_lease(const GatewayConfig& config, std::uint32_t shard, bool preferred,
                         const std::atomic<bool>& stop);

}  // namespace flashsale::gateway
