// MergeAnswers on hand-written node answers: whose view speaks for a
// group, follower lag, down and unknown nodes.
#include "tools/spate/cluster_view.h"

#include <google/protobuf/text_format.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace spate::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

ClusterStatusResponse Parse(const std::string& text) {
  ClusterStatusResponse response;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &response))
      << text;
  return response;
}

// Nodes 1..3 on a:1, b:2, c:3, as node `self` sees them; node 3 is
// unreachable from the others.
std::string NodesSeenBy(int self) {
  std::string text;
  const char* addresses[] = {"a:1", "b:2", "c:3"};
  for (int id = 1; id <= 3; ++id) {
    const bool reachable = id == self || id != 3;
    text += "nodes { node_id: " + std::to_string(id) + " client_address: \"" +
            addresses[id - 1] +
            "\" reachable: " + (reachable ? "true" : "false") + " } ";
  }
  return text;
}

const GroupView* FindGroup(const ClusterView& view, uint64_t id) {
  for (const GroupView& group : view.groups()) {
    if (group.group_id() == id) return &group;
  }
  return nullptr;
}

const NodeView* FindNode(const ClusterView& view, const std::string& address) {
  for (const NodeView& node : view.nodes()) {
    if (node.client_address() == address) return &node;
  }
  return nullptr;
}

class MergeAnswersTest : public ::testing::Test {
 protected:
  // Node 1 leads "orders" (group 7) at term 2 with last index 10;
  // node 2 follows, a little behind; node 3 does not answer.
  std::vector<NodeAnswer> ThreeNodesOneDown() {
    return {
        {"a:1",
         Parse("cluster_name: \"local\" node_id: 1 channels: 1 clients: 4 " +
               NodesSeenBy(1) +
               "groups { group_id: 0 role: \"follower\" leader_id: 2 term: 1 "
               "  commit_index: 5 applied_index: 5 last_index: 5 "
               "  voters: [1, 2, 3] } "
               "groups { group_id: 7 channel: \"orders\" role: \"leader\" "
               "  leader_id: 1 term: 2 commit_index: 9 applied_index: 9 "
               "  first_index: 1 last_index: 10 voters: [1, 2, 3] "
               "  peers { node_id: 2 match_index: 10 state: \"replicate\" "
               "    recently_active: true } "
               "  peers { node_id: 3 match_index: 7 state: \"probe\" } "
               "  first_sequence: 1 last_sequence: 6 msgs: 6 bytes: 60 "
               "  subscriptions: 2 }")},
        {"b:2",
         Parse("cluster_name: \"local\" node_id: 2 channels: 1 clients: 3 " +
               NodesSeenBy(2) +
               "groups { group_id: 0 role: \"leader\" leader_id: 2 term: 1 "
               "  commit_index: 5 applied_index: 5 last_index: 5 "
               "  voters: [1, 2, 3] "
               "  peers { node_id: 1 match_index: 5 state: \"replicate\" } "
               "  peers { node_id: 3 match_index: 2 state: \"probe\" } } "
               "groups { group_id: 7 channel: \"orders\" role: \"follower\" "
               "  leader_id: 1 term: 2 commit_index: 8 applied_index: 8 "
               "  last_index: 10 voters: [1, 2, 3] first_sequence: 1 "
               "  last_sequence: 5 msgs: 5 bytes: 50 }")},
        {"c:3", absl::UnavailableError("connection refused")},
    };
  }
};

TEST_F(MergeAnswersTest, AGroupIsSeenThroughItsLeader) {
  const ClusterView view = MergeAnswers(ThreeNodesOneDown());
  const GroupView* orders = FindGroup(view, 7);
  ASSERT_NE(orders, nullptr);
  EXPECT_EQ(orders->channel(), "orders");
  EXPECT_EQ(orders->source_node_id(), 1u);
  EXPECT_EQ(orders->leader_id(), 1u);
  EXPECT_TRUE(orders->leader_answered());
  EXPECT_EQ(orders->commit_index(), 9u);
  EXPECT_EQ(orders->last_sequence(), 6u);
  EXPECT_EQ(orders->msgs(), 6);
  EXPECT_EQ(orders->bytes(), 60);
  EXPECT_EQ(orders->subscriptions(), 2);
  EXPECT_THAT(orders->voters(), ElementsAre(1u, 2u, 3u));
  // The metadata group comes from its own leader, node 2, and so do the
  // channel and client counts.
  const GroupView* meta = FindGroup(view, 0);
  ASSERT_NE(meta, nullptr);
  EXPECT_EQ(meta->source_node_id(), 2u);
  EXPECT_EQ(view.clients(), 3);
  EXPECT_EQ(view.channels(), 1);
  EXPECT_EQ(view.cluster_name(), "local");
}

