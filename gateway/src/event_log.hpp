// EventLog: what the engine thread needs of a journal — recovery, appending events with their
// cursor and records, durability, chain heads for audits, snapshots. JournalLog is the Redis
// journal (engine/journal); tests put an in-memory log behind it that can be made slow or
// failing, so the engine thread is tested without Redis.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>

#include "flashsale/engine/engine.hpp"
#include "flashsale/journal/journal.hpp"

namespace flashsale::gateway {

class EventLog {
 public:
  virtual ~EventLog() = default;
  // The contracts are journal::Journal's, member for member.
  virtual void on_durable(std::function<void(const journal::DurableBatch&)> callback) = 0;
  virtual journal::RecoveryStats recover(engine::Engine& engine) = 0;
  virtual void append(std::span<const engine::Event> events, std::string_view cursor,
                      std::span<const journal::OrderRecord> orders,
                      std::span<const journal::KeptReply> replies) = 0;
  virtual void cut() = 0;
  virtual std::optional<journal::ChainHead> chain_head(std::uint64_t sequence) const = 0;
  virtual bool snapshot_due() const = 0;
  virtual void append_snapshot(const engine::Engine& engine) = 0;
  virtual std::uint64_t durable_sequence() const = 0;
  virtual bool wait_durable(std::uint64_t sequence, std::chrono::milliseconds timeout) const = 0;
  virtual bool accepting() const = 0;
};

class JournalLog final : public EventLog {
 public:
  explicit JournalLog(journal::Journal& journal) : journal_(journal) {}

  void on_durable(std::function<void(const journal::DurableBatch&)> callback) override {
    journal_.on_durable(std::move(callback));
  }
  journal::RecoveryStats recover(engine::Engine& engine) override {
    return journal_.recover(engine);
  }
  void append(std::span<const engine::Event> events, std::string_view cursor,
              std::span<const journal::OrderRecord> orders,
              std::span<const journal::KeptReply> replies) override {
    journal_.append(events, cursor, orders, replies);
  }
  void cut() override { journal_.cut(); }
  std::optional<journal::ChainHead> chain_head(std::uint64_t sequence) const override {
    return journal_.chain_head(sequence);
  }
  bool snapshot_due() const override { return journal_.snapshot_due(); }
  void append_snapshot(const engine::Engine& engine) override { journal_.append_snapshot(engine); }
  std::uint64_t durable_sequence() const override { return journal_.durable_sequence(); }
  bool wait_durable(std::uint64_t sequence, std::chrono::milliseconds timeout) const override {
    return journal_.wait_durable(sequence, timeout);
  }
  bool accepting() const override { return journal_.accepting(); }

 private:
  journal::Journal& journal_;
};

}  // namespace flashsale::gateway
