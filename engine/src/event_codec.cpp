// Event encoding: see event_codec.hpp for the format. Field order here is the format: change
// it only with a new journal version.
#include "flashsale/engine/event_codec.hpp"

#include "drop_book.hpp"
#include "flashsale/engine/engine.hpp"
#include "stream_book.hpp"

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

// A time stored as a delta from `base`, checked to stay within the engine's range (wrapping
// arithmetic: crafted deltas must not overflow).
bool read_time(ByteReader& in, TimeMs base, TimeMs& out) {
  const auto delta = static_cast<std::uint64_t>(in.signed_varint());
  out = static_cast<TimeMs>(static_cast<std::uint64_t>(base) + delta);
  return in.ok() && out >= 0 && out <= time_ms_max;
}

// The body of one event; false when a field is out of its range.
bool decode_body(ByteReader& in, std::uint8_t kind, std::uint8_t version, Event& event);

constexpr std::uint8_t drawn_bit = 0x80;

std::uint32_t read_u32(ByteReader& in) {
  return static_cast<std::uint32_t>(in.bounded(0xffffffffULL));
}

}  // namespace

void encode_spec(const DropSpec& spec, ByteWriter& out) {
  out.string(spec.id);
  out.string(spec.title);
  out.varint(spec.variants.size());
  for (const VariantSpec& variant : spec.variants) {
    out.string(variant.id);
    out.string(variant.label);
    out.signed_varint(variant.price_cents);
    out.signed_varint(variant.list_price_cents);
    out.varint(variant.stock);
  }
  out.signed_varint(spec.price_cents);
  out.signed_varint(spec.list_price_cents);
  out.varint(spec.stock);
  out.varint(spec.per_user_limit);
  out.varint(spec.per_variant_limit);
  out.signed_varint(spec.hold_ms);
  out.varint(spec.waitlist_limit);
  out.signed_varint(spec.admission_window_ms);
  out.string(spec.beneficiary);
  out.string(spec.beneficiary_note);
  out.varint(spec.pledge_bps);
  out.signed_varint(spec.duration_ms);
  out.string(spec.host);
  out.string(spec.stream);
}

DropSpec decode_spec(ByteReader& in, std::uint8_t version) {
  DropSpec spec;
  spec.id = in.string(drop_id_length_max);
  spec.title = in.string(title_length_max);
  const std::uint64_t variants = in.bounded(variants_max);
  for (std::uint64_t count = 0; count < variants && in.ok(); ++count) {
    VariantSpec& variant = spec.variants.emplace_back();
    variant.id = in.string(variant_id_length_max);
    variant.label = in.string(variant_label_length_max);
    variant.price_cents = in.signed_varint();
    variant.list_price_cents = in.signed_varint();
    variant.stock = read_u32(in);
  }
  spec.price_cents = in.signed_varint();
  spec.list_price_cents = in.signed_varint();
  spec.stock = read_u32(in);
  spec.per_user_limit = read_u32(in);
  spec.per_variant_limit = read_u32(in);
  spec.hold_ms = in.signed_varint();
  spec.waitlist_limit = read_u32(in);
  spec.admission_window_ms = in.signed_varint();
  spec.beneficiary = in.string(beneficiary_length_max);
  spec.beneficiary_note = in.string(beneficiary_note_length_max);
  spec.pledge_bps = read_u32(in);
  spec.duration_ms = in.signed_varint();
  if (version >= 5) {
    spec.host = in.string(host_id_length_max);
    spec.stream = in.string(stream_id_length_max);
  }
  return spec;
}

void encode_event(const Event& event, ByteWriter& out, TimeMs& previous_at_ms) {
  out.byte(static_cast<std::uint8_t>(event.body.index()));
  out.signed_varint(event.at_ms - previous_at_ms);
  previous_at_ms = event.at_ms;
  out.varint(event.drop);
  std::visit(
      [&]<typename Body>(const Body& body) {
        if constexpr (std::is_same_v<Body, DropCreated>) {
          encode_spec(*body.spec, out);
        } else if constexpr (std::is_same_v<Body, CountdownStarted>) {
          out.signed_varint(body.opens_at_ms - event.at_ms);
          out.fixed64(body.admission_seed);
        } else if constexpr (std::is_same_v<Body, StateChanged>) {
          out.byte(static_cast<std::uint8_t>(body.state));
        } else if constexpr (std::is_same_v<Body, OrderDecided>) {
          out.string(body.user);
          out.string(body.client_order_id);
          // The top bit of the outcome byte says `drawn`.
          out.byte(static_cast<std::uint8_t>(static_cast<std::uint8_t>(body.outcome) |
                                             (body.drawn ? drawn_bit : 0)));
          out.byte(body.variant);
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
          out.byte(body.variant);
        } else if constexpr (std::is_same_v<Body, AdmissionClosed>) {
          out.varint(body.sold_out);
        } else if constexpr (std::is_same_v<Body, StreamCreated>) {
          out.string(body.spec->id);
          out.string(body.spec->host);
          out.string(body.spec->title);
          out.string(body.spec->video_url);
        } else if constexpr (std::is_same_v<Body, StreamStateChanged>) {
          out.varint(body.stream);
          out.byte(static_cast<std::uint8_t>(body.state));
        } else if constexpr (std::is_same_v<Body, StreamPinned>) {
          out.varint(body.stream);
          out.byte(body.pinned ? 1 : 0);
          out.varint(body.drop);
        }
      },
      event.body);
}

