// The engine against a deliberately simple reference model: long random command streams, every
// answer compared, every drop's counters and every stream's state, pin and drops compared after
// every command, and the full invariant scan run often. The model keeps no indexes, lazy queues or
// heaps — plain maps and vectors scanned in full — so where the two disagree, the engine's
// machinery is the suspect.
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "flashsale/engine/engine.hpp"
#include "printers.hpp"
#include "random_commands.hpp"

namespace flashsale::engine {
namespace {

using testing::Command;

struct ModelOrder {
  std::string user;
  std::string client_order_id;
  std::uint32_t qty = 0;
  OrderStatus status = OrderStatus::waitlisted;
  TimeMs hold_expires_at_ms = 0;
  std::uint32_t waitlist_position = 0;
  std::size_t variant = 0;
};

struct ModelDecision {
  OrderOutcome outcome;
  std::uint32_t qty;
  OrderNumber order;
  std::size_t variant;
};

struct ModelVariant {
  std::string id;  // empty: the unnamed variant
  std::int64_t price_cents = 0;
  std::uint32_t total = 0;
  std::uint32_t left = 0;
};

struct ModelDrop {
  std::uint32_t per_user_limit = 1;
  std::uint32_t per_variant_limit = 0;
  std::uint32_t waitlist_limit = 0;
  TimeMs sale_ms = 0;  // the sale's duration; 0 = until closed
  std::vector<ModelVariant> variants;
  TimeMs hold_ms = 0;
  TimeMs window_ms = 0;  // admission window
  std::uint32_t pledge_bps = 0;
  std::uint64_t seed = 0;
  bool drawn = false;
  std::vector<std::pair<std::string, std::string>> pending;  // collected, in arrival order
  DropState state = DropState::scheduled;
  TimeMs opens_at_ms = 0;
  std::vector<ModelOrder> orders;  // order number = index + 1
  std::map<std::pair<std::string, std::string>, ModelDecision> decisions;

  std::uint32_t total() const {
    std::uint32_t units = 0;
    for (const auto& variant : variants) units += variant.total;
    return units;
  }
  std::uint32_t left() const {
    std::uint32_t units = 0;
    for (const auto& variant : variants) units += variant.left;
    return units;
  }
  // Units in `status`, of one variant or (npos) all.
  std::uint32_t count(OrderStatus status, std::size_t variant = std::string::npos) const {
    std::uint32_t units = 0;
    for (const auto& order : orders) {
      if (variant == std::string::npos || order.variant == variant)
        units += order.status == status ? order.qty : 0;
    }
    return units;
  }
  std::uint32_t waiting_orders(std::size_t variant = std::string::npos) const {
    return static_cast<std::uint32_t>(
        std::count_if(orders.begin(), orders.end(), [variant](const auto& order) {
          return order.status == OrderStatus::waitlisted &&
                 (variant == std::string::npos || order.variant == variant);
        }));
  }
  std::optional<std::size_t> find_variant(const std::string& id) const {
    if (id.empty()) return variants.size() == 1 ? std::optional<std::size_t>(0) : std::nullopt;
    for (std::size_t position = 0; position < variants.size(); ++position)
      if (variants[position].id == id) return position;
    return std::nullopt;
  }
  std::optional<TimeMs> closes_at() const {
    if (sale_ms == 0 || state == DropState::scheduled) return std::nullopt;
    return opens_at_ms + sale_ms;
  }
  bool collecting(TimeMs now_ms) const {
    return window_ms > 0 && !drawn && (state == DropState::open || state == DropState::sold_out) &&
           now_ms < opens_at_ms + window_ms;
  }
  // The user's units, in one variant or (npos) all.
  std::uint32_t units_of(const std::string& user, std::size_t variant = std::string::npos) const {
    const auto in = [variant](std::size_t of) {
      return variant == std::string::npos || of == variant;
    };
    std::uint32_t units = 0;
    for (const auto& [key, decision] : decisions)
      if (decision.outcome == OrderOutcome::pending && key.first == user && in(decision.variant))
        units += decision.qty;
    for (const auto& order : orders) {
      const bool counts = order.status == OrderStatus::waitlisted ||
                          order.status == OrderStatus::reserved ||
                          order.status == OrderStatus::confirmed;
      if (counts && order.user == user && in(order.variant)) units += order.qty;
    }
    return units;
  }
  void follow_stock() {
    if (state == DropState::open && left() == 0) state = DropState::sold_out;
    if (state == DropState::sold_out && left() > 0) state = DropState::open;
  }
  // The window's draw, written plainly: the whole arrival order shuffled front to back with the
  // documented generator (mt19937_64 from the seed, bounds by multiply-shift), then every order
  // decided in that order as if it had just arrived.
  void draw(TimeMs now_ms) {
    std::vector<std::pair<std::string, std::string>> order = pending;
    std::mt19937_64 random(seed);
    for (std::size_t index = 0; index < order.size(); ++index) {
      __extension__ using Wide = unsigned __int128;
      const auto offset =
          static_cast<std::size_t>((static_cast<Wide>(random()) * (order.size() - index)) >> 64);
      std::swap(order[index], order[index + offset]);
    }
    for (const auto& key : order) {
      ModelDecision& decision = decisions.at(key);
      const auto next_order = static_cast<OrderNumber>(orders.size() + 1);
      const std::size_t v = decision.variant;
      if (waiting_orders(v) == 0 && variants[v].left >= decision.qty) {
        decision = {OrderOutcome::reserved, decision.qty, next_order, v};
        variants[v].left -= decision.qty;
        orders.push_back(
            {key.first, key.second, decision.qty, OrderStatus::reserved, now_ms + hold_ms, 0, v});
      } else if (waiting_orders(v) < waitlist_limit) {
        decision = {OrderOutcome::waitlisted, decision.qty, next_order, v};
        orders.push_back({key.first, key.second, decision.qty, OrderStatus::waitlisted, 0,
                          waiting_orders(v) + 1, v});
      } else {
        decision.outcome = OrderOutcome::sold_out;
      }
    }
    pending.clear();
    drawn = true;
    follow_stock();
  }

