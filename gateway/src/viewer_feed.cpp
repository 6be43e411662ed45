// See viewer_feed.hpp.
#include "viewer_feed.hpp"

#include <algorithm>

#include "audience.hpp"
#include "flashsale/engine/assert.hpp"
#include "flashsale/gateway/protocol.hpp"
#include "topic.hpp"

namespace flashsale::gateway {

using engine::TimeMs;

namespace {

// How old a stream's last frame may be and still go to a new subscriber: as old as the stock
// its viewers see between two stock-driven frames.
constexpr TimeMs stream_frame_reused_ms_max = 1'000;

}  // namespace

ViewerFeed::ViewerFeed(const engine::Engine& engine, Releases& releases, const Metrics& metrics,
                       const Limits& limits)
    : engine_(engine), releases_(releases), metrics_(metrics), limits_(limits) {}

ViewerFeed::DropView& ViewerFeed::view(engine::DropIndex drop) {
  while (views_.size() <= drop) {
    DropView added;
    const engine::DropInfo info = engine_.drop_info(static_cast<engine::DropIndex>(views_.size()));
    added.id = std::string(info.spec.id);
    for (const engine::VariantSpec& variant : info.spec.variants)
      added.variant_ids.emplace_back(variant.id);
    added.variant_stock_sent.assign(info.variants.size(), 0);
    added.pledges = info.spec.pledge_bps > 0;
    added.raised_sent = info.raised_cents;
    if (!info.spec.stream.empty()) added.stream = engine_.find_stream(info.spec.stream);
    views_.push_back(std::move(added));
  }
  return views_[drop];
}

std::string_view ViewerFeed::variant_id(engine::DropIndex drop, std::uint8_t variant) {
  const DropView& drop_view = view(drop);
  if (drop_view.variant_ids.empty()) return {};
  FS_ASSERT(variant < drop_view.variant_ids.size());
  return drop_view.variant_ids[variant];
}

void ViewerFeed::mark_stock_sent(DropView& drop_view, const engine::DropInfo& info) {
  drop_view.stock_sent = info.stock_left;
  for (std::size_t index = 0; index < info.variants.size(); ++index)
    drop_view.variant_stock_sent[index] = info.variants[index].stock_left;
}

void ViewerFeed::recovered() {
  for (engine::DropIndex drop = 0; drop < engine_.drop_count(); ++drop) {
    DropView& drop_view = view(drop);
    const engine::DropInfo info = engine_.drop_info(drop);
    mark_stock_sent(drop_view, info);
    if (info.state != engine::DropState::scheduled && info.state != engine::DropState::countdown)
      drop_view.state_sent = info.state;
    if (info.state == engine::DropState::countdown) drop_view.next_tick_ms = 1;
  }
}

void ViewerFeed::subscribe(std::shared_ptr<Outbox> viewer, engine::DropIndex drop, TimeMs now_ms) {
  releases_.to_outbox(std::move(viewer), share(protocol::drop(engine_.drop_info(drop), now_ms)),
                      FrameKind::drop, drop);
}

void ViewerFeed::subscribe_stream(std::shared_ptr<Outbox> viewer, engine::StreamIndex stream,
                                  TimeMs now_ms) {
  StreamView& stream_view = stream_view_of(stream);
  const bool reused =
      stream_view.frame && now_ms - stream_view.written_ms < stream_frame_reused_ms_max;
  releases_.to_outbox(std::move(viewer),
                      reused ? stream_view.frame : write_stream(stream, stream_view, now_ms),
                      FrameKind::stream, stream);
}

void ViewerFeed::to_viewers(engine::DropIndex drop, std::string frame, FrameKind kind) {
  releases_.to_viewers(drop, view(drop).id, share(std::move(frame)), kind);
}

void ViewerFeed::on_event(const engine::Event& event, TimeMs now_ms) {
  if (engine::is_stream_event(event.body)) return on_stream_event(event.body);
  DropView& drop_view = view(event.drop);
  std::visit(
      [&]<typename Body>(const Body& body) {
        if constexpr (std::is_same_v<Body, engine::DropCreated>) {
          stream_touched(drop_view.stream, true);
        } else if constexpr (std::is_same_v<Body, engine::CountdownStarted>) {
          drop_view.next_tick_ms = now_ms;
          to_viewers(event.drop, protocol::drop(engine_.drop_info(event.drop), now_ms),
                     FrameKind::drop);
          stream_touched(drop_view.stream, true);
        } else if constexpr (std::is_same_v<Body, engine::StateChanged>) {
          if (body.state != engine::DropState::countdown) drop_view.next_tick_ms = 0;
          const bool flap = drop_view.state_sent && (body.state == engine::DropState::open ||
                                                     body.state == engine::DropState::sold_out);
          if (!flap) {  // the opening instant and the close go out at once
            to_viewers(event.drop, protocol::state(drop_view.id, body.state, event.at_ms),
                       FrameKind::state);
            drop_view.state_sent = body.state;
            stream_touched(drop_view.stream, true);
          }
          drop_view.stock_dirty = true;
        } else if constexpr (std::is_same_v<Body, engine::Restocked>) {
          // The event's numbers are its variant's; the frame has the drop's and every variant's.
          const engine::DropInfo info = engine_.drop_info(event.drop);
          to_viewers(event.drop, protocol::drop(info, now_ms), FrameKind::drop);
          mark_stock_sent(drop_view, info);
          stream_touched(drop_view.stream, true);
        } else if constexpr (std::is_same_v<Body, engine::OrderDecided>) {
          drop_view.stock_dirty |= body.outcome == engine::OrderOutcome::reserved;
        } else if constexpr (std::is_same_v<Body, engine::OrderPromoted> ||
                             std::is_same_v<Body, engine::OrderCancelled> ||
                             std::is_same_v<Body, engine::HoldExpired>) {
          drop_view.stock_dirty = true;
        } else if constexpr (std::is_same_v<Body, engine::OrderConfirmed>) {
          // A charity drop's amount raised goes out with the coalesced stock updates.
          drop_view.stock_dirty |= drop_view.pledges;
        }
      },
      event.body);
}

// Every stock update and tick is one frame to every viewer: with a large audience they would
// take the I/O threads from the order results (audience.hpp).
TimeMs ViewerFeed::stock_interval() const {
  return audience::stock_interval_ms(metrics_.connections_open.load(std::memory_order_relaxed),
                                     limits_);
}

TimeMs ViewerFeed::tick_interval() const {
  return audience::tick_interval_ms(metrics_.connections_open.load(std::memory_order_relaxed),
                                    limits_);
}

void ViewerFeed::flush(TimeMs now_ms) {
  for (engine::DropIndex drop = 0; drop < views_.size(); ++drop) {
    DropView& drop_view = views_[drop];
    if (drop_view.stock_dirty) flush_stock(drop, drop_view, now_ms);
    if (drop_view.next_tick_ms != 0 && now_ms >= drop_view.next_tick_ms)
      tick(drop, drop_view, now_ms);
  }
  flush_streams(now_ms);
}

void ViewerFeed::flush_stock(engine::DropIndex drop, DropView& drop_view, TimeMs now_ms) {
  const engine::DropInfo info = engine_.drop_info(drop);
  const std::uint32_t left = info.stock_left;
  const bool raised_changed = info.raised_cents != drop_view.raised_sent;
  // Sold out, or units back: the drop's, or one of its variants'.
  bool edge = (left == 0) != (drop_view.stock_sent == 0);
  bool variants_changed = false;
  for (std::size_t index = 0; index < info.variants.size(); ++index) {
    const std::uint32_t variant_left = info.variants[index].stock_left;
    const std::uint32_t variant_sent = drop_view.variant_stock_sent[index];
    variants_changed |= variant_left != variant_sent;
    edge |= (variant_left == 0) != (variant_sent == 0);
  }
  const TimeMs since_ms = now_ms - drop_view.stock_sent_ms;
  const engine::DropState state = info.state;
  const bool state_changed = drop_view.state_sent && *drop_view.state_sent != state;
  if (left == drop_view.stock_sent && !variants_changed && !state_changed && !raised_changed) {
    drop_view.stock_dirty = false;
    return;
  }
  // The sell-out and the return of units go out early, but once per interval: a drop whose last
  // units come and go flaps at the audience's pace.
  const TimeMs interval = stock_interval();
  const bool early = edge && since_ms >= audience::stock_interval_min_ms &&
                     now_ms - drop_view.early_sent_ms >= interval;
  if (!early && since_ms < interval) return;
  if (since_ms < interval) drop_view.early_sent_ms = now_ms;
  if (state_changed) {
    to_viewers(drop, protocol::state(drop_view.id, state, now_ms), FrameKind::state);
    drop_view.state_sent = state;
  }
  to_viewers(drop, protocol::stock(drop_view.id, left, info), FrameKind::stock);
  stream_touched(drop_view.stream, false);
  mark_stock_sent(drop_view, info);
  drop_view.raised_sent = info.raised_cents;
  drop_view.stock_sent_ms = now_ms;
  drop_view.stock_dirty = false;
}

void ViewerFeed::tick(engine::DropIndex drop, DropView& drop_view, TimeMs now_ms) {
  const engine::DropInfo info = engine_.drop_info(drop);
  if (info.state != engine::DropState::countdown || !info.opens_at_ms) {
    drop_view.next_tick_ms = 0;
    return;
  }
  const TimeMs left_ms = std::max<TimeMs>(0, *info.opens_at_ms - now_ms);
  to_viewers(drop, protocol::tick(drop_view.id, left_ms, now_ms), FrameKind::tick);
  // Next tick when the time left is the next lower multiple of the interval: on whole seconds
  // before the opening instant.
  const TimeMs interval = tick_interval();
  const TimeMs next_left_ms = left_ms == 0 ? -interval : (left_ms - 1) / interval * interval;
  drop_view.next_tick_ms = now_ms + (left_ms - next_left_ms);
}

ViewerFeed::StreamView& ViewerFeed::stream_view_of(engine::StreamIndex stream) {
  while (streams_.size() <= stream) {
    const auto added = static_cast<engine::StreamIndex>(streams_.size());
    StreamView added_view;
    added_view.topic = topic::of_stream(engine_.stream_info(added).spec.id);
    streams_.push_back(std::move(added_view));
  }
  return streams_[stream];
}

void ViewerFeed::on_stream_event(const engine::EventBody& body) {
  // A stream created has no viewers yet: a subscribe before it existed was refused.
  if (const auto* state = std::get_if<engine::StreamStateChanged>(&body))
    stream_touched(state->stream, true);
  if (const auto* pin = std::get_if<engine::StreamPinned>(&body)) stream_touched(pin->stream, true);
}

void ViewerFeed::stream_touched(std::optional<engine::StreamIndex> stream, bool at_once) {
  if (!stream) return;
  StreamView& stream_view = stream_view_of(*stream);
  if (at_once) {
    stream_view.changed = true;
    stream_view.frame.reset();  // no longer what a new subscriber should see
  }
  if (stream_view.due) return;
  stream_view.due = true;
  streams_due_.push_back(*stream);
}

// One frame per stream for everything its events changed since the last flush; stock alone
// waits for the tick interval since the last frame.
void ViewerFeed::flush_streams(TimeMs now_ms) {
  if (streams_due_.empty()) return;
  const TimeMs interval = tick_interval();
  std::erase_if(streams_due_, [&](engine::StreamIndex stream) {
    StreamView& stream_view = streams_[stream];
    if (!stream_view.changed && now_ms - stream_view.sent_ms < interval) return false;
    releases_.to_viewers(stream, stream_view.topic, write_stream(stream, stream_view, now_ms),
                         FrameKind::stream);
    stream_view.sent_ms = now_ms;
    stream_view.changed = false;
    stream_view.due = false;
    return true;
  });
}

const SharedFrame& ViewerFeed::write_stream(engine::StreamIndex stream, StreamView& stream_view,
                                            TimeMs now_ms) {
  const engine::StreamInfo info = engine_.stream_info(stream);
  std::vector<engine::DropInfo> drops;
  drops.reserve(info.drops.size());
  for (const engine::DropIndex drop : info.drops) drops.push_back(engine_.drop_info(drop));
  stream_view.frame = share(protocol::stream(info, drops, now_ms));
  stream_view.written_ms = now_ms;
  return stream_view.frame;
}

}  // namespace flashsale::gateway
