// See engine_status.hpp.
#include "engine_status.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <thread>

#include "endpoint.hpp"
#include "flashsale/gateway/json_writer.hpp"
#include "host_json.hpp"
#include "http_session.hpp"
#include "listener.hpp"

namespace flashsale::gateway {

namespace asio = boost::asio;

namespace {

class StatusRoutes final : public HttpSession::Routes {
 public:
  StatusRoutes(std::function<HostReply()> health, std::function<std::string()> metrics_text)
      : health_(std::move(health)), metrics_text_(std::move(metrics_text)) {}

  void route(HttpSession& session, HttpRequest& request) override {
    const std::string_view target = request.target();
    if (target == "/healthz") return session.respond(health_());
    if (target == "/metrics")
      return session.respond({200, metrics_text_()}, "text/plain; version=0.0.4");
    session.respond(host_json::error(404, "not_found", "an engine serves /healthz and /metrics"));
  }

 private:
  const std::function<HostReply()> health_;
  const std::function<std::string()> metrics_text_;
};

}  // namespace

struct StatusServer::Server {
  Server(const std::string& listen, const Limits& limits, Metrics& metrics,
         std::function<HostReply()> health, std::function<std::string()> metrics_text)
      : routes(std::move(health), std::move(metrics_text)),
        threads(one_thread()),
        listener(
            threads, parse_endpoint(listen), limits, metrics,
            [this, &limits, &metrics](asio::ip::tcp::socket socket, std::size_t) {
              std::make_shared<HttpSession>(std::move(socket), limits, routes, metrics)->start();
            }) {
    spdlog::info("flashsale: engine status on {}:{} (/healthz, /metrics)",
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

StatusServer::StatusServer(const std::string& listen, const Limits& limits, Metrics& metrics,
                           std::function<HostReply()> health,
                           std::function<std::string()> metrics_text)
    : server_(std::make_unique<Server>(listen, limits, metrics, std::move(health),
                                       std::move(metrics_text))) {}

StatusServer::~StatusServer() = default;

HostReply engine_health(std::string_view id, const std::vector<ShardStatus>& shards) {
  JsonArray served;
  for (const ShardStatus& shard : shards) {
    if (!shard.journal) continue;
    const std::string_view state = journal::to_string(shard.journal->state);
    if (shard.journal->state != journal::JournalState::ok)
      return host_json::error(503, "journal",
                              fmt::format("shard {}: journal {}", shard.shard, state));
    served.raw(JsonObject()
                   .number("shard", shard.shard)
                   .text("journal", state)
                   .number("durable_sequence", shard.journal->durable_sequence)
                   .done());
  }
  return {200, JsonObject()
                   .text("status", "ok")
                   .text("role", "engine")
                   .text("id", id)
                   .raw("serving", served.done())
                   .done()};
}

std::string engine_metrics(const Metrics& metrics, const std::vector<ShardStatus>& shards) {
  std::string out = metrics.render(nullptr);
  const auto series = [&](std::string_view name, std::string_view help, auto value) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} gauge\n", name, help, name);
    for (const ShardStatus& shard : shards)
      fmt::format_to(std::back_inserter(out), "{}{{shard=\"{}\"}} {}\n", name, shard.shard,
                     value(shard));
  };
  series("flashsale_shard_served", "1 if this engine serves the shard, 0 if it stands by.",
         [](const ShardStatus& shard) { return shard.journal ? 1 : 0; });
  series("flashsale_shard_journal_ok", "1 if the shard is served and its journal takes writes.",
         [](const ShardStatus& shard) {
           return shard.journal && shard.journal->state == journal::JournalState::ok ? 1 : 0;
         });
  series(
      "flashsale_shard_journal_durable_sequence", "The shard's last durable event.",
      [](const ShardStatus& shard) { return shard.journal ? shard.journal->durable_sequence : 0; });
  series(
      "flashsale_shard_journal_last_batch_ms", "The shard's last journal round trip.",
      [](const ShardStatus& shard) { return shard.journal ? shard.journal->last_batch_ms : 0.0; });
  return out;
}

}  // namespace flashsale::gateway
