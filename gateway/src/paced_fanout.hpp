// PacedFanout: a cluster gateway's drop updates, paced by its own audience. In one process the
// engine thread's ViewerFeed paces `stock` and `tick` frames by the viewers it counts; an engine
// of the cluster counts none and sends up to 10 stock frames a second per drop, so each gateway
// paces what it forwards the same way (audience.hpp, counting this process's connections):
// - a tick goes out when the time it says is left is a whole multiple of the tick interval;
// - of stock frames that come faster than the stock interval, the newest waits and goes out
//   when the interval is up, except that the sell-out and the return of units go out as soon as
//   100 ms have passed — once per interval: a drop whose last units come and go flaps at the
//   audience's pace, not ten times a second;
// - a drop's flip between `open` and `sold_out` after it opened (a `state` frame the engine
//   sends just before the stock frame that shows it) waits with that stock frame and goes out
//   just before it; a newer flip replaces it.
// Every other frame passes at once. Only a frame that a newer one of the same kind and drop
// supersedes is ever held back or left out, as a slow viewer's queue would (docs/protocol.md).
//
// One per hub: publish() from any thread, the pacing on the hub's own thread. Destroyed once
// nothing publishes and while the hub's io_context still exists: its timers belong to it.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <boost/unordered/unordered_flat_map.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "flashsale/gateway/config.hpp"
#include "hub.hpp"
#include "metrics.hpp"
#include "outbox.hpp"

namespace flashsale::gateway {

class PacedFanout final : public Fanout {
 public:
  PacedFanout(Hub& hub, const Limits& limits, const Metrics& metrics)
      : hub_(hub), limits_(limits), metrics_(metrics) {}

  void publish(std::string drop, SharedFrame frame, FrameKind kind,
               std::uint32_t drop_index) override;
  void gate(std::shared_ptr<const EdgeGate> gate) override { hub_.gate(std::move(gate)); }

 private:
  using Clock = std::chrono::steady_clock;
  // What this hub's viewers were last sent of one drop's stock, and the frame that waits.
  struct Paced {
    Clock::time_point sent_at{};
    Clock::time_point early_at{};  // the last frame sent before the interval was up
    bool sold_out_sent = false;
    bool opened = false;  // an open or sold_out state went out: later ones are flips
    std::string drop;
    SharedFrame waiting;
    bool waiting_sold_out = false;
    bool waiting_early = false;
    SharedFrame waiting_state;             // a flip, sent just before `waiting`
    std::optional<Clock::time_point> due;  // the timer's expiry while it is armed
    std::unique_ptr<boost::asio::steady_timer> timer;
  };

  std::uint64_t viewers() const {
    return metrics_.connections_open.load(std::memory_order_relaxed);
  }
  void tick(std::string drop, SharedFrame frame, std::uint32_t drop_index);
  void stock(std::string drop, SharedFrame frame, std::uint32_t drop_index);
  void state(std::string drop, SharedFrame frame, std::uint32_t drop_index);
  void send_waiting(Paced& paced, std::uint32_t drop_index);

  Hub& hub_;
  const Limits& limits_;
  const Metrics& metrics_;
  boost::unordered_flat_map<std::uint32_t, Paced> drops_;  // the hub's thread only
};

}  // namespace flashsale::gateway
