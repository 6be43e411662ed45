// The engine thread. See sequencer.hpp for what it does; docs/durability.md for why messages
// wait for the journal.
#include "sequencer.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <chrono>

#include "flashsale/gateway/protocol.hpp"
#include "host_api.hpp"

namespace flashsale::gateway {

using engine::TimeMs;

namespace {

TimeMs wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr TimeMs stock_interval_ms = 100;  // at most 10 stock updates per second per drop
constexpr TimeMs tick_interval_ms = 1'000;
constexpr auto idle_wake = std::chrono::milliseconds(50);  // time moves even without requests

}  // namespace

// A message waiting for `sequence` to be durable.
struct Sequencer::Release {
  std::uint64_t sequence = 0;
  std::shared_ptr<Outbox> outbox;  // to one connection, or
  std::uint32_t drop = 0;  // to every viewer of this drop when outbox is null and host is empty
  SharedFrame frame;
  FrameKind kind = FrameKind::reply;
  std::uint64_t tag = 0;       // the answer to this request of the outbox's (0: none)
  std::function<void()> host;  // or a host API reply
};

// What the viewers of one drop were last told.
struct Sequencer::DropView {
  std::string id;
  bool stock_dirty = false;
  std::uint32_t stock_sent = 0;
  // The open/sold_out state viewers were last told, once the drop opened (units coming back
  // after a sell-out flip the drop between the two; viewers get the latest, coalesced).
  std::optional<engine::DropState> state_sent;
  bool pledges = false;  // a charity drop: confirmations change what viewers see
  std::int64_t raised_sent = 0;
  TimeMs stock_sent_ms = 0;
  TimeMs next_tick_ms = 0;  // 0: not counting down
};

Sequencer::Sequencer(const GatewayConfig& config, journal::Journal& journal,
                     std::vector<Fanout*> fanouts, Metrics& metrics)
    : config_(config),
      journal_(journal),
      fanouts_(std::move(fanouts)),
      metrics_(metrics),
      engine_(config.engine) {
  journal_.on_durable([this](std::uint64_t) {
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
  const journal::RecoveryStats stats = journal_.recover(engine_);
  metrics_.recovery_ms = stats.total_ms;
  for (engine::DropIndex drop = 0; drop < engine_.drop_count(); ++drop) {
    DropView& drop_view = view(drop);
    const engine::DropInfo info = engine_.drop_info(drop);
    drop_view.stock_sent = info.stock_left;
    if (info.state != engine::DropState::scheduled && info.state != engine::DropState::countdown)
      drop_view.state_sent = info.state;
    if (info.state == engine::DropState::countdown) drop_view.next_tick_ms = 1;
  }
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
  if ((!releases_.empty() || !chain_releases_.empty()) &&
      journal_.wait_durable(engine_.last_sequence(), timeout))
    release_durable();
}

bool Sequencer::submit(Request request) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= config_.limits.engine_queue_max) return false;
    queue_.push_back(std::move(request));
    metrics_.engine_queue_depth.store(queue_.size(), std::memory_order_relaxed);
    if (queue_.size() > 1) return true;  // the engine thread was woken for the first one
  }
  wake_.notify_one();
  return true;
}

std::string Sequencer::released_mark() const {
  std::lock_guard lock(mutex_);
  return released_mark_;
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
  }
  wake_.notify_one();
  return true;
}

Sequencer::DropView& Sequencer::view(engine::DropIndex drop) {
  while (views_.size() <= drop) {
    DropView added;
    const engine::DropInfo info = engine_.drop_info(static_cast<engine::DropIndex>(views_.size()));
    added.id = std::string(info.spec.id);
    added.pledges = info.spec.pledge_bps > 0;
    added.raised_sent = info.raised_cents;
    views_.push_back(std::move(added));
  }
  return views_[drop];
}

