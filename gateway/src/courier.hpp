// Courier: frames for many connections handed to their I/O threads in one post per thread and
// round, instead of one post (an allocation, a lock, perhaps a wake-up) per frame: the engine
// thread releasing a journal batch's answers, or a gateway's link delivering an engine's.
//
// What one courier is given for a connection arrives in the order given. flush() before the
// same thread reaches those connections another way (a hub's publish), so that order holds
// across both, and at the end of each round. One courier per sending thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <memory>
#include <vector>

#include "outbox.hpp"

namespace flashsale::gateway {

class Courier {
 public:
  void send(std::shared_ptr<Outbox> outbox, SharedFrame frame, FrameKind kind,
            std::uint32_t drop = 0) {
    boost::asio::io_context* const loop = outbox->loop();
    if (loop == nullptr) return outbox->send(std::move(frame), kind, drop);
    Route* route = nullptr;
    for (Route& known : routes_)
      if (known.loop == loop) route = &known;
    if (route == nullptr) route = &routes_.emplace_back(Route{loop, {}, 0});
    if (route->parcels.empty()) route->parcels.reserve(route->last_size);
    route->parcels.push_back({std::move(outbox), std::move(frame), kind, drop});
  }

  void flush() {
    for (Route& route : routes_) {
      if (route.parcels.empty()) continue;
      route.last_size = route.parcels.size();
      boost::asio::post(*route.loop, [parcels = std::move(route.parcels)] {
        for (const Parcel& parcel : parcels)
          parcel.outbox->send_here(parcel.frame, parcel.kind, parcel.drop);
      });
      route.parcels = {};
    }
  }

 private:
  struct Parcel {
    std::shared_ptr<Outbox> outbox;
    SharedFrame frame;
    FrameKind kind;
    std::uint32_t drop;
  };
  struct Route {
    boost::asio::io_context* loop;
    std::vector<Parcel> parcels;
    std::size_t last_size;  // the next round's parcels are reserved at once
  };
  std::vector<Route> routes_;  // one per I/O thread met: a handful
};

}  // namespace flashsale::gateway
