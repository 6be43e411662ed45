// proxy_protocol: reads the PROXY protocol header (HAProxy's, versions 1 and 2) that a trusted
// load balancer puts in front of every connection it forwards, so the gateway limits and logs the
// client's address rather than the balancer's. Only the client (source) address is kept: the
// destination and the ports tell the gateway nothing it acts on.
//
// The parser is pure: it looks at the bytes received so far and says whether they hold a whole
// header, a valid beginning of one, or something to close the connection over. It does no I/O,
// never allocates and never throws, so the caller owns the reading (peek up to header_bytes_max,
// then consume Header::length) and the parser can be fed any bytes at all, e.g. by a fuzzer.
// Errors come as soon as the bytes show them, so a client that is not a proxy is refused on its
// first byte rather than after a timeout.
//
// Spec: https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt
#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <variant>

namespace flashsale::gateway::proxy_protocol {

// Version 1 is one text line of at most 107 bytes, CRLF included (the spec's own bound).
inline constexpr std::size_t v1_bytes_max = 107;
// Version 2 is 16 fixed bytes followed by as many as its 16-bit length says, which could be 64 KiB.
// We accept at most 536 after the fixed part: IPv6 addresses (36 bytes) or AF_UNIX ones (216)
// plus room for the TLVs real balancers add (TLS details, unique ids, cloud endpoint ids). 536 is
// the smallest TCP segment every IPv4 host must accept, the figure the spec sizes headers by.
// A longer header is answered with Error::too_long rather than read.
inline constexpr std::size_t v2_fixed_bytes = 16;
inline constexpr std::size_t v2_payload_bytes_max = 536;
// The most bytes worth peeking before parse() can decide: whichever version is longer.
inline constexpr std::size_t header_bytes_max = v2_fixed_bytes + v2_payload_bytes_max;
static_assert(header_bytes_max >= v1_bytes_max);

// What the first bytes of a connection from a trusted proxy say.
struct Header {
  std::size_t length = 0;  // bytes the header takes, to be consumed from the stream
  // The client's address, or nullopt for a LOCAL command (v2), "PROXY UNKNOWN" (v1), or an
  // address family this server does not track (AF_UNIX, UNSPEC): the connection's own peer
  // address stands then.
  std::optional<boost::asio::ip::address> source;
};

// Why the connection must be closed.
enum class Error : std::uint8_t {
  not_proxy_protocol,   // the first bytes start neither "PROXY " nor the v2 signature
  malformed,            // a header, but one the spec does not allow
  too_long,             // v1 without CRLF within 107 bytes, or v2 longer than header_bytes_max
  unsupported_version,  // the v2 signature with a version other than 2
};
// A stable name for logs and metrics, e.g. "not_proxy_protocol".
std::string_view to_string(Error error) noexcept;

// The bytes so far are a valid beginning of a header: read more and call parse() again.
struct NeedMore {};

using Result = std::variant<NeedMore, Header, Error>;

// Looks at the bytes received so far on a connection (which may be only part of the header, or
// the header followed by the client's first payload bytes) and answers:
//   Header   — a complete header was found; consume Header::length bytes, the rest is payload;
//   NeedMore — the bytes are a valid prefix of a header; read more and call again with all of them;
//   Error    — close the connection.
// Looks at no more than header_bytes_max bytes and always decides once it has them, so a caller
// never needs to peek further. Any thread; no allocation, no I/O, no exceptions.
Result parse(std::span<const std::uint8_t> received) noexcept;

}  // namespace flashsale::gateway::proxy_protocol