void Sequencer::run() {
  std::vector<Request> work;
  while (true) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, idle_wake,
                     [&] { return stopping_ || !queue_.empty() || durable_advanced_; });
      work.swap(queue_);
      durable_advanced_ = false;
      metrics_.engine_queue_depth.store(0, std::memory_order_relaxed);
      if (stopping_ && work.empty()) break;
    }
    const TimeMs now_ms = wall_ms();
    engine_.advance_time(now_ms, events_);
    if (!work.empty()) {
      process(work, now_ms, journal_.accepting());
      work.clear();
      metrics_.engine_batches.fetch_add(1, std::memory_order_relaxed);
    }
    publish_events(now_ms);
    journal_events();
    flush_stock_and_ticks(now_ms);
    if (journal_.snapshot_due()) journal_.append_snapshot(engine_);
    release_durable();
  }
}

void Sequencer::process(std::vector<Request>& work, TimeMs now_ms, bool accepting) {
  std::string mark;  // the last CursorMark of the work
  for (std::size_t index = 0; index < work.size();) {
    Request& request = work[index];
    if (std::holds_alternative<OrderRequest>(request)) {
      std::size_t end = index;
      while (end < work.size() && std::holds_alternative<OrderRequest>(work[end])) ++end;
      if (accepting) {
        place(work, index, end, now_ms);
      } else {
        for (std::size_t refused = index; refused < end; ++refused) {
          auto& order = std::get<OrderRequest>(work[refused]);
          metrics_.count_order("unavailable");
          order.from->send_answer(
              share(protocol::order_result_status(order.drop, order.client_order_id, "unavailable",
                                                  "the journal cannot take writes")),
              FrameKind::order, order.tag);
        }
      }
      index = end;
      continue;
    }
    std::visit(
        [&]<typename Body>(Body& body) {
          if constexpr (std::is_same_v<Body, HelloRequest> || std::is_same_v<Body, LeaveRequest>) {
            handle(body);
          } else if constexpr (std::is_same_v<Body, CursorMark>) {
            if (body.journal) cursor_ = body.id;
            mark = std::move(body.id);
          } else if constexpr (std::is_same_v<Body, SubscribeRequest> ||
                               std::is_same_v<Body, ActionRequest>) {
            if (accepting || std::is_same_v<Body, SubscribeRequest>) {
              handle(body, now_ms);
            } else {
              body.from->send(share(protocol::error(protocol::ErrorCode::bad_field,
                                                    "the journal cannot take writes; try again")),
                              FrameKind::reply);
            }
          } else if constexpr (std::is_same_v<Body, HostRequest>) {
            handle(body, now_ms, accepting);
          }
        },
        request);
    ++index;
  }
  // Every answer to the work is queued by now, with at most the last event as its sequence
  // (an audit after the mark included): the mark is released with that event.
  if (!mark.empty()) marks_.emplace_back(engine_.last_sequence(), std::move(mark));
}

void Sequencer::place(std::vector<Request>& work, std::size_t first, std::size_t end,
                      TimeMs now_ms) {
  batch_.clear();
  for (std::size_t index = first; index < end; ++index) {
    const auto& order = std::get<OrderRequest>(work[index]);
    batch_.push_back({order.drop, order.user, order.client_order_id, order.qty});
  }
  results_.resize(batch_.size());
  engine_.place_orders(batch_, now_ms, events_, results_);
  for (std::size_t index = first; index < end; ++index) {
    auto& order = std::get<OrderRequest>(work[index]);
    const engine::OrderResult& result = results_[index - first];
    metrics_.count_order(engine::to_string(result.outcome));
    if (result.waitlist_full) metrics_.count_limited(Limit::waitlist_full);
    // Collected in an admission window: the answer is the draw's, sent when it happens.
    if (result.outcome == engine::OrderOutcome::pending) {
      auto& waiters = waiting_[waiting_key(result.drop, order.user, order.client_order_id)];
      std::erase_if(waiters, [](const Waiter& waiter) { return waiter.outbox.expired(); });
      const auto same = std::find_if(waiters.begin(), waiters.end(), [&](const Waiter& waiter) {
        return waiter.outbox.lock() == order.from;
      });
      if (same != waiters.end()) {
        same->tags.push_back(order.tag);
      } else {
        waiters.push_back({order.from, {order.tag}});
      }
      continue;
    }
    to_outbox(std::move(order.from),
              share(protocol::order_result(order.drop, order.client_order_id, result)),
              FrameKind::order, 0, order.tag);
  }
}

