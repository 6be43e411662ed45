// See releases.hpp.
#include "releases.hpp"

namespace flashsale::gateway {

Releases::Releases(const engine::Engine& engine, AckMode ack, std::vector<Fanout*> fanouts,
                   Metrics& metrics)
    : engine_(engine), ack_(ack), fanouts_(std::move(fanouts)), metrics_(metrics) {}

std::uint64_t Releases::sequence() const {
  return ack_ == AckMode::durable ? engine_.last_sequence() : 0;
}

void Releases::to_outbox(std::shared_ptr<Outbox> outbox, SharedFrame frame, FrameKind kind,
                         std::uint32_t drop, std::uint64_t tag) {
  Release& release = queue_.emplace_back();
  release.sequence = sequence();
  release.outbox = std::move(outbox);
  release.frame = std::move(frame);
  release.kind = kind;
  release.drop = drop;
  release.tag = tag;
}

void Releases::order_answer(std::shared_ptr<Outbox> outbox, SharedFrame frame, std::uint64_t tag,
                            std::chrono::steady_clock::time_point received,
                            std::chrono::steady_clock::time_point decided) {
  to_outbox(std::move(outbox), std::move(frame), FrameKind::order, 0, tag);
  queue_.back().received = received;
  queue_.back().decided = decided;
}

void Releases::to_viewers(engine::DropIndex drop, std::string_view drop_id, SharedFrame frame,
                          FrameKind kind) {
  Release& release = queue_.emplace_back();
  release.sequence = sequence();
  release.drop = drop;
  release.drop_id = drop_id;
  release.frame = std::move(frame);
  release.kind = kind;
}

void Releases::to_host(std::function<void()> answer) {
  Release& release = queue_.emplace_back();
  release.sequence = sequence();
  release.host = std::move(answer);
}

void Releases::at_chain_head(std::uint64_t sequence, std::function<void()> answer) {
  Release& release = chain_.emplace_back();
  release.sequence = sequence;
  release.host = std::move(answer);
}

// Every answer queued so far has at most the last event as its sequence (an audit after the
// mark included), so the mark goes out with that event.
void Releases::mark(std::string id) {
  marks_.emplace_back(engine_.last_sequence(), std::move(id));
}

void Releases::release(std::uint64_t durable) {
  std::chrono::steady_clock::time_point now{};  // read once, at the first timed order
  while (!queue_.empty() && queue_.front().sequence <= durable) {
    Release& release = queue_.front();
    if (release.received != std::chrono::steady_clock::time_point{}) {
      if (now == std::chrono::steady_clock::time_point{}) now = std::chrono::steady_clock::now();
      metrics_.order_latency.observe(now - release.received);
      metrics_.order_durable_wait.observe(now - release.decided);
    }
    if (release.host) {
      release.host();
    } else if (release.tag != 0) {
      release.outbox->send_answer(std::move(release.frame), release.kind, release.tag);
    } else if (release.outbox) {
      courier_.send(std::move(release.outbox), std::move(release.frame), release.kind,
                    release.drop);
    } else {
      courier_.flush();  // what the viewers had before this update goes first
      for (Fanout* fanout : fanouts_)
        fanout->publish(release.drop_id, release.frame, release.kind, release.drop);
    }
    queue_.pop_front();
  }
  courier_.flush();
  while (!chain_.empty() && chain_.front().sequence <= durable) {
    chain_.front().host();
    chain_.pop_front();
  }
  if (marks_.empty() || marks_.front().first > durable) return;
  std::string released;
  while (!marks_.empty() && marks_.front().first <= durable) {
    released = std::move(marks_.front().second);
    marks_.pop_front();
  }
  std::lock_guard lock(mark_mutex_);
  released_mark_ = std::move(released);
}

void Releases::discard() {
  queue_.clear();
  chain_.clear();
  marks_.clear();  // courier_ holds nothing: every release() ends with a flush
}

std::string Releases::released_mark() const {
  std::lock_guard lock(mark_mutex_);
  return released_mark_;
}

}  // namespace flashsale::gateway
