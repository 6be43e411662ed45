// libFuzzer target: whatever bytes a client sends, the message decoder, the order id parser,
// the PROXY header parser and the token checker answer without crashing, leaking or reading out of
// bounds (built with ASan and UBSan), and a frame that parses names only things that fit their
// limits.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "flashsale/gateway/order_ids.hpp"
#include "flashsale/gateway/protocol.hpp"
#include "flashsale/gateway/tokens.hpp"
#include "proxy_protocol.hpp"

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
  // A header is never longer than what it was given, and all of it is decided by then.
  const auto proxy = flashsale::gateway::proxy_protocol::parse({data, size});
  if (const auto* header = std::get_if<flashsale::gateway::proxy_protocol::Header>(&proxy);
      header != nullptr && header->length > size)
    __builtin_trap();
  if (size >= flashsale::gateway::proxy_protocol::header_bytes_max &&
      std::holds_alternative<flashsale::gateway::proxy_protocol::NeedMore>(proxy))
    __builtin_trap();
  (void)flashsale::gateway::verify_token("fuzz-secret-0123456789", input, 0, 86'400);
  return 0;
}
