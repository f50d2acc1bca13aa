#include "server/placement.h"

#include "gtest/gtest.h"

namespace spate::server {
namespace {

Directory MakeDirectory(
    const std::vector<std::pair<std::string, std::vector<uint64_t>>>& rows) {
  Directory directory;
  uint64_t id = 1;
  for (const auto& [name, replicas] : rows) {
    ChannelDirectoryEntry& entry = directory[name];
    entry.set_name(name);
    entry.set_channel_id(id++);
    for (uint64_t node : replicas) entry.add_replicas(node);
  }
  return directory;
}

raft::ConfState Conf(std::vector<uint64_t> voters,
                     std::vector<uint64_t> learners = {}) {
  raft::ConfState conf;
  for (uint64_t v : voters) conf.add_voters(v);
  for (uint64_t l : learners) conf.add_learners(l);
  return conf;
}

TEST(PlacementTest, NewChannelsGoToTheLeastLoadedNodes) {
  EXPECT_EQ(PlaceNewChannel({1, 2}, {}), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(PlaceNewChannel({1, 2, 3, 4}, {}),
            (std::vector<uint64_t>{1, 2, 3}));
  Directory directory = MakeDirectory({{"a", {1, 2, 3}}, {"b", {1, 2, 4}}});
  EXPECT_EQ(PlaceNewChannel({1, 2, 3, 4}, directory),
            (std::vector<uint64_t>{1, 3, 4}));
}

TEST(PlacementTest, EvacuationReplacesNodesThatLeave) {
  Directory directory =
      MakeDirectory({{"a", {1, 2, 3}}, {"b", {2, 3, 4}}, {"c", {1, 3, 4}}});
  std::vector<ReplicaMove> moves = PlanEvacuation({1, 2, 4}, directory, 10);
  ASSERT_EQ(moves.size(), 3u);
  EXPECT_EQ(moves[0].channel, "a");
  EXPECT_EQ(moves[0].replicas, (std::vector<uint64_t>{1, 2, 4}));
  for (const ReplicaMove& move : moves) {
    EXPECT_EQ(move.replicas.size(), 3u);
    EXPECT_EQ(std::count(move.replicas.begin(), move.replicas.end(), 3u), 0);
  }
  EXPECT_EQ(PlanEvacuation({1, 2, 4}, directory, 1).size(), 1u);
  // With fewer nodes than replicas, every active node holds one.
  moves = PlanEvacuation({1, 2}, MakeDirectory({{"a", {1, 2, 3}}}), 10);
  ASSERT_EQ(moves.size(), 1u);
  EXPECT_EQ(moves[0].replicas, (std::vector<uint64_t>{1, 2}));
}

TEST(PlacementTest, RebalanceMovesReplicasOntoANewNode) {
  Directory directory = MakeDirectory(
      {{"a", {1, 2, 3}}, {"b", {1, 2, 3}}, {"c", {1, 2, 3}}, {"d", {1, 2, 3}}});
  // Loads 4,4,4,0: move replicas until they differ by at most one.
  int moves = 0;
  while (std::optional<ReplicaMove> move =
             PlanRebalance({1, 2, 3, 4}, directory)) {
    ASSERT_LT(++moves, 10);
    ChannelDirectoryEntry& entry = directory[move->channel];
    entry.clear_replicas();
    for (uint64_t node : move->replicas) entry.add_replicas(node);
  }
  EXPECT_EQ(moves, 3);  // 12 replicas on 4 nodes: 3 each
  std::map<uint64_t, int> load;
  for (const auto& [name, entry] : directory) {
    for (uint64_t node : entry.replicas()) ++load[node];
  }
  for (uint64_t node = 1; node <= 4; ++node) EXPECT_EQ(load[node], 3);
  EXPECT_FALSE(PlanRebalance({1, 2, 3}, directory).has_value());
}

TEST(PlacementTest, ConfChangesGoLearnerThenVoterThenRemoval) {
  raft::NodeId transfer = 0;
  auto never = [](raft::NodeId) { return false; };
  auto always = [](raft::NodeId) { return true; };
  // Move a replica from node 3 to node 4; node 1 leads.
  std::optional<raft::ConfChange> change =
      NextConfChange({1, 2, 4}, Conf({1, 2, 3}), 1, never, &transfer);
  ASSERT_TRUE(change.has_value());
  EXPECT_EQ(change->type(), raft::ConfChange::ADD_LEARNER);
  EXPECT_EQ(change->node_id(), 4u);
  // Not caught up yet: wait.
  EXPECT_FALSE(
      NextConfChange({1, 2, 4}, Conf({1, 2, 3}, {4}), 1, never, &transfer));
  change =
      NextConfChange({1, 2, 4}, Conf({1, 2, 3}, {4}), 1, always, &transfer);
  EXPECT_EQ(change->type(), raft::ConfChange::ADD_VOTER);
  change = NextConfChange({1, 2, 4}, Conf({1, 2, 3, 4}), 1, always, &transfer);
  EXPECT_EQ(change->type(), raft::ConfChange::REMOVE_VOTER);
  EXPECT_EQ(change->node_id(), 3u);
  EXPECT_FALSE(
      NextConfChange({1, 2, 4}, Conf({1, 2, 4}), 1, always, &transfer));
  // The leader itself is leaving: hand leadership over instead.
  EXPECT_FALSE(
      NextConfChange({2, 3, 4}, Conf({1, 2, 3, 4}), 1, always, &transfer));
  EXPECT_EQ(transfer, 2u);
  // A learner nobody wants any more is removed.
  change = NextConfChange({1, 2, 3}, Conf({1, 2, 3}, {5}), 1, never, &transfer);
  EXPECT_EQ(change->type(), raft::ConfChange::REMOVE_VOTER);
  EXPECT_EQ(change->node_id(), 5u);
}

}  // namespace
}  // namespace spate::server
