// The PROXY protocol parser (gateway/src/proxy_protocol.hpp): whole v1 and v2 headers give the
// client's address and their exact length, whatever payload follows; every prefix of a valid
// header asks for more; each way the spec is broken gives its error as soon as the bytes show it;
// and seeded random damage to valid headers never breaks the parser's promises (answers that only
// sharpen as bytes arrive, lengths within what was received, never NeedMore at header_bytes_max).
// FLASHSALE_SEED=<seed> reproduces a run.
#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "proxy_protocol.hpp"

namespace flashsale::gateway::proxy_protocol {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;
using Bytes = std::vector<std::uint8_t>;

Result parse_text(std::string_view text) {
  return parse({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
}

// A result as one line, so expectations read as what they mean and failures print it.
std::string describe(const Result& result) {
  if (std::holds_alternative<NeedMore>(result)) return "need more";
  if (const Error* error = std::get_if<Error>(&result)) return std::string(to_string(*error));
  const Header& header = std::get<Header>(result);
  return "header " + std::to_string(header.length) + " from " +
         (header.source ? header.source->to_string() : "peer"s);
}

std::string describe_text(std::string_view text) {
  return describe(parse_text(text));
}
std::string describe_bytes(const Bytes& bytes) {
  return describe(parse(bytes));
}

std::string header_of(std::string_view text, std::string_view source) {
  return "header " + std::to_string(text.size()) + " from " + std::string(source);
}

// The first `size` bytes of `input`, copied to a block of their own so that a parser reading past
// them is caught by the address sanitizer.
Result parse_prefix(std::span<const std::uint8_t> input, std::size_t size) {
  const Bytes prefix(input.begin(), input.begin() + static_cast<std::ptrdiff_t>(size));
  return parse(prefix);
}

// Each proper prefix of `header` (the empty one included) asks for more bytes.
void expect_every_prefix_needs_more(std::span<const std::uint8_t> header) {
  for (std::size_t size = 0; size < header.size(); ++size) {
    EXPECT_EQ(describe(parse_prefix(header, size)), "need more")
        << "prefix of " << size << " bytes";
  }
}
void expect_every_prefix_needs_more(std::string_view header) {
  expect_every_prefix_needs_more(
      std::span(reinterpret_cast<const std::uint8_t*>(header.data()), header.size()));
}

// ---- Version 1 ----

constexpr auto tcp4_line = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"sv;
constexpr auto tcp6_line = "PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n"sv;
// The spec's worst case, 104 bytes.
constexpr auto longest_tcp6_line =
    "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
    "65535 65535\r\n"sv;

TEST(ProxyProtocolV1, Tcp4GivesTheSourceAddressAndTheLineLength) {
  EXPECT_EQ(describe_text(tcp4_line), header_of(tcp4_line, "192.168.0.1"));
  EXPECT_EQ(describe_text("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n"),
            header_of("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", "0.0.0.0"));
}

TEST(ProxyProtocolV1, Tcp6GivesTheSourceAddressAndTheLineLength) {
  EXPECT_EQ(describe_text(tcp6_line), header_of(tcp6_line, "2001:db8::1"));
  EXPECT_EQ(longest_tcp6_line.size(), 104u);
  EXPECT_EQ(describe_text(longest_tcp6_line),
            header_of(longest_tcp6_line, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
  // An IPv4-mapped address is still an IPv6 one: it is reported as the proxy wrote it.
  constexpr auto mapped = "PROXY TCP6 ::ffff:10.0.0.1 ::1 1 2\r\n"sv;
  EXPECT_EQ(describe_text(mapped), header_of(mapped, "::ffff:10.0.0.1"));
  constexpr auto upper_case = "PROXY TCP6 2001:DB8::AB ::1 1 2\r\n"sv;
  EXPECT_EQ(describe_text(upper_case), header_of(upper_case, "2001:db8::ab"));
}

TEST(ProxyProtocolV1, UnknownKeepsThePeerAddressAndIgnoresTheRestOfTheLine) {
  EXPECT_EQ(describe_text("PROXY UNKNOWN\r\n"), header_of("PROXY UNKNOWN\r\n", "peer"));
  constexpr auto with_addresses = "PROXY UNKNOWN 192.168.0.1 192.168.0.11 56324 443\r\n"sv;
  EXPECT_EQ(describe_text(with_addresses), header_of(with_addresses, "peer"));
  constexpr auto with_anything = "PROXY UNKNOWN whatever\tit says\r\n"sv;
  EXPECT_EQ(describe_text(with_anything), header_of(with_anything, "peer"));
}

TEST(ProxyProtocolV1, EveryPrefixOfAValidLineNeedsMore) {
  for (const std::string_view line :
       {tcp4_line, tcp6_line, longest_tcp6_line, "PROXY UNKNOWN\r\n"sv,
        "PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n"sv, "PROXY TCP4 1.2.3.4 5.6.7.8 0 0\r\n"sv}) {
    SCOPED_TRACE(std::string(line));
    expect_every_prefix_needs_more(line);
  }
}

TEST(ProxyProtocolV1, PayloadAfterTheLineIsNotCounted) {
  EXPECT_EQ(describe_text(std::string(tcp4_line) + "GET / HTTP/1.1\r\n\r\n"),
            header_of(tcp4_line, "192.168.0.1"));
  EXPECT_EQ(describe_text(std::string(tcp6_line) + "\x16\x03\x01\x02\x00"s),
            header_of(tcp6_line, "2001:db8::1"));
  EXPECT_EQ(describe_text("PROXY UNKNOWN\r\nPROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
            header_of("PROXY UNKNOWN\r\n", "peer"));
  // A payload that makes the whole more than 107 bytes does not matter: the line ended before.
  EXPECT_EQ(describe_text(std::string(longest_tcp6_line) + std::string(400, 'x')),
            header_of(longest_tcp6_line, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
}

TEST(ProxyProtocolV1, FieldsAreSeparatedByExactlyOneSpace) {
  for (const std::string_view line : {
           "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n"sv,
           "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"sv,
           "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n"sv,
           "PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n"sv,
           "PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n"sv,
           "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"sv,
           "PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n"sv,
           "PROXY TCP4 1.2.3.4  1 2\r\n"sv,
           "PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n"sv,
       }) {
    EXPECT_EQ(describe_text(line), "malformed") << line;
  }
}

TEST(ProxyProtocolV1, PortsAreDecimalFrom0To65535WithoutSignOrLeadingZero) {
  EXPECT_EQ(describe_text("PROXY TCP4 1.2.3.4 5.6.7.8 0 65535\r\n"),
            header_of("PROXY TCP4 1.2.3.4 5.6.7.8 0 65535\r\n", "1.2.3.4"));
  for (const std::string_view line : {
           "PROXY TCP4 1.2.3.4 5.6.7.8 65536 443\r\n"sv,
           "PROXY TCP4 1.2.3.4 5.6.7.8 443 65536\r\n"sv,
           "PROXY TCP4 1.2.3.4 5.6.7.8 99999 443\r\n"sv,
           "PROXY TCP4 1.2.3.4 5.6.7.8 100000 443\r\n"sv,
           "PROXY TCP4 1.2.3.4 5.6.7.8 0443 443\r\n"sv,
           "PROXY TCP4 1.2.3.4 5.6.7.8 443 00\r\n"sv,
           "PROXY TCP4 1.2.3.4 5.6.7.8 +443 443\r\n"sv,
           "PROXY TCP4 1.2.3.4 5.6.7.8 -1 443\r\n"sv,
           "PROXY TCP4 1.2.3.4 5.6.7.8 0x1bb 443\r\n"sv,
           "PROXY TCP4 1.2.3.4 5.6.7.8 44 3 443\r\n"sv,
       }) {
    EXPECT_EQ(describe_text(line), "malformed") << line;
  }
}

TEST(ProxyProtocolV1, AddressesMustBeOfTheFamilyNamed) {
  for (const std::string_view line : {
           "PROXY TCP4 ::1 5.6.7.8 1 2\r\n"sv,
           "PROXY TCP4 1.2.3.4 2001:db8::2 1 2\r\n"sv,
           "PROXY TCP6 1.2.3.4 ::1 1 2\r\n"sv,
           "PROXY TCP6 ::1 5.6.7.8 1 2\r\n"sv,
           "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"sv,
           "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"sv,
           "PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n"sv,
           "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"sv,
           "PROXY TCP4 localhost 5.6.7.8 1 2\r\n"sv,
           "PROXY TCP6 2001:db8:::1 ::1 1 2\r\n"sv,
           "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"sv,
           "PROXY TCP6 [::1] ::1 1 2\r\n"sv,
       }) {
    EXPECT_EQ(describe_text(line), "malformed") << line;
  }
}

TEST(ProxyProtocolV1, TheLineEndsWithCrlfAndHasExactlyItsFields) {
  for (const std::string_view line : {
           "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"sv,
           "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX"sv,
           "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n"sv,
           "PROXY TCP4 1.2.3.4 5.6.7.8 1 2GET / HTTP/1.1\r\n"sv,
           "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"sv,
           "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"sv,
           "PROXY TCP4\r\n"sv,
           "PROXY TCP4 \r\n"sv,
           "PROXY \r\n"sv,
           "PROXY UNKNOWN\n"sv,
           "PROXY UNKNOWNX\r\n"sv,
           "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"sv,
           "PROXY TCP 1.2.3.4 5.6.7.8 1 2\r\n"sv,
           "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"sv,
           "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"sv,
       }) {
    EXPECT_EQ(describe_text(line), "malformed") << line;
  }
}

TEST(ProxyProtocolV1, AMistakeIsSeenBeforeTheLineEnds) {
  // None of these has a CRLF yet: waiting for one would change nothing.
  EXPECT_EQ(describe_text("PROXY X"), "malformed");
  EXPECT_EQ(describe_text("PROXY TCP4 1.2.3.4:"), "malformed");
  EXPECT_EQ(describe_text("PROXY TCP4 1.2.3.4  "), "malformed");
  EXPECT_EQ(describe_text("PROXY TCP4 1.2.3.4 5.6.7.8  "), "malformed");
  EXPECT_EQ(describe_text("PROXY TCP4 1.2.3.4 5.6.7.8 1 \r"), "malformed");
  EXPECT_EQ(describe_text("PROXY TCP4 1.2.3.4 5.6.7.8 65536"), "malformed");
  EXPECT_EQ(describe_text("PROXY TCP4 1.2.3.4 5.6.7.8 04"), "malformed");
  EXPECT_EQ(describe_text("PROXY TCP4 1.2.3.999 "), "malformed");
  EXPECT_EQ(describe_text("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), "malformed");
  EXPECT_EQ(describe_text("PROXY TCP6 2001:db8::1%"), "malformed");
  EXPECT_EQ(describe_text("PROXY TCP6 " + std::string(46, 'f')), "malformed");
}

TEST(ProxyProtocolV1, NoCrlfWithin107BytesIsTooLong) {
  // "PROXY UNKNOWN " and then filler: the line may be at most 107 bytes, CRLF included.
  const std::string start = "PROXY UNKNOWN ";
  const std::string fits = start + std::string(107 - start.size() - 2, 'x') + "\r\n";
  ASSERT_EQ(fits.size(), 107u);
  EXPECT_EQ(describe_text(fits), header_of(fits, "peer"));
  EXPECT_EQ(describe_text(fits.substr(0, 106)), "need more");
  EXPECT_EQ(describe_text(fits.substr(0, 105) + "x\r"), "too_long");  // the LF would be byte 108

  const std::string over = start + std::string(107 - start.size(), 'x');
  EXPECT_EQ(describe_text(over.substr(0, 106)), "need more");
  EXPECT_EQ(describe_text(over), "too_long");
  EXPECT_EQ(describe_text(over + "\r\n"), "too_long");
  EXPECT_EQ(describe_text(over + std::string(1000, 'x')), "too_long");

  // Addresses too long for the line though each is a valid IPv6 text (45 characters).
  const std::string wide = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
  const std::string wide_line = "PROXY TCP6 " + wide + " " + wide + " 65535 65535\r\n";
  ASSERT_GT(wide_line.size(), 107u);
  EXPECT_EQ(describe_text(wide_line), "too_long");
  EXPECT_EQ(describe_text(wide_line.substr(0, 106)), "need more");
}

// ---- Version 2 ----

constexpr std::array<std::uint8_t, 12> signature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::uint8_t proxy_v2 = 0x21;
constexpr std::uint8_t local_v2 = 0x20;
constexpr std::uint8_t inet_stream = 0x11;
constexpr std::uint8_t inet6_stream = 0x21;

// Signature, version and command, family and transport, and `payload` with its length (or
// `declared_bytes` when given, to lie about it).
Bytes v2(std::uint8_t version_command, std::uint8_t family_transport, const Bytes& payload,
         std::optional<std::size_t> declared_bytes = std::nullopt) {
  const std::size_t length = declared_bytes.value_or(payload.size());
  Bytes header(signature.begin(), signature.end());
  header.push_back(version_command);
  header.push_back(family_transport);
  header.push_back(static_cast<std::uint8_t>(length >> 8));
  header.push_back(static_cast<std::uint8_t>(length & 0xFF));
  header.insert(header.end(), payload.begin(), payload.end());
  return header;
}

void append_port(Bytes& block, std::uint16_t port) {
  block.push_back(static_cast<std::uint8_t>(port >> 8));
  block.push_back(static_cast<std::uint8_t>(port & 0xFF));
}

Bytes inet_block(std::string_view source, std::string_view destination) {
  Bytes block;
  for (const std::string_view text : {source, destination}) {
    const auto bytes = boost::asio::ip::make_address_v4(std::string(text)).to_bytes();
    block.insert(block.end(), bytes.begin(), bytes.end());
  }
  append_port(block, 56324);
  append_port(block, 443);
  return block;
}

Bytes inet6_block(std::string_view source, std::string_view destination) {
  Bytes block;
  for (const std::string_view text : {source, destination}) {
    const auto bytes = boost::asio::ip::make_address_v6(std::string(text)).to_bytes();
    block.insert(block.end(), bytes.begin(), bytes.end());
  }
  append_port(block, 56324);
  append_port(block, 443);
  return block;
}

// Type, 16-bit length, value: as HAProxy appends them after the addresses.
Bytes with_tlv(Bytes block, std::uint8_t type, std::string_view value) {
  block.push_back(type);
  append_port(block, static_cast<std::uint16_t>(value.size()));
  block.insert(block.end(), value.begin(), value.end());
  return block;
}

std::string v2_header_of(const Bytes& header, std::string_view source) {
  return "header " + std::to_string(header.size()) + " from " + std::string(source);
}

Bytes concatenated(Bytes first, std::string_view second) {
  first.insert(first.end(), second.begin(), second.end());
  return first;
}

TEST(ProxyProtocolV2, Ipv4GivesTheSourceAddress) {
  const Bytes header = v2(proxy_v2, inet_stream, inet_block("192.0.2.1", "198.51.100.7"));
  ASSERT_EQ(header.size(), 28u);
  EXPECT_EQ(describe_bytes(header), v2_header_of(header, "192.0.2.1"));
  // Transport UNSPEC is accepted as well as STREAM.
  const Bytes unspec_transport = v2(proxy_v2, 0x10, inet_block("192.0.2.1", "198.51.100.7"));
  EXPECT_EQ(describe_bytes(unspec_transport), v2_header_of(unspec_transport, "192.0.2.1"));
}

TEST(ProxyProtocolV2, Ipv6GivesTheSourceAddress) {
  const Bytes header = v2(proxy_v2, inet6_stream, inet6_block("2001:db8::1", "2001:db8::2"));
  ASSERT_EQ(header.size(), 52u);
  EXPECT_EQ(describe_bytes(header), v2_header_of(header, "2001:db8::1"));
}

TEST(ProxyProtocolV2, TlvsAreSkippedButCounted) {
  const Bytes ipv4 = v2(proxy_v2, inet_stream,
                        with_tlv(with_tlv(inet_block("192.0.2.1", "198.51.100.7"), 0x05, "id-1"),
                                 0x04, std::string(3, '\0')));
  EXPECT_EQ(ipv4.size(), 28u + 7u + 6u);
  EXPECT_EQ(describe_bytes(ipv4), v2_header_of(ipv4, "192.0.2.1"));
  const Bytes ipv6 =
      v2(proxy_v2, inet6_stream, with_tlv(inet6_block("2001:db8::1", "::1"), 0x01, "h2"));
  EXPECT_EQ(describe_bytes(ipv6), v2_header_of(ipv6, "2001:db8::1"));
  // The largest header accepted: IPv6 addresses and TLVs up to 536 bytes after the fixed 16.
  const Bytes largest = v2(proxy_v2, inet6_stream,
                           with_tlv(inet6_block("2001:db8::1", "::1"), 0x04,
                                    std::string(v2_payload_bytes_max - 36 - 3, 'n')));
  ASSERT_EQ(largest.size(), header_bytes_max);
  EXPECT_EQ(describe_bytes(largest), v2_header_of(largest, "2001:db8::1"));
}

TEST(ProxyProtocolV2, LocalKeepsThePeerAddress) {
  const Bytes health_check = v2(local_v2, 0x00, {});
  EXPECT_EQ(describe_bytes(health_check), v2_header_of(health_check, "peer"));
  // A LOCAL header's addresses, and its family byte whatever it says, are ignored.
  const Bytes with_addresses = v2(local_v2, inet_stream, inet_block("192.0.2.1", "192.0.2.2"));
  EXPECT_EQ(describe_bytes(with_addresses), v2_header_of(with_addresses, "peer"));
  const Bytes odd_family = v2(local_v2, 0xFF, {1, 2, 3});
  EXPECT_EQ(describe_bytes(odd_family), v2_header_of(odd_family, "peer"));
}

TEST(ProxyProtocolV2, UnspecAndUnixFamiliesKeepThePeerAddress) {
  const Bytes unspec = v2(proxy_v2, 0x00, {});
  EXPECT_EQ(describe_bytes(unspec), v2_header_of(unspec, "peer"));
  const Bytes unspec_stream = v2(proxy_v2, 0x01, with_tlv({}, 0x04, "x"));
  EXPECT_EQ(describe_bytes(unspec_stream), v2_header_of(unspec_stream, "peer"));
  // AF_UNIX: two 108-byte paths.
  Bytes paths(216, 0);
  std::copy_n("/run/haproxy.sock", 17, paths.begin());
  const Bytes unix_stream = v2(proxy_v2, 0x31, paths);
  ASSERT_EQ(unix_stream.size(), 232u);
  EXPECT_EQ(describe_bytes(unix_stream), v2_header_of(unix_stream, "peer"));
}

TEST(ProxyProtocolV2, EveryPrefixOfAValidHeaderNeedsMore) {
  const std::vector<Bytes> headers = {
      v2(proxy_v2, inet_stream, inet_block("192.0.2.1", "198.51.100.7")),
      v2(proxy_v2, inet6_stream, with_tlv(inet6_block("2001:db8::1", "::1"), 0x05, "unique")),
      v2(local_v2, 0x00, {}),
      v2(proxy_v2, 0x31, Bytes(216, 0)),
  };
  for (const Bytes& header : headers) {
    SCOPED_TRACE(describe_bytes(header));
    expect_every_prefix_needs_more(header);
  }
}

TEST(ProxyProtocolV2, PayloadAfterTheHeaderIsNotCounted) {
  const Bytes header = v2(proxy_v2, inet_stream, inet_block("192.0.2.1", "198.51.100.7"));
  EXPECT_EQ(describe_bytes(concatenated(header, "GET / HTTP/1.1\r\n\r\n")),
            v2_header_of(header, "192.0.2.1"));
  const Bytes local = v2(local_v2, 0x00, {});
  EXPECT_EQ(describe_bytes(concatenated(local, "\x16\x03\x01")), v2_header_of(local, "peer"));
  // Even when what follows is another header.
  Bytes twice = header;
  twice.insert(twice.end(), header.begin(), header.end());
  EXPECT_EQ(describe_bytes(twice), v2_header_of(header, "192.0.2.1"));
}

TEST(ProxyProtocolV2, AVersionOtherThan2IsUnsupported) {
  for (const std::uint8_t version_command : {0x01, 0x11, 0x31, 0xF1, 0x10}) {
    const Bytes header = v2(version_command, inet_stream, inet_block("192.0.2.1", "192.0.2.2"));
    EXPECT_EQ(describe_bytes(header), "unsupported_version") << int{version_command};
    // Seen on the version byte itself, before the rest arrives.
    EXPECT_EQ(describe(parse_prefix(header, 13)), "unsupported_version");
  }
}

TEST(ProxyProtocolV2, ACommandOtherThanLocalOrProxyIsMalformed) {
  for (const std::uint8_t version_command : {0x22, 0x2F}) {
    const Bytes header = v2(version_command, inet_stream, inet_block("192.0.2.1", "192.0.2.2"));
    EXPECT_EQ(describe_bytes(header), "malformed");
    EXPECT_EQ(describe(parse_prefix(header, 13)), "malformed");
  }
}

TEST(ProxyProtocolV2, DatagramsAndUndefinedFamiliesAreMalformed) {
  for (const std::uint8_t family_transport : {0x12, 0x22, 0x02, 0x13, 0x1F, 0x41, 0xF1}) {
    const Bytes header = v2(proxy_v2, family_transport, inet6_block("::1", "::2"));
    EXPECT_EQ(describe_bytes(header), "malformed") << int{family_transport};
    EXPECT_EQ(describe(parse_prefix(header, 14)), "malformed");
  }
}

TEST(ProxyProtocolV2, AnAddressBlockTooShortForItsFamilyIsMalformed) {
  const Bytes ipv4 = inet_block("192.0.2.1", "192.0.2.2");
  const Bytes short_ipv4 = v2(proxy_v2, inet_stream, Bytes(ipv4.begin(), ipv4.end() - 1));
  EXPECT_EQ(describe_bytes(short_ipv4), "malformed");
  // Known from the length field alone, without waiting for the block.
  EXPECT_EQ(describe(parse_prefix(short_ipv4, 16)), "malformed");
  const Bytes ipv6 = inet6_block("2001:db8::1", "::1");
  EXPECT_EQ(describe_bytes(v2(proxy_v2, inet6_stream, Bytes(ipv6.begin(), ipv6.end() - 1))),
            "malformed");
  EXPECT_EQ(describe_bytes(v2(proxy_v2, inet6_stream, ipv4)), "malformed");
  EXPECT_EQ(describe_bytes(v2(proxy_v2, inet_stream, {})), "malformed");
  // A declared length the bytes have not reached yet is not a mistake: more is on its way.
  EXPECT_EQ(describe_bytes(v2(proxy_v2, inet_stream, ipv4, 20)), "need more");
}

TEST(ProxyProtocolV2, ALengthPastTheCapIsTooLong) {
  EXPECT_EQ(describe_bytes(v2(proxy_v2, inet6_stream, {}, v2_payload_bytes_max + 1)), "too_long");
  EXPECT_EQ(describe_bytes(v2(proxy_v2, inet6_stream, {}, 0xFFFF)), "too_long");
  EXPECT_EQ(describe_bytes(v2(local_v2, 0x00, {}, 0xFFFF)), "too_long");
  EXPECT_EQ(describe_bytes(v2(proxy_v2, inet6_stream, {}, v2_payload_bytes_max)), "need more");
}

// ---- Neither ----

TEST(ProxyProtocol, AClientThatIsNotAProxyIsToldOnItsFirstByte) {
  EXPECT_EQ(describe_text("G"), "not_proxy_protocol");
  EXPECT_EQ(describe_text("GET / HTTP/1.1\r\n"), "not_proxy_protocol");
  EXPECT_EQ(describe_text("\x16\x03\x01"), "not_proxy_protocol");  // a TLS ClientHello
  EXPECT_EQ(describe_text("p"), "not_proxy_protocol");
  EXPECT_EQ(describe_text(std::string(1, '\0')), "not_proxy_protocol");
}

TEST(ProxyProtocol, AClientIsToldOnTheFirstByteThatDisagrees) {
  EXPECT_EQ(describe_text(""), "need more");
  EXPECT_EQ(describe_text("P"), "need more");
  EXPECT_EQ(describe_text("PROX"), "need more");
  EXPECT_EQ(describe_text("PROXX"), "not_proxy_protocol");
  EXPECT_EQ(describe_text("PROXY\t"), "not_proxy_protocol");
  EXPECT_EQ(describe_text("POST / HTTP/1.1\r\n"), "not_proxy_protocol");
  EXPECT_EQ(describe_text("\r"), "need more");
  EXPECT_EQ(describe_text("\r\n\r\n"), "need more");
  EXPECT_EQ(describe_text("\r\n\r\n\r"), "not_proxy_protocol");
  EXPECT_EQ(describe_text("\r\n\r\n\0\r\nQUIT"s), "need more");
  EXPECT_EQ(describe_text("\r\n\r\n\0\r\nQUIT\r"s), "not_proxy_protocol");
  EXPECT_EQ(describe_text("\r\nGET"), "not_proxy_protocol");
}

TEST(ProxyProtocol, ErrorsHaveStableNames) {
  EXPECT_EQ(to_string(Error::not_proxy_protocol), "not_proxy_protocol");
  EXPECT_EQ(to_string(Error::malformed), "malformed");
  EXPECT_EQ(to_string(Error::too_long), "too_long");
  EXPECT_EQ(to_string(Error::unsupported_version), "unsupported_version");
}

// ---- Random damage ----

std::uint64_t random_base_seed() {
  if (const char* text = std::getenv("FLASHSALE_SEED")) return std::strtoull(text, nullptr, 10);
  return std::random_device{}();
}

// What the parser promises for any bytes, checked on every prefix of `input`: a Header or an
// Error, once given, stays the same however many more bytes come; a NeedMore is only ever
// preceded by NeedMore; a Header's length is within the bytes received; and header_bytes_max
// bytes always get an answer.
void expect_promises_kept(const Bytes& input) {
  std::string earlier = describe(parse_prefix(input, 0));
  for (std::size_t size = 1; size <= input.size(); ++size) {
    const Result result = parse_prefix(input, size);
    const std::string now = describe(result);
    if (earlier != "need more") {
      ASSERT_EQ(now, earlier) << "after " << size << " bytes";
    }
    if (const Header* header = std::get_if<Header>(&result)) {
      ASSERT_LE(header->length, size);
      ASSERT_LE(header->length, header_bytes_max);
    }
    if (size >= header_bytes_max) {
      ASSERT_NE(now, "need more");
    }
    earlier = now;
  }
}

TEST(ProxyProtocol, RandomDamageNeverBreaksThePromises) {
  const std::uint64_t seed = random_base_seed();
  std::cout << "ProxyProtocol: seed " << seed << " (FLASHSALE_SEED=" << seed << " reproduces)\n";
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 random(seed);
  const auto below = [&](std::size_t bound) {
    return bound == 0 ? std::size_t{0} : static_cast<std::size_t>(random() % bound);
  };
  const auto text_bytes = [](std::string_view text) { return Bytes(text.begin(), text.end()); };
  const std::vector<Bytes> samples = {
      text_bytes(tcp4_line),
      text_bytes(tcp6_line),
      text_bytes(longest_tcp6_line),
      text_bytes("PROXY UNKNOWN\r\n"),
      v2(proxy_v2, inet_stream, inet_block("192.0.2.1", "198.51.100.7")),
      v2(proxy_v2, inet6_stream, with_tlv(inet6_block("2001:db8::1", "::1"), 0x05, "id")),
      v2(local_v2, 0x00, {}),
      v2(proxy_v2, 0x31, Bytes(216, 0)),
  };
  constexpr auto alphabet = "PROXY TCP46UNKOW0123456789.:abcdef\r\n\x00\x0D\x0A\x20\x21\x11\xff"sv;
  std::size_t headers = 0;
  const std::size_t rounds = 5'000;
  for (std::size_t round = 0; round < rounds; ++round) {
    Bytes input = samples[below(samples.size())];
    for (std::size_t mutation = 0, count = below(4); mutation < count; ++mutation) {
      const std::size_t at = below(input.size() + 1);
      switch (below(4)) {
        case 0:
          if (at < input.size()) input[at] ^= static_cast<std::uint8_t>(1u << below(8));
          break;
        case 1:
          if (at < input.size())
            input[at] = static_cast<std::uint8_t>(alphabet[below(alphabet.size())]);
          break;
        case 2:
          input.insert(input.begin() + static_cast<std::ptrdiff_t>(at),
                       static_cast<std::uint8_t>(alphabet[below(alphabet.size())]));
          break;
        default:
          if (at < input.size()) input.erase(input.begin() + static_cast<std::ptrdiff_t>(at));
      }
    }
    // Then payload, enough to reach header_bytes_max.
    while (input.size() < header_bytes_max + 8)
      input.push_back(static_cast<std::uint8_t>(random()));
    SCOPED_TRACE("round " + std::to_string(round));
    expect_promises_kept(input);
    if (::testing::Test::HasFatalFailure()) return;
    if (std::holds_alternative<Header>(parse(input))) ++headers;
  }
  // Some damage is harmless (no mutation, or one inside a TLV): the valid path is exercised too.
  EXPECT_GT(headers, rounds / 10);
}

}  // namespace
}  // namespace flashsale::gateway::proxy_protocol
