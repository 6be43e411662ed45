// See server.hpp.
#include "flashsale/gateway/server.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <optional>
#include <thread>

#include "cluster_engine.hpp"
#include "cluster_gateway.hpp"
#include "context.hpp"
#include "endpoint.hpp"
#include "event_log.hpp"
#include "gateway_routes.hpp"
#include "host_json.hpp"
#include "intake.hpp"
#include "listener.hpp"
#include "log_format.hpp"
#include "paced_fanout.hpp"
#include "sequencer.hpp"
#include "status_server.hpp"
#include "tls.hpp"

namespace flashsale::gateway {

namespace asio = boost::asio;

namespace {

// What is wrong, in the server's words: Redis's own error text goes to the log, not to
// whoever asks /readyz.
std::string_view health_problem(journal::JournalState state) {
  switch (state) {
    case journal::JournalState::recovering:
      return "the journal is being replayed";
    case journal::JournalState::redis_unavailable:
      return "the journal cannot reach its Redis; retrying";
    case journal::JournalState::redis_error:
      return "the journal's Redis refuses writes; retrying";
    case journal::JournalState::fenced:
      return "another engine holds the journal's lease";
    case journal::JournalState::too_few_replicas:
      return "the journal's Redis replicas do not confirm writes; retrying";
    case journal::JournalState::diverged:
      return "the journal's Redis lacks batches this engine wrote; stopped";
    case journal::JournalState::stopped:
    case journal::JournalState::ok:
      break;
  }
  return "the journal is stopped";
}

HostReply journal_health(const journal::Journal& journal) {
  const journal::JournalStatus status = journal.status();
  if (status.state != journal::JournalState::ok)
    return host_json::error(503, journal::to_string(status.state), health_problem(status.state));
  return {
      200,
      JsonObject().text("status", "ok").number("durable_sequence", status.durable_sequence).done()};
}

}  // namespace

Server::Server(GatewayConfig config) : config_(std::move(config)) {
  validate(config_);
  if (config_.log_format == LogFormat::json) spdlog::set_formatter(std::make_unique<JsonLines>());
}

int Server::run_engine() {
  std::atomic<bool> stop{false};
  asio::io_context io(1);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code error, int signal) {
    if (error) return;
    spdlog::info("flashsale: signal {}; stopping", signal);
    stop = true;
  });
  int code = 0;
  std::thread node([&] {
    try {
      code = run_engine_node(config_, stop);
    } catch (const std::exception& error) {  // e.g. its status address in use
      spdlog::error("flashsale: {}", error.what());
      code = 2;
    }
    asio::post(io, [&] { io.stop(); });
  });
  io.run();
  stop = true;
  node.join();
  return code;
}

