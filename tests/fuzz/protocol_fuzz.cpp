// libFuzzer target: whatever bytes a client sends, the message decoder, the order id parser and
// the token checker answer without crashing, leaking or reading out of bounds (built with
// ASan and UBSan), and a frame that parses names only things that fit their limits.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "flashsale/gateway/order_ids.hpp"
#include "flashsale/gateway/protocol.hpp"
#include "flashsale/gateway/tokens.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  static flashsale::gateway::protocol::ParseBuffer buffer;
  flashsale::gateway::protocol::ClientMessage message;
  if (!flashsale::gateway::protocol::parse(input, buffer, message)) {
    if (message.client_order_id.size() > 64 || message.drop.size() > 64 || message.qty > 1'000'000)
      __builtin_trap();
  }
  static const flashsale::gateway::OrderIds order_ids(flashsale::gateway::OrderIds::Key{7});
  (void)order_ids.parse(input);
  (void)flashsale::gateway::verify_token("fuzz-secret-0123456789", input, 0, 86'400);
  return 0;
}
