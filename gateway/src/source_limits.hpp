// SourceLimits: what one source address may do, whatever user names it signs in with: hold at
// most limits.http_connections_per_source plain HTTP connections (counted at accept) and
// limits.connections_per_source WebSocket connections, open new ones of those at
// limits.accepts_per_source_per_second (a token bucket, bursts of accepts_per_source_burst), and
// send at most limits.host_key_failures_per_minute wrong host keys.
// WebSockets are counted at the upgrade, so a refusal is an HTTP 429 with the protocol's
// `rate_limited` code, and one address over its share never slows anyone else down. The source
// is the peer's address, or the client's that a trusted proxy names (intake.hpp).
//
// Any thread: a mutex guards the table. Upgrades arrive at most a few thousand a second, far
// below what a mutex costs. Memory stays bounded: an address with no connection left and a full
// bucket carries no information and is swept once the table has grown.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <boost/unordered/unordered_flat_map.hpp>
#include <chrono>
#include <mutex>

#include "flashsale/gateway/config.hpp"
#include "token_bucket.hpp"

namespace flashsale::gateway {

class SourceLimits {
 public:
  enum class Verdict { admitted, too_many_connections, too_fast };

  // One admitted connection; releasing it (destroying or moving over it) frees its place.
  // Empty (default) for connections no source limit applies to (the operations port).
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept;
    Slot& operator=(Slot&& other) noexcept;
    ~Slot();

   private:
    friend class SourceLimits;
    SourceLimits* owner_ = nullptr;
    boost::asio::ip::address address_;
    bool http_ = false;  // a plain HTTP connection's place, not a WebSocket's
  };

  explicit SourceLimits(const Limits& limits);
  SourceLimits(const SourceLimits&) = delete;
  SourceLimits& operator=(const SourceLimits&) = delete;

  // On `admitted`, `slot` holds the connection's place until it is released.
  Verdict admit(const boost::asio::ip::address& source, Slot& slot);
  // A plain HTTP connection; false if its address holds its share already.
  bool admit_http(const boost::asio::ip::address& source, Slot& slot);
  // Guessing the host key: an address may send limits.host_key_failures_per_minute wrong keys
  // (all at once, or spread out); past them it may not try at all until one has refilled.
  bool may_try_host_key(const boost::asio::ip::address& source);
  void wrong_host_key(const boost::asio::ip::address& source);
  std::size_t tracked() const;  // addresses in the table, for tests

 private:
  using Clock = std::chrono::steady_clock;
  struct Source {
    std::uint32_t open = 0;  // WebSocket connections
    std::uint32_t http_open = 0;
    TokenBucket accepts;
    TokenBucket key_tries;
  };
  struct AddressHash {
    std::size_t operator()(const boost::asio::ip::address& address) const noexcept;
  };
  void release(const boost::asio::ip::address& source, bool http);
  Source& entry(const boost::asio::ip::address& source, Clock::time_point now);  // under mutex_
  void sweep(Clock::time_point now);

  const Limits& limits_;
  mutable std::mutex mutex_;
  boost::unordered_flat_map<boost::asio::ip::address, Source, AddressHash> sources_;
  std::size_t sweep_at_ = 4'096;
};

}  // namespace flashsale::gateway
