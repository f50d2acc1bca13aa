#include "raft/progress_tracker.h"

#include "gtest/gtest.h"
#include "raft/conf_change.h"

namespace spate::raft {
namespace {

ConfState Make(std::vector<NodeId> voters, std::vector<NodeId> learners = {}) {
  ConfState cs;
  for (NodeId id : voters) cs.add_voters(id);
  for (NodeId id : learners) cs.add_learners(id);
  return cs;
}

TEST(ProgressTrackerTest, CommittedCountsVotersOnly) {
  ProgressTracker t(8, 1 << 20);
  t.SetConfState(Make({1, 2, 3}, {4}), 1);
  t.ResetProgress(1, 10, 11);
  t.Find(4)->MaybeUpdate(10);  // a learner does not count
  EXPECT_EQ(t.Committed(), 0u);
  t.Find(2)->MaybeUpdate(7);
  EXPECT_EQ(t.Committed(), 7u);
  t.Find(3)->MaybeUpdate(9);
  EXPECT_EQ(t.Committed(), 9u);
}

TEST(ProgressTrackerTest, SetConfStateKeepsProgressOfRemainingMembers) {
  ProgressTracker t(8, 1 << 20);
  t.SetConfState(Make({1, 2}, {3}), 1);
  t.Find(2)->MaybeUpdate(5);
  t.Find(3)->MaybeUpdate(4);
  t.SetConfState(Make({1, 2, 3}), 10);  // promote 3
  EXPECT_EQ(t.Find(2)->match(), 5u);
  EXPECT_EQ(t.Find(3)->match(), 4u);
  EXPECT_FALSE(t.Find(3)->learner());
  EXPECT_TRUE(t.IsVoter(3));
  t.SetConfState(Make({1, 3}, {5}), 10);  // remove 2, add learner 5
  // New members are probed at the last index.
  EXPECT_EQ(t.Find(2), nullptr);
  ASSERT_NE(t.Find(5), nullptr);
  EXPECT_TRUE(t.Find(5)->learner());
  EXPECT_EQ(t.Find(5)->next(), 10u);
  EXPECT_TRUE(t.Find(5)->recent_active());
  EXPECT_EQ(ConfStateString(t.conf_state()), "voters=(1,3) learners=(5)");
}

TEST(ProgressTrackerTest, VotesCountOncePerVoter) {
  ProgressTracker t(8, 1 << 20);
  t.SetConfState(Make({1, 2, 3, 4, 5}, {6}), 1);
  t.RecordVote(1, true);
  t.RecordVote(6, true);  // learner: ignored
  t.RecordVote(2, true);
  t.RecordVote(2, false);  // a second answer from 2 does not count
  size_t granted = 0, rejected = 0;
  EXPECT_EQ(t.TallyVotes(&granted, &rejected), VoteResult::kPending);
  EXPECT_EQ(granted, 2u);
  EXPECT_EQ(rejected, 0u);
  t.RecordVote(3, true);
  EXPECT_EQ(t.TallyVotes(nullptr, nullptr), VoteResult::kWon);
  t.ResetVotes();
  t.RecordVote(2, false);
  t.RecordVote(3, false);
  t.RecordVote(4, false);
  EXPECT_EQ(t.TallyVotes(nullptr, nullptr), VoteResult::kLost);
}

TEST(ProgressTrackerTest, QuorumActive) {
  ProgressTracker t(8, 1 << 20);
  t.SetConfState(Make({1, 2, 3}, {4}), 1);
  t.ResetProgress(1, 0, 1);  // everyone inactive
  t.Find(1)->set_recent_active(true);
  t.Find(4)->set_recent_active(true);  // learners do not make a quorum
  EXPECT_FALSE(t.QuorumActive());
  t.Find(3)->set_recent_active(true);
  EXPECT_TRUE(t.QuorumActive());
}

TEST(ProgressTrackerTest, HasQuorum) {
  ProgressTracker t(8, 1 << 20);
  t.SetConfState(Make({1, 2, 3, 4}), 1);
  EXPECT_FALSE(t.HasQuorum({1, 2}));
  EXPECT_FALSE(t.HasQuorum({1, 2, 9}));
  EXPECT_TRUE(t.HasQuorum({1, 2, 4}));
  EXPECT_TRUE(t.IsSingleton() == false);
  t.SetConfState(Make({1}), 1);
  EXPECT_TRUE(t.IsSingleton());
  EXPECT_TRUE(t.HasQuorum({1}));
}

}  // namespace
}  // namespace spate::raft