  // Units came back to a variant: its oldest waiting order takes them if they suffice, and so on.
  void serve_waitlist(std::size_t variant, TimeMs now_ms) {
    if (state == DropState::open || state == DropState::sold_out) {
      for (auto& order : orders) {
        if (order.status != OrderStatus::waitlisted || order.variant != variant) continue;
        if (order.qty > variants[variant].left) break;
        variants[variant].left -= order.qty;
        order.status = OrderStatus::reserved;
        order.hold_expires_at_ms = now_ms + hold_ms;
      }
    }
    follow_stock();
  }

  // Holds due by `until_ms` expire, earliest first, each letting its variant's waitlist in.
  void expire_holds(TimeMs until_ms, TimeMs now_ms) {
    while (true) {
      ModelOrder* due = nullptr;
      for (auto& order : orders) {
        if (order.status == OrderStatus::reserved && order.hold_expires_at_ms <= until_ms &&
            (due == nullptr || order.hold_expires_at_ms < due->hold_expires_at_ms))
          due = &order;
      }
      if (due == nullptr) break;
      due->status = OrderStatus::expired;
      variants[due->variant].left += due->qty;
      serve_waitlist(due->variant, now_ms);
    }
  }

  void close(TimeMs now_ms) {
    if (!pending.empty()) draw(now_ms);  // they came before the close
    state = DropState::closed;
    for (auto& order : orders)
      if (order.status == OrderStatus::waitlisted) order.status = OrderStatus::cancelled;
  }
};

struct ModelStream {
  std::string host;
  StreamState state = StreamState::scheduled;
  std::string pinned;              // a drop id; empty: none
  std::vector<std::string> drops;  // in creation order
};

class Model {
 public:
  void advance(TimeMs now_ms) {
    now_ms_ = std::max(now_ms_, now_ms);
    for (auto& [id, drop] : drops_) {
      if (drop.state == DropState::countdown && drop.opens_at_ms <= now_ms_) {
        drop.state = DropState::open;
        drop.follow_stock();
      }
      if (!drop.pending.empty() && drop.opens_at_ms + drop.window_ms <= now_ms_) drop.draw(now_ms_);
      // The sale's end comes after the holds that expired before it.
      const auto closes_at = drop.closes_at();
      if (closes_at && *closes_at <= now_ms_ &&
          (drop.state == DropState::open || drop.state == DropState::sold_out)) {
        drop.expire_holds(*closes_at, now_ms_);
        drop.close(now_ms_);
      }
      drop.expire_holds(now_ms_, now_ms_);
    }
  }

