#include "tests/testing/cluster.h"

#include <grpcpp/grpcpp.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "proto/admin.grpc.pb.h"
#include "tests/testing/waits.h"

namespace spate::testing {

TestCluster::TestCluster(int nodes, std::string extra_config, int members)
    : extra_config_(std::move(extra_config)),
      members_(members > 0 ? members : nodes),
      root_(ServerProcess::NewTempDir("cluster")) {
  CreateNodes(nodes);
}

TestCluster::TestCluster(int nodes, std::string extra_config,
                         std::string cluster_name,
                         std::vector<std::string> gateway_addresses)
    : extra_config_(std::move(extra_config)),
      cluster_name_(std::move(cluster_name)),
      gateway_addresses_(std::move(gateway_addresses)),
      members_(nodes),
      root_(ServerProcess::NewTempDir(cluster_name_)) {
  CreateNodes(nodes);
}

void TestCluster::CreateNodes(int nodes) {
  for (int i = 0; i < nodes; ++i) {
    client_addresses_.push_back(
        absl::StrCat("127.0.0.1:", ServerProcess::FreePort()));
    cluster_addresses_.push_back(
        absl::StrCat("127.0.0.1:", ServerProcess::FreePort()));
  }
  for (int id = 1; id <= nodes; ++id) {
    auto node = std::make_unique<ServerProcess>(
        absl::StrCat(root_, "/node", id), ConfigFor(id));
    node->set_client_address(client_addresses_[id - 1]);
    nodes_.push_back(std::move(node));
  }
}

std::string TestCluster::ConfigFor(int id) const {
  std::string config =
      absl::StrCat("node { id: ", id, " cluster_name: \"", cluster_name_,
                   "\" cluster_address: \"", cluster_addresses_[id - 1], "\"");
  if (static_cast<size_t>(id) <= gateway_addresses_.size()) {
    absl::StrAppend(&config, " gateway_address: \"", gateway_addresses_[id - 1],
                    "\"");
  }
  for (int peer = 1; peer <= members_; ++peer) {
    if (peer == id) continue;
    absl::StrAppend(&config, " peers { id: ", peer, " cluster_address: \"",
                    cluster_addresses_[peer - 1], "\" client_address: \"",
                    client_addresses_[peer - 1], "\" }");
  }
  if (id > members_) absl::StrAppend(&config, " join: true");
  absl::StrAppend(&config, " }\n", extra_config_, "\n");
  return config;
}

absl::Status TestCluster::Start(absl::Duration timeout) {
  for (int id = 1; id <= members_; ++id) {
    if (absl::Status status = StartNode(id, timeout); !status.ok()) {
      return status;
    }
  }
  return absl::OkStatus();
}

absl::Status TestCluster::StartNode(int id, absl::Duration timeout) {
  return node(id).Start(timeout);
}

void TestCluster::Kill(int id) { node(id).Kill(); }

absl::Status TestCluster::Stop(int id) { return node(id).Stop(); }

void TestCluster::StopAll() {
  for (auto& node : nodes_) {
    if (node->running()) node->Stop().IgnoreError();  // best effort teardown
  }
}

absl::Status TestCluster::Wipe(int id) {
  node(id).Kill();
  std::error_code error;
  std::filesystem::remove_all(node(id).data_dir(), error);
  return StartNode(id);
}

std::string TestCluster::ClientAddresses() const {
  return absl::StrJoin(client_addresses_, ",");
}

absl::StatusOr<ClusterStatusResponse> TestCluster::Status(int id) {
  auto stub = Admin::NewStub(grpc::CreateChannel(
      client_address(id), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  ClusterStatusResponse response;
  grpc::Status status =
      stub->ClusterStatus(&context, ClusterStatusRequest(), &response);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        status.error_message());
  }
  return response;
}

int TestCluster::LeaderOf(const std::string& channel, absl::Duration timeout) {
  int leader = 0;
  WaitFor(
      [&] {
        for (int id = 1; id <= size(); ++id) {
          if (!node(id).running()) continue;
          absl::StatusOr<ClusterStatusResponse> status = Status(id);
          if (!status.ok()) continue;
          for (const GroupStatus& group : status->groups()) {
            if (group.channel() == channel && group.role() == "leader") {
              leader = id;
              return true;
            }
          }
        }
        return false;
      },
      timeout);
  return leader;
}

std::string TestCluster::Logs() {
  std::string logs;
  for (int id = 1; id <= size(); ++id) {
    absl::StrAppend(&logs, "---- node ", id, " ----\n", node(id).Log());
  }
  return logs;
}

}  // namespace spate::testing
