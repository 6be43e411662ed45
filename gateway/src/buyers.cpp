// See buyers.hpp.
#include "buyers.hpp"

#include <boost/container_hash/hash.hpp>

#include "flashsale/gateway/protocol.hpp"
#include "welcome.hpp"

namespace flashsale::gateway {

std::size_t Buyers::OrderKeyHash::operator()(const OrderKey& key) const noexcept {
  std::size_t seed = boost::hash_value(key.first);
  boost::hash_combine(seed, key.second);
  return seed;
}

Buyers::Buyers(Releases& releases, Metrics& metrics, const Limits& limits,
               const OrderIds& order_ids)
    : releases_(releases), metrics_(metrics), limits_(limits), order_ids_(order_ids) {}

void Buyers::hello(const HelloRequest& request, engine::TimeMs now_ms) {
  auto& connections = users_[request.user];
  std::erase_if(connections,
                [](const std::weak_ptr<Outbox>& connection) { return connection.expired(); });
  if (request.quiet) {
    // Counted by its gateway; a full list means the gateway missed telling of one that left.
    if (connections.size() >= limits_.connections_per_user) connections.erase(connections.begin());
    connections.push_back(request.from);
    return;
  }
  if (welcome_or_refuse(*request.from, request.user, connections.size(), limits_, metrics_, now_ms))
    connections.push_back(request.from);
}

void Buyers::leave(const LeaveRequest& request) {
  const auto found = users_.find(request.user);
  if (found == users_.end()) return;
  std::erase_if(found->second, [&](const std::weak_ptr<Outbox>& connection) {
    const auto alive = connection.lock();
    return alive == nullptr || alive.get() == request.from;
  });
  if (found->second.empty()) users_.erase(found);
}

void Buyers::push(std::string_view user, const SharedFrame& frame) {
  const auto found = users_.find(std::string(user));
  if (found == users_.end()) return;  // not connected: a retry of the client_order_id finds it
  for (const auto& connection : found->second) {
    if (auto alive = connection.lock())
      releases_.to_outbox(std::move(alive), frame, FrameKind::order);
  }
}

void Buyers::await_draw(engine::DropIndex drop, std::string_view user,
                        std::string_view client_order_id, std::string_view variant,
                        const std::shared_ptr<Outbox>& from, std::uint64_t tag) {
  Awaited& awaited = waiting_[drop][OrderKey(user, client_order_id)];
  awaited.variant = variant;
  auto& waiters = awaited.waiters;
  std::erase_if(waiters, [](const Waiter& waiter) { return waiter.outbox.expired(); });
  const auto same = std::find_if(waiters.begin(), waiters.end(), [&](const Waiter& waiter) {
    return waiter.outbox.lock() == from;
  });
  if (same != waiters.end()) {
    same->tags.push_back(tag);
  } else {
    waiters.push_back({from, {tag}});
  }
}

void Buyers::answer(const std::vector<Waiter>& waiters, const SharedFrame& frame,
                    engine::OrderOutcome outcome) {
  for (const Waiter& waiter : waiters) {
    const auto outbox = waiter.outbox.lock();
    if (outbox == nullptr) continue;  // gone: a retry of the client_order_id finds the outcome
    for (const std::uint64_t tag : waiter.tags) {
      metrics_.count_order(outcome);
      releases_.to_outbox(outbox, frame, FrameKind::order, 0, tag);
    }
  }
}

void Buyers::drawn(engine::DropIndex drop, std::string_view drop_id, std::string_view user,
                   std::string_view client_order_id, const engine::OrderResult& result) {
  const auto in_drop = waiting_.find(drop);
  if (in_drop == waiting_.end()) return;
  const auto found = in_drop->second.find(OrderKey(user, client_order_id));
  if (found == in_drop->second.end()) return;
  const Awaited& awaited = found->second;
  answer(
      awaited.waiters,
      share(protocol::order_result(drop_id, client_order_id, result, order_ids_, awaited.variant)),
      result.outcome);
  in_drop->second.erase(found);
}

void Buyers::passed_over(engine::DropIndex drop, std::string_view drop_id) {
  const auto in_drop = waiting_.find(drop);
  if (in_drop == waiting_.end()) return;
  engine::OrderResult sold_out;
  sold_out.outcome = engine::OrderOutcome::sold_out;
  for (const auto& [key, awaited] : in_drop->second)
    answer(
        awaited.waiters,
        share(protocol::order_result(drop_id, key.second, sold_out, order_ids_, awaited.variant)),
        sold_out.outcome);
  waiting_.erase(in_drop);
}

}  // namespace flashsale::gateway
