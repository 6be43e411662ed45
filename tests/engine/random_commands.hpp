// Random command streams for the engine's model and determinism tests.
//
// The generator favours collisions: few drops, a small crowd of users and client order ids,
// small stock, short holds and uneven time steps, so limits, repeats, expiries, waitlist
// promotions, restocks and closes all happen often. Some drops are created in streams (ids
// `s<N>~<name>`, host `h<N>`), which go live, pin them and end. Commands own their strings so a
// stream can be recorded and replayed.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "flashsale/engine/engine.hpp"

namespace flashsale::engine::testing {

struct Command {
  enum class Kind {
    create,
    countdown,
    restock,
    close,
    place,
    confirm,
    cancel,
    advance,
    create_stream,
    go_live,
    pin,
    end_stream,
  };
  Kind kind = Kind::advance;
  TimeMs now_ms = 0;
  std::string drop;    // pin: the drop to pin, empty to unpin
  std::string stream;  // create: the drop's (empty: in none); stream commands
  std::string host;    // create, create_stream
  std::string user;
  std::string client_order_id;
  std::uint32_t qty = 0;  // place: qty; restock: added; create: stock
  std::uint32_t per_user_limit = 1;
  std::uint32_t waitlist_limit = 0;
  TimeMs duration_ms = 0;            // create: hold; countdown: opens in
  TimeMs admission_window_ms = 0;    // create
  std::uint32_t pledge_bps = 0;      // create
  std::uint64_t admission_seed = 0;  // countdown
  OrderNumber order = 0;
  std::string variant;  // place, restock
  // create: the named variants' stock ("v0", "v1", ...; none: one unnamed variant of `qty`)
  std::vector<std::uint32_t> variant_stock;
  bool duplicate_variant = false;       // create: two variants named alike (refused)
  std::uint32_t per_variant_limit = 0;  // create
  TimeMs sale_ms = 0;                   // create: the sale's duration
  std::optional<TimeMs> opens_at_ms;    // create, countdown: an absolute opening instant
};

// The price of the generated variant at `position` (the unnamed one is position 0).
inline std::int64_t variant_price(std::size_t position) {
  return 100 + 50 * static_cast<std::int64_t>(position);
}

// What a command answered, flattened for comparison.
struct Answer {
  OrderResult order;      // place
  ActionResult action;    // confirm, cancel
  CommandResult command;  // host commands
};

inline Answer execute(Engine& engine, const Command& command, Events& events) {
  Answer answer;
  switch (command.kind) {
    case Command::Kind::create: {
      const std::string title = "title " + command.drop;
      DropSpec spec{command.drop,
                    title,
                    100,
                    command.qty,
                    command.per_user_limit,
                    command.duration_ms,
                    command.waitlist_limit};
      spec.admission_window_ms = command.admission_window_ms;
      spec.per_variant_limit = command.per_variant_limit;
      spec.duration_ms = command.sale_ms;
      std::vector<std::string> ids;  // owns the ids while the engine copies them
      for (std::size_t position = 0; position < command.variant_stock.size(); ++position)
        ids.push_back("v" + std::to_string(command.duplicate_variant ? 0 : position));
      if (!ids.empty()) {
        spec.price_cents = 0;
        spec.stock = 0;
        for (std::size_t position = 0; position < ids.size(); ++position) {
          spec.variants.push_back({.id = ids[position],
                                   .label = "size",
                                   .price_cents = variant_price(position),
                                   .list_price_cents = variant_price(position) + 20,
                                   .stock = command.variant_stock[position]});
        }
      }
      if (command.pledge_bps > 0) {
        spec.beneficiary = "Mountain school";
        spec.beneficiary_note = "books for a village school";
        spec.pledge_bps = command.pledge_bps;
      }
      spec.host = command.host;
      spec.stream = command.stream;
      answer.command = engine.create_drop(spec, command.now_ms, events, command.opens_at_ms,
                                          command.admission_seed);
      break;
    }
    case Command::Kind::countdown:
      answer.command =
          command.opens_at_ms
              ? engine.start_countdown_at(command.drop, *command.opens_at_ms, command.now_ms,
                                          events, command.admission_seed)
              : engine.start_countdown(command.drop, command.duration_ms, command.now_ms, events,
                                       command.admission_seed);
      break;
    case Command::Kind::restock:
      answer.command =
          engine.restock(command.drop, command.qty, command.now_ms, events, command.variant);
      break;
    case Command::Kind::close:
      answer.command = engine.close(command.drop, command.now_ms, events);
      break;
    case Command::Kind::place:
      answer.order = engine.place_order(
          {command.drop, command.user, command.client_order_id, command.qty, command.variant},
          command.now_ms, events);
      break;
    case Command::Kind::confirm:
      answer.action =
          engine.confirm({command.drop, command.order, command.user}, command.now_ms, events);
      break;
    case Command::Kind::cancel:
      answer.action =
          engine.cancel({command.drop, command.order, command.user}, command.now_ms, events);
      break;
    case Command::Kind::advance:
      engine.advance_time(command.now_ms, events);
      break;
    case Command::Kind::create_stream: {
      const std::string title = "live " + command.stream;
      const std::string url = "https://video.example/" + command.stream;
      answer.command =
          engine.create_stream({command.stream, command.host, title, url}, command.now_ms, events);
      break;
    }
    case Command::Kind::go_live:
      answer.command = engine.go_live(command.stream, command.now_ms, events);
      break;
    case Command::Kind::pin:
      answer.command = engine.pin(command.stream, command.drop, command.now_ms, events);
      break;
    case Command::Kind::end_stream:
      answer.command = engine.end_stream(command.stream, command.now_ms, events);
      break;
  }
  return answer;
}

class CommandGenerator {
 public:
  explicit CommandGenerator(std::uint64_t seed, TimeMs start_ms = 1'700'000'000'000)
      : random_(seed), now_ms_(start_ms) {}