bool decode_event(ByteReader& in, std::uint64_t sequence, TimeMs& previous_at_ms, Event& event,
                  std::uint8_t version) {
  const std::uint8_t kind = in.byte();
  event.sequence = sequence;
  const bool ok = version >= event_format_version_min && version <= event_format_version &&
                  read_time(in, previous_at_ms, event.at_ms) &&
                  (event.drop = read_u32(in), in.ok()) && decode_body(in, kind, version, event) &&
                  (!is_stream_event(event.body) || event.drop == 0);
  if (!ok) {
    in.reject();
    return false;
  }
  previous_at_ms = event.at_ms;
  return true;
}

namespace {

// The stream events, kinds 10-12 (from version 5).
bool decode_stream_body(ByteReader& in, std::uint8_t kind, Event& event) {
  switch (kind) {
    case 10: {
      StreamSpec spec;
      spec.id = in.string(stream_id_length_max);
      spec.host = in.string(host_id_length_max);
      spec.title = in.string(stream_title_length_max);
      spec.video_url = in.string(video_url_length_max);
      event.body = StreamCreated{std::make_shared<const StreamSpec>(spec)};
      return in.ok() && detail::validate_stream(spec) == nullptr;
    }
    case 11: {
      StreamStateChanged changed;
      changed.stream = read_u32(in);
      if (!read_enum(in, StreamState::ended, changed.state)) return false;
      event.body = changed;
      return changed.state != StreamState::scheduled;  // a stream is created scheduled
    }
    case 12: {
      StreamPinned pinned;
      pinned.stream = read_u32(in);
      const std::uint8_t flag = in.byte();
      pinned.pinned = flag == 1;
      pinned.drop = read_u32(in);
      event.body = pinned;
      return in.ok() && flag <= 1 && (pinned.pinned || pinned.drop == 0);
    }
    default:
      return false;
  }
}

bool decode_body(ByteReader& in, std::uint8_t kind, std::uint8_t version, Event& event) {
  switch (kind) {
    case 0: {
      const DropSpec spec = decode_spec(in, version);
      event.body = DropCreated{std::make_shared<const DropSpec>(spec)};
      return in.ok() && detail::validate_spec(spec) == nullptr;
    }
    case 1: {
      CountdownStarted started;
      if (!read_time(in, event.at_ms, started.opens_at_ms)) return false;
      started.admission_seed = in.fixed64();
      event.body = started;
      return in.ok();
    }
    case 2: {
      StateChanged changed;
      if (!read_enum(in, DropState::closed, changed.state)) return false;
      event.body = changed;
      return true;
    }
    case 3: {
      OrderDecided decided;
      decided.user = in.string(user_length_max);
      decided.client_order_id = in.string(client_order_id_length_max);
      const std::uint8_t outcome = in.byte();
      decided.drawn = (outcome & drawn_bit) != 0;
      decided.outcome = static_cast<OrderOutcome>(outcome & ~drawn_bit);
      if (!in.ok() || (outcome & ~drawn_bit) > static_cast<std::uint8_t>(OrderOutcome::pending))
        return false;
      decided.variant = in.byte();
      decided.qty = read_u32(in);
      decided.order = read_u32(in);
      TimeMs hold = 0;
      if (!read_time(in, event.at_ms, hold)) return false;
      if (decided.outcome == OrderOutcome::reserved) decided.hold_expires_at_ms = hold;
      decided.waitlist_position = read_u32(in);
      decided.stock_left = read_u32(in);
      event.body = decided;
      const bool accepted =
          decided.outcome == OrderOutcome::reserved || decided.outcome == OrderOutcome::waitlisted;
      const bool drawable = decided.outcome == OrderOutcome::sold_out || accepted;
      return in.ok() && is_recorded(decided.outcome) && (!decided.drawn || drawable) &&
             is_valid_name(decided.user, user_length_max) &&
             is_valid_name(decided.client_order_id, client_order_id_length_max) &&
             decided.qty >= 1 && decided.qty <= order_qty_max && accepted == (decided.order != 0);
    }
    case 4: {
      OrderPromoted promoted;
      promoted.order = read_u32(in);
      if (!read_time(in, event.at_ms, promoted.hold_expires_at_ms)) return false;
      promoted.stock_left = read_u32(in);
      event.body = promoted;
      return in.ok() && promoted.order != 0;
    }
    case 5:
      event.body = OrderConfirmed{read_u32(in)};
      return in.ok() && std::get<OrderConfirmed>(event.body).order != 0;
    case 6: {
      OrderCancelled cancelled;
      cancelled.order = read_u32(in);
      if (!read_enum(in, CancelReason::drop_closed, cancelled.reason)) return false;
      cancelled.stock_left = read_u32(in);
      event.body = cancelled;
      return in.ok() && cancelled.order != 0;
    }
    case 7: {
      HoldExpired expired;
      expired.order = read_u32(in);
      expired.stock_left = read_u32(in);
      event.body = expired;
      return in.ok() && expired.order != 0;
    }
    case 8: {
      Restocked restocked;
      restocked.added = read_u32(in);
      restocked.stock_total = read_u32(in);
      restocked.stock_left = read_u32(in);
      restocked.variant = in.byte();
      event.body = restocked;
      return in.ok() && restocked.added >= 1;
    }
    case 9:
      event.body = AdmissionClosed{read_u32(in)};
      return in.ok();
    default:
      return version >= 5 && decode_stream_body(in, kind, event);
  }
  static_assert(std::variant_size_v<EventBody> == 13, "a new event kind needs a decoder case");
}

}  // namespace

}  // namespace flashsale::engine
