// EdgeGates: the engine thread's side of the answers at the edge (edge_gate.hpp). It follows
// the engine's events, and after each round of them publishes, for every drop they touched,
// what changed: a gate that stands (the drop cannot give a new buyer anything), one that falls,
// or the buyers a standing gate must now let through. A standing gate is published again every
// EdgeGate::renew_every.
//
// Gates are published as soon as they are decided, before the journal has the events: a gate
// only ever keeps an order away from the engine with an unrecorded answer, and publishing at
// once puts a fallen gate (units came back) or a new buyer in every hub before anything the
// engine decided with them is acknowledged.
//
// Engine thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "edge_gate.hpp"
#include "flashsale/engine/engine.hpp"
#include "outbox.hpp"

namespace flashsale::gateway {

class EdgeGates {
 public:
  EdgeGates(const engine::Engine& engine, std::vector<Fanout*> fanouts);

  // After recovery: every buyer of every drop, from the engine's orders.
  void recovered();
  void on_event(const engine::Event& event);
  // Publishes what the events since the last flush changed, and renews standing gates.
  void flush(engine::TimeMs now_ms);

 private:
  struct Drop {
    std::vector<std::uint64_t> sorted;  // the buyers as last published, ascending, once each
    std::vector<std::uint64_t> added;   // buyers of orders since then, some perhaps listed
    bool touched = false;
    std::shared_ptr<const EdgeGate> standing;  // published and not fallen
    engine::TimeMs published_ms = 0;
  };

  Drop& drop(engine::DropIndex index);
  // Every buyer, ascending, once each: the last list with the new ones merged in. O(buyers)
  // per call, so a standing gate that gains a buyer costs a copy, not a sort.
  static const std::vector<std::uint64_t>& buyers_of(Drop& known);
  void publish(const std::shared_ptr<const EdgeGate>& gate);

  const engine::Engine& engine_;
  const std::vector<Fanout*> fanouts_;
  std::vector<Drop> drops_;  // by DropIndex
  std::vector<engine::DropIndex> touched_;
};

}  // namespace flashsale::gateway
