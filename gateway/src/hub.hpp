// Hub: the viewers of one I/O thread, by what they follow (a drop or a stream: its topic,
// topic.hpp). An update is serialized once by the engine thread, posted once to each hub, and
// handed by the hub to each of its subscribers on their own thread — no locks, no copies of the
// frame.
//
// The hub also keeps the time for its viewers' idle checks: one timer per thread sweeps every
// connection (Outbox::sweep), so that no read or write arms a timer of its own. And it holds the
// drops' gates for answers at the edge (edge_gate.hpp), which its viewers' orders consult.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/container_hash/hash.hpp>
#include <boost/unordered/unordered_flat_map.hpp>
#include <boost/unordered/unordered_flat_set.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "metrics.hpp"
#include "outbox.hpp"

namespace flashsale::gateway {

class Hub final : public Fanout {
 public:
  Hub(boost::asio::io_context& io, Metrics& metrics) : io_(io), metrics_(metrics) {}
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  boost::asio::io_context& io() noexcept { return io_; }

  // The hub's own thread only.
  void join(Outbox* viewer) { connected_.insert(viewer); }
  void leave(Outbox* viewer) { connected_.erase(viewer); }
  void shut_down_all() {
    if (const auto timer = sweep_timer_.lock()) timer->cancel();
    const std::vector<Outbox*> everyone(connected_.begin(), connected_.end());
    for (Outbox* viewer : everyone) viewer->shut_down();
  }
  // Once, before the thread runs or on it: every `period` from now on, each viewer's sweep() runs.
  // The timer belongs to its pending wait, so it goes with the io_context whenever that ends.
  void sweep_every(std::chrono::milliseconds period) {
    const auto timer = std::make_shared<boost::asio::steady_timer>(io_);
    sweep_timer_ = timer;
    arm_sweep(timer, period);
  }
  void subscribe(const std::string& drop, Outbox* viewer) { subscribers_[drop].insert(viewer); }
  void unsubscribe(const std::string& drop, Outbox* viewer) {
    const auto found = subscribers_.find(drop);
    if (found == subscribers_.end()) return;
    found->second.erase(viewer);
    if (found->second.empty()) subscribers_.erase(found);
  }

  // Any thread: the drop's latest gate, held here for EdgeGate::valid_for.
  void gate(std::shared_ptr<const EdgeGate> gate) override {
    boost::asio::post(io_, [this, gate = std::move(gate)]() mutable {
      if (!gate->sold_out) {
        gates_.erase(gate->drop);
        return;
      }
      const auto until = std::chrono::steady_clock::now() + EdgeGate::valid_for;
      std::string drop = gate->drop;
      gates_.insert_or_assign(std::move(drop), Gate{std::move(gate), until});
    });
  }
  // The hub's own thread: the gate by which this order is answered sold_out here
  // (edge_gate.hpp), or null.
  const EdgeGate* answers_at_edge(std::string_view drop, std::uint64_t user, std::uint32_t qty,
                                  std::string_view variant,
                                  std::chrono::steady_clock::time_point now) const {
    if (gates_.empty()) return nullptr;
    const auto found = gates_.find(drop);
    if (found == gates_.end() || now >= found->second.until ||
        !found->second.gate->answers(user, qty, variant))
      return nullptr;
    return found->second.gate.get();
  }

  // Any thread: every subscriber of `drop` (a topic) on this hub gets `frame`.
  void publish(std::string drop, SharedFrame frame, FrameKind kind,
               std::uint32_t drop_index) override {
    const auto posted = std::chrono::steady_clock::now();
    boost::asio::post(
        io_, [this, drop = std::move(drop), frame = std::move(frame), kind, drop_index, posted] {
          // How long the update waited for this I/O thread: the fan-out lag.
          metrics_.fanout_lag.observe(std::chrono::steady_clock::now() - posted);
          const auto found = subscribers_.find(drop);
          if (found == subscribers_.end()) return;
          for (Outbox* viewer : found->second) viewer->send_here(frame, kind, drop_index);
        });
  }

 private:
  void arm_sweep(const std::shared_ptr<boost::asio::steady_timer>& timer,
                 std::chrono::milliseconds period) {
    timer->expires_after(period);
    timer->async_wait([this, timer, period](boost::system::error_code cancelled) {
      if (cancelled) return;
      // A viewer's sweep never leaves the hub synchronously (Outbox::sweep).
      for (Outbox* viewer : connected_) viewer->sweep();
      arm_sweep(timer, period);
    });
  }

  struct Gate {
    std::shared_ptr<const EdgeGate> gate;
    std::chrono::steady_clock::time_point until;
  };
  // Looked up by the order's drop name as it was read, without a copy.
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view name) const noexcept {
      return boost::hash<std::string_view>{}(name);
    }
  };

  boost::asio::io_context& io_;
  Metrics& metrics_;
  boost::unordered_flat_map<std::string, Gate, NameHash, std::equal_to<>> gates_;
  boost::unordered_flat_map<std::string, boost::unordered_flat_set<Outbox*>> subscribers_;
  boost::unordered_flat_set<Outbox*> connected_;
  std::weak_ptr<boost::asio::steady_timer> sweep_timer_;
};

}  // namespace flashsale::gateway
