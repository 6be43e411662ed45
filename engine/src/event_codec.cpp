// Event encoding: see event_codec.hpp for the format. Field order here is the format: change
// it only with a new journal version.
#include "flashsale/engine/event_codec.hpp"

#include <type_traits>

namespace flashsale::engine {

namespace {

template <typename Enum>
bool read_enum(ByteReader& in, Enum last, Enum& value) {
  const std::uint8_t raw = in.byte();
  if (!in.ok() || raw > static_cast<std::uint8_t>(last)) return false;
  value = static_cast<Enum>(raw);
  return true;
}

std::uint32_t read_u32(ByteReader& in) {
  return static_cast<std::uint32_t>(in.bounded(0xffffffffULL));
}

}  // namespace

void encode_event(const Event& event, ByteWriter& out, TimeMs& previous_at_ms) {
  out.byte(static_cast<std::uint8_t>(event.body.index()));
  out.signed_varint(event.at_ms - previous_at_ms);
  previous_at_ms = event.at_ms;
  out.varint(event.drop);
  std::visit(
      [&]<typename Body>(const Body& body) {
        if constexpr (std::is_same_v<Body, DropCreated>) {
          out.string(body.spec.id);
          out.string(body.spec.title);
          out.signed_varint(body.spec.price_cents);
          out.varint(body.spec.stock);
          out.varint(body.spec.per_user_limit);
          out.signed_varint(body.spec.hold_ms);
          out.varint(body.spec.waitlist_limit);
        } else if constexpr (std::is_same_v<Body, CountdownStarted>) {
          out.signed_varint(body.opens_at_ms - event.at_ms);
        } else if constexpr (std::is_same_v<Body, StateChanged>) {
          out.byte(static_cast<std::uint8_t>(body.state));
        } else if constexpr (std::is_same_v<Body, OrderDecided>) {
          out.string(body.user);
          out.string(body.client_order_id);
          out.byte(static_cast<std::uint8_t>(body.outcome));
          out.varint(body.qty);
          out.varint(body.order);
          out.signed_varint(
              body.outcome == OrderOutcome::reserved ? body.hold_expires_at_ms - event.at_ms : 0);
          out.varint(body.waitlist_position);
          out.varint(body.stock_left);
        } else if constexpr (std::is_same_v<Body, OrderPromoted>) {
          out.varint(body.order);
          out.signed_varint(body.hold_expires_at_ms - event.at_ms);
          out.varint(body.stock_left);
        } else if constexpr (std::is_same_v<Body, OrderConfirmed>) {
          out.varint(body.order);
        } else if constexpr (std::is_same_v<Body, OrderCancelled>) {
          out.varint(body.order);
          out.byte(static_cast<std::uint8_t>(body.reason));
          out.varint(body.stock_left);
        } else if constexpr (std::is_same_v<Body, HoldExpired>) {
          out.varint(body.order);
          out.varint(body.stock_left);
        } else if constexpr (std::is_same_v<Body, Restocked>) {
          out.varint(body.added);
          out.varint(body.stock_total);
          out.varint(body.stock_left);
        }
      },
      event.body);
}

bool decode_event(ByteReader& in, std::uint64_t sequence, TimeMs& previous_at_ms, Event& event) {
  const std::uint8_t kind = in.byte();
  event.sequence = sequence;
  event.at_ms = previous_at_ms + in.signed_varint();
  previous_at_ms = event.at_ms;
  event.drop = read_u32(in);
  if (!in.ok()) return false;
  switch (kind) {
    case 0: {
      DropSpec spec;
      spec.id = in.string(drop_id_length_max);
      spec.title = in.string(title_length_max);
      spec.price_cents = in.signed_varint();
      spec.stock = read_u32(in);
      spec.per_user_limit = read_u32(in);
      spec.hold_ms = in.signed_varint();
      spec.waitlist_limit = read_u32(in);
      event.body = DropCreated{spec};
      break;
    }
    case 1:
      event.body = CountdownStarted{event.at_ms + in.signed_varint()};
      break;
    case 2: {
      StateChanged changed;
      if (!read_enum(in, DropState::closed, changed.state)) return false;
      event.body = changed;
      break;
    }
    case 3: {
      OrderDecided decided;
      decided.user = in.string(user_length_max);
      decided.client_order_id = in.string(client_order_id_length_max);
      if (!read_enum(in, OrderOutcome::unavailable, decided.outcome)) return false;
      decided.qty = read_u32(in);
      decided.order = read_u32(in);
      const TimeMs hold = in.signed_varint();
      if (decided.outcome == OrderOutcome::reserved)
        decided.hold_expires_at_ms = event.at_ms + hold;
      decided.waitlist_position = read_u32(in);
      decided.stock_left = read_u32(in);
      event.body = decided;
      break;
    }
    case 4: {
      OrderPromoted promoted;
      promoted.order = read_u32(in);
      promoted.hold_expires_at_ms = event.at_ms + in.signed_varint();
      promoted.stock_left = read_u32(in);
      event.body = promoted;
      break;
    }
    case 5:
      event.body = OrderConfirmed{read_u32(in)};
      break;
    case 6: {
      OrderCancelled cancelled;
      cancelled.order = read_u32(in);
      if (!read_enum(in, CancelReason::drop_closed, cancelled.reason)) return false;
      cancelled.stock_left = read_u32(in);
      event.body = cancelled;
      break;
    }
    case 7: {
      HoldExpired expired;
      expired.order = read_u32(in);
      expired.stock_left = read_u32(in);
      event.body = expired;
      break;
    }
    case 8: {
      Restocked restocked;
      restocked.added = read_u32(in);
      restocked.stock_total = read_u32(in);
      restocked.stock_left = read_u32(in);
      event.body = restocked;
      break;
    }
    default:
      return false;
  }
  static_assert(std::variant_size_v<EventBody> == 9, "a new event kind needs a decoder case");
  return in.ok();
}

}  // namespace flashsale::engine
