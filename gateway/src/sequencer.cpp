// The engine thread. See sequencer.hpp for what it does; docs/durability.md for why messages
// wait for the journal.
#include "sequencer.hpp"

#include <spdlog/spdlog.h>

#include <stdexcept>

#include "flashsale/engine/assert.hpp"
#include "flashsale/gateway/protocol.hpp"
#include "host_commands.hpp"
#include "topic.hpp"

namespace flashsale::gateway {

using engine::TimeMs;

namespace {

constexpr auto idle_wake = std::chrono::milliseconds(50);  // time moves even without requests

}  // namespace

Sequencer::Sequencer(const GatewayConfig& config, EventLog& log, std::vector<Fanout*> fanouts,
                     Metrics& metrics, WallClock clock)
    : config_(config),
      log_(log),
      metrics_(metrics),
      clock_(std::move(clock)),
      engine_(config.engine),
      releases_(engine_, config.ack, fanouts, metrics),
      feed_(engine_, releases_, metrics, config.limits),
      edge_(engine_, std::move(fanouts)),
      buyers_(releases_, metrics, config.limits, order_ids_) {
  metrics_.engine_queue_max.store(config.limits.engine_queue_max, std::memory_order_relaxed);
  log_.on_durable([this](const journal::DurableBatch& batch) {
    metrics_.journal_batch_events.record(batch.events);
    if (batch.round_trip) metrics_.journal_round_trip.observe(*batch.round_trip);
    {
      std::lock_guard lock(mutex_);
      durable_advanced_ = true;
    }
    wake_.notify_one();
  });
}

Sequencer::~Sequencer() {
  stop(std::chrono::seconds(5));
}

journal::RecoveryStats Sequencer::recover() {
  const journal::RecoveryStats stats = log_.recover(engine_);
  // The journal's key, without which ids given out before would no longer read. (A log
  // without one, in tests, leaves the random key.)
  if (!stats.order_id_key_hex.empty()) {
    const auto key = OrderIds::key_from_hex(stats.order_id_key_hex);
    if (!key) throw std::runtime_error("journal: the order ids' key is not 32 hex digits");
    order_ids_ = OrderIds(*key);
  }
  metrics_.recovery.observe(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double, std::milli>(stats.total_ms)));
  feed_.recovered();
  edge_.recovered();
  return stats;
}

void Sequencer::start() {
  thread_ = std::thread([this] { run(); });
}

void Sequencer::stop(std::chrono::milliseconds timeout) {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
  // Whatever was decided last is released once durable, so nobody who was answered loses it.
  if (!releases_.empty() && log_.wait_durable(engine_.last_sequence(), timeout))
    releases_.release(log_.durable_sequence());
}

void Sequencer::discard_unreleased() {
  FS_ASSERT(!thread_.joinable());  // the releases are the engine thread's until it ends
  if (!releases_.empty())
    spdlog::warn("flashsale: {} message(s) waited for events never made durable; not sent",
                 releases_.size());
  releases_.discard();
  metrics_.releases_pending.store(0, std::memory_order_relaxed);
}

bool Sequencer::submit(Request request) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= config_.limits.engine_queue_max) return false;
    queue_.push_back(std::move(request));
    metrics_.engine_queue_depth.store(queue_.size(), std::memory_order_relaxed);
    // The engine thread was woken for the first one, or waits for the journal anyway.
    if (queue_.size() > 1 || following_journal_) return true;
  }
  wake_.notify_one();
  return true;
}

bool Sequencer::submit_all(std::vector<Request>& requests) {
  {
    std::lock_guard lock(mutex_);
    // An empty queue takes any group, so that one larger than the bound still gets in.
    if (stopping_ ||
        (!queue_.empty() && queue_.size() + requests.size() > config_.limits.engine_queue_max))
      return false;
    for (Request& request : requests) queue_.push_back(std::move(request));
    metrics_.engine_queue_depth.store(queue_.size(), std::memory_order_relaxed);
    if (following_journal_) return true;
  }
  wake_.notify_one();
  return true;
}

