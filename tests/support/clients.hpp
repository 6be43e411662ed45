// Test clients for the flashsale server: a WebSocket viewer and one-shot HTTP calls, with
// Boost.Beast over real loopback sockets. Every read has a deadline, so a missing message
// fails a test instead of hanging it.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "flashsale/loadtest/http.hpp"

namespace flashsale::testing {

struct HttpReply : loadtest::HttpReply {
  boost::json::value json() const { return boost::json::parse(body); }
};

// With FLASHSALE_TRAFFIC_DIR set, what the test clients send and receive is recorded there, one
// JSON object a line (a file per process), for tests/contracts/traffic.test.mjs to check against
// contracts/: every frame a Viewer sends and reads, and the reply to every http_call under /api/
// and to /drops, /healthz and /readyz. Repeated lines are written once.
void record_traffic(const boost::json::object& line);

// One request to 127.0.0.1:`port` on a fresh connection (the load tester's client).
HttpReply http_call(unsigned short port, std::string_view method, std::string_view target,
                    std::string_view body = {}, std::string_view host_key = {});

// A GET (or HEAD) with the response's headers, for the pages.
struct PageReply {
  unsigned status = 0;
  std::string body;
  boost::beast::http::fields headers;
};
PageReply page_call(unsigned short port, boost::beast::http::verb method, std::string_view target,
                    std::string_view if_none_match = {});

class Viewer {
 public:
  // Connects and upgrades at /ws; throws if refused. `receive_buffer` > 0 shrinks the socket's
  // receive buffer; `source` binds the client to another loopback address (127.0.0.2, ...);
  // `origin`, if any, is sent as a browser would; `preamble`, if any, is written before the
  // upgrade (a PROXY protocol header, as a load balancer would).
  explicit Viewer(unsigned short port, int receive_buffer = 0,
                  const std::string& source = "127.0.0.1", const std::string& origin = {},
                  std::string_view preamble = {});
  ~Viewer();

  void send(std::string_view text);
  // Sends a frame that breaks the protocol's contract on purpose (a bad-input test): recorded as
  // such, so the traffic check does not hold it to contracts/asyncapi.json.
  void send_unchecked(std::string_view text);
  void send_json(const boost::json::object& message) { send(boost::json::serialize(message)); }
  void send_binary(std::string_view bytes);
  // The next message, or nullopt when the deadline passes or the connection closes. After a
  // deadline passed the viewer is closed: assert silence only as a test's last use of it.
  std::optional<boost::json::object> next(
      std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Skips messages until one of `type` arrives (nullopt at deadline or close).
  std::optional<boost::json::object> next_of(
      std::string_view type, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // hello (dev mode) and welcome.
  void sign_in(std::string_view user);
  // Reads for `duration` as a live client does, answering pings and ignoring messages; true if
  // the server kept the connection open throughout. The viewer's last use.
  bool stays_open_for(std::chrono::milliseconds duration);
  // Reads no frames, as a viewer whose client hung: the socket's raw bytes until the server
  // closes it (nullopt if `timeout` passes first). The viewer's last use.
  std::optional<std::string> bytes_until_closed(std::chrono::milliseconds timeout);
  // After the server closed: its close code (0 when the connection ended without one).
  std::uint16_t close_code() const { return close_code_; }
  bool closed() const { return closed_; }

 private:
  boost::asio::io_context io_;
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  boost::beast::flat_buffer buffer_;
  bool closed_ = false;
  std::uint16_t close_code_ = 0;
  bool checked_ = true;  // whether the frame being sent is recorded as one the contract allows
};

}  // namespace flashsale::testing
