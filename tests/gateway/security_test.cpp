// The server's defences from outside, end to end: TLS on the viewers' port (and a certificate
// renewed without a restart), and the PROXY protocol from trusted load balancers. The real
// executable, a real redis-server, real sockets.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <fstream>

#include "certificates.hpp"
#include "clients.hpp"
#include "server_process.hpp"

namespace flashsale::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace ssl = asio::ssl;
using asio::ip::tcp;

// A test's certificates are its own and self-signed: the client checks who answered by the
// certificate's name, not by a chain.
ssl::context client_context() {
  ssl::context context(ssl::context::tls_client);
  context.set_verify_mode(ssl::verify_none);
  return context;
}

struct HttpsReply {
  unsigned status = 0;
  std::string body;
  std::string server_name;  // the certificate's common name
};

HttpsReply https_call(unsigned short port, http::verb method, std::string_view target,
                      std::string body = {}) {
  asio::io_context io;
  ssl::context context = client_context();
  beast::ssl_stream<tcp::socket> stream(io, context);
  beast::get_lowest_layer(stream).connect({asio::ip::make_address("127.0.0.1"), port});
  stream.handshake(ssl::stream_base::client);
  http::request<http::string_body> request(method, target, 11);
  request.set(http::field::host, "localhost");
  request.set(http::field::authorization, "Bearer dev-host-key");
  if (!body.empty()) request.set(http::field::content_type, "application/json");
  request.body() = std::move(body);
  request.prepare_payload();
  http::write(stream, request);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response);
  return {response.result_int(), response.body(), peer_common_name(stream.native_handle())};
}

// A viewer over wss://.
class TlsViewer {
 public:
  explicit TlsViewer(unsigned short port) : context_(client_context()), ws_(io_, context_) {
    beast::get_lowest_layer(ws_).connect({asio::ip::make_address("127.0.0.1"), port});
    ws_.next_layer().handshake(ssl::stream_base::client);
    ws_.handshake("localhost", "/ws");
  }
  void send(const json::object& message) {
    ws_.text(true);
    ws_.write(asio::buffer(json::serialize(message)));
  }
  // The next message of `type` (a closed connection throws).
  json::object next_of(std::string_view type) {
    while (true) {
      beast::flat_buffer buffer;
      ws_.read(buffer);
      json::object message = json::parse(beast::buffers_to_string(buffer.data())).as_object();
      if (message.at("type").as_string() == type) return message;
    }
  }
  std::string server_name() { return peer_common_name(ws_.next_layer().native_handle()); }

 private:
  asio::io_context io_;
  ssl::context context_;
  beast::websocket::stream<beast::ssl_stream<tcp::socket>> ws_;
};

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

TEST(ServerTls, ViewersAndHostsSpeakTlsAndSighupRenewsTheCertificate) {
  RedisServer redis;
  const TestCertificate first = make_certificate("first.test");
  const std::string certificate = write_temp_file("tls-certificate.pem", first.certificate_pem);
  const std::string key = write_temp_file("tls-key.pem", first.private_key_pem);
  ServerProcess server(redis,
                       dev_config_with({}, {{"server", "tls_certificate = \"" + certificate + "\""},
                                            {"server", "tls_private_key = \"" + key + "\""}}),
                       "tls");
  EXPECT_NE(server.log().find("viewers at wss://"), std::string::npos);

  // The host API and a viewer, over TLS.
  const HttpsReply created = https_call(
      server.port(), http::verb::post, "/api/drops",
      R"({"id":"d","title":"Chestnuts","price_cents":1990,"stock":5,"per_user_limit":1,"hold_seconds":60})");
  ASSERT_EQ(created.status, 201u) << created.body;
  EXPECT_EQ(created.server_name, "first.test");
  ASSERT_EQ(
      https_call(server.port(), http::verb::post, "/api/drops/d/countdown", R"({"seconds":0})")
          .status,
      200u);
  TlsViewer viewer(server.port());
  EXPECT_EQ(viewer.server_name(), "first.test");
  viewer.send({{"type", "hello"}, {"user", "alice"}});
  viewer.next_of("welcome");
  viewer.send({{"type", "order"}, {"drop", "d"}, {"client_order_id", "c1"}});
  EXPECT_EQ(viewer.next_of("order_result").at("status").as_string(), "reserved");

  // Plain HTTP on a TLS port gets no answer.
  EXPECT_THROW(http_call(server.port(), "GET", "/healthz"), std::exception);

  // A renewed certificate serves new connections; the ones open keep going.
  const TestCertificate second = make_certificate("second.test");
  write_file(certificate, second.certificate_pem);
  write_file(key, second.private_key_pem);
  ASSERT_EQ(::kill(server.pid(), SIGHUP), 0);
  ASSERT_TRUE(server.wait_for_log("tls: reloaded"));
  EXPECT_EQ(https_call(server.port(), http::verb::get, "/healthz").server_name, "second.test");
  viewer.send({{"type", "time"}});
  EXPECT_TRUE(viewer.next_of("time").contains("server_time_ms"));

  // A broken renewal (a half-written file) keeps the certificate in use.
  write_file(certificate, second.certificate_pem.substr(0, 100));
  ASSERT_EQ(::kill(server.pid(), SIGHUP), 0);
  ASSERT_TRUE(server.wait_for_log("tls: keeping the certificate in use"));
  const HttpsReply metrics = https_call(server.port(), http::verb::get, "/metrics");
  EXPECT_EQ(metrics.server_name, "second.test");
  EXPECT_NE(metrics.body.find("flashsale_tls_reloads_failed_total 1\n"), std::string::npos);
  EXPECT_NE(metrics.body.find("flashsale_tls_handshakes_failed_total 1\n"), std::string::npos);
  EXPECT_NE(metrics.body.find("flashsale_tls_certificate_expiry_seconds "), std::string::npos);
}