TEST_F(MergeAnswersTest, FollowerLagIsLeaderLastIndexMinusMatch) {
  const ClusterView view = MergeAnswers(ThreeNodesOneDown());
  const GroupView* orders = FindGroup(view, 7);
  ASSERT_NE(orders, nullptr);
  ASSERT_EQ(orders->replicas_size(), 3);
  const ReplicaView& leader = orders->replicas(0);
  EXPECT_EQ(leader.node_id(), 1u);
  EXPECT_TRUE(leader.reported());
  EXPECT_FALSE(leader.has_progress());
  const ReplicaView& two = orders->replicas(1);
  EXPECT_TRUE(two.reported());
  EXPECT_EQ(two.applied_index(), 8u);  // its own view
  EXPECT_TRUE(two.has_progress());
  EXPECT_EQ(two.lag(), 0u);
  EXPECT_EQ(two.progress_state(), "replicate");
  const ReplicaView& three = orders->replicas(2);
  EXPECT_FALSE(three.reported());
  EXPECT_EQ(three.match_index(), 7u);
  EXPECT_EQ(three.lag(), 3u);
  EXPECT_FALSE(three.recently_active());
}

TEST_F(MergeAnswersTest, ANodeThatDoesNotAnswerIsDown) {
  const ClusterView view = MergeAnswers(ThreeNodesOneDown());
  ASSERT_EQ(view.nodes_size(), 3);
  const NodeView& one = view.nodes(0);
  EXPECT_EQ(one.node_id(), 1u);
  EXPECT_TRUE(one.up());
  EXPECT_THAT(one.reachable_from(), ElementsAre(1u, 2u));
  EXPECT_EQ(one.groups_led(), 1);            // orders
  EXPECT_EQ(view.nodes(1).groups_led(), 1);  // the metadata group
  const NodeView& three = view.nodes(2);
  EXPECT_EQ(three.node_id(), 3u);
  EXPECT_EQ(three.client_address(), "c:3");
  EXPECT_FALSE(three.up());
  EXPECT_THAT(three.error(), HasSubstr("connection refused"));
  EXPECT_TRUE(three.reachable_from().empty());
  EXPECT_EQ(three.groups_led(), 0);
}

TEST_F(MergeAnswersTest, HigherTermOutranksADeposedLeader) {
  // Node 1 still believes it leads term 2; node 2 has voted in term 3 for
  // node 3, which did not answer.
  const ClusterView view = MergeAnswers({
      {"a:1", Parse("node_id: 1 " + NodesSeenBy(1) +
                    "groups { group_id: 7 channel: \"orders\" "
                    "  role: \"leader\" leader_id: 1 term: 2 last_index: 10 "
                    "  voters: [1, 2, 3] peers { node_id: 2 match_index: 3 } "
                    "}")},
      {"b:2", Parse("node_id: 2 " + NodesSeenBy(2) +
                    "groups { group_id: 7 channel: \"orders\" "
                    "  role: \"follower\" leader_id: 3 term: 3 "
                    "  last_index: 11 voters: [1, 2, 3] }")},
  });
  const GroupView* orders = FindGroup(view, 7);
  ASSERT_NE(orders, nullptr);
  EXPECT_EQ(orders->source_node_id(), 2u);
  EXPECT_EQ(orders->leader_id(), 3u);
  EXPECT_FALSE(orders->leader_answered());
  EXPECT_EQ(LeaderCell(*orders), "3?");
  // No leader answered, so nobody knows the followers' progress.
  for (const ReplicaView& replica : orders->replicas()) {
    EXPECT_FALSE(replica.has_progress()) << replica.node_id();
  }
  EXPECT_EQ(view.nodes(0).groups_led(), 0);
  EXPECT_EQ(view.nodes(2).groups_led(), 1);
}