void Sequencer::handle(HelloRequest& request) {
  auto& connections = users_[request.user];
  std::erase_if(connections,
                [](const std::weak_ptr<Outbox>& connection) { return connection.expired(); });
  if (request.quiet) {
    if (connections.size() >= config_.limits.connections_per_user)
      connections.erase(connections.begin());  // the oldest: its gateway forgot to say it left
    connections.push_back(request.from);
    return;
  }
  if (connections.size() >= config_.limits.connections_per_user) {
    metrics_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
    metrics_.count_limited(Limit::connections_per_user);
    request.from->close_with(share(protocol::error(protocol::ErrorCode::rate_limited,
                                                   "too many connections for this user", "hello")),
                             1008, "too many connections for this user");
    return;
  }
  connections.push_back(request.from);
  request.from->send(share(protocol::welcome(request.user, wall_ms())), FrameKind::reply);
}

void Sequencer::handle(LeaveRequest& request) {
  const auto found = users_.find(request.user);
  if (found == users_.end()) return;
  std::erase_if(found->second, [&](const std::weak_ptr<Outbox>& connection) {
    const auto alive = connection.lock();
    return alive == nullptr || alive.get() == request.from;
  });
  if (found->second.empty()) users_.erase(found);
}

void Sequencer::handle(SubscribeRequest& request, TimeMs now_ms) {
  const auto drop = engine_.find_drop(request.drop);
  if (!drop) {
    request.from->forget_subscription(request.drop);
    request.from->send(
        share(protocol::error(protocol::ErrorCode::unknown_drop, "no such drop", request.drop)),
        FrameKind::reply);
    return;
  }
  to_outbox(std::move(request.from), share(protocol::drop(engine_.drop_info(*drop), now_ms)),
            FrameKind::drop, *drop);
}

void Sequencer::handle(ActionRequest& request, TimeMs now_ms) {
  const auto ref = protocol::parse_order_id(request.order_id);
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
    case engine::CommandStatus::not_owner:
      return refuse(protocol::ErrorCode::not_owner, "the order belongs to another buyer");
    default:
      break;
  }
  // A change reaches every connection of the buyer through its event; an answer that changed
  // nothing (already paid, already expired) goes to the asker alone.
  if (engine_.last_sequence() == before || result.status != engine::CommandStatus::ok) {
    const auto info = engine_.order_info(*drop, ref->order);
    to_outbox(
        std::move(request.from),
        share(protocol::order_update(ref->drop, ref->order, result.client_order_id,
                                     result.order_status, info->qty, info->hold_expires_at_ms)),
        FrameKind::order);
  }
}

void Sequencer::handle(HostRequest& request, TimeMs now_ms, bool accepting) {
  HostContext context{engine_, events_, now_ms, accepting};
  HostReply reply = request.run(context);
  if (!request.keep_reply_as.empty())
    kept_replies_.push_back({std::move(request.keep_reply_as), encode_kept_reply(reply)});
  Release release;
  release.sequence = config_.ack == AckMode::durable ? engine_.last_sequence() : 0;
  if (request.with_chain_head && reply.status == 200) {
    // Everything decided so far goes to the journal now, in batches that end here.
    publish_events(now_ms);
    journal_events();
    journal_.cut();
    const std::uint64_t sequence = engine_.last_sequence();
    release.sequence = sequence;  // the head is known once its batch is written, ack or not
    release.host = [this, sequence, done = std::move(request.done),
                    reply = std::move(reply)]() mutable {
      const auto head = journal_.chain_head(sequence);
      if (!head) {
        done(http_error(503, "unavailable", "the journal has not written that state yet; retry"));
        return;
      }
      reply.body.pop_back();  // the closing brace of the object
      reply.body += fmt::format(R"(,"head":"{}","batch":{},"sequence":{}}})",
                                journal::to_hex(head->hash), head->batch, head->last_sequence);
      done(std::move(reply));
    };
    chain_releases_.push_back(std::move(release));
    return;
  }
  release.host = [done = std::move(request.done), reply = std::move(reply)]() mutable {
    done(std::move(reply));
  };
  releases_.push_back(std::move(release));
}

