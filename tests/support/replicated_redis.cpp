// See replicated_redis.hpp.
#include "replicated_redis.hpp"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "flashsale/journal/redis_connection.hpp"
#include "process.hpp"
#include "redis_reply.hpp"

namespace flashsale::testing {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto poll_interval = 50ms;
constexpr auto process_start_timeout = 20s;
constexpr auto set_ready_timeout = 30s;
constexpr auto reply_timeout = 2s;
constexpr std::size_t log_lines_kept = 400;
constexpr int port_draws_max = 10;
// Below Linux's ephemeral range (32768 and up by default), which bind-to-port-0 and outgoing
// connections draw from.
constexpr int port_first = 20000;
constexpr int port_last = 32000;
// Test timings; the operator's (5 s, 60 s) are in configs/replicated/sentinel.conf. Above
// Sentinel's 1 s ping period, or one late reply is a failover (replicated_redis.hpp).
constexpr int down_after_ms = 2000;
constexpr int failover_timeout_ms = 10000;

using journal::Reply;

// One command to 127.0.0.1:`port` after AUTH, through the journal's own connection: its reply,
// or nullptr when the process cannot be reached, refuses AUTH or does not answer within
// reply_timeout.
Reply query(int port, const std::string& password, const std::vector<std::string>& arguments) {
  journal::RedisEndpoint endpoint;
  endpoint.host = "127.0.0.1";
  endpoint.port = port;
  endpoint.password = password;
  journal::RedisConnection connection(endpoint, reply_timeout);
  if (!connection.ok()) return nullptr;
  return connection.command({arguments.begin(), arguments.end()});
}

// The value of `field` in an INFO reply's "field:value" lines; "" when absent.
std::string info_field(const std::string& info, const std::string& field) {
  std::istringstream lines(info);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.size() > field.size() && line.compare(0, field.size(), field) == 0 &&
        line[field.size()] == ':')
      return line.substr(field.size() + 1);
  }
  return "";
}

// A Sentinel's description of one instance: a flat array of field, value, field, value…
std::map<std::string, std::string> fields_of(const redisReply* reply) {
  std::map<std::string, std::string> fields;
  if (reply->type != REDIS_REPLY_ARRAY) return fields;
  for (std::size_t index = 0; index + 1 < reply->elements; index += 2)
    fields[reply_text(reply->element[index])] = reply_text(reply->element[index + 1]);
  return fields;
}

// SENTINEL replicas / SENTINEL sentinels: an array of such descriptions.
std::vector<std::map<std::string, std::string>> entries_of(const redisReply* reply) {
  std::vector<std::map<std::string, std::string>> entries;
  if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY) return entries;
  for (std::size_t index = 0; index < reply->elements; ++index)
    entries.push_back(fields_of(reply->element[index]));
  return entries;
}

// The port a Sentinel names as the primary; 0 when it does not answer or knows none.
int named_primary(int sentinel_port, const std::string& password, const std::string& name) {
  const Reply reply = query(sentinel_port, password, {"SENTINEL", "get-master-addr-by-name", name});
  if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) return 0;
  return std::atoi(reply_text(reply->element[1]).c_str());
}

// Polls `condition` every poll_interval until it holds (true) or `timeout` passes (false).
template <typename Condition>
bool poll_until(Condition condition, std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(poll_interval);
  }
}

// A random port in [port_first, port_last) that none of `taken` uses and that binds now (with
// SO_REUSEADDR, as Redis binds: a port whose last connections linger in TIME_WAIT is free).
int free_port(const std::vector<int>& taken) {
  static std::mt19937 random{std::random_device{}()};
  std::uniform_int_distribution<int> draw(port_first, port_last - 1);
  while (true) {
    const int port = draw(random);
    if (std::find(taken.begin(), taken.end(), port) != taken.end()) continue;
    const int probe = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) throw std::runtime_error("socket failed");
    const int yes = 1;
    setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool bound = bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    close(probe);
    if (bound) return port;
  }
}

// A config line's directive: its first word, or its first two for Sentinel's "sentinel …" lines;
// "" for comments and blank lines.
std::string directive_of(const std::string& line) {
  std::istringstream words(line);
  std::string first;
  std::string second;
  words >> first >> second;
  if (first.empty() || first.front() == '#') return "";
  return first == "sentinel" ? first + " " + second : first;
}

