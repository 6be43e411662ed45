// See paced_fanout.hpp.
#include "paced_fanout.hpp"

#include <boost/asio/post.hpp>
#include <charconv>
#include <string_view>

#include "audience.hpp"

namespace flashsale::gateway {

namespace {

// A number the server itself wrote into a frame (`"left":12`); 0 when absent.
std::int64_t number_in(std::string_view frame, std::string_view key) {
  const auto at = frame.find(key);
  if (at == std::string_view::npos) return 0;
  std::int64_t value = 0;
  const char* begin = frame.data() + at + key.size();
  std::from_chars(begin, frame.data() + frame.size(), value);
  return value;
}

}  // namespace

void PacedFanout::publish(std::string drop, SharedFrame frame, FrameKind kind,
                          std::uint32_t drop_index) {
  if (kind != FrameKind::stock && kind != FrameKind::tick && kind != FrameKind::state)
    return hub_.publish(std::move(drop), std::move(frame), kind, drop_index);
  boost::asio::post(hub_.io(), [this, drop = std::move(drop), frame = std::move(frame), kind,
                                drop_index]() mutable {
    if (kind == FrameKind::tick)
      tick(std::move(drop), std::move(frame), drop_index);
    else if (kind == FrameKind::stock)
      stock(std::move(drop), std::move(frame), drop_index);
    else
      state(std::move(drop), std::move(frame), drop_index);
  });
}

void PacedFanout::tick(std::string drop, SharedFrame frame, std::uint32_t drop_index) {
  const engine::TimeMs interval_ms = audience::tick_interval_ms(viewers(), limits_);
  const engine::TimeMs seconds_left = (number_in(*frame, "\"ms_left\":") + 500) / 1000;
  if (seconds_left * 1000 % interval_ms == 0)
    hub_.publish(std::move(drop), std::move(frame), FrameKind::tick, drop_index);
}

void PacedFanout::stock(std::string drop, SharedFrame frame, std::uint32_t drop_index) {
  Paced& paced = drops_[drop_index];
  paced.waiting_sold_out = number_in(*frame, "\"left\":") == 0;
  paced.waiting = std::move(frame);
  paced.drop = std::move(drop);
  const auto interval = std::chrono::milliseconds(audience::stock_interval_ms(viewers(), limits_));
  const Clock::time_point now = Clock::now();
  paced.waiting_early =
      paced.waiting_sold_out != paced.sold_out_sent && now - paced.early_at >= interval;
  const Clock::time_point due =
      paced.sent_at +
      (paced.waiting_early ? std::chrono::milliseconds(audience::stock_interval_min_ms) : interval);
  if (now >= due) return send_waiting(paced, drop_index);
  if (paced.due && *paced.due <= due) return;  // the armed timer sends it soon enough
  if (!paced.timer) paced.timer = std::make_unique<boost::asio::steady_timer>(hub_.io());
  paced.due = due;
  paced.timer->expires_at(due);  // an earlier edge re-arms: the later wait ends as cancelled
  paced.timer->async_wait([this, drop_index](boost::system::error_code cancelled) {
    if (cancelled) return;
    // A wait that had already ended when a frame went out early still runs: nothing waits then.
    Paced& armed = drops_[drop_index];
    armed.due.reset();
    if (armed.waiting) send_waiting(armed, drop_index);
  });
}

void PacedFanout::state(std::string drop, SharedFrame frame, std::uint32_t drop_index) {
  Paced& paced = drops_[drop_index];
  const bool open_or_sold_out = frame->find(R"("state":"open")") != std::string::npos ||
                                frame->find(R"("state":"sold_out")") != std::string::npos;
  if (open_or_sold_out && paced.opened) {
    paced.waiting_state = std::move(frame);  // the stock frame that shows it follows
    return;
  }
  paced.opened |= open_or_sold_out;
  paced.waiting_state.reset();  // what went before is stale now
  hub_.publish(std::move(drop), std::move(frame), FrameKind::state, drop_index);
}

void PacedFanout::send_waiting(Paced& paced, std::uint32_t drop_index) {
  if (paced.due) paced.timer->cancel();  // its wait ends as cancelled: nothing left to send
  paced.due.reset();
  paced.sent_at = Clock::now();
  if (paced.waiting_early) paced.early_at = paced.sent_at;
  paced.sold_out_sent = paced.waiting_sold_out;
  if (paced.waiting_state) {
    hub_.publish(paced.drop, std::move(paced.waiting_state), FrameKind::state, drop_index);
    paced.waiting_state.reset();
  }
  hub_.publish(paced.drop, std::move(paced.waiting), FrameKind::stock, drop_index);
  paced.waiting.reset();
}

}  // namespace flashsale::gateway