std::string encode_kept_reply(const HostReply& reply) {
  return std::to_string(reply.status) + ' ' + reply.body;
}

std::optional<HostReply> decode_kept_reply(std::string_view kept) {
  HostReply reply;
  const auto [end, problem] = std::from_chars(kept.data(), kept.data() + kept.size(), reply.status);
  if (problem != std::errc{} || end == kept.data() + kept.size() || *end != ' ')
    return std::nullopt;
  reply.body = std::string(end + 1, kept.data() + kept.size());
  return reply;
}

void Sequencer::push_to_user(std::string_view user, SharedFrame frame) {
  const auto found = users_.find(std::string(user));
  if (found == users_.end()) return;  // not connected: a retry of the client_order_id finds it
  for (const auto& connection : found->second) {
    if (auto alive = connection.lock()) to_outbox(std::move(alive), frame, FrameKind::order);
  }
}

// The admission window's draw decided an order: every order message that asked for it gets its
// answer now (a buyer who left finds it by retrying the client_order_id).
void Sequencer::answer_waiting(engine::DropIndex drop, std::string_view user,
                               std::string_view client_order_id,
                               const engine::OrderResult& result) {
  const auto found = waiting_.find(waiting_key(drop, user, client_order_id));
  if (found == waiting_.end()) return;
  const SharedFrame frame = share(protocol::order_result(views_[drop].id, client_order_id, result));
  for (const Waiter& waiter : found->second) {
    const auto outbox = waiter.outbox.lock();
    for (const std::uint64_t tag : waiter.tags) {
      if (outbox == nullptr) break;
      metrics_.count_order(engine::to_string(result.outcome));
      to_outbox(outbox, frame, FrameKind::order, 0, tag);
    }
  }
  waiting_.erase(found);
}

std::string Sequencer::waiting_key(engine::DropIndex drop, std::string_view user,
                                   std::string_view client_order_id) {
  std::string key = std::to_string(drop);
  key += '\0';
  key += user;
  key += '\0';
  key += client_order_id;
  return key;
}

void Sequencer::journal_events() {
  journal_.append(events_, cursor_, order_records_, kept_replies_);
  events_.clear();
  order_records_.clear();
  kept_replies_.clear();
  cursor_.clear();
}

