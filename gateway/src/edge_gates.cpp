// See edge_gates.hpp.
#include "edge_gates.hpp"

#include <algorithm>
#include <iterator>

namespace flashsale::gateway {

namespace {

// Whether a new order for the drop could get anything but sold_out: units, a waitlist place
// (each variant has its own waitlist), a place in the admission window's draw. Closed drops
// answer `closed`, which is the engine's.
bool closed_to_buyers(const engine::DropInfo& info) {
  const auto waitlist_full = [&](const engine::VariantInfo& variant) {
    return variant.waitlist_orders >= info.spec.waitlist_limit;
  };
  return info.state == engine::DropState::sold_out && info.pending_orders == 0 &&
         std::all_of(info.variants.begin(), info.variants.end(), waitlist_full);
}

}  // namespace

EdgeGates::EdgeGates(const engine::Engine& engine, std::vector<Fanout*> fanouts)
    : engine_(engine), fanouts_(std::move(fanouts)) {}

EdgeGates::Drop& EdgeGates::drop(engine::DropIndex index) {
  if (index >= drops_.size()) drops_.resize(index + 1);
  return drops_[index];
}

void EdgeGates::recovered() {
  for (engine::DropIndex index = 0; index < engine_.drop_count(); ++index) {
    Drop& known = drop(index);
    const std::uint32_t orders = engine_.drop_info(index).orders;
    for (engine::OrderNumber order = 1; order <= orders; ++order)
      known.added.push_back(user_hash(engine_.order_info(index, order)->user));
    known.touched = true;
    touched_.push_back(index);
  }
}

void EdgeGates::on_event(const engine::Event& event) {
  Drop& known = drop(event.drop);
  if (const auto* decided = std::get_if<engine::OrderDecided>(&event.body);
      decided != nullptr && decided->order != 0)
    known.added.push_back(user_hash(decided->user));
  if (!known.touched) {
    known.touched = true;
    touched_.push_back(event.drop);
  }
}

void EdgeGates::flush(engine::TimeMs now_ms) {
  for (const engine::DropIndex index : touched_) {
    Drop& known = drops_[index];
    const engine::DropInfo info = engine_.drop_info(index);
    const bool stands = closed_to_buyers(info);
    if (stands && (known.standing == nullptr || !known.added.empty())) {
      auto gate = std::make_shared<EdgeGate>();
      gate->drop = info.spec.id;
      gate->sold_out = true;
      gate->per_user_limit = info.spec.per_variant_limit > 0
                                 ? std::min(info.spec.per_user_limit, info.spec.per_variant_limit)
                                 : info.spec.per_user_limit;
      gate->waitlist_full = info.spec.waitlist_limit > 0;
      gate->buyers = buyers_of(known);
      for (const engine::VariantSpec& variant : info.spec.variants)
        gate->variants.emplace_back(variant.id);
      known.standing = std::move(gate);
      known.published_ms = now_ms;
      publish(known.standing);
    } else if (!stands && known.standing != nullptr) {
      auto fallen = std::make_shared<EdgeGate>();
      fallen->drop = info.spec.id;
      known.standing.reset();
      publish(fallen);
    }
    known.touched = false;
  }
  touched_.clear();
  for (Drop& known : drops_) {
    if (known.standing == nullptr || now_ms - known.published_ms < EdgeGate::renew_every.count())
      continue;
    known.published_ms = now_ms;
    publish(known.standing);
  }
}

const std::vector<std::uint64_t>& EdgeGates::buyers_of(Drop& known) {
  if (known.added.empty()) return known.sorted;
  std::sort(known.added.begin(), known.added.end());
  known.added.erase(std::unique(known.added.begin(), known.added.end()), known.added.end());
  std::vector<std::uint64_t> merged;
  merged.reserve(known.sorted.size() + known.added.size());
  std::set_union(known.sorted.begin(), known.sorted.end(), known.added.begin(), known.added.end(),
                 std::back_inserter(merged));
  known.sorted.swap(merged);
  known.added.clear();
  return known.sorted;
}

void EdgeGates::publish(const std::shared_ptr<const EdgeGate>& gate) {
  for (Fanout* fanout : fanouts_) fanout->gate(gate);
}

}  // namespace flashsale::gateway
