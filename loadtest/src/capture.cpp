// See capture.hpp.
#include "flashsale/loadtest/capture.hpp"

#include <algorithm>
#include <limits>
#include <optional>
#include <stdexcept>
#include <unordered_map>

namespace flashsale::loadtest {

namespace {

using engine::Event;

// Folds the chosen drop's events into actions as the audit replays them.
class Recorder {
 public:
  explicit Recorder(std::string drop_id) : drop_id_(std::move(drop_id)) {}

  void see(const Event& event) {
    if (const auto* created = std::get_if<engine::DropCreated>(&event.body)) {
      const engine::DropSpec& spec = *created->spec;
      if (drop_id_.empty() && index_ && *index_ != event.drop)
        throw std::runtime_error("the journal holds several drops: name one with --drop");
      if (!drop_id_.empty() && spec.id != drop_id_) return;
      index_ = event.drop;
      drop_ = {std::string(spec.id), std::string(spec.title), spec.price_cents,
               spec.stock,           spec.per_user_limit,     std::uint32_t(spec.hold_ms / 1000),
               spec.waitlist_limit,  spec.admission_window_ms};
      for (const engine::VariantSpec& variant : spec.variants)
        drop_.variants.push_back({std::string(variant.id), std::string(variant.label),
                                  variant.price_cents, variant.list_price_cents, variant.stock});
      drop_.per_variant_limit = spec.per_variant_limit;
      drop_.duration_seconds = static_cast<std::uint32_t>((spec.duration_ms + 999) / 1000);
      duration_ms_ = spec.duration_ms;
      return;
    }
    if (!index_ || event.drop != *index_) return;
    std::visit([&](const auto& body) { on(event.at_ms, body); }, event.body);
  }

  Trace finish(CaptureSummary* summary) && {
    if (!index_)
      throw std::runtime_error(
          drop_id_.empty() ? std::string("the journal holds no drop")
                           : "drop \"" + drop_id_ +
                                 "\" is not in the journal, or was created before its snapshot");
    if (!opens_at_ms_) throw std::runtime_error("drop \"" + drop_.id + "\" never opened");
    Trace trace;
    trace.header.scenario = "capture";
    trace.header.drop = drop_;
    trace.header.countdown_ms = countdown_ms_;
    trace.header.viewers = static_cast<std::uint32_t>(viewers_.size());
    for (Action& action : actions_) action.t_ms -= *opens_at_ms_;
    // Each viewer connects during the countdown's first half, spread by their number, and
    // subscribes at once; earlier still if they acted before that.
    std::vector<std::int64_t> first(viewers_.size(), std::numeric_limits<std::int64_t>::max());
    for (const Action& action : actions_)
      first[action.user] = std::min(first[action.user], action.t_ms);
    const std::int64_t spread = countdown_ms_ / 2;
    for (std::uint32_t user = 0; user < viewers_.size(); ++user) {
      const std::int64_t planned =
          -countdown_ms_ + spread * user / std::max<std::size_t>(1, viewers_.size());
      const std::int64_t at = std::min(planned, first[user] - 20);
      actions_.push_back({at, user, ActionKind::connect, 1, {}});
      actions_.push_back({at + 10, user, ActionKind::subscribe, 1, {}});
    }
    std::stable_sort(actions_.begin(), actions_.end(), [](const Action& a, const Action& b) {
      return a.t_ms != b.t_ms ? a.t_ms < b.t_ms : a.user < b.user;
    });
    trace.actions = std::move(actions_);
    if (summary != nullptr) *summary = summary_;
    return trace;
  }

 private:
  void on(engine::TimeMs at, const engine::CountdownStarted& started) {
    opens_at_ms_ = started.opens_at_ms;
    countdown_ms_ = std::max<engine::TimeMs>(0, started.opens_at_ms - at);
  }
  void on(engine::TimeMs at, const engine::OrderDecided& decided) {
    if (decided.drawn) return;  // the window's draw decides an order that arrived earlier
    const std::uint32_t user = viewer(decided.user);
    if (decided.order != 0) buyer_of_[decided.order] = user;
    actions_.push_back(
        {at, user, ActionKind::order, decided.qty, std::string(decided.client_order_id),
         drop_.variants.empty() ? std::string() : drop_.variants[decided.variant].id});
  }
  void on(engine::TimeMs at, const engine::OrderConfirmed& confirmed) {
    actions_.push_back({at, buyer_of_.at(confirmed.order), ActionKind::confirm, 1, {}});
  }
  void on(engine::TimeMs at, const engine::OrderCancelled& cancelled) {
    if (cancelled.reason == engine::CancelReason::by_buyer)
      actions_.push_back({at, buyer_of_.at(cancelled.order), ActionKind::cancel, 1, {}});
  }
  void on(engine::TimeMs, const engine::Restocked&) { summary_.restocks += 1; }
  void on(engine::TimeMs at, const engine::StateChanged& changed) {
    // The end of the drop's duration closes it again in the replay; only a host's close is lost.
    const bool ended_by_itself =
        duration_ms_ > 0 && opens_at_ms_ && at >= *opens_at_ms_ + duration_ms_;
    if (changed.state == engine::DropState::closed && !ended_by_itself) summary_.closes += 1;
  }
  // Decided by the engine from earlier events: a replay makes them happen again by itself.
  void on(engine::TimeMs, const engine::DropCreated&) {}
  void on(engine::TimeMs, const engine::OrderPromoted&) {}
  void on(engine::TimeMs, const engine::HoldExpired&) {}
  void on(engine::TimeMs, const engine::AdmissionClosed&) {}
  // A stream's events name no drop (their Event::drop is 0, which may be the chosen drop's).
  void on(engine::TimeMs, const engine::StreamCreated&) {}
  void on(engine::TimeMs, const engine::StreamStateChanged&) {}
  void on(engine::TimeMs, const engine::StreamPinned&) {}

  std::uint32_t viewer(std::string_view user) {
    const auto [found, added] =
        viewers_.try_emplace(std::string(user), static_cast<std::uint32_t>(viewers_.size()));
    return found->second;
  }

  std::string drop_id_;
  std::optional<engine::DropIndex> index_;
  DropSetup drop_;
  std::optional<engine::TimeMs> opens_at_ms_;
  engine::TimeMs countdown_ms_ = 0;
  engine::TimeMs duration_ms_ = 0;
  std::unordered_map<std::string, std::uint32_t> viewers_;
  std::unordered_map<engine::OrderNumber, std::uint32_t> buyer_of_;
  std::vector<Action> actions_;
  CaptureSummary summary_;
};

}  // namespace

Trace capture(journal::JournalCopy journal, const std::string& drop_id, CaptureSummary* summary) {
  // A stream that still starts at batch 1 (journal.history = "kept") is replayed from there:
  // the snapshot holds the same state, but not the events that led to it.
  if (!journal.entries.empty() && journal.entries.front().first == "1-0") journal.snapshot.reset();
  Recorder recorder(drop_id);
  const journal::AuditReport report =
      journal::audit(journal, std::nullopt, [&](const Event& event) { recorder.see(event); });
  if (!report.problem.empty())
    throw std::runtime_error("the journal does not verify: " + report.problem);
  return std::move(recorder).finish(summary);
}

}  // namespace flashsale::loadtest
