// libFuzzer target: whatever bytes sit in a command stream, an answer stream or an updates
// channel (drop updates and edge gates) — another version's, someone else's, a torn write — the
// cluster codec refuses or decodes them without crashing or reading out of bounds (ASan, UBSan),
// and what it decodes encodes to a record that decodes to the same message.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cluster_codec.hpp"

namespace cluster = flashsale::gateway::cluster;

namespace {

template <typename Message, typename Decode>
void round_trip(const Message& message, Decode decode) {
  std::string again;
  cluster::encode(message, again);
  const auto decoded = decode(again);
  if (!decoded || !(*decoded == message)) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (const auto command = cluster::decode_command(input))
    round_trip(*command, [](std::string_view record) { return cluster::decode_command(record); });
  if (const auto answer = cluster::decode_answer(input))
    round_trip(*answer, [](std::string_view record) { return cluster::decode_answer(record); });
  if (const auto update = cluster::decode_update(input);
      update && !std::holds_alternative<cluster::Heartbeat>(*update)) {
    const auto* gate = std::get_if<flashsale::gateway::EdgeGate>(&*update);
    const std::string again = gate != nullptr
                                  ? cluster::encode_gate(*gate)
                                  : cluster::encode_update(std::get<cluster::DropUpdate>(*update));
    const auto decoded = cluster::decode_update(again);
    if (!decoded || !(*decoded == *update)) __builtin_trap();
  }
  return 0;
}
