// See source_limits.hpp.
#include "source_limits.hpp"

#include <functional>

namespace flashsale::gateway {

SourceLimits::Slot::Slot(Slot&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), address_(other.address_), http_(other.http_) {}

SourceLimits::Slot& SourceLimits::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    if (owner_ != nullptr) owner_->release(address_, http_);
    owner_ = std::exchange(other.owner_, nullptr);
    address_ = other.address_;
    http_ = other.http_;
  }
  return *this;
}

SourceLimits::Slot::~Slot() {
  if (owner_ != nullptr) owner_->release(address_, http_);
}

std::size_t SourceLimits::AddressHash::operator()(
    const boost::asio::ip::address& address) const noexcept {
  return std::hash<boost::asio::ip::address>{}(address);
}

SourceLimits::SourceLimits(const Limits& limits) : limits_(limits) {}

SourceLimits::Verdict SourceLimits::admit(const boost::asio::ip::address& source, Slot& slot) {
  const Clock::time_point now = Clock::now();
  std::lock_guard lock(mutex_);
  Source& entry = this->entry(source, now);
  if (entry.open >= limits_.connections_per_source) {
    entry.accepts.refill(limits_.accepts_per_source_per_second, limits_.accepts_per_source_burst,
                         now);
    return Verdict::too_many_connections;
  }
  if (!entry.accepts.take(limits_.accepts_per_source_per_second, limits_.accepts_per_source_burst,
                          now))
    return Verdict::too_fast;
  entry.open += 1;
  slot = Slot();
  slot.owner_ = this;
  slot.address_ = source;
  return Verdict::admitted;
}

bool SourceLimits::admit_http(const boost::asio::ip::address& source, Slot& slot) {
  std::lock_guard lock(mutex_);
  Source& entry = this->entry(source, Clock::now());
  if (entry.http_open >= limits_.http_connections_per_source) return false;
  entry.http_open += 1;
  slot = Slot();
  slot.owner_ = this;
  slot.address_ = source;
  slot.http_ = true;
  return true;
}

std::size_t SourceLimits::tracked() const {
  std::lock_guard lock(mutex_);
  return sources_.size();
}

void SourceLimits::release(const boost::asio::ip::address& source, bool http) {
  std::lock_guard lock(mutex_);
  const auto found = sources_.find(source);
  if (found == sources_.end()) return;
  std::uint32_t& open = http ? found->second.http_open : found->second.open;
  if (open > 0) open -= 1;
}

SourceLimits::Source& SourceLimits::entry(const boost::asio::ip::address& source,
                                          Clock::time_point now) {
  if (sources_.size() >= sweep_at_) sweep(now);
  auto [found, added] = sources_.try_emplace(source);
  if (added) {
    found->second.accepts = TokenBucket::full(limits_.accepts_per_source_burst, now);
    found->second.key_tries = TokenBucket::full(limits_.host_key_failures_per_minute, now);
  }
  return found->second;
}

bool SourceLimits::may_try_host_key(const boost::asio::ip::address& source) {
  const Clock::time_point now = Clock::now();
  std::lock_guard lock(mutex_);
  TokenBucket& tries = entry(source, now).key_tries;
  const double per_minute = limits_.host_key_failures_per_minute;
  tries.refill(per_minute / 60, per_minute, now);
  return tries.tokens >= 1;
}

void SourceLimits::wrong_host_key(const boost::asio::ip::address& source) {
  const Clock::time_point now = Clock::now();
  std::lock_guard lock(mutex_);
  const double per_minute = limits_.host_key_failures_per_minute;
  entry(source, now).key_tries.take(per_minute / 60, per_minute, now);
}

// Under the mutex. Forgets addresses that hold nothing: no connection, and a bucket that has
// refilled since. The next sweep waits until the table doubles, so sweeping stays amortised O(1).
void SourceLimits::sweep(Clock::time_point now) {
  const double refill_s = limits_.accepts_per_source_burst / limits_.accepts_per_source_per_second;
  boost::unordered::erase_if(sources_, [&](const auto& item) {
    const Source& entry = item.second;
    const auto since = [&](const TokenBucket& bucket) {
      return std::chrono::duration<double>(now - bucket.at).count();
    };
    return entry.open == 0 && entry.http_open == 0 && since(entry.accepts) >= refill_s &&
           since(entry.key_tries) >= 60;
  });
  sweep_at_ = std::max<std::size_t>(4'096, sources_.size() * 2);
}

}  // namespace flashsale::gateway
