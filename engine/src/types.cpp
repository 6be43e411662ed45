// Stable names for the engine's enums (the protocol and the journal spell them this way) and
// the identifier rules every edge shares.
#include "flashsale/engine/types.hpp"

#include <algorithm>

namespace flashsale::engine {

std::string_view to_string(DropState state) noexcept {
  switch (state) {
    case DropState::scheduled:
      return "scheduled";
    case DropState::countdown:
      return "countdown";
    case DropState::open:
      return "open";
    case DropState::sold_out:
      return "sold_out";
    case DropState::closed:
      return "closed";
  }
  return "unknown";
}

std::string_view to_string(StreamState state) noexcept {
  switch (state) {
    case StreamState::scheduled:
      return "scheduled";
    case StreamState::live:
      return "live";
    case StreamState::ended:
      return "ended";
  }
  return "unknown";
}

std::string_view to_string(OrderOutcome outcome) noexcept {
  switch (outcome) {
    case OrderOutcome::invalid:
      return "invalid";
    case OrderOutcome::closed:
      return "closed";
    case OrderOutcome::not_open:
      return "not_open";
    case OrderOutcome::limit_exceeded:
      return "limit_exceeded";
    case OrderOutcome::reserved:
      return "reserved";
    case OrderOutcome::waitlisted:
      return "waitlisted";
    case OrderOutcome::sold_out:
      return "sold_out";
    case OrderOutcome::unavailable:
      return "unavailable";
    case OrderOutcome::pending:
      return "pending";
    case OrderOutcome::unknown_variant:
      return "unknown_variant";
  }
  return "unknown";
}

std::string_view to_string(OrderStatus status) noexcept {
  switch (status) {
    case OrderStatus::waitlisted:
      return "waitlisted";
    case OrderStatus::reserved:
      return "reserved";
    case OrderStatus::confirmed:
      return "confirmed";
    case OrderStatus::cancelled:
      return "cancelled";
    case OrderStatus::expired:
      return "expired";
  }
  return "unknown";
}

std::string_view to_string(CancelReason reason) noexcept {
  switch (reason) {
    case CancelReason::by_buyer:
      return "by_buyer";
    case CancelReason::drop_closed:
      return "drop_closed";
  }
  return "unknown";
}

std::string_view to_string(CommandStatus status) noexcept {
  switch (status) {
    case CommandStatus::ok:
      return "ok";
    case CommandStatus::invalid_argument:
      return "invalid_argument";
    case CommandStatus::already_exists:
      return "already_exists";
    case CommandStatus::unknown_drop:
      return "unknown_drop";
    case CommandStatus::wrong_state:
      return "wrong_state";
    case CommandStatus::limit_reached:
      return "limit_reached";
    case CommandStatus::unknown_order:
      return "unknown_order";
    case CommandStatus::not_owner:
      return "not_owner";
    case CommandStatus::unknown_variant:
      return "unknown_variant";
    case CommandStatus::unknown_stream:
      return "unknown_stream";
  }
  return "unknown";
}

namespace {

bool is_id(std::string_view id, std::size_t length_max) noexcept {
  if (id.empty() || id.size() > length_max) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

}  // namespace

bool is_valid_drop_id(std::string_view id) noexcept {
  const std::size_t tilde = id.find('~');
  if (tilde == std::string_view::npos) return is_id(id, drop_id_length_max);
  return id.size() <= drop_id_length_max && is_valid_stream_id(id.substr(0, tilde)) &&
         is_id(id.substr(tilde + 1), drop_id_length_max);
}

std::string_view stream_of_drop(std::string_view drop_id) noexcept {
  const std::size_t tilde = drop_id.find('~');
  return tilde == std::string_view::npos ? std::string_view{} : drop_id.substr(0, tilde);
}

// Streams and hosts are newer than drops, so no journal holds one named "." or "..": those are
// paths, not names, and are refused here (a drop's are refused at the edge).
bool is_valid_stream_id(std::string_view id) noexcept {
  return is_id(id, stream_id_length_max) && id.find_first_not_of('.') != std::string_view::npos;
}

bool is_valid_host_id(std::string_view id) noexcept {
  return is_id(id, host_id_length_max) && id.find_first_not_of('.') != std::string_view::npos;
}

bool is_valid_variant_id(std::string_view id) noexcept {
  return is_id(id, variant_id_length_max);
}

bool is_valid_name(std::string_view name, std::size_t length_max) noexcept {
  if (name.empty() || name.size() > length_max) return false;
  // Branch-free over the bytes (it runs twice per order): a byte outside 0x21..0x7e wraps
  // below zero or lands above 0x5d after subtracting 0x21.
  unsigned outside = 0;
  for (const char c : name) outside |= static_cast<unsigned char>(c - 0x21) > 0x5d ? 1u : 0u;
  return outside == 0;
}

}  // namespace flashsale::engine
