// TestCluster: N real spate-server processes forming one cluster on
// 127.0.0.1 (ports picked free up front, since every node must know its
// peers' cluster and client addresses). Nodes are numbered 1..N; each can
// be killed (SIGKILL), paused, stopped and restarted on the same ports and
// data directory, or restarted with its data wiped.
#ifndef SPATE_TESTS_TESTING_CLUSTER_H_
#define SPATE_TESTS_TESTING_CLUSTER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/admin.pb.h"
#include "tests/testing/server_process.h"

namespace spate::testing {

class TestCluster {
 public:
  // `extra_config`: protobuf text appended to every node's ServerConfig.
  // Nodes after the first `members` (all by default) are spares: they are
  // not configured members, start with `join: true` and list the members
  // as peers, ready to be added with Admin.AddNode.
  explicit TestCluster(int nodes, std::string extra_config = "",
                       int members = 0);
  // A cluster named `cluster_name` whose node i serves gateways on
  // gateway_addresses[i - 1] (see ServerProcess::FreePort).
  TestCluster(int nodes, std::string extra_config, std::string cluster_name,
              std::vector<std::string> gateway_addresses);

  // Starts every member node (they elect leaders by themselves); spares
  // are started with StartNode.
  absl::Status Start(absl::Duration timeout = absl::Seconds(60));
  absl::Status StartNode(int id, absl::Duration timeout = absl::Seconds(60));
  void Kill(int id);
  absl::Status Stop(int id);
  void StopAll();
  // Kills node `id`, deletes its data and starts it again empty.
  absl::Status Wipe(int id);

  int size() const { return static_cast<int>(nodes_.size()); }
  ServerProcess& node(int id) { return *nodes_.at(id - 1); }
  const std::string& client_address(int id) const {
    return client_addresses_.at(id - 1);
  }
  const std::string& cluster_address(int id) const {
    return cluster_addresses_.at(id - 1);
  }
  int members() const { return members_; }
  // "host:port,host:port,..." of every node (for clients).
  std::string ClientAddresses() const;
  // Every node's log, for failure messages.
  std::string Logs();

  // Node `id`'s view of the cluster (Admin.ClusterStatus), or its error.
  absl::StatusOr<ClusterStatusResponse> Status(int id);
  // The node leading `channel` according to the running nodes, or 0 if none
  // is found within `timeout`.
  int LeaderOf(const std::string& channel,
               absl::Duration timeout = absl::Seconds(20));

 private:
  std::string ConfigFor(int id) const;
  void CreateNodes(int nodes);

  std::string extra_config_;
  std::string cluster_name_ = "test";
  std::vector<std::string> gateway_addresses_;
  int members_;
  std::string root_;
  std::vector<std::string> client_addresses_;
  std::vector<std::string> cluster_addresses_;
  std::vector<std::unique_ptr<ServerProcess>> nodes_;
};

}  // namespace spate::testing

#endif  // SPATE_TESTS_TESTING_CLUSTER_H_
