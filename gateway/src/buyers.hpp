// Buyers: where order answers and updates go. Each signed-in user's connections, for pushing
// an order's changes (payment, expiry, promotion) to wherever the buyer is; and the orders
// collected in an admission window, answered when its draw decides them. Frames go through
// Releases, so a buyer never hears of what is not durable.
//
// Engine thread only.
#pragma once

#include <boost/unordered/unordered_flat_map.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "flashsale/engine/engine.hpp"
#include "flashsale/gateway/config.hpp"
#include "flashsale/gateway/order_ids.hpp"
#include "metrics.hpp"
#include "outbox.hpp"
#include "releases.hpp"
#include "requests.hpp"

namespace flashsale::gateway {

class Buyers {
 public:
  // `order_ids`: the engine thread's, which outlives this.
  Buyers(Releases& releases, Metrics& metrics, const Limits& limits, const OrderIds& order_ids);

  void hello(const HelloRequest& request, engine::TimeMs now_ms);
  void leave(const LeaveRequest& request);
  // Every connection of `user` gets `frame`.
  void push(std::string_view user, const SharedFrame& frame);

  // An order collected in an admission window: `from` is owed the draw's answer to it (once
  // per order message: `tag`, retries included). `variant`: the id its answer names
  // (protocol::order_result), empty for a drop without named variants.
  void await_draw(engine::DropIndex drop, std::string_view user, std::string_view client_order_id,
                  std::string_view variant, const std::shared_ptr<Outbox>& from, std::uint64_t tag);
  // The draw decided the order: everyone waiting for it gets `result`.
  void drawn(engine::DropIndex drop, std::string_view drop_id, std::string_view user,
             std::string_view client_order_id, const engine::OrderResult& result);
  // The window closed: every order still waiting was passed over by the draw — sold out.
  void passed_over(engine::DropIndex drop, std::string_view drop_id);

 private:
  struct Waiter {
    std::weak_ptr<Outbox> outbox;
    std::vector<std::uint64_t> tags;  // one per order message: the answers owed
  };
  struct Awaited {
    std::string variant;
    std::vector<Waiter> waiters;
  };
  using OrderKey = std::pair<std::string, std::string>;  // user, client_order_id
  struct OrderKeyHash {
    std::size_t operator()(const OrderKey& key) const noexcept;
  };
  using Waiting = boost::unordered_flat_map<OrderKey, Awaited, OrderKeyHash>;

  void answer(const std::vector<Waiter>& waiters, const SharedFrame& frame,
              engine::OrderOutcome outcome);

  Releases& releases_;
  Metrics& metrics_;
  const Limits& limits_;
  const OrderIds& order_ids_;
  boost::unordered_flat_map<std::string, std::vector<std::weak_ptr<Outbox>>> users_;
  // By drop: bounded by the orders of its admission window.
  boost::unordered_flat_map<engine::DropIndex, Waiting> waiting_;
};

}  // namespace flashsale::gateway
