// FaultCluster: N real spate-server processes on 127.0.0.1 wired for fault
// injection. Each node listens on its own fixed ports, but advertises (and
// its peers are configured with) the addresses of two LinkProxy instances
// run in this process — one for its cluster port, one for its client port —
// so every node-to-node connection (raft traffic, forwarded requests,
// subscription relays, snapshot fetches) crosses a proxy that can cut,
// stall or slow it per direction. Test clients talk to the real client
// ports directly.
//
// Faults it can apply: SIGKILL (a power loss when the node runs with
// --test_lose_unsynced_writes), SIGSTOP/SIGCONT, per-link rules, a wall
// clock offset (libfaketime, re-read every second), and damage to a
// stopped node's RocksDB files (bit flips or truncation).
//
// Threading: fault methods are called from one thread (the runner); the
// proxies' identification callback reads the pid table under a mutex.
#ifndef SPATE_TESTS_FAULTS_FAULT_CLUSTER_H_
#define SPATE_TESTS_FAULTS_FAULT_CLUSTER_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/prng.h"
#include "proto/admin.pb.h"
#include "tests/faults/link_proxy.h"
#include "tests/testing/server_process.h"

namespace spate::faults {

struct FaultClusterOptions {
  int nodes = 3;
  // ServerConfig text appended to every node's config.
  std::string extra_config;
  // Run every node under libfaketime (clock faults); "" disables.
  std::string faketime_library;
};

// Where libfaketime's multi-threaded library is, or "" when missing.
std::string FindFaketimeLibrary();

class FaultCluster {
 public:
  explicit FaultCluster(FaultClusterOptions options);
  ~FaultCluster();  // kills the nodes, stops the proxies

  // Starts the proxies and every node (`lose_unsynced`: see StartNode).
  absl::Status Start(bool lose_unsynced);
  // (Re)starts node `id`; `lose_unsynced` runs it with
  // --test_lose_unsynced_writes. Start failures carry the node's log tail.
  absl::Status StartNode(int id, bool lose_unsynced);
  void Kill(int id);
  absl::Status StopNode(int id);
  void Pause(int id);
  void Resume(int id);
  void StopAll();

  bool running(int id) const;
  bool paused(int id) const;
  bool lossy(int id) const;
  int size() const { return static_cast<int>(nodes_.size()); }

  // Traffic from `from` to `to` (raft and forwarded client requests).
  void SetLink(int from, int to, LinkRule rule);
  void HealLinks();
  // Wall clock of node `id` = real time + offset (from within a second).
  absl::Status SetClockOffset(int id, absl::Duration offset);
  // Damages the stopped node's store: flips `bits` random bits in one of
  // its RocksDB files, or (bits == 0) truncates one. Returns what it did.
  absl::StatusOr<std::string> Corrupt(int id, int bits, base::Prng* prng);
  // Deletes the stopped node's data (it rejoins empty on its next start).
  absl::Status Wipe(int id);

  const std::string& client_address(int id) const {
    return nodes_.at(id - 1)->client_address;
  }
  testing::ServerProcess& process(int id) {
    return *nodes_.at(id - 1)->process;
  }
  // The directory holding every node's data, config and log.
  const std::string& root() const { return root_; }
  const std::string& data_dir(int id) const {
    return nodes_.at(id - 1)->data_dir;
  }
  absl::StatusOr<ClusterStatusResponse> Status(int id);
  // Channel `channel`'s group as node `id` reports it, if that node hosts
  // it and answers.
  std::optional<GroupStatus> Group(int id, const std::string& channel);
  std::string Logs();
  std::string ProxyStats();

 private:
  struct Node {
    std::string data_dir;
    std::string client_address;   // real listener
    std::string cluster_address;  // real listener
    std::string clock_file;       // libfaketime offset
    std::unique_ptr<LinkProxy> cluster_proxy;
    std::unique_ptr<LinkProxy> client_proxy;
    std::unique_ptr<testing::ServerProcess> process;
    bool lossy = false;
    bool paused = false;
  };

  std::string ConfigFor(int id) const;
  int Identify(int client_port, int proxy_port);

  const FaultClusterOptions options_;
  std::string root_;
  std::vector<std::unique_ptr<Node>> nodes_;
  mutable absl::Mutex pids_mu_;
  std::vector<pid_t> pids_ ABSL_GUARDED_BY(pids_mu_);  // index id - 1
};

}  // namespace spate::faults

#endif  // SPATE_TESTS_FAULTS_FAULT_CLUSTER_H_