void Sequencer::run() {
  std::vector<Request> work;
  const bool pacing = config_.ack == AckMode::durable;
  while (true) {
    {
      std::unique_lock lock(mutex_);
      // While a journal batch is on its way, new requests wait for it to come back: what they
      // decide could not be durable sooner, and taking them all then costs the engine thread
      // one wake-up per journal round trip instead of one per request (docs/benchmarks.md,
      // the order path). A journal that cannot write is not waited for: its refusals go at once.
      following_journal_ =
          pacing && engine_.last_sequence() > log_.durable_sequence() && log_.accepting();
      wake_.wait_for(lock, idle_wake, [&] {
        return stopping_ || durable_advanced_ || (!queue_.empty() && !following_journal_);
      });
      following_journal_ = false;
      work.swap(queue_);
      durable_advanced_ = false;
      metrics_.engine_queue_depth.store(0, std::memory_order_relaxed);
      if (stopping_ && work.empty()) break;
    }
    const TimeMs now_ms = clock_();
    engine_.advance_time(now_ms, events_);
    if (!work.empty()) {
      process(work, now_ms, log_.accepting());
      work.clear();
      metrics_.engine_batches.fetch_add(1, std::memory_order_relaxed);
    }
    publish_events(now_ms);
    edge_.flush(now_ms);
    journal_events();
    feed_.flush(now_ms);
    if (log_.snapshot_due()) log_.append_snapshot(engine_);
    releases_.release(log_.durable_sequence());
    metrics_.releases_pending.store(releases_.size(), std::memory_order_relaxed);
  }
}

void Sequencer::process(std::vector<Request>& work, TimeMs now_ms, bool accepting) {
  std::string mark;  // the last CursorMark of the work
  for (std::size_t index = 0; index < work.size();) {
    if (std::holds_alternative<OrderRequest>(work[index])) {
      std::size_t end = index;
      while (end < work.size() && std::holds_alternative<OrderRequest>(work[end])) ++end;
      if (accepting) {
        place(work, index, end, now_ms);
      } else {
        refuse_orders(work, index, end);
      }
      index = end;
      continue;
    }
    std::visit(
        [&]<typename Body>(Body& body) {
          if constexpr (std::is_same_v<Body, HelloRequest>) {
            buyers_.hello(body, now_ms);
          } else if constexpr (std::is_same_v<Body, LeaveRequest>) {
            buyers_.leave(body);
          } else if constexpr (std::is_same_v<Body, CursorMark>) {
            if (body.journal) cursor_ = body.id;
            mark = std::move(body.id);
          } else if constexpr (std::is_same_v<Body, SubscribeRequest>) {
            handle(body, now_ms);
          } else if constexpr (std::is_same_v<Body, ActionRequest>) {
            if (accepting) {
              handle(body, now_ms);
            } else {
              body.from->send(share(protocol::error(protocol::ErrorCode::unavailable,
                                                    "the journal cannot take writes; try again")),
                              FrameKind::reply);
            }
          } else if constexpr (std::is_same_v<Body, HostRequest>) {
            handle(body, now_ms, accepting);
          } else {
            static_assert(std::is_same_v<Body, OrderRequest>);  // placed in batches above
          }
        },
        work[index]);
    ++index;
  }
  if (!mark.empty()) releases_.mark(std::move(mark));
}

void Sequencer::place(std::vector<Request>& work, std::size_t first, std::size_t end,
                      TimeMs now_ms) {
  batch_.clear();
  for (std::size_t index = first; index < end; ++index) {
    const auto& order = std::get<OrderRequest>(work[index]);
    batch_.push_back({order.drop, order.user, order.client_order_id, order.qty, order.variant});
  }
  results_.resize(batch_.size());
  const auto decided = std::chrono::steady_clock::now();
  engine_.place_orders(batch_, now_ms, events_, results_);
  for (std::size_t index = first; index < end; ++index) {
    auto& order = std::get<OrderRequest>(work[index]);
    const engine::OrderResult& result = results_[index - first];
    if (order.received != std::chrono::steady_clock::time_point{})
      metrics_.order_queue_wait.observe(decided - order.received);
    metrics_.count_order(result.outcome);
    if (result.waitlist_full) metrics_.count_limited(Limit::waitlist_full);
    // Only a recorded outcome has a variant (an unknown one, or none, is not recorded).
    const std::string_view variant = engine::is_recorded(result.outcome)
                                         ? feed_.variant_id(result.drop, result.variant)
                                         : std::string_view();
    // Collected in an admission window: the answer is the draw's, sent when it happens.
    if (result.outcome == engine::OrderOutcome::pending) {
      buyers_.await_draw(result.drop, order.user, order.client_order_id, variant, order.from,
                         order.tag);
      continue;
    }
    releases_.order_answer(std::move(order.from),
                           share(protocol::order_result(order.drop, order.client_order_id, result,
                                                        order_ids_, variant)),
                           order.tag, order.received, decided);
  }
}