void Sequencer::publish_events(TimeMs now_ms) {
  for (const engine::Event& event : events_) {
    DropView& drop_view = view(event.drop);
    const auto push_update = [&](engine::OrderNumber order) {
      const auto info = engine_.order_info(event.drop, order);
      push_to_user(info->user, share(protocol::order_update(drop_view.id, order,
                                                            info->client_order_id, info->status,
                                                            info->qty, info->hold_expires_at_ms)));
    };
    // Confirmed, cancelled and expired orders go downstream with the batch that holds them.
    const auto record = [&](engine::OrderNumber order, std::string_view change,
                            std::string_view reason = {}) {
      const auto info = engine_.order_info(event.drop, order);
      journal::OrderRecord& added = order_records_.emplace_back();
      added.sequence = event.sequence;
      added.event = change;
      added.drop = drop_view.id;
      added.order = order;
      added.order_id = protocol::order_id(drop_view.id, order);
      added.user = info->user;
      added.client_order_id = info->client_order_id;
      added.qty = info->qty;
      added.price_cents = engine_.drop_info(event.drop).spec.price_cents;
      added.at_ms = event.at_ms;
      added.reason = reason;
    };
    std::visit(
        [&]<typename Body>(const Body& body) {
          if constexpr (std::is_same_v<Body, engine::CountdownStarted>) {
            drop_view.next_tick_ms = now_ms;
            to_viewers(event.drop, share(protocol::drop(engine_.drop_info(event.drop), now_ms)),
                       FrameKind::drop);
          } else if constexpr (std::is_same_v<Body, engine::StateChanged>) {
            if (body.state != engine::DropState::countdown) drop_view.next_tick_ms = 0;
            const bool flap = drop_view.state_sent && (body.state == engine::DropState::open ||
                                                       body.state == engine::DropState::sold_out);
            if (!flap) {  // the opening instant and the close go out at once
              to_viewers(event.drop, share(protocol::state(drop_view.id, body.state, event.at_ms)),
                         FrameKind::state);
              drop_view.state_sent = body.state;
            }
            drop_view.stock_dirty = true;
          } else if constexpr (std::is_same_v<Body, engine::Restocked>) {
            to_viewers(event.drop, share(protocol::drop(engine_.drop_info(event.drop), now_ms)),
                       FrameKind::drop);
            drop_view.stock_sent = body.stock_left;
          } else if constexpr (std::is_same_v<Body, engine::OrderDecided>) {
            drop_view.stock_dirty |= body.outcome == engine::OrderOutcome::reserved;
            if (body.drawn) {
              engine::OrderResult result;
              result.outcome = body.outcome;
              result.order = body.order;
              result.qty = body.qty;
              result.hold_expires_at_ms = body.hold_expires_at_ms;
              result.waitlist_position = body.waitlist_position;
              answer_waiting(event.drop, body.user, body.client_order_id, result);
            }
          } else if constexpr (std::is_same_v<Body, engine::AdmissionClosed>) {
            // Everyone the draw passed over is sold out: no event each, an answer each. The
            // orders still waiting for this drop are exactly those (drawn ones were answered).
            engine::OrderResult sold_out;
            sold_out.outcome = engine::OrderOutcome::sold_out;
            const std::string prefix = std::to_string(event.drop) + '\0';  // see waiting_key
            std::vector<std::string> passed_over;
            for (const auto& [key, waiters] : waiting_)
              if (key.starts_with(prefix)) passed_over.push_back(key);
            for (const std::string& key : passed_over) {
              const std::string_view rest = std::string_view(key).substr(prefix.size());
              const auto split = rest.find('\0');
              answer_waiting(event.drop, rest.substr(0, split), rest.substr(split + 1), sold_out);
            }
          } else if constexpr (std::is_same_v<Body, engine::OrderPromoted> ||
                               std::is_same_v<Body, engine::OrderCancelled> ||
                               std::is_same_v<Body, engine::HoldExpired>) {
            drop_view.stock_dirty = true;
            push_update(body.order);
            if constexpr (std::is_same_v<Body, engine::OrderCancelled>)
              record(body.order, "cancelled", engine::to_string(body.reason));
            if constexpr (std::is_same_v<Body, engine::HoldExpired>) record(body.order, "expired");
          } else if constexpr (std::is_same_v<Body, engine::OrderConfirmed>) {
            push_update(body.order);
            record(body.order, "confirmed");
            // A charity drop's amount raised goes out with the coalesced stock updates.
            drop_view.stock_dirty |= drop_view.pledges;
          }
        },
        event.body);
  }
}

// Every stock update is one frame to every viewer: with a large audience, 10 a second would
// take the I/O threads from the order results. The interval stretches so that stock updates
// stay within limits.stock_deliveries_per_second, counting every open connection as a viewer.
TimeMs Sequencer::stock_interval() const {
  const auto viewers =
      static_cast<double>(metrics_.connections_open.load(std::memory_order_relaxed));
  const double budget_ms = viewers * 1000.0 / config_.limits.stock_deliveries_per_second;
  return std::max(stock_interval_ms, static_cast<TimeMs>(budget_ms));
}

