#include "raft/conf_change.h"

#include <vector>

#include "gtest/gtest.h"

namespace spate::raft {
namespace {

ConfState Make(std::vector<NodeId> voters, std::vector<NodeId> learners = {}) {
  ConfState cs;
  for (NodeId id : voters) cs.add_voters(id);
  for (NodeId id : learners) cs.add_learners(id);
  return cs;
}

ConfChange Change(ConfChange::Type type, NodeId id) {
  ConfChange cc;
  cc.set_type(type);
  cc.set_node_id(id);
  return cc;
}

std::string Apply(const ConfState& cs, ConfChange::Type type, NodeId id) {
  absl::StatusOr<ConfState> next = ApplyConfChangeTo(cs, Change(type, id));
  if (!next.ok())
    return std::string(absl::StatusCodeToString(next.status().code()));
  return ConfStateString(*next);
}

TEST(ConfChangeTest, ValidateConfState) {
  EXPECT_TRUE(ValidateConfState(Make({})).ok());
  EXPECT_TRUE(ValidateConfState(Make({1, 2}, {3})).ok());
  EXPECT_FALSE(ValidateConfState(Make({0})).ok());
  EXPECT_FALSE(ValidateConfState(Make({1, 1})).ok());
  EXPECT_FALSE(ValidateConfState(Make({1, 2}, {2})).ok());
}

TEST(ConfChangeTest, AddVoter) {
  const ConfState cs = Make({3, 1}, {4});
  EXPECT_EQ(Apply(cs, ConfChange::ADD_VOTER, 2), "voters=(1,2,3) learners=(4)");
  EXPECT_EQ(Apply(cs, ConfChange::ADD_VOTER, 4), "voters=(1,3,4)");  // promote
  EXPECT_EQ(Apply(cs, ConfChange::ADD_VOTER, 1),
            "voters=(1,3) learners=(4)");  // no-op
}

TEST(ConfChangeTest, AddLearner) {
  const ConfState cs = Make({1, 2, 3});
  EXPECT_EQ(Apply(cs, ConfChange::ADD_LEARNER, 5),
            "voters=(1,2,3) learners=(5)");
  EXPECT_EQ(Apply(cs, ConfChange::ADD_LEARNER, 2),
            "voters=(1,3) learners=(2)");  // demote
  EXPECT_EQ(Apply(Make({1}), ConfChange::ADD_LEARNER, 1), "INVALID_ARGUMENT");
}

TEST(ConfChangeTest, Remove) {
  const ConfState cs = Make({1, 2, 3}, {4});
  EXPECT_EQ(Apply(cs, ConfChange::REMOVE_VOTER, 2),
            "voters=(1,3) learners=(4)");
  EXPECT_EQ(Apply(cs, ConfChange::REMOVE_VOTER, 4), "voters=(1,2,3)");
  EXPECT_EQ(Apply(cs, ConfChange::REMOVE_VOTER, 9),
            "voters=(1,2,3) learners=(4)");  // no-op
  EXPECT_EQ(Apply(Make({1}), ConfChange::REMOVE_VOTER, 1), "INVALID_ARGUMENT");
}

TEST(ConfChangeTest, BadChanges) {
  EXPECT_EQ(Apply(Make({1}), ConfChange::ADD_VOTER, 0), "INVALID_ARGUMENT");
  ConfChange cc = Change(ConfChange::ADD_VOTER, 2);
  cc.set_type(static_cast<ConfChange::Type>(17));
  EXPECT_FALSE(ApplyConfChangeTo(Make({1}), cc).ok());
}

TEST(ConfChangeTest, EveryChangeMovesAtMostOneVoter) {
  // The safety of single-server changes (thesis §4.1): old and new voter
  // sets differ by at most one node, so their majorities overlap.
  const ConfState base = Make({1, 2, 3}, {4});
  for (auto type : {ConfChange::ADD_VOTER, ConfChange::ADD_LEARNER,
                    ConfChange::REMOVE_VOTER}) {
    for (NodeId id = 1; id <= 5; ++id) {
      absl::StatusOr<ConfState> next =
          ApplyConfChangeTo(base, Change(type, id));
      if (!next.ok()) continue;
      int diff = 0;
      for (NodeId v : base.voters()) diff += IsVoter(*next, v) ? 0 : 1;
      for (NodeId v : next->voters()) diff += IsVoter(base, v) ? 0 : 1;
      EXPECT_LE(diff, 1) << ConfChangeString(Change(type, id));
    }
  }
}

}  // namespace
}  // namespace spate::raft