TEST_F(MergeAnswersTest, AnAddressNobodyListsIsAnUnknownDownNode) {
  const ClusterView view = MergeAnswers({
      {"a:1", Parse("node_id: 1 nodes { node_id: 1 client_address: \"a:1\" "
                    "reachable: true }")},
      {"z:9", absl::DeadlineExceededError("deadline exceeded")},
  });
  ASSERT_EQ(view.nodes_size(), 2);
  EXPECT_TRUE(view.nodes(0).up());
  const NodeView* unknown = FindNode(view, "z:9");
  ASSERT_NE(unknown, nullptr);
  EXPECT_EQ(unknown->node_id(), 0u);
  EXPECT_FALSE(unknown->up());
  EXPECT_THAT(unknown->error(), HasSubstr("deadline exceeded"));
}

TEST_F(MergeAnswersTest, ANodeReachedThroughTwoAddressesIsOneNode) {
  const std::string answer =
      "node_id: 1 nodes { node_id: 1 client_address: \"a:1\" reachable: "
      "true } groups { group_id: 0 role: \"leader\" leader_id: 1 term: 1 }";
  const ClusterView view = MergeAnswers({
      {"a:1", Parse(answer)},
      {"localhost:1", Parse(answer)},
  });
  ASSERT_EQ(view.nodes_size(), 1);
  EXPECT_EQ(view.nodes(0).groups_led(), 1);
  ASSERT_EQ(view.groups_size(), 1);
  EXPECT_EQ(view.groups(0).replicas_size(), 1);
}

TEST(MergeAnswersNoneTest, NoAnswerGivesOnlyDownNodes) {
  const ClusterView view =
      MergeAnswers({{"a:1", absl::UnavailableError("refused")}});
  ASSERT_EQ(view.nodes_size(), 1);
  EXPECT_FALSE(view.nodes(0).up());
  EXPECT_TRUE(view.groups().empty());
}

TEST(MergeGatewaysTest, LinksPerNodeMirrorsFromTheirFeederConflictsOnce) {
  // Node 1 feeds the mirror now; node 2 fed it before and still reports an
  // older position (a leader change in progress).
  const ClusterView view = MergeAnswers({
      {"a:1", Parse("node_id: 1 gateways { links { cluster: \"west\" "
                    "state: \"UP\" bytes_sent: 10 bytes_received: 20 "
                    "reconnects: 1 channels: 3 } "
                    "mirrors { channel: \"copy\" source_cluster: \"west\" "
                    "source_channel: \"orders\" local_last_sequence: 9 "
                    "source_last_sequence: 9 lag: 0 state: \"RUNNING\" } "
                    "conflicts { channel: \"dup\" clusters: \"east\" "
                    "clusters: \"west\" routed_to: \"east\" } }")},
      {"b:2", Parse("node_id: 2 gateways { links { cluster: \"west\" "
                    "state: \"DOWN\" error: \"unreachable\" } "
                    "mirrors { channel: \"copy\" local_last_sequence: 4 "
                    "lag: 5 } "
                    "conflicts { channel: \"dup\" clusters: \"east\" "
                    "clusters: \"west\" routed_to: \"east\" } }")},
  });
  ASSERT_EQ(view.gateway_links_size(), 2);
  EXPECT_EQ(view.gateway_links(0).node_id(), 1u);
  EXPECT_EQ(view.gateway_links(0).bytes_received(), 20);
  EXPECT_EQ(view.gateway_links(0).reconnects(), 1);
  EXPECT_EQ(view.gateway_links(1).state(), "DOWN");
  ASSERT_EQ(view.mirrors_size(), 1);
  EXPECT_EQ(view.mirrors(0).node_id(), 1u);
  EXPECT_EQ(view.mirrors(0).lag(), 0u);
  ASSERT_EQ(view.conflicts_size(), 1);
  EXPECT_EQ(view.conflicts(0).routed_to(), "east");
}

}  // namespace
}  // namespace spate::cli
