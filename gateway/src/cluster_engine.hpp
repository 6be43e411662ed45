// EngineNode: `flashsale --role engine`. For every shard it serves an engine thread (the same
// Sequencer as a single process), fed from the shard's command stream instead of sockets, and
// answering through Redis instead of connections (cluster.hpp has the keys, cluster_codec.hpp
// the messages).
//
// Each shard has a worker thread that loops: wait until the shard's journal lease is free
// (lease_watch.hpp), recover the shard from its journal — which takes the lease — and serve it
// until the process stops or the lease is lost (fenced: another engine took over while this
// one was paused or cut off). Serving is reading the command stream (command_stream.hpp),
// turning its commands into requests for the engine thread (command_applier.hpp), and sending
// what the engine thread answers to the gateways (remote_outbox.hpp).
//
// Exactly once: the worker reads commands with a Lua script that checks the lease first, so an
// engine that lost its lease cannot take new commands. Commands whose events are durable are
// acknowledged by the journal's cursor (the id of the last command they complete, stored with
// their batch); a new owner claims what its predecessor read but did not acknowledge, answers
// again what the cursor covers, and runs the rest — whose orders the engine's idempotency
// answers with their original outcomes if a client retried them meanwhile.
#pragma once

#include <atomic>

#include "flashsale/gateway/config.hpp"

namespace flashsale::gateway {

// Whether `cluster.shards` is the deployment's: the first process to start records it in
// Redis, and later ones must match (a different count would move drops between shards).
// Retries while Redis is unreachable.
bool shard_count_agrees(const GatewayConfig& config);

// Runs until `stop` turns true (polled every few milliseconds); returns the exit code.
int run_engine_node(const GatewayConfig& config, const std::atomic<bool>& stop);

}  // namespace flashsale::gateway