int Server::run() {
  if (config_.cluster.role == Role::engine) return run_engine();
  Metrics metrics;
  std::vector<std::unique_ptr<asio::io_context>> threads;
  std::vector<std::unique_ptr<Hub>> hubs;
  std::vector<Fanout*> hub_pointers;
  for (unsigned index = 0; index < config_.io_threads; ++index) {
    threads.push_back(std::make_unique<asio::io_context>(1));
    hubs.push_back(std::make_unique<Hub>(*threads.back(), metrics));
    hubs.back()->sweep_every(config_.limits.idle_timeout / 2);
    hub_pointers.push_back(hubs.back().get());
  }
  // The whole product here, or (a gateway) a link to the engines.
  std::optional<journal::Journal> journal;
  std::optional<JournalLog> log;
  std::optional<Sequencer> sequencer;
  std::vector<std::unique_ptr<PacedFanout>> paced;  // a gateway's hubs, paced by its audience
  std::optional<ClusterLink> link;
  RequestSink* requests = nullptr;
  if (config_.cluster.role == Role::all) {
    journal.emplace(config_.journal);
    log.emplace(*journal);
    sequencer.emplace(config_, *log, hub_pointers, metrics);
    sequencer->recover();
    sequencer->start();
    requests = &*sequencer;
  } else {
    if (!shard_count_agrees(config_)) return 2;
    std::vector<Fanout*> paced_pointers;
    for (auto& hub : hubs) {
      paced.push_back(std::make_unique<PacedFanout>(*hub, config_.limits, metrics));
      paced_pointers.push_back(paced.back().get());
    }
    link.emplace(config_, paced_pointers, metrics);
    link->start();
    requests = &*link;
  }
  SourceLimits source_limits(config_.limits);
  const auto health = [&]() -> HostReply {
    return link ? link->health() : journal_health(*journal);
  };
  HostDirectory hosts({.redis = config_.journal.redis_endpoint(),
                       .prefix = config_.journal.prefix,
                       .timeout = config_.journal.redis_timeout,
                       .hosts_max = config_.limits.hosts_max,
                       .min_replicas = config_.journal.min_replicas,
                       .replica_timeout = config_.journal.replica_timeout});
  // Host keys work from the first call on: the table is read before the port opens (or, Redis
  // away, only the configured keys work until it is).
  if (!hosts.wait_until_read(config_.journal.redis_timeout))
    spdlog::warn(
        "hosts: the host accounts are not read yet; only configured keys work until they are");
  const auto render_metrics = [&] {
    metrics.host_accounts.store(hosts.size(), std::memory_order_relaxed);
    metrics.host_accounts_read_at_ms.store(static_cast<std::uint64_t>(hosts.read_at_ms()),
                                           std::memory_order_relaxed);
    if (link) return metrics.render(nullptr);  // the engines hold the journals
    const journal::JournalStatus status = journal->status();
    return metrics.render(&status);
  };
  ServerContext context{config_, *requests, metrics, source_limits, hosts, health, render_metrics};
  std::vector<std::unique_ptr<GatewayRoutes>> routes;
  for (auto& hub : hubs) routes.push_back(std::make_unique<GatewayRoutes>(context, *hub));

  std::optional<ServerTls> tls;
  if (!config_.tls_certificate.empty()) {
    tls.emplace(config_.tls_certificate, config_.tls_private_key);
    metrics.tls_expires_at_s = static_cast<std::uint64_t>(tls->expires_at_s());
  }
  Intake intake(config_, tls ? &*tls : nullptr, metrics,
                [&](Connection&& connection, asio::ip::address source, std::size_t index) {
                  std::make_shared<HttpSession>(std::move(connection), std::move(source),
                                                &source_limits, config_.limits, *routes[index],
                                                metrics)
                      ->start();
                });
  std::optional<Listener> listener;  // optional, like what else is bound to the I/O threads
  listener.emplace(threads, parse_endpoint(config_.listen), config_.limits, metrics,
                   [&](asio::ip::tcp::socket socket, std::size_t index) {
                     intake.take(std::move(socket), index);
                   });
  listener->start();
  std::optional<StatusServer> operations;  // /healthz and /metrics on an address of their own
  if (!config_.ops_listen.empty()) {
    operations.emplace(
        "operations", config_.ops_listen, config_.limits, metrics,
        [&]() -> HostReply {
          if (context.shutting_down)
            return host_json::error(503, "shutting_down", "the server is stopping");
          return health();
        },
        render_metrics);
  }
  spdlog::info("flashsale: listening on {}:{} with {} I/O thread(s); viewers at {}://{}:{}/ws",
               listener->endpoint().address().to_string(), listener->endpoint().port(),
               threads.size(), tls ? "wss" : "ws", listener->endpoint().address().to_string(),
               listener->endpoint().port());

  using Guard = asio::executor_work_guard<asio::io_context::executor_type>;
  std::vector<std::unique_ptr<Guard>> guards;
  for (auto& thread : threads) guards.push_back(std::make_unique<Guard>(thread->get_executor()));

  // Shutdown: the stopper thread releases what the engine decided, says goodbye to every
  // viewer, then gives the I/O threads up to 3 s to finish before stopping them.
  std::mutex finished_mutex;
  std::condition_variable finished_changed;
  std::size_t finished = 0;
  std::thread stopper;
  // SIGHUP: the certificate and key are read again (a renewal needs no restart).
  std::optional<asio::signal_set> reloads(std::in_place, *threads[0], SIGHUP);
  std::function<void()> await_reload = [&] {
    reloads->async_wait([&](boost::system::error_code error, int) {
      if (error) return;
      if (!tls) {
        spdlog::info("flashsale: SIGHUP; no TLS certificate to reload");
      } else if (tls->reload()) {
        metrics.tls_expires_at_s = static_cast<std::uint64_t>(tls->expires_at_s());
      } else {
        metrics.tls_reloads_failed.fetch_add(1, std::memory_order_relaxed);
      }
      await_reload();
    });
  };
  await_reload();

  std::optional<asio::signal_set> signals(std::in_place, *threads[0], SIGINT, SIGTERM);
  signals->async_wait([&](boost::system::error_code error, int signal) {
    if (error) return;
    spdlog::info("flashsale: signal {}; stopping", signal);
    context.shutting_down = true;
    listener->stop();
    reloads->cancel();  // a pending wait is work: the I/O thread would never run out of it
    stopper = std::thread([&] {
      if (sequencer) sequencer->stop(config_.journal.redis_timeout);
      for (std::size_t index = 0; index < hubs.size(); ++index)
        asio::post(hubs[index]->io(), [hub = hubs[index].get(), http = routes[index].get()] {
          hub->shut_down_all();
          http->close_connections();
        });
      asio::post(*threads[0], [&] { guards.clear(); });
      std::unique_lock lock(finished_mutex);
      if (!finished_changed.wait_for(lock, std::chrono::seconds(3),
                                     [&] { return finished == threads.size(); })) {
        spdlog::warn("flashsale: connections still open after 3 s; closing them");
        for (auto& thread : threads) thread->stop();
      }
    });
  });

  const auto serve = [&](asio::io_context& io) {
    io.run();
    std::lock_guard lock(finished_mutex);
    finished += 1;
    finished_changed.notify_all();
  };
  std::vector<std::thread> workers;
  for (std::size_t index = 1; index < threads.size(); ++index)
    workers.emplace_back([&, index] { serve(*threads[index]); });
  serve(*threads[0]);
  for (auto& worker : workers) worker.join();
  if (stopper.joinable()) stopper.join();
  // Connections still open after the grace period end with their I/O threads, and a session
  // that ends tells the engine thread or the link and leaves its hub: those must still be
  // there. So the I/O threads go first — after what is bound to them, and after the link's
  // readers, which post drop updates to them — and the link after its last connection.
  guards.clear();
  signals.reset();
  reloads.reset();
  listener.reset();
  operations.reset();
  // The rule: whatever holds a connection, or a timer or socket of an I/O thread, lets go of it
  // here, where no I/O thread runs any more and their io_contexts, hubs and the context are
  // all still there. A connection that ends closes its socket on its io_context, leaves its hub
  // and uses the context; a timer cancels its wait on its io_context. Answers that never come
  // hold connections: in one process, what the engine decided and the journal never made
  // durable (Redis gone with a batch in flight) — a buyer's, a host call's; in a gateway, a host
  // call no engine answered (an engine paused or killed), which the link holds; in both, a read
  // of the drop list waiting for it. A gateway's pacing holds timers.
  if (link) {
    link->stop();   // its readers, its pipe's last round, its unanswered host calls
    paced.clear();  // the link uses its hubs no more
  }
  if (sequencer) {
    sequencer->stop(config_.journal.redis_timeout);  // done already, by the stopper
    sequencer->discard_unreleased();
  }
  context.drop_list.abandon_waiting();
  threads.clear();
  if (link) {
    link.reset();
    spdlog::info("flashsale: stopped");
    return 0;
  }
  journal->stop(config_.journal.redis_timeout);
  spdlog::info("flashsale: stopped; journal durable up to event {}", journal->durable_sequence());
  return 0;
}

}  // namespace flashsale::gateway