// The template's text with each line whose directive an override names replaced by that
// override, in place (Sentinel's per-master lines must stay after `sentinel monitor`); overrides
// with no line of their own are appended.
std::string configured(const std::filesystem::path& template_path,
                       const std::vector<std::string>& overrides) {
  std::ifstream in(template_path);
  if (!in) throw std::runtime_error("cannot read " + template_path.string());
  std::vector<bool> used(overrides.size(), false);
  std::string text;
  for (std::string line; std::getline(in, line);) {
    const std::string directive = directive_of(line);
    for (std::size_t index = 0; index < overrides.size() && !directive.empty(); ++index) {
      if (directive_of(overrides[index]) != directive) continue;
      line = used[index] ? "" : overrides[index];
      used[index] = true;
    }
    text += line + "\n";
  }
  text += "\n# Set by tests/support/replicated_redis.cpp.\n";
  for (std::size_t index = 0; index < overrides.size(); ++index)
    if (!used[index]) text += overrides[index] + "\n";
  return text;
}

}  // namespace

struct ReplicatedRedis::LogTail {
  void add(std::string line) {
    std::lock_guard lock(mutex);
    lines.push_back(std::move(line));
    if (lines.size() > log_lines_kept) lines.pop_front();
  }
  std::string text() const {
    std::lock_guard lock(mutex);
    std::string joined;
    for (const auto& line : lines) joined += line + "\n";
    return joined;
  }

  mutable std::mutex mutex;
  std::deque<std::string> lines;
};

// Starts the program and reads what it logs (Redis logs to stdout with `logfile ""`) until a
// line containing `ready_text`; from then on a thread keeps draining its output into the tail,
// so the pipe never fills. The destructor SIGKILLs it (stopped or not) and joins the thread.
class ReplicatedRedis::Process {
 public:
  Process(std::vector<std::string> arguments, const std::string& ready_text,
          std::shared_ptr<LogTail> log)
      : child_(std::move(arguments)), log_(std::move(log)) {
    const Clock::time_point deadline = Clock::now() + process_start_timeout;
    while (!ready_) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::max(deadline - Clock::now(), Clock::duration::zero()));
      const auto line = child_.read_line(left);
      if (!line) break;
      log_->add(*line);
      startup_log_ += *line + "\n";
      ready_ = line->find(ready_text) != std::string::npos;
    }
    if (!ready_) {
      log_->add("[did not log \"" + ready_text + "\": " + child_.report(1s) + "]");
      return;
    }
    drain_ = std::thread([this] {
      while (const auto line = child_.read_line(std::chrono::hours(1))) log_->add(*line);
    });
  }
  ~Process() {
    child_.signal(SIGKILL);
    child_.wait(10s);
    if (drain_.joinable()) drain_.join();  // its pipe closed with the process
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  bool ready() const noexcept { return ready_; }
  // Whether it logged `text` before it was ready or ended.
  bool said_at_startup(const std::string& text) const {
    return startup_log_.find(text) != std::string::npos;
  }
  pid_t pid() const noexcept { return child_.pid(); }
  void signal(int number) { child_.signal(number); }

 private:
  ChildProcess child_;
  std::shared_ptr<LogTail> log_;
  bool ready_ = false;
  std::string startup_log_;
  std::thread drain_;
};

ReplicatedRedis::ReplicatedRedis() {
  std::random_device random;
  root_ = std::filesystem::temp_directory_path() /
          ("flashsale-replicated-" + std::to_string(getpid()) + "-" + std::to_string(random()));
  std::filesystem::create_directories(root_);
  std::ostringstream secret;
  secret << "test-secret-" << std::hex << random() << random();
  password_ = secret.str();
  for (int index = 0; index < data_node_count; ++index) {
    Instance& node = nodes_[index];
    node.name = "node " + std::to_string(index);
    node.folder = root_ / ("node-" + std::to_string(index));
    node.config = node.folder / "redis.conf";
    node.log = std::make_shared<LogTail>();
  }
  for (int index = 0; index < sentinel_count; ++index) {
    Instance& sentinel = sentinels_[index];
    sentinel.name = "sentinel " + std::to_string(index);
    sentinel.folder = root_ / ("sentinel-" + std::to_string(index));
    sentinel.config = sentinel.folder / "sentinel.conf";
    sentinel.log = std::make_shared<LogTail>();
  }
  try {
    launch(Kind::data_node, 0, true);
    launch(Kind::data_node, 1, true);
    if (!await_replica_in_sync(1, set_ready_timeout))
      throw std::runtime_error("node 1 did not get in sync with node 0");
    for (int index = 0; index < sentinel_count; ++index) launch(Kind::sentinel, index, true);
    if (!poll_until([this] { return sentinels_ready(); }, set_ready_timeout))
      throw std::runtime_error("the Sentinels did not all find the primary, replica and peers");
  } catch (const std::exception& error) {
    const std::string message = std::string(error.what()) + "\n" + report();
    for (auto& sentinel : sentinels_) sentinel.process.reset();
    for (auto& node : nodes_) node.process.reset();
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
    throw std::runtime_error("ReplicatedRedis: " + message);
  }
}