  // The next command; `engine` is only read, to aim confirms and cancels at real orders.
  Command next(const Engine& engine) {
    Command command;
    now_ms_ += step();
    command.now_ms = now_ms_ - (chance(0.02) ? pick(0, 3'000) : 0);  // now and then a stale clock
    command.drop = drop_name();
    const int roll = static_cast<int>(pick(0, 999));
    if (roll < 12) {
      command.kind = Command::Kind::create;
      command.qty = static_cast<std::uint32_t>(pick(0, 12));
      command.per_user_limit = static_cast<std::uint32_t>(pick(1, 3));
      command.waitlist_limit = chance(0.3) ? 0 : static_cast<std::uint32_t>(pick(1, 6));
      command.duration_ms = pick(1'000, 20'000);
      if (chance(0.05)) command.duration_ms = 10;  // invalid hold
      // A third of the drops collect their first moments for a draw (admission window).
      if (chance(0.33)) command.admission_window_ms = pick(1, 3'000);
      // Half of them are charity drops, with odd pledges so that rounding matters.
      if (chance(0.5)) command.pledge_bps = static_cast<std::uint32_t>(pick(1, 10'000));
      // Half sell named variants, each with its own small stock and price.
      if (chance(0.5)) {
        command.variant_stock.resize(static_cast<std::size_t>(pick(1, 4)));
        for (auto& stock : command.variant_stock) stock = static_cast<std::uint32_t>(pick(0, 5));
        command.duplicate_variant = command.variant_stock.size() > 1 && chance(0.03);
      }
      if (chance(0.4)) command.per_variant_limit = static_cast<std::uint32_t>(pick(1, 3));
      // Some end by themselves; a few of those too soon for their admission window (refused).
      if (chance(0.4)) command.sale_ms = pick(1'000, 20'000);
      if (chance(0.02)) command.sale_ms = 500;
      // Some are scheduled at creation, now and then in the past (opens now) or too far ahead.
      if (chance(0.2)) {
        command.opens_at_ms = now_ms_ + pick(-2'000, 8'000);
        if (chance(0.05)) command.opens_at_ms = now_ms_ + countdown_ms_max + pick(1, 1'000);
        command.admission_seed = random_();
      }
      // A drop in a stream has its host, now and then another (refused) or no stream named
      // (refused); some drops in no stream have a host too.
      command.stream = std::string(stream_of_drop(command.drop));
      if (!command.stream.empty()) {
        command.host = chance(0.95) ? host_of(command.stream) : "h9";
        if (chance(0.03)) command.stream.clear();
      } else if (chance(0.3)) {
        command.host = "h0";
      }
    } else if (roll < 30) {
      command.kind = Command::Kind::countdown;
      command.duration_ms = chance(0.3) ? 0 : pick(0, 8'000);
      if (chance(0.03)) command.duration_ms = -5;
      if (chance(0.3)) command.opens_at_ms = now_ms_ + pick(-2'000, 8'000);
      command.admission_seed = random_();
    } else if (roll < 42) {
      command.kind = Command::Kind::restock;
      command.qty = static_cast<std::uint32_t>(pick(0, 4));
      command.variant = variant_name(engine, command.drop);
    } else if (roll < 45) {
      command.kind = Command::Kind::close;
    } else if (roll < 60) {
      command.stream = chance(0.03) ? "s9" : "s" + std::to_string(pick(0, 3));
      if (roll < 49) {
        command.kind = Command::Kind::create_stream;
        command.host = chance(0.03) ? "" : host_of(command.stream);  // no host: refused
      } else if (roll < 52) {
        command.kind = Command::Kind::go_live;
      } else if (roll < 59 || chance(0.7)) {  // an end is rare: a stream cannot come back
        command.kind = Command::Kind::pin;
        // Mostly one of its own drops; now and then none (unpin), or another's.
        command.drop = chance(0.2) ? "" : drop_name();
        if (chance(0.7)) command.drop = command.stream + (chance(0.5) ? "~a" : "~b");
      } else {
        command.kind = Command::Kind::end_stream;
      }
    } else if (roll < 700) {
      command.kind = Command::Kind::place;
      command.user = "u" + std::to_string(pick(0, 40));
      command.client_order_id = "c" + std::to_string(pick(0, 30));
      command.qty = static_cast<std::uint32_t>(pick(1, 3));
      if (chance(0.01)) command.qty = 0;
      if (chance(0.005)) command.user.clear();
      command.variant = variant_name(engine, command.drop);
    } else if (roll < 960) {
      command.kind = chance(0.7) ? Command::Kind::confirm : Command::Kind::cancel;
      aim_at_order(engine, command);
    } else {
      command.kind = Command::Kind::advance;
      now_ms_ += pick(0, 15'000);
      command.now_ms = now_ms_;
    }
    return command;
  }

 private:
  TimeMs pick(TimeMs low, TimeMs high) {
    return std::uniform_int_distribution<TimeMs>(low, high)(random_);
  }
  bool chance(double probability) { return std::bernoulli_distribution(probability)(random_); }
  TimeMs step() { return chance(0.5) ? 0 : pick(1, chance(0.9) ? 300 : 5'000); }
  // Four drops in no stream, eight in four streams.
  std::string drop_name() {
    if (chance(0.02)) return "ghost";
    if (chance(0.6)) return "d" + std::to_string(pick(0, 3));
    return "s" + std::to_string(pick(0, 3)) + (chance(0.5) ? "~a" : "~b");
  }
  static std::string host_of(const std::string& stream) { return "h" + stream.substr(1); }
  // Mostly one the drop sells; now and then none or one it does not sell.
  std::string variant_name(const Engine& engine, const std::string& drop) {
    const auto index = engine.find_drop(drop);
    const std::size_t named = index ? engine.drop_info(*index).spec.variants.size() : 0;
    if (chance(0.03)) return "v9";
    if (named == 0 || chance(0.03)) return {};
    return "v" + std::to_string(pick(0, static_cast<TimeMs>(named) - 1));
  }

  void aim_at_order(const Engine& engine, Command& command) {
    const auto drop = engine.find_drop(command.drop);
    const std::uint32_t orders = drop ? engine.drop_info(*drop).orders : 0;
    command.order = static_cast<OrderNumber>(pick(0, orders + 1));
    command.user = "u" + std::to_string(pick(0, 24));
    if (drop && command.order >= 1 && command.order <= orders && chance(0.85)) {
      command.user = std::string(engine.order_info(*drop, command.order)->user);
    }
  }

  std::mt19937_64 random_;
  TimeMs now_ms_;
};

// The number of commands a randomized suite runs in total; FLASHSALE_RANDOM_COMMANDS
// overrides it (the sanitizer preset runs fewer).
inline std::uint64_t random_commands_total(std::uint64_t fallback) {
  if (const char* text = std::getenv("FLASHSALE_RANDOM_COMMANDS"))
    return std::strtoull(text, nullptr, 10);
  return fallback;
}

// The first seed of a randomized suite: FLASHSALE_SEED to reproduce a failure, else random.
inline std::uint64_t random_base_seed() {
  if (const char* text = std::getenv("FLASHSALE_SEED")) return std::strtoull(text, nullptr, 10);
  return std::random_device{}();
}

}  // namespace flashsale::engine::testing
