// See clients.hpp.
#include "clients.hpp"

#include <unistd.h>

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <unordered_set>

namespace flashsale::testing {

namespace beast = boost::beast;
using boost::asio::ip::tcp;

namespace {

// Bounds the file a long test writes (a flood repeats itself; a surge's stock frames do not).
constexpr std::size_t traffic_lines_max = 20'000;

struct TrafficLog {
  std::mutex mutex;
  std::ofstream out;
  std::unordered_set<std::string> written;
};

TrafficLog* traffic_log() {
  static TrafficLog* const log = []() -> TrafficLog* {
    const char* folder = std::getenv("FLASHSALE_TRAFFIC_DIR");
    if (folder == nullptr || *folder == '\0') return nullptr;
    std::filesystem::create_directories(folder);
    auto* opened = new TrafficLog;  // lives as long as the process: no order-of-exit races
    opened->out.open(std::filesystem::path(folder) / (std::to_string(::getpid()) + ".jsonl"),
                     std::ios::app);
    return opened;
  }();
  return log;
}

bool documented_http(std::string_view target) {
  const std::string_view path = target.substr(0, target.find('?'));
  return path.starts_with("/api/") || path == "/drops" || path == "/healthz" || path == "/readyz";
}

}  // namespace

void record_traffic(const boost::json::object& line) {
  TrafficLog* log = traffic_log();
  if (log == nullptr) return;
  std::string text = boost::json::serialize(line);
  std::lock_guard lock(log->mutex);
  if (log->written.size() >= traffic_lines_max || !log->written.insert(text).second) return;
  log->out << text << '\n' << std::flush;
}

HttpReply http_call(unsigned short port, std::string_view method, std::string_view target,
                    std::string_view body, std::string_view host_key) {
  HttpReply reply{loadtest::http_call({"127.0.0.1", port}, method, target, body, host_key)};
  if (documented_http(target))
    record_traffic({{"kind", "http"},
                    {"method", method},
                    {"target", target},
                    {"status", reply.status},
                    {"body", reply.body}});
  return reply;
}

Viewer::Viewer(unsigned short port, int receive_buffer, const std::string& source,
               const std::string& origin, std::string_view preamble)
    : ws_(io_) {
  tcp::socket& socket = beast::get_lowest_layer(ws_).socket();
  socket.open(tcp::v4());
  socket.bind(tcp::endpoint(boost::asio::ip::make_address(source), 0));
  if (receive_buffer > 0)
    socket.set_option(boost::asio::socket_base::receive_buffer_size(receive_buffer));
  beast::get_lowest_layer(ws_).connect(
      tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
  if (!preamble.empty()) boost::asio::write(socket, boost::asio::buffer(preamble));
  if (!origin.empty())
    ws_.set_option(
        beast::websocket::stream_base::decorator([origin](beast::websocket::request_type& request) {
          request.set(beast::http::field::origin, origin);
        }));
  ws_.handshake("127.0.0.1", "/ws");
}

Viewer::~Viewer() {
  if (closed_) return;
  beast::error_code ignored;
  beast::get_lowest_layer(ws_).socket().close(ignored);
}

void Viewer::send(std::string_view text) {
  record_traffic(
      {{"kind", "ws"}, {"direction", "sent"}, {"frame", text}, {"unchecked", !checked_}});
  ws_.text(true);
  ws_.write(boost::asio::buffer(text));
}

void Viewer::send_unchecked(std::string_view text) {
  checked_ = false;
  send(text);
  checked_ = true;
}

void Viewer::send_binary(std::string_view bytes) {
  ws_.binary(true);
  ws_.write(boost::asio::buffer(bytes));
}

std::optional<boost::json::object> Viewer::next(std::chrono::milliseconds timeout) {
  if (closed_) return std::nullopt;
  std::optional<beast::error_code> result;
  ws_.async_read(buffer_, [&](beast::error_code error, std::size_t) { result = error; });
  io_.restart();
  io_.run_for(timeout);
  if (!result) {  // deadline: abandon the read (the stream is unusable after this)
    beast::get_lowest_layer(ws_).socket().cancel();
    io_.restart();
    io_.run();
    closed_ = true;
    return std::nullopt;
  }
  if (*result) {
    closed_ = true;
    close_code_ = ws_.reason().code;
    return std::nullopt;
  }
  const std::string text = beast::buffers_to_string(buffer_.data());
  buffer_.consume(buffer_.size());
  record_traffic({{"kind", "ws"}, {"direction", "received"}, {"frame", text}});
  return boost::json::parse(text).as_object();
}

std::optional<boost::json::object> Viewer::next_of(std::string_view type,
                                                   std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto message = next(left);
    if (!message) return std::nullopt;
    if (message->at("type").as_string() == type) return message;
  }
}

void Viewer::sign_in(std::string_view user) {
  send_json({{"type", "hello"}, {"user", user}});
  const auto welcome = next_of("welcome");
  if (!welcome) throw std::runtime_error("no welcome for " + std::string(user));
}

bool Viewer::stays_open_for(std::chrono::milliseconds duration) {
  bool past = false;  // the deadline's own cancellation is not the server's doing
  bool open = true;
  std::function<void()> read = [&] {
    ws_.async_read(buffer_, [&](beast::error_code error, std::size_t) {
      if (error) {
        if (!past) open = false;
        return;
      }
      buffer_.consume(buffer_.size());
      read();
    });
  };
  read();
  io_.restart();
  io_.run_for(duration);
  past = true;
  beast::get_lowest_layer(ws_).socket().cancel();
  io_.restart();
  io_.run();
  closed_ = true;
  return open;
}

std::optional<std::string> Viewer::bytes_until_closed(std::chrono::milliseconds timeout) {
  tcp::socket& socket = beast::get_lowest_layer(ws_).socket();
  std::string bytes;
  std::array<char, 4096> chunk;
  bool past = false;
  bool ended = false;
  std::function<void()> read = [&] {
    socket.async_read_some(boost::asio::buffer(chunk), [&](beast::error_code error, std::size_t n) {
      bytes.append(chunk.data(), n);
      if (error) {
        ended = !past;
        return;
      }
      read();
    });
  };
  read();
  io_.restart();
  io_.run_for(timeout);
  past = true;
  socket.cancel();
  io_.restart();
  io_.run();
  closed_ = true;
  if (!ended) return std::nullopt;
  return bytes;
}

PageReply page_call(unsigned short port, beast::http::verb method, std::string_view target,
                    std::string_view if_none_match) {
  boost::asio::io_context io;
  beast::tcp_stream stream(io);
  stream.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
  beast::http::request<beast::http::empty_body> request(method, target, 11);
  request.set(beast::http::field::host, "127.0.0.1");
  if (!if_none_match.empty()) request.set(beast::http::field::if_none_match, if_none_match);
  beast::http::write(stream, request);
  beast::flat_buffer buffer;
  beast::http::response_parser<beast::http::string_body> parser;
  parser.skip(method == beast::http::verb::head);
  beast::http::read(stream, buffer, parser);
  PageReply reply;
  reply.status = parser.get().result_int();
  reply.body = parser.get().body();
  for (const auto& field : parser.get()) reply.headers.set(field.name_string(), field.value());
  return reply;
}

}  // namespace flashsale::testing