void Sequencer::flush_stock_and_ticks(TimeMs now_ms) {
  for (engine::DropIndex drop = 0; drop < views_.size(); ++drop) {
    DropView& drop_view = views_[drop];
    if (drop_view.stock_dirty) {
      const engine::DropInfo info = engine_.drop_info(drop);
      const std::uint32_t left = info.stock_left;
      const bool raised_changed = info.raised_cents != drop_view.raised_sent;
      const bool edge = (left == 0) != (drop_view.stock_sent == 0);  // sold out, or units back
      const TimeMs since_ms = now_ms - drop_view.stock_sent_ms;
      const engine::DropState state = info.state;
      const bool state_changed = drop_view.state_sent && *drop_view.state_sent != state;
      if (left == drop_view.stock_sent && !state_changed && !raised_changed) {
        drop_view.stock_dirty = false;
      } else if ((edge && since_ms >= stock_interval_ms) || since_ms >= stock_interval()) {
        if (state_changed) {
          to_viewers(drop, share(protocol::state(drop_view.id, state, now_ms)), FrameKind::state);
          drop_view.state_sent = state;
        }
        to_viewers(drop, share(protocol::stock(drop_view.id, left, info)), FrameKind::stock);
        drop_view.stock_sent = left;
        drop_view.raised_sent = info.raised_cents;
        drop_view.stock_sent_ms = now_ms;
        drop_view.stock_dirty = false;
      }
    }
    if (drop_view.next_tick_ms != 0 && now_ms >= drop_view.next_tick_ms) {
      const engine::DropInfo info = engine_.drop_info(drop);
      if (info.state != engine::DropState::countdown || !info.opens_at_ms) {
        drop_view.next_tick_ms = 0;
        continue;
      }
      const TimeMs left_ms = std::max<TimeMs>(0, *info.opens_at_ms - now_ms);
      to_viewers(drop, share(protocol::tick(drop_view.id, left_ms, now_ms)), FrameKind::tick);
      // Next tick on a whole second before the opening instant.
      drop_view.next_tick_ms =
          now_ms +
          (left_ms % tick_interval_ms == 0 ? tick_interval_ms : left_ms % tick_interval_ms);
    }
  }
}

void Sequencer::to_outbox(std::shared_ptr<Outbox> outbox, SharedFrame frame, FrameKind kind,
                          std::uint32_t drop, std::uint64_t tag) {
  Release release;
  release.sequence = config_.ack == AckMode::durable ? engine_.last_sequence() : 0;
  release.outbox = std::move(outbox);
  release.frame = std::move(frame);
  release.kind = kind;
  release.drop = drop;
  release.tag = tag;
  releases_.push_back(std::move(release));
}

void Sequencer::to_viewers(engine::DropIndex drop, SharedFrame frame, FrameKind kind) {
  Release release;
  release.sequence = config_.ack == AckMode::durable ? engine_.last_sequence() : 0;
  release.drop = drop;
  release.frame = std::move(frame);
  release.kind = kind;
  releases_.push_back(std::move(release));
}

void Sequencer::release_durable() {
  const std::uint64_t durable = journal_.durable_sequence();
  while (!releases_.empty() && releases_.front().sequence <= durable) {
    Release& release = releases_.front();
    if (release.host) {
      release.host();
    } else if (release.tag != 0) {
      release.outbox->send_answer(std::move(release.frame), release.kind, release.tag);
    } else if (release.outbox) {
      release.outbox->send(std::move(release.frame), release.kind, release.drop);
    } else {
      for (Fanout* fanout : fanouts_)
        fanout->publish(views_[release.drop].id, release.frame, release.kind, release.drop);
    }
    releases_.pop_front();
  }
  while (!chain_releases_.empty() && chain_releases_.front().sequence <= durable) {
    chain_releases_.front().host();
    chain_releases_.pop_front();
  }
  if (!marks_.empty() && marks_.front().first <= durable) {
    std::string released;
    while (!marks_.empty() && marks_.front().first <= durable) {
      released = std::move(marks_.front().second);
      marks_.pop_front();
    }
    std::lock_guard lock(mutex_);
    released_mark_ = std::move(released);
  }
  metrics_.releases_pending.store(releases_.size() + chain_releases_.size(),
                                  std::memory_order_relaxed);
}

}  // namespace flashsale::gateway