TEST(ServerTls, StartsOnlyWithACertificateAndKeyThatMatch) {
  RedisServer redis;
  const TestCertificate one = make_certificate("one.test");
  const TestCertificate other = make_certificate("other.test");
  const std::string certificate = write_temp_file("tls-certificate.pem", one.certificate_pem);
  const std::string key = write_temp_file("tls-key.pem", other.private_key_pem);
  EXPECT_THROW(
      ServerProcess(redis,
                    dev_config_with({}, {{"server", "tls_certificate = \"" + certificate + "\""},
                                         {"server", "tls_private_key = \"" + key + "\""}}),
                    "tls"),
      std::runtime_error);
  EXPECT_THROW(
      ServerProcess(redis,
                    dev_config_with({}, {{"server", "tls_certificate = \"" + certificate + "\""}}),
                    "tls"),
      std::runtime_error);
}

// The whole of one HTTP exchange written raw after `preamble`, and whatever came back.
std::string raw_exchange(unsigned short port, std::string_view preamble, std::string_view request,
                         const std::string& source = "127.0.0.1") {
  asio::io_context io;
  tcp::socket socket(io);
  socket.open(tcp::v4());
  socket.bind({asio::ip::make_address(source), 0});
  socket.connect({asio::ip::make_address("127.0.0.1"), port});
  asio::write(socket, asio::buffer(std::string(preamble) + std::string(request)));
  std::string answer;
  beast::error_code error;
  std::array<char, 4096> chunk;
  while (const std::size_t read = socket.read_some(asio::buffer(chunk), error))
    answer.append(chunk.data(), read);
  return answer;
}

std::string proxy_v1(std::string_view client) {
  return "PROXY TCP4 " + std::string(client) + " 127.0.0.1 40000 8080\r\n";
}

// A PROXY protocol v2 header for an IPv4 client.
std::string proxy_v2(std::array<std::uint8_t, 4> client) {
  std::string header("\r\n\r\n\0\r\nQUIT\n", 12);
  header += '\x21';  // version 2, PROXY
  header += '\x11';  // TCP over IPv4
  header += std::string("\0\x0c", 2);
  header.append(reinterpret_cast<const char*>(client.data()), 4);
  header += std::string("\x7f\0\0\x01\x9c\x40\x1f\x90", 8);
  return header;
}

