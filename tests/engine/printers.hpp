// GoogleTest printers: failures show `sold_out`, not `1-byte object <06>`.
#pragma once

#include <ostream>

#include "flashsale/engine/types.hpp"

namespace flashsale::engine {

inline void PrintTo(DropState value, std::ostream* out) {
  *out << to_string(value);
}
inline void PrintTo(StreamState value, std::ostream* out) {
  *out << to_string(value);
}
inline void PrintTo(OrderOutcome value, std::ostream* out) {
  *out << to_string(value);
}
inline void PrintTo(OrderStatus value, std::ostream* out) {
  *out << to_string(value);
}
inline void PrintTo(CancelReason value, std::ostream* out) {
  *out << to_string(value);
}
inline void PrintTo(CommandStatus value, std::ostream* out) {
  *out << to_string(value);
}

}  // namespace flashsale::engine
