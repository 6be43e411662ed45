// The engine's vocabulary: identifiers, states and outcome codes.
//
// Every enum here has a stable machine-readable name (`to_string`) that the wire protocol, the
// journal and the metrics reuse, so renaming one is a protocol change. Enumerator values are
// stored in the journal: append new ones at the end, never renumber.
#pragma once

#include <cstdint>
#include <string_view>

namespace flashsale::engine {

// Engine time: Unix milliseconds, supplied by the caller with every command. The engine never
// reads a clock, so a recorded command sequence replays to the same state.
using TimeMs = std::int64_t;
// Engine times are 0 ..time_ms_max (2^50 ms, some 35,000 years): far from overflow however
// deadlines are added to them.
inline constexpr TimeMs time_ms_max = TimeMs{1} << 50;

// A drop's position in creation order. Stable for the engine's lifetime and reproduced exactly
// by replay, so events can name drops compactly.
using DropIndex = std::uint32_t;

// An order's number within its drop, starting at 1 in the order the engine accepted them. The
// pair (drop id, order number) names an order; the gateway spells it as a string.
using OrderNumber = std::uint32_t;

// A stream's position in creation order, stable and reproduced by replay like a DropIndex.
using StreamIndex = std::uint32_t;

// A drop's lifecycle. `sold_out` and `open` alternate as units run out and come back
// (cancels, expiries, restocks); `closed` is final.
enum class DropState : std::uint8_t {
  scheduled = 0,  // created, no opening time yet
  countdown = 1,  // opening time set, not reached
  open = 2,
  sold_out = 3,
  closed = 4,
};

// A live stream's lifecycle: scheduled -> live -> ended, or scheduled -> ended; `ended` is
// final and closes every drop of the stream.
enum class StreamState : std::uint8_t {
  scheduled = 0,
  live = 1,
  ended = 2,
};

// The answer to one order attempt, in order of precedence: the first that applies is given.
// `reserved`, `waitlisted`, `sold_out`, `limit_exceeded` and `closed` are recorded against the
// buyer's (user, client_order_id) and returned unchanged on every retry; `invalid` and
// `not_open` are not recorded, so a retry is a fresh attempt.
enum class OrderOutcome : std::uint8_t {
  invalid = 0,         // bad qty, unknown drop, malformed user or client_order_id
  closed = 1,          // the drop was closed before this order arrived
  not_open = 2,        // before the opening instant: an early click never wins
  limit_exceeded = 3,  // the buyer's held + confirmed + waitlisted units would pass the limit
  reserved = 4,        // units held for the buyer until hold_expires_at_ms
  waitlisted = 5,      // queued first-in-first-out for units that come back
  sold_out = 6,        // no units and no room on the waitlist
  unavailable = 7,     // the drop's order table is full (EngineLimits); not recorded
  // Collected inside the drop's admission window: decided, in a random order, when the window
  // closes (an OrderDecided with `drawn` set, or sold_out by AdmissionClosed). Recorded: a
  // retry is answered `pending` until then, and the final outcome after.
  pending = 8,
  // The order names a variant the drop does not have, or names none on a drop with several.
  // Not recorded: the same client_order_id may be retried with a valid variant.
  unknown_variant = 9,
};

// Where an accepted order (reserved or waitlisted) stands now.
enum class OrderStatus : std::uint8_t {
  waitlisted = 0,
  reserved = 1,   // held, waiting for payment
  confirmed = 2,  // paid; final
  cancelled = 3,  // by the buyer, or a waitlist entry dropped when its drop closed
  expired = 4,    // the hold ran out before payment
};

// Why a cancellation happened.
enum class CancelReason : std::uint8_t {
  by_buyer = 0,
  drop_closed = 1,  // waitlist entries are cancelled when their drop closes
};

// The answer to a host command or to a buyer's confirm/cancel.
enum class CommandStatus : std::uint8_t {
  ok = 0,
  invalid_argument = 1,  // a field is out of its documented range
  already_exists = 2,    // create: a drop (stream) with this id exists
  unknown_drop = 3,
  wrong_state = 4,    // the drop, order or stream is not in a state that allows the command
  limit_reached = 5,  // create: a limit of EngineLimits (drops, streams, drops per stream)
  unknown_order = 6,
  not_owner = 7,        // confirm/cancel by someone other than the buyer
  unknown_variant = 8,  // restock: the drop has no such variant, or several and none was named
  unknown_stream = 9,
};

std::string_view to_string(DropState state) noexcept;
std::string_view to_string(StreamState state) noexcept;
std::string_view to_string(OrderOutcome outcome) noexcept;
std::string_view to_string(OrderStatus status) noexcept;
std::string_view to_string(CancelReason reason) noexcept;
std::string_view to_string(CommandStatus status) noexcept;

// True for the outcomes that are remembered per (user, client_order_id).
constexpr bool is_recorded(OrderOutcome outcome) noexcept {
  switch (outcome) {
    case OrderOutcome::closed:
    case OrderOutcome::limit_exceeded:
    case OrderOutcome::reserved:
    case OrderOutcome::waitlisted:
    case OrderOutcome::sold_out:
    case OrderOutcome::pending:
      return true;
    case OrderOutcome::invalid:
    case OrderOutcome::not_open:
    case OrderOutcome::unavailable:
    case OrderOutcome::unknown_variant:
      return false;
  }
  return false;
}

// Identifier rules, shared by the engine and every edge that validates input early.
inline constexpr std::size_t drop_id_length_max = 64;
inline constexpr std::size_t user_length_max = 64;
inline constexpr std::size_t client_order_id_length_max = 64;
inline constexpr std::size_t title_length_max = 200;
inline constexpr std::size_t beneficiary_length_max = 100;
inline constexpr std::size_t beneficiary_note_length_max = 300;
inline constexpr std::uint32_t pledge_bps_max = 10'000;
inline constexpr std::size_t variants_max = 64;
inline constexpr std::size_t variant_id_length_max = 32;
inline constexpr std::size_t variant_label_length_max = 100;
inline constexpr std::size_t stream_id_length_max = 32;
inline constexpr std::size_t host_id_length_max = 32;
inline constexpr std::size_t stream_title_length_max = 200;
inline constexpr std::size_t video_url_length_max = 500;

// What a drop's spec and the host commands may ask for: the engine refuses anything outside
// with `invalid_argument`; edges use the same bounds to refuse early with the same numbers.
inline constexpr std::int64_t price_cents_max = 1'000'000'000'000;
inline constexpr std::int64_t charity_price_cents_max = 1'000'000'000;  // 64-bit amounts raised
inline constexpr std::uint32_t stock_max = 1'000'000'000;  // also a drop's total, all variants
inline constexpr std::uint32_t per_user_limit_max = 1'000'000;
inline constexpr std::uint32_t waitlist_limit_max = 10'000'000;
inline constexpr TimeMs hold_ms_min = 1'000;
inline constexpr TimeMs hold_ms_max = TimeMs{24} * 3600 * 1000;
inline constexpr TimeMs countdown_ms_max = TimeMs{7} * 24 * 3600 * 1000;
inline constexpr TimeMs admission_window_ms_max = 60'000;
// An automatic end: the sale runs 1 s .. 7 days from its opening instant (a week-long charity
// drive is the longest sale the product serves).
inline constexpr TimeMs sale_duration_ms_min = 1'000;
inline constexpr TimeMs sale_duration_ms_max = TimeMs{7} * 24 * 3600 * 1000;

// A drop id is 1-64 characters of [A-Za-z0-9_.-] — or, for a drop created in stream S, `S~N`:
// exactly one '~' between a valid stream id and 1+ characters of [A-Za-z0-9_.-], 64 in all.
bool is_valid_drop_id(std::string_view id) noexcept;
// The stream part of a drop id (before its '~'); empty for a drop id without one.
std::string_view stream_of_drop(std::string_view drop_id) noexcept;

// Stream ids and host ids are 1-32 characters of [A-Za-z0-9_.-], not all dots.
bool is_valid_stream_id(std::string_view id) noexcept;
bool is_valid_host_id(std::string_view id) noexcept;

// A variant id is 1-32 characters of [A-Za-z0-9_.-] ("42", "red-M", "2.5kg").
bool is_valid_variant_id(std::string_view id) noexcept;

// A user or client_order_id is 1-64 bytes of printable ASCII (0x21-0x7e): what a token or a
// JSON string can carry without escaping surprises in logs and journals.
bool is_valid_name(std::string_view name, std::size_t length_max) noexcept;

}  // namespace flashsale::engine