TEST(ServerProxyProtocol, ATrustedBalancerNamesEachClientForThePerSourceLimits) {
  RedisServer redis;
  ServerProcess server(redis,
                       dev_config_with({{"connections_per_source", "2"}},
                                       {{"server", "proxy_protocol_from = [\"127.0.0.1\"]"}}),
                       "proxied");
  // Through the balancer (127.0.0.1), each client is counted as itself.
  Viewer first(server.port(), 0, "127.0.0.1", {}, proxy_v1("203.0.113.7"));
  Viewer second(server.port(), 0, "127.0.0.1", {}, proxy_v1("203.0.113.7"));
  EXPECT_THROW(Viewer(server.port(), 0, "127.0.0.1", {}, proxy_v1("203.0.113.7")), std::exception);
  Viewer other_client(server.port(), 0, "127.0.0.1", {}, proxy_v2({203, 0, 113, 8}));
  other_client.sign_in("carol");

  // From anywhere else a header is not read: it is a bad request, and names no one.
  EXPECT_NE(raw_exchange(server.port(), proxy_v1("203.0.113.9"),
                         "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "127.0.0.2")
                .find("400 Bad Request"),
            std::string::npos);
  Viewer direct(server.port(), 0, "127.0.0.2");
  direct.sign_in("dave");

  // From the balancer, a connection must start with a header.
  EXPECT_EQ(raw_exchange(server.port(), {}, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"), "");
  const std::string metrics =
      raw_exchange(server.port(), proxy_v1("203.0.113.10"),
                   "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(metrics.find("flashsale_proxy_headers_refused_total 1\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("flashsale_limited_total{limit=\"connections_per_source\"} 1\n"),
            std::string::npos);
}

TEST(ServerJson, AHostCallNamingAKeyTwiceIsRefused) {
  RedisServer redis;
  ServerProcess server(redis, dev_config, "json-keys");
  const HttpReply twice = http_call(
      server.port(), "POST", "/api/drops",
      R"({"id":"d","title":"t","price_cents":1,"stock":5,"stock":5000,"per_user_limit":1,)"
      R"("hold_seconds":60})",
      "dev-host-key");
  EXPECT_EQ(twice.status, 400u) << twice.body;
  EXPECT_EQ(twice.json().at("error").at("code").as_string(), "bad_json");
  EXPECT_EQ(http_call(server.port(), "GET", "/api/drops/d", {}, "dev-host-key").status, 404u);
  Viewer viewer(server.port());
  viewer.sign_in("ann");
  viewer.send(R"({"type":"subscribe","drop":"d","drop":"e"})");
  const auto refused = viewer.next_of("error");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->at("code").as_string(), "bad_json");
}

// A refused upgrade is not an HTTP client: answered once, then the connection ends, so that
// connections nobody counts last no longer than their first request.
TEST(ServerHttpLimits, ARefusedUpgradeEndsItsConnection) {
  RedisServer redis;
  ServerProcess server(redis, dev_config, "refused-upgrade");
  const std::string answer = raw_exchange(
      server.port(), {},
      "GET /elsewhere HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
  EXPECT_NE(answer.find("404 Not Found"), std::string::npos) << answer;
  EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer;
}

// Stopping waits for nothing but connections: no signal handler (SIGHUP's) keeps an I/O thread
// running into the 3 s grace period.
TEST(ServerShutdown, AnIdleServerStopsAtOnce) {
  RedisServer redis;
  ServerProcess server(redis, dev_config, "stops");
  Viewer viewer(server.port());
  viewer.sign_in("ann");
  EXPECT_EQ(server.stop(), 0);
  EXPECT_EQ(server.log().find("still open after 3 s"), std::string::npos) << server.log();
}

TEST(ServerHttpLimits, OneAddressHoldsItsShareOfHttpConnectionsAndNoMore) {
  RedisServer redis;
  ServerProcess server(redis, dev_config_with({{"http_connections_per_source", "2"}}),
                       "http-source");
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  asio::io_context io;
  const auto kept = [&](const std::string& source) {
    auto socket = std::make_unique<tcp::socket>(io);
    socket->open(tcp::v4());
    socket->bind({asio::ip::make_address(source), 0});
    socket->connect({asio::ip::make_address("127.0.0.1"), server.port()});
    asio::write(*socket, asio::buffer(request));
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(*socket, buffer, response);
    return std::pair(std::move(socket), response.result_int());
  };
  auto first = kept("127.0.0.1");
  auto second = kept("127.0.0.1");
  EXPECT_EQ(first.second, 200u);
  EXPECT_EQ(second.second, 200u);
  EXPECT_EQ(kept("127.0.0.1").second, 429u);
  EXPECT_EQ(kept("127.0.0.2").second, 200u) << "another address has its own share";
  Viewer viewer(server.port());  // upgrades are counted as WebSocket connections instead
  viewer.sign_in("ann");
  first.first.reset();  // a place comes free when its connection ends
  while (true) {
    auto again = kept("127.0.0.1");
    if (again.second == 200u) break;
    ASSERT_EQ(again.second, 429u);  // the server has not seen the close yet
  }
}

}  // namespace
}  // namespace flashsale::testing
