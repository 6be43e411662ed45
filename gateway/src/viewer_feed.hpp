// ViewerFeed: what the viewers of each drop are told, and when. It follows the engine's
// events: a countdown's start and a restock send the whole drop, state changes go out at once
// (except an open/sold_out flap, coalesced), a countdown `tick` goes out every whole second
// — every few for a large audience (limits.tick_deliveries_per_second) — and
// `stock` updates are coalesced to at most 10 per second per drop — fewer for a large audience
// (limits.stock_deliveries_per_second) — with the value at sell-out and at the return of units
// always sent, early (after 100 ms) once per interval. A drop with named variants tells each
// variant's stock in every `stock` frame: a change in any of them is a change to send, and a
// variant selling out or coming back is an edge like the drop's.
//
// A stream's viewers get its whole state (a `stream` frame: the stream and every drop of it),
// written once per change and shared by all of them: at once when the stream changes (a drop
// created in it, pin, unpin, its state) or one of its drops does (a countdown, a state other
// than an open/sold_out flap, a restock) — one frame for all a batch of events changed — and at
// the pace of ticks (every second, every few for a large audience) while only its drops' stock
// moved, which it learns from their `stock` frames going out: an order costs a stream nothing
// more than the stock frame its drop pays anyway.
//
// Every frame goes through Releases, so viewers never see what is not durable.
//
// Engine thread only.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flashsale/engine/engine.hpp"
#include "flashsale/gateway/config.hpp"
#include "metrics.hpp"
#include "outbox.hpp"
#include "releases.hpp"

namespace flashsale::gateway {

class ViewerFeed {
 public:
  ViewerFeed(const engine::Engine& engine, Releases& releases, const Metrics& metrics,
             const Limits& limits);

  // After recovery: viewers are taken to have seen the recovered state.
  void recovered();
  // The drop's whole state to one new subscriber.
  void subscribe(std::shared_ptr<Outbox> viewer, engine::DropIndex drop, engine::TimeMs now_ms);
  // The stream's whole state to one new subscriber: the last frame written for it, when nothing
  // but stock changed since and it is under a second old (a crowd joining a stream costs a
  // frame a second, not one each); else a new one.
  void subscribe_stream(std::shared_ptr<Outbox> viewer, engine::StreamIndex stream,
                        engine::TimeMs now_ms);
  // What an event changes for the viewers of its drop, or of its stream.
  void on_event(const engine::Event& event, engine::TimeMs now_ms);
  // Sends the coalesced stock updates, the ticks and the stream frames that are due.
  void flush(engine::TimeMs now_ms);
  // The drop's id (the engine's own view of it stays on the engine thread).
  const std::string& drop_id(engine::DropIndex drop) { return view(drop).id; }
  // The id of the drop's variant number `variant` (OrderResult::variant, OrderInfo::variant):
  // what order answers name, so only for a drop with named variants; empty for one without.
  std::string_view variant_id(engine::DropIndex drop, std::uint8_t variant);

 private:
  // What the viewers of one drop were last told.
  struct DropView {
    std::string id;
    std::vector<std::string> variant_ids;  // empty: the drop's one variant is unnamed
    bool stock_dirty = false;
    std::uint32_t stock_sent = 0;
    std::vector<std::uint32_t> variant_stock_sent;  // by variant, as `stock_sent`
    // The open/sold_out state viewers were last told, once the drop opened (units coming back
    // after a sell-out flip the drop between the two; viewers get the latest, coalesced).
    std::optional<engine::DropState> state_sent;
    bool pledges = false;  // a charity drop: confirmations change what viewers see
    std::int64_t raised_sent = 0;
    engine::TimeMs stock_sent_ms = 0;
    engine::TimeMs early_sent_ms = 0;  // the last stock frame sent before the interval was up
    engine::TimeMs next_tick_ms = 0;   // 0: not counting down
    std::optional<engine::StreamIndex> stream;  // the stream the drop was created in
  };

  // What the viewers of one stream were last told.
  struct StreamView {
    std::string topic;  // topic.hpp
    // Listed in streams_due_: something changed, at once to tell (`changed`) or only a drop's
    // stock, told at the pace of ticks.
    bool due = false;
    bool changed = false;
    engine::TimeMs sent_ms = 0;  // when its viewers were last sent a frame
    // The last frame written, and when, for new subscribers; reset by a change.
    SharedFrame frame;
    engine::TimeMs written_ms = 0;
  };

  DropView& view(engine::DropIndex drop);
  void to_viewers(engine::DropIndex drop, std::string frame, FrameKind kind);
  engine::TimeMs stock_interval() const;
  engine::TimeMs tick_interval() const;
  void flush_stock(engine::DropIndex drop, DropView& drop_view, engine::TimeMs now_ms);
  static void mark_stock_sent(DropView& drop_view, const engine::DropInfo& info);
  void tick(engine::DropIndex drop, DropView& drop_view, engine::TimeMs now_ms);
  StreamView& stream_view_of(engine::StreamIndex stream);
  void on_stream_event(const engine::EventBody& body);
  // The stream of a drop changed (`at_once`), or only the stock of one of its drops.
  void stream_touched(std::optional<engine::StreamIndex> stream, bool at_once);
  void flush_streams(engine::TimeMs now_ms);
  const SharedFrame& write_stream(engine::StreamIndex stream, StreamView& stream_view,
                                  engine::TimeMs now_ms);

  const engine::Engine& engine_;
  Releases& releases_;
  const Metrics& metrics_;
  const Limits& limits_;
  std::vector<DropView> views_;
  std::vector<StreamView> streams_;
  std::vector<engine::StreamIndex> streams_due_;  // streams with something to tell
};

}  // namespace flashsale::gateway