// The journal cannot take writes: nothing is decided, every order hears so at once.
void Sequencer::refuse_orders(std::vector<Request>& work, std::size_t first, std::size_t end) {
  for (std::size_t index = first; index < end; ++index) {
    auto& order = std::get<OrderRequest>(work[index]);
    metrics_.count_order(protocol::GatewayStatus::unavailable);
    order.from->send_answer(
        share(protocol::order_result_status(order.drop, order.client_order_id,
                                            protocol::GatewayStatus::unavailable,
                                            "the journal cannot take writes")),
        FrameKind::order, order.tag);
  }
}

void Sequencer::handle(SubscribeRequest& request, TimeMs now_ms) {
  if (const auto stream_id = topic::stream_of(request.drop)) {
    const auto stream = engine_.find_stream(*stream_id);
    if (!stream) {
      request.from->forget_subscription(request.drop);
      request.from->send(
          share(protocol::error(protocol::ErrorCode::unknown_stream, "no such stream", *stream_id)),
          FrameKind::reply);
      return;
    }
    return feed_.subscribe_stream(request.from, *stream, now_ms);
  }
  const auto drop = engine_.find_drop(request.drop);
  if (!drop) {
    request.from->forget_subscription(request.drop);
    request.from->send(
        share(protocol::error(protocol::ErrorCode::unknown_drop, "no such drop", request.drop)),
        FrameKind::reply);
    return;
  }
  feed_.subscribe(request.from, *drop, now_ms);
  // A returning buyer learns where their orders stand: what changed while they were away (an
  // expired hold, a promotion, a payment from another device) went to connections now gone.
  if (request.user.empty()) return;
  for (const engine::OrderInfo& order : engine_.orders_of(*drop, request.user))
    releases_.to_outbox(
        request.from,
        share(protocol::order_update(request.drop, order.order, order_ids_, order.client_order_id,
                                     order.status, order.qty, order.hold_expires_at_ms,
                                     feed_.variant_id(*drop, order.variant))),
        FrameKind::order);
}

void Sequencer::handle(ActionRequest& request, TimeMs now_ms) {
  const auto ref = order_ids_.parse(request.order_id);
  const auto drop = ref ? engine_.find_drop(ref->drop) : std::nullopt;
  const auto refuse = [&](protocol::ErrorCode code, std::string_view message) {
    metrics_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
    request.from->send(share(protocol::error(code, message, request.order_id)), FrameKind::reply);
  };
  if (!drop) return refuse(protocol::ErrorCode::unknown_order, "no such order");
  const std::uint64_t before = engine_.last_sequence();
  const engine::OrderAction action{ref->drop, ref->order, request.user};
  const engine::ActionResult result = request.confirm ? engine_.confirm(action, now_ms, events_)
                                                      : engine_.cancel(action, now_ms, events_);
  switch (result.status) {
    case engine::CommandStatus::unknown_drop:
    case engine::CommandStatus::unknown_order:
      return refuse(protocol::ErrorCode::unknown_order, "no such order");
    case engine::CommandStatus::not_owner:  // the same answer as no order at all
      return refuse(protocol::ErrorCode::unknown_order, "no such order");
    default:
      break;
  }
  // A change reaches every connection of the buyer through its event; an answer that changed
  // nothing (already paid, already expired) goes to the asker alone.
  if (engine_.last_sequence() == before || result.status != engine::CommandStatus::ok) {
    const auto info = engine_.order_info(*drop, ref->order);
    releases_.to_outbox(
        std::move(request.from),
        share(protocol::order_update(ref->drop, ref->order, order_ids_, result.client_order_id,
                                     result.order_status, info->qty, info->hold_expires_at_ms,
                                     feed_.variant_id(*drop, info->variant))),
        FrameKind::order);
  }
}

