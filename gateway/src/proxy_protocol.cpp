// See proxy_protocol.hpp. Version 1 is scanned field by field with each field checked as far as
// it has arrived, so a wrong byte is refused at once and a line cut anywhere is a valid prefix;
// version 2 is checked byte by byte in header order, for the same reason.
#include "proxy_protocol.hpp"

#include <algorithm>
#include <array>

namespace flashsale::gateway::proxy_protocol {
namespace {

using Bytes = std::span<const std::uint8_t>;

constexpr std::string_view v1_prefix = "PROXY ";
constexpr std::array<std::uint8_t, 12> v2_signature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                       0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

// True when `received` agrees with `expected` over the bytes both have.
template <typename Expected>
bool agrees_with(Bytes received, const Expected& expected) {
  const std::size_t count = std::min(received.size(), expected.size());
  return std::equal(
      received.begin(), received.begin() + static_cast<std::ptrdiff_t>(count), expected.begin(),
      [](std::uint8_t byte, auto wanted) { return byte == static_cast<std::uint8_t>(wanted); });
}

// ---- Version 1: "PROXY TCP4 <source> <destination> <source port> <destination port>\r\n" ----

enum class FieldKind : std::uint8_t { protocol, ipv4, ipv6, port };

constexpr std::string_view protocol_tcp4 = "TCP4";
constexpr std::string_view protocol_tcp6 = "TCP6";
constexpr std::string_view protocol_unknown = "UNKNOWN";
// The longest address texts: "255.255.255.255", and an IPv6 address ending in a dotted IPv4 one
// (INET6_ADDRSTRLEN less its terminating zero).
constexpr std::size_t ipv4_chars_max = 15;
constexpr std::size_t ipv6_chars_max = 45;
constexpr std::size_t port_chars_max = 5;
constexpr std::uint32_t port_max = 65'535;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_hex_digit(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// True when `text` is a field of `kind` or the beginning of one. Every check here holds for the
// prefixes of what it accepts, so it can judge a field that is still arriving.
bool could_start(FieldKind kind, std::string_view text) {
  switch (kind) {
    case FieldKind::protocol:
      return protocol_tcp4.starts_with(text) || protocol_tcp6.starts_with(text) ||
             protocol_unknown.starts_with(text);
    case FieldKind::ipv4:
      return text.size() <= ipv4_chars_max &&
             std::all_of(text.begin(), text.end(), [](char c) { return is_digit(c) || c == '.'; });
    case FieldKind::ipv6:
      // No '%': a scope id means nothing from a proxy, and Boost would look the name up.
      return text.size() <= ipv6_chars_max && std::all_of(text.begin(), text.end(), [](char c) {
               return is_hex_digit(c) || c == ':' || c == '.';
             });
    case FieldKind::port: {
      if (text.size() > port_chars_max) return false;
      if (text.size() > 1 && text.front() == '0') return false;
      std::uint32_t port = 0;
      for (const char c : text) {
        if (!is_digit(c)) return false;
        port = port * 10 + static_cast<std::uint32_t>(c - '0');
      }
      return port <= port_max;
    }
  }
  return false;
}

enum class Scan : std::uint8_t { complete, out_of_bytes, malformed };

struct Field {
  Scan scan = Scan::out_of_bytes;
  std::string_view text;  // when complete: never empty
  char terminator = 0;    // when complete: ' ' or '\r'
};

constexpr Field field_malformed = {Scan::malformed, {}, 0};
constexpr Field field_out_of_bytes = {Scan::out_of_bytes, {}, 0};

// Reads the field at the start of `rest`, up to the space or CR that ends it.
Field scan_field(std::string_view rest, FieldKind kind) {
  const std::size_t end = rest.find_first_of(" \r");
  const std::string_view text = rest.substr(0, end);
  if (!could_start(kind, text)) return field_malformed;
  if (end == std::string_view::npos) return field_out_of_bytes;
  if (text.empty()) return field_malformed;  // two spaces, or a space before the CR
  return {Scan::complete, text, rest[end]};
}

// The address a complete ipv4 or ipv6 field names, or nullopt when it names none. The field is
// copied out with a terminating zero because the string_view overloads of make_address allocate
// a std::string to do the same.
std::optional<boost::asio::ip::address> decode_address(FieldKind kind, std::string_view text) {
  std::array<char, ipv6_chars_max + 1> terminated{};
  if (text.size() >= terminated.size()) return std::nullopt;
  std::copy(text.begin(), text.end(), terminated.begin());
  boost::system::error_code error;
  if (kind == FieldKind::ipv4) {
    const boost::asio::ip::address_v4 address =
        boost::asio::ip::make_address_v4(terminated.data(), error);
    if (error) return std::nullopt;
    return boost::asio::ip::address(address);
  }
  const boost::asio::ip::address_v6 address =
      boost::asio::ip::make_address_v6(terminated.data(), error);
  if (error) return std::nullopt;
  return boost::asio::ip::address(address);
}

// "PROXY UNKNOWN" ends at the first CRLF; what comes before it is ignored, as the spec says.
// `from` is the position just after "UNKNOWN".
Result parse_v1_unknown(std::string_view window, std::size_t from, Result out_of_bytes) {
  const std::size_t crlf = window.find("\r\n", from);
  if (crlf == std::string_view::npos) return out_of_bytes;
  return Header{.length = crlf + 2, .source = std::nullopt};
}

// The four fields after "TCP4 " or "TCP6 ", starting at `from`, then the LF after their CR.
Result parse_v1_tcp(std::string_view window, std::size_t from, FieldKind address_kind,
                    Result out_of_bytes) {
  const std::array<FieldKind, 4> kinds = {address_kind, address_kind, FieldKind::port,
                                          FieldKind::port};
  std::optional<boost::asio::ip::address> source;
  std::size_t at = from;
  for (std::size_t index = 0; index < kinds.size(); ++index) {
    const Field field = scan_field(window.substr(at), kinds[index]);
    if (field.scan == Scan::malformed) return Error::malformed;
    if (field.scan == Scan::out_of_bytes) return out_of_bytes;
    const bool last = index + 1 == kinds.size();
    if (field.terminator != (last ? '\r' : ' ')) return Error::malformed;
    if (kinds[index] != FieldKind::port) {
      const std::optional<boost::asio::ip::address> address =
          decode_address(kinds[index], field.text);
      if (!address) return Error::malformed;
      if (index == 0) source = address;
    }
    at += field.text.size() + 1;
  }
  if (at == window.size()) return out_of_bytes;
  if (window[at] != '\n') return Error::malformed;  // a CR must be followed by its LF
  return Header{.length = at + 1, .source = source};
}

// `received` starts with "PROXY ".
Result parse_v1(Bytes received) {
  const std::string_view window(reinterpret_cast<const char*>(received.data()),
                                std::min(received.size(), v1_bytes_max));
  // Running out of bytes before the line ends asks for more, unless 107 are already here.
  Result out_of_bytes = window.size() < v1_bytes_max ? Result(NeedMore{}) : Result(Error::too_long);
  const Field protocol = scan_field(window.substr(v1_prefix.size()), FieldKind::protocol);
  if (protocol.scan == Scan::malformed) return Error::malformed;
  if (protocol.scan == Scan::out_of_bytes) return out_of_bytes;
  const std::size_t after_protocol = v1_prefix.size() + protocol.text.size();
  if (protocol.text == protocol_unknown) {
    return parse_v1_unknown(window, after_protocol, out_of_bytes);
  }
  if (protocol.terminator != ' ') return Error::malformed;  // "TCP4\r" names no addresses
  if (protocol.text == protocol_tcp4) {
    return parse_v1_tcp(window, after_protocol + 1, FieldKind::ipv4, out_of_bytes);
  }
  if (protocol.text == protocol_tcp6) {
    return parse_v1_tcp(window, after_protocol + 1, FieldKind::ipv6, out_of_bytes);
  }
  return Error::malformed;  // a prefix of a protocol name, ended early ("TCP ")
}

// ---- Version 2: signature, version and command, family and transport, length, addresses ----

constexpr std::size_t v2_version_command_at = 12;
constexpr std::size_t v2_family_transport_at = 13;
constexpr std::size_t v2_length_at = 14;
constexpr std::uint8_t v2_version = 2;
constexpr std::uint8_t command_local = 0;
constexpr std::uint8_t command_proxy = 1;
constexpr std::uint8_t family_unspec = 0;
constexpr std::uint8_t family_inet = 1;
constexpr std::uint8_t family_inet6 = 2;
constexpr std::uint8_t family_unix = 3;
constexpr std::uint8_t transport_unspec = 0;
constexpr std::uint8_t transport_stream = 1;
// Source and destination address, then source and destination port.
constexpr std::size_t inet_address_bytes = 4 + 4 + 2 + 2;
constexpr std::size_t inet6_address_bytes = 16 + 16 + 2 + 2;
static_assert(v2_fixed_bytes + inet6_address_bytes <= header_bytes_max);

// The address block a PROXY header of `family` must carry at least. AF_UNIX and AF_UNSPEC need
// none: the spec lets a receiver treat a family it does not use as UNSPEC, whose addresses are
// ignored, so the 216 bytes of AF_UNIX paths are skipped like TLVs, whatever their length.
std::size_t address_bytes_min(std::uint8_t family) {
  if (family == family_inet) return inet_address_bytes;
  if (family == family_inet6) return inet6_address_bytes;
  return 0;
}

std::optional<boost::asio::ip::address> v2_source(std::uint8_t family, Bytes addresses) {
  if (family == family_inet) {
    boost::asio::ip::address_v4::bytes_type bytes{};
    std::copy_n(addresses.begin(), bytes.size(), bytes.begin());
    return boost::asio::ip::address(boost::asio::ip::address_v4(bytes));
  }
  if (family == family_inet6) {
    boost::asio::ip::address_v6::bytes_type bytes{};
    std::copy_n(addresses.begin(), bytes.size(), bytes.begin());
    return boost::asio::ip::address(boost::asio::ip::address_v6(bytes));
  }
  return std::nullopt;
}

// `received` starts with the 12-byte signature.
Result parse_v2(Bytes received) {
  if (received.size() <= v2_version_command_at) return NeedMore{};
  const std::uint8_t version = received[v2_version_command_at] >> 4;
  const std::uint8_t command = received[v2_version_command_at] & 0x0F;
  if (version != v2_version) return Error::unsupported_version;
  if (command != command_local && command != command_proxy) return Error::malformed;
  const bool proxy = command == command_proxy;

  // A LOCAL header's family byte is not checked: the spec has the receiver discard it.
  if (received.size() <= v2_family_transport_at) return NeedMore{};
  const std::uint8_t family = received[v2_family_transport_at] >> 4;
  const std::uint8_t transport = received[v2_family_transport_at] & 0x0F;
  if (proxy && family != family_unspec && family != family_inet && family != family_inet6 &&
      family != family_unix) {
    return Error::malformed;
  }
  if (proxy && transport != transport_unspec && transport != transport_stream) {
    return Error::malformed;  // DGRAM, or a value the spec does not define
  }

  if (received.size() < v2_fixed_bytes) return NeedMore{};
  const std::size_t payload_bytes =
      (std::size_t{received[v2_length_at]} << 8) | received[v2_length_at + 1];
  if (payload_bytes > v2_payload_bytes_max) return Error::too_long;
  if (proxy && payload_bytes < address_bytes_min(family)) return Error::malformed;
  if (received.size() < v2_fixed_bytes + payload_bytes) return NeedMore{};

  // Whatever follows the addresses is TLVs, which nothing here uses: skipped, but counted.
  Header header{.length = v2_fixed_bytes + payload_bytes, .source = std::nullopt};
  if (proxy) header.source = v2_source(family, received.subspan(v2_fixed_bytes));
  return header;
}

}  // namespace

std::string_view to_string(Error error) noexcept {
  switch (error) {
    case Error::not_proxy_protocol:
      return "not_proxy_protocol";
    case Error::malformed:
      return "malformed";
    case Error::too_long:
      return "too_long";
    case Error::unsupported_version:
      return "unsupported_version";
  }
  return "unknown";
}

Result parse(std::span<const std::uint8_t> received) noexcept {
  if (agrees_with(received, v1_prefix)) {
    if (received.size() < v1_prefix.size()) return NeedMore{};
    return parse_v1(received);
  }
  if (agrees_with(received, v2_signature)) {
    if (received.size() < v2_signature.size()) return NeedMore{};
    return parse_v2(received);
  }
  return Error::not_proxy_protocol;
}

}  // namespace flashsale::gateway::proxy_protocol