ReplicatedRedis::~ReplicatedRedis() {
  for (auto& sentinel : sentinels_) sentinel.process.reset();
  for (auto& node : nodes_) node.process.reset();
  std::error_code ignored;
  std::filesystem::remove_all(root_, ignored);
}

ReplicatedRedis::Instance& ReplicatedRedis::instance(Kind kind, int index) {
  return kind == Kind::data_node ? nodes_.at(static_cast<std::size_t>(index))
                                 : sentinels_.at(static_cast<std::size_t>(index));
}

const ReplicatedRedis::Instance& ReplicatedRedis::instance(Kind kind, int index) const {
  return kind == Kind::data_node ? nodes_.at(static_cast<std::size_t>(index))
                                 : sentinels_.at(static_cast<std::size_t>(index));
}

void ReplicatedRedis::write_config(Kind kind, int index) {
  const Instance& target = instance(kind, index);
  const std::filesystem::path templates = FLASHSALE_SOURCE_DIR "/configs/replicated";
  const std::string primary_address = "127.0.0.1 " + std::to_string(nodes_[0].port);
  std::vector<std::string> overrides{"port " + std::to_string(target.port),
                                     "dir \"" + target.folder.string() + "\"", "logfile \"\"",
                                     "daemonize no", "requirepass " + password_};
  std::filesystem::path template_path;
  if (kind == Kind::sentinel) {
    template_path = templates / "sentinel.conf";
    const std::vector<std::string> sentinel_lines{
        "sentinel monitor " + master_name_ + " " + primary_address + " 2",
        "sentinel down-after-milliseconds " + master_name_ + " " + std::to_string(down_after_ms),
        "sentinel failover-timeout " + master_name_ + " " + std::to_string(failover_timeout_ms),
        "sentinel auth-pass " + master_name_ + " " + password_};
    overrides.insert(overrides.end(), sentinel_lines.begin(), sentinel_lines.end());
  } else {
    template_path = templates / (index == 0 ? "primary.conf" : "replica.conf");
    overrides.push_back("masterauth " + password_);
    if (index != 0) overrides.push_back("replicaof " + primary_address);
  }
  std::filesystem::create_directories(target.folder);
  std::ofstream(target.config) << configured(template_path, overrides);
}

void ReplicatedRedis::launch(Kind kind, int index, bool draw_port) {
  Instance& target = instance(kind, index);
  const bool sentinel = kind == Kind::sentinel;
  std::vector<std::string> arguments{sentinel ? "/usr/bin/redis-sentinel" : "/usr/bin/redis-server",
                                     target.config.string()};
  const std::string ready_text = sentinel ? "+monitor master" : "eady to accept connections";
  for (int draw = 0; draw < port_draws_max; ++draw) {
    if (draw_port) {
      std::vector<int> taken;
      for (const auto& other : nodes_) taken.push_back(other.port);
      for (const auto& other : sentinels_) taken.push_back(other.port);
      target.port = free_port(taken);
    }
    if (draw_port || !std::filesystem::exists(target.config)) write_config(kind, index);
    target.log->add("[starting on port " + std::to_string(target.port) + "]");
    target.process = std::make_unique<Process>(arguments, ready_text, target.log);
    if (target.process->ready()) return;
    const bool port_taken = target.process->said_at_startup("Address already in use");
    target.process.reset();
    if (!draw_port || !port_taken) break;
  }
  throw std::runtime_error(target.name + " did not start");
}

std::string ReplicatedRedis::sentinel_url() const {
  std::string url = "sentinel://";
  for (int index = 0; index < sentinel_count; ++index)
    url += (index ? ",127.0.0.1:" : "127.0.0.1:") + std::to_string(sentinels_[index].port);
  return url + "/" + master_name_;
}

int ReplicatedRedis::port(int node) const {
  return instance(Kind::data_node, node).port;
}

int ReplicatedRedis::sentinel_port(int sentinel) const {
  return instance(Kind::sentinel, sentinel).port;
}

int ReplicatedRedis::primary_port() const {
  std::map<int, int> votes;
  for (const auto& sentinel : sentinels_)
    if (const int named = named_primary(sentinel.port, password_, master_name_); named != 0)
      if (++votes[named] > sentinel_count / 2) return named;
  return 0;
}

void ReplicatedRedis::kill(int node) {
  Instance& target = instance(Kind::data_node, node);
  if (target.process == nullptr) return;
  target.process.reset();
  target.log->add("[killed with SIGKILL]");
}

void ReplicatedRedis::kill_and_wipe(int node) {
  kill(node);
  Instance& target = instance(Kind::data_node, node);
  std::filesystem::remove_all(target.folder);
  target.log->add("[folder wiped: data and config gone]");
}