void Sequencer::handle(HostRequest& request, TimeMs now_ms, bool accepting) {
  const bool refused = host::changes(request.command) && !accepting;
  HostOutcome outcome =
      refused ? HostOutcome{host_json::error(503, "unavailable", "the journal cannot take writes")}
              : execute(request.command, request.caller, engine_, order_ids_, now_ms, events_);
  if (!request.keep_reply_as.empty())
    kept_replies_.push_back({std::move(request.keep_reply_as), encode_kept_reply(outcome.reply)});
  // A refusal decides nothing, so like a refused order it goes at once (docs/durability.md):
  // queued, it would wait behind a batch in flight whose fate only Redis, once back, can tell.
  if (refused) return request.done(std::move(outcome.reply));
  if (!outcome.audit) {
    releases_.to_host([done = std::move(request.done), reply = std::move(outcome.reply)]() mutable {
      done(std::move(reply));
    });
    return;
  }
  // Everything decided so far goes to the journal now, in batches that end here; the answer
  // names the batch, so it waits for it to be written whatever the ack mode.
  publish_events(now_ms);
  journal_events();
  log_.cut();
  const std::uint64_t sequence = engine_.last_sequence();
  releases_.at_chain_head(sequence, [this, sequence, done = std::move(request.done),
                                     facts = std::move(*outcome.audit)] {
    const auto head = log_.chain_head(sequence);
    done(head ? HostReply{200, host_json::audit(facts, *head)}
              : host_json::error(503, "unavailable",
                                 "the journal has not written that state yet; retry"));
  });
}

void Sequencer::journal_events() {
  log_.append(events_, cursor_, order_records_, kept_replies_);
  events_.clear();
  order_records_.clear();
  kept_replies_.clear();
  cursor_.clear();
}

void Sequencer::publish_events(TimeMs now_ms) {
  for (const engine::Event& event : events_) {
    feed_.on_event(event, now_ms);
    if (engine::is_stream_event(event.body)) continue;  // they name no drop
    edge_.on_event(event);
    tell_buyers(event);
  }
}

// An order's change goes to its buyer's connections; a confirmed, cancelled or expired order
// also goes downstream with the batch that holds its event.
void Sequencer::tell_buyers(const engine::Event& event) {
  const auto push_update = [&](engine::OrderNumber order) {
    const auto info = engine_.order_info(event.drop, order);
    buyers_.push(
        info->user,
        share(protocol::order_update(
            feed_.drop_id(event.drop), order, order_ids_, info->client_order_id, info->status,
            info->qty, info->hold_expires_at_ms, feed_.variant_id(event.drop, info->variant))));
  };
  const auto record = [&](engine::OrderNumber order, std::string_view change,
                          std::string_view reason = {}) {
    const auto info = engine_.order_info(event.drop, order);
    const std::string& drop_id = feed_.drop_id(event.drop);
    journal::OrderRecord& added = order_records_.emplace_back();
    added.sequence = event.sequence;
    added.event = change;
    added.drop = drop_id;
    added.order = order;
    added.order_id = order_ids_.format(drop_id, order);
    added.user = info->user;
    added.client_order_id = info->client_order_id;
    added.qty = info->qty;
    added.variant = feed_.variant_id(event.drop, info->variant);
    added.price_cents = info->price_cents;
    added.at_ms = event.at_ms;
    added.reason = reason;
  };
  std::visit(
      [&]<typename Body>(const Body& body) {
        if constexpr (std::is_same_v<Body, engine::OrderDecided>) {
          if (!body.drawn) return;
          engine::OrderResult result;
          result.outcome = body.outcome;
          result.order = body.order;
          result.variant = body.variant;
          result.qty = body.qty;
          result.hold_expires_at_ms = body.hold_expires_at_ms;
          result.waitlist_position = body.waitlist_position;
          buyers_.drawn(event.drop, feed_.drop_id(event.drop), body.user, body.client_order_id,
                        result);
        } else if constexpr (std::is_same_v<Body, engine::AdmissionClosed>) {
          // Everyone the draw passed over is sold out: no event each, an answer each.
          buyers_.passed_over(event.drop, feed_.drop_id(event.drop));
        } else if constexpr (std::is_same_v<Body, engine::OrderPromoted>) {
          push_update(body.order);
        } else if constexpr (std::is_same_v<Body, engine::OrderCancelled>) {
          push_update(body.order);
          record(body.order, "cancelled", engine::to_string(body.reason));
        } else if constexpr (std::is_same_v<Body, engine::HoldExpired>) {
          push_update(body.order);
          record(body.order, "expired");
        } else if constexpr (std::is_same_v<Body, engine::OrderConfirmed>) {
          push_update(body.order);
          record(body.order, "confirmed");
        }
      },
      event.body);
}

}  // namespace flashsale::gateway
