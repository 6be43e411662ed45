// ReplicatedRedis: the journal's replicated Redis for one test. Two data nodes (node 0 starts as
// the primary, node 1 as its replica) and three Sentinels watching them under the name
// "flashsale", all real processes started from configs/replicated/ on 127.0.0.1 TCP ports, each
// in its own temporary folder with its own copy of its config file (Sentinel rewrites its own,
// and runs CONFIG REWRITE on the data nodes when it changes their roles). Everything asks for a
// password, data nodes and Sentinels alike.
//
// Test timings instead of the operator's: a Sentinel counts a silent node as down after 2 s, so a
// killed primary is replaced in about 3.3 s. Not 1 s: Sentinel pings once a second, so with 1 s a
// single late reply counts as down, and right after a failover that called the new primary down
// and promoted the old one back — empty, rejoined a moment before and not yet synced (seen here;
// the journal's gap check would then stop it as diverged). An old primary that comes back claiming
// to be a primary is turned into a replica about 10 s later (Sentinel asks replicas for INFO every
// 10 s and waits 8 s after it sees such a claim, both fixed in Redis), then fully synced: 11 s
// measured. Allow more on a loaded machine: a Sentinel whose timer is late by over 2 s (starved
// of CPU, or the machine paused) enters TILT mode and acts on nothing for 30 s.
//
// Indices name processes, not roles: node 0 stays the process on port(0) and its folder even
// after the Sentinels made node 1 the primary. Readiness is awaited on the processes' own log
// lines ("ready to accept connections", "+monitor master") and by polling what the nodes and the
// Sentinels answer, every 50 ms up to a deadline; never by sleeping a guessed time.
//
// Ports are drawn at random below Linux's ephemeral range (so they collide neither with ports
// other tests get by binding port 0 nor with outgoing connections), checked free, and drawn again
// if a server still finds one taken. Not thread-safe: one test thread drives it.
#pragma once

#include <array>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace flashsale::testing {

class ReplicatedRedis {
 public:
  static constexpr int data_node_count = 2;
  static constexpr int sentinel_count = 3;

  // Starts all five and returns once node 1 is an in-sync replica of node 0 and each Sentinel
  // names node 0 as the primary, lists node 1 as its replica (link up) and has heard from the two
  // other Sentinels. Throws std::runtime_error with every process's log when that takes over 30 s.
  ReplicatedRedis();
  ~ReplicatedRedis();  // SIGKILLs every process (paused ones too) and removes every folder
  ReplicatedRedis(const ReplicatedRedis&) = delete;
  ReplicatedRedis& operator=(const ReplicatedRedis&) = delete;

  // "sentinel://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/flashsale", without credentials.
  std::string sentinel_url() const;
  // The password of every data node and every Sentinel (default user).
  const std::string& password() const noexcept { return password_; }
  const std::string& master_name() const noexcept { return master_name_; }

  // The port a majority of the Sentinels name as the primary now (SENTINEL
  // get-master-addr-by-name); 0 when no two of them agree or answer.
  int primary_port() const;
  int port(int node) const;
  int sentinel_port(int sentinel) const;

  // SIGKILL, as a crash; a no-op if the node is not running. Its folder, AOF and config stay.
  void kill(int node);
  // SIGKILL, then its folder is deleted: the machine is lost, data and config with it.
  void kill_and_wipe(int node);
  // Starts the node again on its folder and port, from its config copy as the Sentinels last
  // rewrote it. After kill_and_wipe, the folder is new and the config the original one again: node
  // 0 then comes back as a primary with an empty dataset (and refuses writes, having no replica),
  // until the Sentinels demote it. Throws if it does not start within 20 s.
  void start(int node);
  void pause(int node);   // SIGSTOP: it stops answering without closing a connection
  void resume(int node);  // SIGCONT

  // Polls until a majority of the Sentinels name `port` as the primary and the node on that port
  // says role:master; false if `timeout` passes first.
  bool await_primary(int port, std::chrono::milliseconds timeout) const;
  // Polls until node `node` is a replica with its link up, no sync or load under way, and its AOF
  // rewritten after any full sync (until then, a replica killed would come back without the
  // synced data); false if `timeout` passes first.
  bool await_replica_in_sync(int node, std::chrono::milliseconds timeout) const;

  // One command on a data node or a Sentinel, after AUTH with password(); the reply as text (an
  // error's message; arrays joined by ' ', nested ones too). Throws std::runtime_error when the
  // process cannot be reached or does not answer within 2 s (killed, paused).
  std::string call(int node, const std::vector<std::string>& arguments) const;
  std::string call_sentinel(int sentinel, const std::vector<std::string>& arguments) const;

  void kill_sentinels();   // SIGKILL all three: clients find no Sentinel to ask
  void start_sentinels();  // each on its folder and rewritten config; awaits "+monitor master"

  // For a failure message: each process's port, whether it runs, and the last lines it logged
  // (across its restarts, wipes included).
  std::string report() const;

 private:
  struct LogTail;  // the last lines one instance logged, kept across its restarts
  class Process;   // one running redis-server or redis-sentinel, its log drained into a LogTail
  struct Instance {
    std::string name;  // "node 0", "sentinel 2": for messages
    std::filesystem::path folder;
    std::filesystem::path config;  // its own copy, which Sentinel rewrites
    int port = 0;
    std::shared_ptr<LogTail> log;
    std::unique_ptr<Process> process;
  };

  enum class Kind { data_node, sentinel };
  Instance& instance(Kind kind, int index);
  const Instance& instance(Kind kind, int index) const;
  // Writes the instance's config copy from its template in configs/replicated/, with this set's
  // ports, folder, password and test timings in place of the template's.
  void write_config(Kind kind, int index);
  // Starts the instance and awaits its readiness line. With `draw_port`, first draws a free port
  // and writes its config, drawing again while the server finds the port taken; without, runs
  // on its port and config as they are (writing the config only if a wipe removed it).
  void launch(Kind kind, int index, bool draw_port);
  // Every Sentinel names node 0 as the primary, lists node 1 as its replica with the link up, and
  // has heard from the two other Sentinels.
  bool sentinels_ready() const;

  std::filesystem::path root_;
  std::string password_;
  std::string master_name_ = "flashsale";
  std::array<Instance, data_node_count> nodes_;
  std::array<Instance, sentinel_count> sentinels_;
};

}  // namespace flashsale::testing