void ReplicatedRedis::start(int node) {
  Instance& target = instance(Kind::data_node, node);
  if (target.process != nullptr) throw std::logic_error(target.name + " is already running");
  launch(Kind::data_node, node, false);
}

void ReplicatedRedis::pause(int node) {
  Instance& target = instance(Kind::data_node, node);
  if (target.process == nullptr) throw std::logic_error(target.name + " is not running");
  target.process->signal(SIGSTOP);
  target.log->add("[paused with SIGSTOP]");
}

void ReplicatedRedis::resume(int node) {
  Instance& target = instance(Kind::data_node, node);
  if (target.process == nullptr) throw std::logic_error(target.name + " is not running");
  target.process->signal(SIGCONT);
  target.log->add("[resumed with SIGCONT]");
}

bool ReplicatedRedis::await_primary(int port, std::chrono::milliseconds timeout) const {
  return poll_until(
      [&] {
        int votes = 0;
        for (const auto& sentinel : sentinels_)
          votes += named_primary(sentinel.port, password_, master_name_) == port;
        if (votes <= sentinel_count / 2) return false;
        const Reply info = query(port, password_, {"INFO", "replication"});
        return info != nullptr && info_field(reply_text(info.get()), "role") == "master";
      },
      timeout);
}

bool ReplicatedRedis::await_replica_in_sync(int node, std::chrono::milliseconds timeout) const {
  const int node_port = port(node);
  return poll_until(
      [&] {
        const Reply reply = query(node_port, password_, {"INFO"});
        if (reply == nullptr || reply->type != REDIS_REPLY_STRING) return false;
        const std::string info = reply_text(reply.get());
        return info_field(info, "role") == "slave" &&
               info_field(info, "master_link_status") == "up" &&
               info_field(info, "master_sync_in_progress") == "0" &&
               info_field(info, "loading") == "0" &&
               info_field(info, "aof_rewrite_in_progress") == "0" &&
               info_field(info, "aof_rewrite_scheduled") == "0";
      },
      timeout);
}

bool ReplicatedRedis::sentinels_ready() const {
  for (const auto& sentinel : sentinels_) {
    if (named_primary(sentinel.port, password_, master_name_) != nodes_[0].port) return false;
    const Reply replicas = query(sentinel.port, password_, {"SENTINEL", "replicas", master_name_});
    const auto listed = entries_of(replicas.get());
    const bool replica_known = std::any_of(listed.begin(), listed.end(), [&](const auto& fields) {
      return fields.count("port") && fields.at("port") == std::to_string(nodes_[1].port) &&
             fields.count("flags") && fields.at("flags") == "slave" &&
             fields.count("master-link-status") && fields.at("master-link-status") == "ok";
    });
    if (!replica_known) return false;
    const Reply peers = query(sentinel.port, password_, {"SENTINEL", "sentinels", master_name_});
    if (entries_of(peers.get()).size() != std::size_t{sentinel_count - 1}) return false;
  }
  return true;
}

std::string ReplicatedRedis::call(int node, const std::vector<std::string>& arguments) const {
  const Instance& target = instance(Kind::data_node, node);
  const Reply reply = query(target.port, password_, arguments);
  if (reply == nullptr)
    throw std::runtime_error(target.name + " (port " + std::to_string(target.port) +
                             ") did not answer");
  return reply_text(reply.get());
}

std::string ReplicatedRedis::call_sentinel(int sentinel,
                                           const std::vector<std::string>& arguments) const {
  const Instance& target = instance(Kind::sentinel, sentinel);
  const Reply reply = query(target.port, password_, arguments);
  if (reply == nullptr)
    throw std::runtime_error(target.name + " (port " + std::to_string(target.port) +
                             ") did not answer");
  return reply_text(reply.get());
}

void ReplicatedRedis::kill_sentinels() {
  for (auto& sentinel : sentinels_) {
    if (sentinel.process == nullptr) continue;
    sentinel.process.reset();
    sentinel.log->add("[killed with SIGKILL]");
  }
}

void ReplicatedRedis::start_sentinels() {
  for (int index = 0; index < sentinel_count; ++index)
    if (sentinels_[index].process == nullptr) launch(Kind::sentinel, index, false);
}

std::string ReplicatedRedis::report() const {
  std::string text;
  const auto describe = [&](const Instance& target) {
    text += "--- " + target.name + ", port " + std::to_string(target.port) + ", " +
            (target.process ? "running as pid " + std::to_string(target.process->pid())
                            : std::string("not running")) +
            "; its last lines:\n" + target.log->text();
  };
  for (const auto& node : nodes_) describe(node);
  for (const auto& sentinel : sentinels_) describe(sentinel);
  return text;
}

}  // namespace flashsale::testing
