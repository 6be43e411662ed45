// See server.hpp. The listener accepts on the first I/O thread and deals connections to the
// I/O threads in turn; each connection then lives on one thread only.
#include "flashsale/gateway/server.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <charconv>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <thread>

#include "cluster_engine.hpp"
#include "cluster_gateway.hpp"
#include "context.hpp"
#include "endpoint.hpp"
#include "http_session.hpp"

namespace flashsale::gateway {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

class Listener {
 public:
  Listener(std::vector<std::unique_ptr<asio::io_context>>& threads,
           std::vector<std::unique_ptr<Hub>>& hubs, ServerContext& context,
           const tcp::endpoint& endpoint)
      : threads_(threads), hubs_(hubs), context_(context), acceptor_(*threads[0]) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(asio::socket_base::max_listen_connections);
  }
  tcp::endpoint endpoint() const { return acceptor_.local_endpoint(); }
  void start() { do_accept(); }
  void stop() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  }

 private:
  void do_accept() {
    next_ = (next_ + 1) % threads_.size();
    acceptor_.async_accept(*threads_[next_], [this, index = next_](boost::system::error_code error,
                                                                   tcp::socket socket) {
      if (error == asio::error::operation_aborted) return;
      if (!error && !take_accept_token()) {
        // Over the accept rate: a reconnect storm must not starve the connections already up.
        context_.metrics.count_limited(Limit::accepts);
        socket.close(error);
      } else if (!error) {
        // connections_max is counted at the WebSocket upgrade, so the host API stays reachable.
        socket.set_option(tcp::no_delay(true), error);
        context_.metrics.connections_accepted.fetch_add(1, std::memory_order_relaxed);
        std::make_shared<HttpSession>(std::move(socket), context_, *hubs_[index])->start();
      } else if (error == asio::error::no_descriptors) {
        spdlog::warn("accept: out of file descriptors");
      }
      do_accept();
    });
  }

  bool take_accept_token() {
    const Limits& limits = context_.config.limits;
    const auto now = std::chrono::steady_clock::now();
    tokens_ = std::min(limits.accepts_burst,
                       tokens_ + std::chrono::duration<double>(now - tokens_at_).count() *
                                     limits.accepts_per_second);
    tokens_at_ = now;
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
  }

  std::vector<std::unique_ptr<asio::io_context>>& threads_;
  std::vector<std::unique_ptr<Hub>>& hubs_;
  ServerContext& context_;
  tcp::acceptor acceptor_;
  std::size_t next_ = 0;
  double tokens_ = context_.config.limits.accepts_burst;
  std::chrono::steady_clock::time_point tokens_at_ = std::chrono::steady_clock::now();
};

}  // namespace

Server::Server(GatewayConfig config) : config_(std::move(config)) {
  validate(config_);
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
    code = run_engine_node(config_, stop);
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
    hub_pointers.push_back(hubs.back().get());
  }
  // The whole product here, or (a gateway) a link to the engines.
  std::optional<journal::Journal> journal;
  std::optional<Sequencer> sequencer;
  std::optional<ClusterLink> link;
  RequestSink* requests = nullptr;
  if (config_.cluster.role == Role::all) {
    journal.emplace(config_.journal);
    sequencer.emplace(config_, *journal, hub_pointers, metrics);
    sequencer->recover();
    sequencer->start();
    requests = &*sequencer;
  } else {
    if (!shard_count_agrees(config_)) return 2;
    link.emplace(config_, hub_pointers, metrics);
    link->start();
    requests = &*link;
  }
  SourceLimits source_limits(config_.limits);
  ServerContext context{config_, *requests, journal ? &*journal : nullptr, metrics, source_limits};
  context.cluster = link ? &*link : nullptr;

  Listener listener(threads, hubs, context, parse_endpoint(config_.listen));
  listener.start();
  spdlog::info("flashsale: listening on {}:{} with {} I/O thread(s); viewers at ws://{}:{}/ws",
               listener.endpoint().address().to_string(), listener.endpoint().port(),
               threads.size(), listener.endpoint().address().to_string(),
               listener.endpoint().port());

  using Guard = asio::executor_work_guard<asio::io_context::executor_type>;
  std::vector<std::unique_ptr<Guard>> guards;
  for (auto& thread : threads) guards.push_back(std::make_unique<Guard>(thread->get_executor()));

  // Shutdown: the stopper thread releases what the engine decided, says goodbye to every
  // viewer, then gives the I/O threads up to 3 s to finish before stopping them.
  std::mutex finished_mutex;
  std::condition_variable finished_changed;
  std::size_t finished = 0;
  std::thread stopper;
  asio::signal_set signals(*threads[0], SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code error, int signal) {
    if (error) return;
    spdlog::info("flashsale: signal {}; stopping", signal);
    context.shutting_down = true;
    listener.stop();
    stopper = std::thread([&] {
      if (sequencer) sequencer->stop(config_.journal.redis_timeout);
      for (auto& hub : hubs) asio::post(hub->io(), [hub = hub.get()] { hub->shut_down_all(); });
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
  if (link) {
    link->stop();
    spdlog::info("flashsale: stopped");
    return 0;
  }
  sequencer->stop(config_.journal.redis_timeout);
  journal->stop(config_.journal.redis_timeout);
  spdlog::info("flashsale: stopped; journal durable up to event {}", journal->durable_sequence());
  return 0;
}

}  // namespace flashsale::gateway
