// The one wall clock of the server: milliseconds since the Unix epoch. The engine reads no
// clock (time comes in with each command); this is where that time comes from. The engine
// thread takes it as a `WallClock`, so that tests can drive time themselves.
#pragma once

#include <chrono>
#include <functional>

#include "flashsale/engine/types.hpp"

namespace flashsale::gateway {

inline engine::TimeMs wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

using WallClock = std::function<engine::TimeMs()>;

}  // namespace flashsale::gateway
