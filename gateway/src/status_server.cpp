// See status_server.hpp.
#include "status_server.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <thread>
#include <vector>

#include "endpoint.hpp"
#include "host_json.hpp"
#include "http_session.hpp"
#include "listener.hpp"

namespace flashsale::gateway {

namespace asio = boost::asio;
namespace http = boost::beast::http;

namespace {

class StatusRoutes final : public HttpSession::Routes {
 public:
  StatusRoutes(std::function<HostReply()> health, std::function<std::string()> metrics_text)
      : health_(std::move(health)), metrics_text_(std::move(metrics_text)) {}

  void route(HttpSession& session, HttpRequest& request) override {
    const std::string_view target = request.target().substr(0, request.target().find('?'));
    if (target != "/healthz" && target != "/readyz" && target != "/metrics")
      return session.respond(
          host_json::error(404, "not_found", "only /healthz, /readyz and /metrics here"));
    if (request.method() != http::verb::get && request.method() != http::verb::head)
      return session.respond(host_json::error(405, "method_not_allowed", "use GET"));
    if (target == "/healthz") return session.respond(alive());
    if (target == "/readyz") return session.respond(health_());
    session.respond({200, metrics_text_()}, "text/plain; version=0.0.4");
  }

 private:
  const std::function<HostReply()> health_;
  const std::function<std::string()> metrics_text_;
};

}  // namespace

struct StatusServer::Server {
  Server(const std::string& what, const std::string& listen, const Limits& limits, Metrics& metrics,
         std::function<HostReply()> health, std::function<std::string()> metrics_text)
      : routes(std::move(health), std::move(metrics_text)),
        threads(one_thread()),
        listener(threads, parse_endpoint(listen), limits, metrics,
                 [this, &limits, &metrics](asio::ip::tcp::socket socket, std::size_t) {
                   boost::system::error_code error;
                   const asio::ip::address peer = socket.remote_endpoint(error).address();
                   if (error) return;
                   std::make_shared<HttpSession>(Connection(std::move(socket)), peer, nullptr,
                                                 limits, routes, metrics)
                       ->start();
                 }) {
    spdlog::info("flashsale: {} on {}:{} (/healthz, /metrics)", what,
                 listener.endpoint().address().to_string(), listener.endpoint().port());
    listener.start();
    thread = std::thread([this] { threads[0]->run(); });
  }
  ~Server() {
    threads[0]->stop();
    thread.join();
  }

  static std::vector<std::unique_ptr<asio::io_context>> one_thread() {
    std::vector<std::unique_ptr<asio::io_context>> io;
    io.push_back(std::make_unique<asio::io_context>(1));
    return io;
  }

  StatusRoutes routes;
  std::vector<std::unique_ptr<asio::io_context>> threads;
  Listener listener;
  std::thread thread;  // last
};

StatusServer::StatusServer(const std::string& what, const std::string& listen, const Limits& limits,
                           Metrics& metrics, std::function<HostReply()> health,
                           std::function<std::string()> metrics_text)
    : server_(std::make_unique<Server>(what, listen, limits, metrics, std::move(health),
                                       std::move(metrics_text))) {}

StatusServer::~StatusServer() = default;

}  // namespace flashsale::gateway