  static bool valid_create(const Command& command) {
    if (command.duplicate_variant) return false;
    if (std::string(stream_of_drop(command.drop)) != command.stream) return false;
    if (command.per_variant_limit > command.per_user_limit) return false;
    if (command.duration_ms < 1'000) return false;
    if (command.sale_ms != 0 &&
        (command.sale_ms < 1'000 || command.sale_ms <= command.admission_window_ms))
      return false;
    return true;
  }

  testing::Answer execute(const Command& command) {
    advance(command.now_ms);
    testing::Answer answer;
    ModelDrop* drop = drops_.contains(command.drop) ? &drops_[command.drop] : nullptr;
    switch (command.kind) {
      case Command::Kind::create:
        if (!valid_create(command) ||
            (command.opens_at_ms && *command.opens_at_ms > now_ms_ + countdown_ms_max)) {
          answer.command.status = CommandStatus::invalid_argument;
        } else if (drop != nullptr) {
          answer.command.status = CommandStatus::already_exists;
        } else if (const CommandStatus refused = refused_by_stream(command);
                   refused != CommandStatus::ok) {
          answer.command.status = refused;
        } else {
          if (!command.stream.empty()) streams_[command.stream].drops.push_back(command.drop);
          ModelDrop& created = drops_[command.drop];
          created.per_user_limit = command.per_user_limit;
          created.per_variant_limit = command.per_variant_limit;
          created.waitlist_limit = command.waitlist_limit;
          created.hold_ms = command.duration_ms;
          created.window_ms = command.admission_window_ms;
          created.pledge_bps = command.pledge_bps;
          created.sale_ms = command.sale_ms;
          if (command.variant_stock.empty()) {
            created.variants.push_back({"", testing::variant_price(0), command.qty, command.qty});
          }
          for (std::size_t position = 0; position < command.variant_stock.size(); ++position) {
            const std::uint32_t stock = command.variant_stock[position];
            created.variants.push_back(
                {"v" + std::to_string(position), testing::variant_price(position), stock, stock});
          }
          if (command.opens_at_ms) {
            created.state = DropState::countdown;
            created.opens_at_ms = std::max(*command.opens_at_ms, now_ms_);
            created.seed = command.admission_seed;
            advance(now_ms_);
          }
        }
        break;
      case Command::Kind::countdown: {
        const TimeMs opens_at =
            command.opens_at_ms ? *command.opens_at_ms : now_ms_ + command.duration_ms;
        if ((!command.opens_at_ms && command.duration_ms < 0) ||
            opens_at > now_ms_ + countdown_ms_max) {
          answer.command.status = CommandStatus::invalid_argument;
        } else if (drop == nullptr) {
          answer.command.status = CommandStatus::unknown_drop;
        } else if (drop->state != DropState::scheduled && drop->state != DropState::countdown) {
          answer.command.status = CommandStatus::wrong_state;
        } else {
          drop->state = DropState::countdown;
          drop->opens_at_ms = std::max(opens_at, now_ms_);
          drop->seed = command.admission_seed;
          advance(now_ms_);
        }
        break;
      }
      case Command::Kind::restock:
        if (command.qty == 0) {
          answer.command.status = CommandStatus::invalid_argument;
        } else if (drop == nullptr) {
          answer.command.status = CommandStatus::unknown_drop;
        } else if (!drop->find_variant(command.variant)) {
          answer.command.status = CommandStatus::unknown_variant;
        } else if (drop->state == DropState::closed) {
          answer.command.status = CommandStatus::wrong_state;
        } else {
          const std::size_t v = *drop->find_variant(command.variant);
          drop->variants[v].total += command.qty;
          drop->variants[v].left += command.qty;
          drop->serve_waitlist(v, now_ms_);
        }
        break;
      case Command::Kind::close:
        if (drop == nullptr) {
          answer.command.status = CommandStatus::unknown_drop;
        } else if (drop->state == DropState::closed) {
          answer.command.status = CommandStatus::wrong_state;
        } else {
          drop->close(now_ms_);
        }
        break;
      case Command::Kind::place:
        answer.order = place(drop, command);
        break;
      case Command::Kind::confirm:
      case Command::Kind::cancel:
        answer.action = act(drop, command);
        break;
      case Command::Kind::advance:
        break;
      case Command::Kind::create_stream:
      case Command::Kind::go_live:
      case Command::Kind::pin:
      case Command::Kind::end_stream:
        answer.command.status = stream_command(command);
        break;
    }
    return answer;
  }

  const std::map<std::string, ModelDrop>& drops() const { return drops_; }
  const std::map<std::string, ModelStream>& streams() const { return streams_; }

 private:
  CommandStatus refused_by_stream(const Command& command) const {
    if (command.stream.empty()) return CommandStatus::ok;
    const auto found = streams_.find(command.stream);
    if (found == streams_.end()) return CommandStatus::unknown_stream;
    if (found->second.host != command.host) return CommandStatus::invalid_argument;
    if (found->second.state == StreamState::ended) return CommandStatus::wrong_state;
    return CommandStatus::ok;
  }

  CommandStatus stream_command(const Command& command) {
    const auto found = streams_.find(command.stream);
    ModelStream* stream = found == streams_.end() ? nullptr : &found->second;
    if (command.kind == Command::Kind::create_stream) {
      if (command.host.empty()) return CommandStatus::invalid_argument;
      if (stream != nullptr) return CommandStatus::already_exists;
      streams_[command.stream].host = command.host;
      return CommandStatus::ok;
    }
    if (stream == nullptr) return CommandStatus::unknown_stream;
    switch (command.kind) {
      case Command::Kind::go_live:
        if (stream->state != StreamState::scheduled) return CommandStatus::wrong_state;
        stream->state = StreamState::live;
        return CommandStatus::ok;
      case Command::Kind::pin:
        if (!command.drop.empty() && std::find(stream->drops.begin(), stream->drops.end(),
                                               command.drop) == stream->drops.end())
          return CommandStatus::unknown_drop;
        if (stream->state == StreamState::ended) return CommandStatus::wrong_state;
        stream->pinned = command.drop;
        return CommandStatus::ok;
      default:  // end_stream
        if (stream->state == StreamState::ended) return CommandStatus::wrong_state;
        for (const std::string& id : stream->drops) {
          ModelDrop& ended = drops_.at(id);
          if (ended.state != DropState::closed) ended.close(now_ms_);
        }
        stream->pinned.clear();
        stream->state = StreamState::ended;
        return CommandStatus::ok;
    }
  }

  OrderResult place(ModelDrop* drop, const Command& command) {
    OrderResult result;
    if (command.qty < 1 || command.user.empty() || drop == nullptr) return result;  // invalid
    const auto key = std::make_pair(command.user, command.client_order_id);
    if (const auto found = drop->decisions.find(key); found != drop->decisions.end()) {
      result.repeated = true;
      describe(*drop, found->second, result);
      return result;
    }
    const auto found_variant = drop->find_variant(command.variant);
    if (!found_variant) {
      result.outcome = OrderOutcome::unknown_variant;
      return result;
    }
    const std::size_t v = *found_variant;
    if (drop->state == DropState::scheduled || drop->state == DropState::countdown) {
      result.outcome = OrderOutcome::not_open;
      return result;
    }
    ModelDecision decision{OrderOutcome::sold_out, command.qty, 0, v};
    const auto next_order = static_cast<OrderNumber>(drop->orders.size() + 1);
    if (drop->state == DropState::closed) {
      decision.outcome = OrderOutcome::closed;
    } else if (drop->units_of(command.user) + command.qty > drop->per_user_limit ||
               (drop->per_variant_limit > 0 &&
                drop->units_of(command.user, v) + command.qty > drop->per_variant_limit)) {
      decision.outcome = OrderOutcome::limit_exceeded;
    } else if (drop->collecting(now_ms_)) {
      decision.outcome = OrderOutcome::pending;
      drop->pending.push_back(key);
    } else if (drop->waiting_orders(v) == 0 && drop->variants[v].left >= command.qty) {
      decision = {OrderOutcome::reserved, command.qty, next_order, v};
      drop->variants[v].left -= command.qty;
      drop->orders.push_back({command.user, command.client_order_id, command.qty,
                              OrderStatus::reserved, now_ms_ + drop->hold_ms, 0, v});
      drop->follow_stock();
    } else if (drop->waiting_orders(v) < drop->waitlist_limit) {
      decision = {OrderOutcome::waitlisted, command.qty, next_order, v};
      drop->orders.push_back({command.user, command.client_order_id, command.qty,
                              OrderStatus::waitlisted, 0, drop->waiting_orders(v) + 1, v});
    }
    drop->decisions.emplace(key, decision);
    describe(*drop, decision, result);
    return result;
  }

  static void describe(const ModelDrop& drop, const ModelDecision& decision, OrderResult& result) {
    result.outcome = decision.outcome;
    result.qty = decision.qty;
    result.order = decision.order;
    result.variant = static_cast<std::uint8_t>(decision.variant);
    if (decision.order != 0) {
      const ModelOrder& order = drop.orders[decision.order - 1];
      result.status = order.status;
      result.waitlist_position = order.waitlist_position;
      if (decision.outcome == OrderOutcome::reserved)
        result.hold_expires_at_ms = order.hold_expires_at_ms;
    }
  }

  ActionResult act(ModelDrop* drop, const Command& command) {
    ActionResult result;
    if (drop == nullptr) {
      result.status = CommandStatus::unknown_drop;
      return result;
    }
    if (command.order < 1 || command.order > drop->orders.size()) {
      result.status = CommandStatus::unknown_order;
      return result;
    }
    ModelOrder& order = drop->orders[command.order - 1];
    result.client_order_id = order.client_order_id;
    if (order.user != command.user) {
      result.status = CommandStatus::not_owner;
      return result;
    }
    if (command.kind == Command::Kind::confirm) {
      if (order.status == OrderStatus::reserved)
        order.status = OrderStatus::confirmed;
      else if (order.status != OrderStatus::confirmed)
        result.status = CommandStatus::wrong_state;
    } else if (order.status == OrderStatus::reserved || order.status == OrderStatus::waitlisted) {
      if (order.status == OrderStatus::reserved) drop->variants[order.variant].left += order.qty;
      order.status = OrderStatus::cancelled;
      drop->serve_waitlist(order.variant, now_ms_);
    } else if (order.status != OrderStatus::cancelled) {
      result.status = CommandStatus::wrong_state;
    }
    result.order_status = order.status;
    return result;
  }

  std::map<std::string, ModelDrop> drops_;
  std::map<std::string, ModelStream> streams_;
  TimeMs now_ms_ = 0;
};

void expect_same_answer(const Command& command, const testing::Answer& engine,
                        const testing::Answer& model) {
  switch (command.kind) {
    case Command::Kind::place:
      ASSERT_EQ(engine.order.outcome, model.order.outcome);
      ASSERT_EQ(engine.order.repeated, model.order.repeated);
      ASSERT_EQ(engine.order.order, model.order.order);
      if (is_recorded(engine.order.outcome)) {
        ASSERT_EQ(engine.order.variant, model.order.variant);
      }
      if (engine.order.order != 0) {
        ASSERT_EQ(engine.order.status, model.order.status);
        ASSERT_EQ(engine.order.hold_expires_at_ms, model.order.hold_expires_at_ms);
        ASSERT_EQ(engine.order.waitlist_position, model.order.waitlist_position);
      }
      break;
    case Command::Kind::confirm:
    case Command::Kind::cancel:
      ASSERT_EQ(engine.action.status, model.action.status);
      if (engine.action.status != CommandStatus::unknown_drop &&
          engine.action.status != CommandStatus::unknown_order) {
        ASSERT_EQ(engine.action.client_order_id, model.action.client_order_id);
      }
      if (engine.action.status == CommandStatus::ok ||
          engine.action.status == CommandStatus::wrong_state) {
        ASSERT_EQ(engine.action.order_status, model.action.order_status);
      }
      break;
    default:
      ASSERT_EQ(engine.command.status, model.command.status);
  }
}

void expect_same_streams(const Engine& engine, const Model& model) {
  ASSERT_EQ(engine.stream_count(), model.streams().size());
  for (const auto& [id, stream] : model.streams()) {
    const auto index = engine.find_stream(id);
    ASSERT_TRUE(index.has_value()) << id;
    const StreamInfo info = engine.stream_info(*index);
    ASSERT_EQ(info.state, stream.state) << id;
    ASSERT_EQ(info.spec.host, stream.host) << id;
    ASSERT_EQ(info.pinned ? engine.drop_info(*info.pinned).spec.id : "", stream.pinned) << id;
    std::vector<std::string> drops;
    for (const DropIndex drop : info.drops) drops.emplace_back(engine.drop_info(drop).spec.id);
    ASSERT_EQ(drops, stream.drops) << id;
  }
}

void expect_same_state(const Engine& engine, const Model& model, bool every_order) {
  ASSERT_NO_FATAL_FAILURE(expect_same_streams(engine, model));
  ASSERT_EQ(engine.drop_count(), model.drops().size());
  for (const auto& [id, drop] : model.drops()) {
    const auto index = engine.find_drop(id);
    ASSERT_TRUE(index.has_value()) << id;
    const DropInfo info = engine.drop_info(*index);
    ASSERT_EQ(info.state, drop.state) << id;
    ASSERT_EQ(info.stock_total, drop.total()) << id;
    ASSERT_EQ(info.stock_left, drop.left()) << id;
    ASSERT_EQ(info.closes_at_ms, drop.closes_at()) << id;
    ASSERT_EQ(info.variants.size(), drop.variants.size()) << id;
    for (std::size_t v = 0; v < drop.variants.size(); ++v) {
      const VariantInfo& variant = info.variants[v];
      ASSERT_EQ(variant.id, drop.variants[v].id) << id;
      ASSERT_EQ(variant.stock_total, drop.variants[v].total) << id << " " << v;
      ASSERT_EQ(variant.stock_left, drop.variants[v].left) << id << " " << v;
      ASSERT_EQ(variant.held, drop.count(OrderStatus::reserved, v)) << id << " " << v;
      ASSERT_EQ(variant.sold, drop.count(OrderStatus::confirmed, v)) << id << " " << v;
      ASSERT_EQ(variant.waitlist_orders, drop.waiting_orders(v)) << id << " " << v;
      // The invariant per variant, in the model's own terms.
      ASSERT_EQ(drop.variants[v].left + drop.count(OrderStatus::reserved, v) +
                    drop.count(OrderStatus::confirmed, v),
                drop.variants[v].total);
    }
    ASSERT_EQ(info.held, drop.count(OrderStatus::reserved)) << id;
    ASSERT_EQ(info.sold, drop.count(OrderStatus::confirmed)) << id;
    ASSERT_EQ(info.waitlist_orders, drop.waiting_orders()) << id;
    ASSERT_EQ(info.orders, drop.orders.size()) << id;
    ASSERT_EQ(info.decisions, drop.decisions.size()) << id;
    ASSERT_EQ(info.pending_orders, drop.pending.size()) << id;
    // The amount raised, by hand: the value of every confirmed order at its variant's price,
    // the pledge taken of the sum and rounded down once.
    std::uint64_t confirmed_value = 0;
    std::set<std::string> supporters;
    std::uint32_t confirmed_orders = 0;
    for (const ModelOrder& order : drop.orders) {
      if (order.status != OrderStatus::confirmed) continue;
      confirmed_value += std::uint64_t{order.qty} * drop.variants[order.variant].price_cents;
      supporters.insert(order.user);
      confirmed_orders += 1;
    }
    ASSERT_EQ(info.sales_cents, static_cast<std::int64_t>(confirmed_value)) << id;
    ASSERT_EQ(info.raised_cents,
              static_cast<std::int64_t>(confirmed_value * drop.pledge_bps / 10'000))
        << id;
    ASSERT_EQ(info.supporters, supporters.size()) << id;
    ASSERT_EQ(info.orders_confirmed, confirmed_orders) << id;
    // The invariant in the model's own terms, independent of the engine's counters.
    ASSERT_EQ(drop.left() + drop.count(OrderStatus::reserved) + drop.count(OrderStatus::confirmed),
              drop.total());
    if (!every_order) continue;
    for (OrderNumber number = 1; number <= drop.orders.size(); ++number) {
      const auto order = engine.order_info(*index, number);
      ASSERT_EQ(order->status, drop.orders[number - 1].status) << id << " order " << number;
      ASSERT_EQ(order->user, drop.orders[number - 1].user);
    }
  }
}

TEST(EngineModel, RandomCommandStreamsMatchTheReferenceModel) {
  const std::uint64_t total = testing::random_commands_total(2'000'000);
  const std::uint64_t per_seed = 20'000;
  const std::uint64_t base_seed = testing::random_base_seed();
  std::cout << "EngineModel: base seed " << base_seed << " (FLASHSALE_SEED=" << base_seed
            << " reproduces), " << total << " commands\n";
  for (std::uint64_t run = 0; run * per_seed < total; ++run) {
    const std::uint64_t seed = base_seed + run;
    SCOPED_TRACE("seed " + std::to_string(seed));
    Engine engine;
    Model model;
    Events events;
    testing::CommandGenerator generator(seed);
    for (std::uint64_t step = 0; step < per_seed; ++step) {
      const Command command = generator.next(engine);
      const testing::Answer engine_answer = testing::execute(engine, command, events);
      const testing::Answer model_answer = model.execute(command);
      SCOPED_TRACE("step " + std::to_string(step));
      ASSERT_NO_FATAL_FAILURE(expect_same_answer(command, engine_answer, model_answer));
      const bool full = step % 512 == 0 || step + 1 == per_seed;
      ASSERT_NO_FATAL_FAILURE(expect_same_state(engine, model, full));
      if (full) engine.check_invariants();
      if (events.size() > 4096) events.clear();
    }
  }
}

}  // namespace
}  // namespace flashsale::engine
