// TokenBucket: `rate` tokens a second, at most `burst` saved; take() spends one if there is one.
// Only the state is kept (16 bytes), the rate and burst come with each call from the limits, so
// a connection can carry a few of these cheaply.
#pragma once

#include <algorithm>
#include <chrono>

namespace flashsale::gateway {

struct TokenBucket {
  using Clock = std::chrono::steady_clock;

  static TokenBucket full(double burst, Clock::time_point now = Clock::now()) {
    return {burst, now};
  }

  // Refills for the time since the last call, then spends a token if one is there.
  bool take(double rate, double burst, Clock::time_point now = Clock::now()) {
    refill(rate, burst, now);
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  }
  void refill(double rate, double burst, Clock::time_point now) {
    tokens = std::min(burst, tokens + std::chrono::duration<double>(now - at).count() * rate);
    at = now;
  }

  double tokens = 0;
  Clock::time_point at{};
};

}  // namespace flashsale::gateway
