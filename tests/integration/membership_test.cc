// Cluster membership with real processes: a fourth node is added (its
// metadata replica joins as a learner and becomes a voter, channel
// replicas move onto it until loads are even), then a node is removed
// (its replicas move away, it leaves the metadata group). Messages stay
// readable and writable throughout.
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "proto/admin.grpc.pb.h"
#include "tests/testing/cluster.h"
#include "tests/testing/stream_client.h"
#include "tests/testing/waits.h"

namespace spate::testing {
namespace {

constexpr int kChannels = 8;

class MembershipTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (cluster_ == nullptr) return;
    if (HasFailure() || getenv("SPATE_TEST_LOGS"))
      std::cerr << cluster_->Logs();
    cluster_->StopAll();
  }

  // Sends an admin call to each running node until one (the metadata
  // leader) accepts it.
  template <typename Request, typename Response, typename Call>
  absl::Status Admin(const Request& request, Call call) {
    absl::Status last = absl::UnavailableError("no node answered");
    WaitFor(
        [&] {
          for (int id = 1; id <= cluster_->size(); ++id) {
            if (!cluster_->node(id).running()) continue;
            auto stub = spate::Admin::NewStub(
                grpc::CreateChannel(cluster_->client_address(id),
                                    grpc::InsecureChannelCredentials()));
            grpc::ClientContext context;
            context.set_deadline(
                absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
            Response response;
            last = FromGrpc(call(stub.get(), &context, request, &response));
            if (last.ok()) return true;
          }
          return false;
        },
        absl::Seconds(30));
    return last;
  }

  // Replicas (voters) per node over all channels, as node `asked` sees it.
  std::map<uint64_t, int> ReplicaLoad(int asked) {
    std::map<uint64_t, int> load;
    absl::StatusOr<ClusterStatusResponse> status = cluster_->Status(asked);
    if (!status.ok()) return load;
    for (const GroupStatus& group : status->groups()) {
      if (group.channel().empty() || group.role() != "leader") continue;
      for (uint64_t voter : group.voters()) ++load[voter];
    }
    return load;
  }

  // Voters of the metadata group as node `asked` sees it.
  std::set<uint64_t> MetaVoters(int asked) {
    absl::StatusOr<ClusterStatusResponse> status = cluster_->Status(asked);
    if (!status.ok()) return {};
    for (const GroupStatus& group : status->groups()) {
      if (group.group_id() == 0) {
        return {group.voters().begin(), group.voters().end()};
      }
    }
    return {};
  }

  // Counts channels whose leader is known to every asked node (the cluster
  // sees all channels' leaders through them).
  std::map<uint64_t, int> LeadLoad() {
    std::map<uint64_t, int> load;
    for (int id = 1; id <= cluster_->size(); ++id) {
      if (!cluster_->node(id).running()) continue;
      for (const auto& [node, count] : ReplicaLoad(id)) load[node] += count;
    }
    return load;
  }

  void PublishToAll(int node, const std::string& client,
                    const std::string& data) {
    TestConnection conn(cluster_->client_address(node), client);
    ASSERT_TRUE(Retry([&] { return conn.Connect(); }).ok());
    for (int i = 0; i < kChannels; ++i) {
      absl::StatusOr<uint64_t> seq =
          Retry([&] { return conn.Publish(absl::StrCat("m.", i), data); },
                absl::Seconds(30));
      ASSERT_TRUE(seq.ok()) << "channel m." << i << ": " << seq.status();
    }
  }

  std::unique_ptr<TestCluster> cluster_;
};

TEST_F(MembershipTest, AddAFourthNodeThenRemoveOne) {
  cluster_ = std::make_unique<TestCluster>(
      4, "clients { ping_interval_ms: 600000 }", /*members=*/3);
  ASSERT_TRUE(cluster_->Start().ok()) << cluster_->Logs();
  PublishToAll(1, "c1", "before");

  // Add node 4.
  ASSERT_TRUE(cluster_->StartNode(4).ok()) << cluster_->Logs();
  AddNodeRequest add;
  add.set_node_id(4);
  add.set_cluster_address(cluster_->cluster_address(4));
  add.set_client_address(cluster_->client_address(4));
  absl::Status added = Admin<AddNodeRequest, AddNodeResponse>(
      add, [](spate::Admin::Stub* stub, grpc::ClientContext* context,
              const AddNodeRequest& request, AddNodeResponse* response) {
        return stub->AddNode(context, request, response);
      });
  ASSERT_TRUE(added.ok()) << added;
  EXPECT_TRUE(
      WaitFor([&] { return MetaVoters(1).count(4) == 1; }, absl::Seconds(60)))
      << "node 4 never became a metadata voter";
  // 8 channels x 3 replicas on 4 nodes: 6 each.
  std::map<uint64_t, int> load;
  EXPECT_TRUE(WaitFor(
      [&] {
        load = LeadLoad();
        return load[1] == 6 && load[2] == 6 && load[3] == 6 && load[4] == 6;
      },
      absl::Seconds(120)))
      << "loads " << load[1] << "/" << load[2] << "/" << load[3] << "/"
      << load[4];
  // Served through the new node, and it survives losing an old one.
  PublishToAll(4, "c4", "after-add");
  cluster_->Kill(1);
  PublishToAll(4, "c4b", "node-1-down");
  ASSERT_TRUE(cluster_->StartNode(1).ok());

  // Remove node 2: its replicas move to the others, then it leaves.
  RemoveNodeRequest remove;
  remove.set_node_id(2);
  absl::Status removed = Admin<RemoveNodeRequest, RemoveNodeResponse>(
      remove,
      [](spate::Admin::Stub* stub, grpc::ClientContext* context,
         const RemoveNodeRequest& request, RemoveNodeResponse* response) {
        return stub->RemoveNode(context, request, response);
      });
  ASSERT_TRUE(removed.ok()) << removed;
  EXPECT_TRUE(WaitFor(
      [&] {
        load = LeadLoad();
        return load[2] == 0 && load[1] == 8 && load[3] == 8 && load[4] == 8;
      },
      absl::Seconds(120)))
      << "loads " << load[1] << "/" << load[2] << "/" << load[3] << "/"
      << load[4];
  EXPECT_TRUE(
      WaitFor([&] { return MetaVoters(1).count(2) == 0; }, absl::Seconds(60)))
      << "node 2 is still a metadata voter";
  ASSERT_TRUE(cluster_->Stop(2).ok());
  PublishToAll(3, "c3", "after-remove");

  // Every channel still has every message: 4 publishes each.
  TestConnection conn(cluster_->client_address(4), "reader");
  ASSERT_TRUE(Retry([&] { return conn.Connect(); }).ok());
  for (int i = 0; i < kChannels; ++i) {
    SubscriptionRequest request = conn.SubRequest(absl::StrCat("m.", i));
    request.set_start_position(FIRST);
    TestSubscriber sub(conn.stub(), request);
    std::vector<MsgProto> msgs = sub.NextN(4, absl::Seconds(20));
    ASSERT_EQ(msgs.size(), 4u) << "channel m." << i;
    EXPECT_EQ(msgs[0].data(), "before");
    EXPECT_EQ(msgs[3].data(), "after-remove");
  }
}

}  // namespace
}  // namespace spate::testing
