#include "raft/progress.h"

#include "gtest/gtest.h"

namespace spate::raft {
namespace {

Progress Make(Index match, Index next, ProgressState state) {
  Progress pr(next, 4, 1 << 20, false);
  pr.ResetTo(match, next);
  switch (state) {
    case ProgressState::kProbe:
      break;
    case ProgressState::kReplicate:
      pr.BecomeReplicate();
      pr.ResetTo(match, next);
      break;
    case ProgressState::kSnapshot:
      pr.BecomeSnapshot(next - 1);
      break;
  }
  return pr;
}

TEST(ProgressTest, MaybeUpdateMovesMatchAndNext) {
  Progress pr = Make(3, 5, ProgressState::kProbe);
  EXPECT_FALSE(pr.MaybeUpdate(2));  // stale
  EXPECT_FALSE(pr.MaybeUpdate(3));
  EXPECT_EQ(pr.match(), 3u);
  EXPECT_TRUE(pr.MaybeUpdate(4));
  EXPECT_EQ(pr.match(), 4u);
  EXPECT_EQ(pr.next(), 5u);  // next does not go backwards
  EXPECT_TRUE(pr.MaybeUpdate(9));
  EXPECT_EQ(pr.next(), 10u);
}

TEST(ProgressTest, ReplicateRejectionFallsBackToMatch) {
  Progress pr = Make(5, 10, ProgressState::kReplicate);
  EXPECT_FALSE(pr.MaybeDecrTo(5, 5));  // at or below match: stale
  EXPECT_FALSE(pr.MaybeDecrTo(4, 4));
  EXPECT_EQ(pr.next(), 10u);
  EXPECT_TRUE(pr.MaybeDecrTo(9, 9));
  EXPECT_EQ(pr.next(), 6u);
}

TEST(ProgressTest, ProbeRejectionUsesHint) {
  Progress pr = Make(0, 10, ProgressState::kProbe);
  EXPECT_FALSE(pr.MaybeDecrTo(5, 4));  // not next-1: stale
  EXPECT_TRUE(pr.MaybeDecrTo(9, 3));
  EXPECT_EQ(pr.next(), 4u);  // hint + 1
  // The hint can only move next down, and never to or below match.
  pr = Make(2, 10, ProgressState::kProbe);
  EXPECT_TRUE(pr.MaybeDecrTo(9, 0));
  EXPECT_EQ(pr.next(), 3u);
  pr = Make(0, 10, ProgressState::kProbe);
  EXPECT_TRUE(pr.MaybeDecrTo(9, 100));
  EXPECT_EQ(pr.next(), 9u);
}

TEST(ProgressTest, ProbeSendsOneMessageAtATime) {
  Progress pr = Make(0, 1, ProgressState::kProbe);
  EXPECT_FALSE(pr.IsPaused());
  pr.SentEntries(3, 30);
  EXPECT_TRUE(pr.IsPaused());
  EXPECT_EQ(pr.next(), 1u);   // probe does not advance optimistically
  pr.set_flow_paused(false);  // a heartbeat response
  EXPECT_FALSE(pr.IsPaused());
}

TEST(ProgressTest, ReplicatePipelinesUpToTheWindow) {
  Progress pr = Make(0, 1, ProgressState::kReplicate);
  for (int i = 0; i < 4; ++i) {
    EXPECT_FALSE(pr.IsPaused());
    pr.SentEntries(2, 10);
  }
  EXPECT_EQ(pr.next(), 9u);
  EXPECT_TRUE(pr.IsPaused());  // window of 4 messages full
  EXPECT_TRUE(pr.MaybeUpdate(4));
  pr.inflights().FreeLE(4);
  EXPECT_FALSE(pr.IsPaused());
}

TEST(ProgressTest, SnapshotStateIsPausedUntilProbed) {
  Progress pr = Make(0, 1, ProgressState::kProbe);
  pr.BecomeSnapshot(20);
  EXPECT_TRUE(pr.IsPaused());
  EXPECT_EQ(pr.pending_snapshot(), 20u);
  pr.BecomeProbe();
  // After a snapshot, probing resumes past it.
  EXPECT_EQ(pr.next(), 21u);
  EXPECT_EQ(pr.pending_snapshot(), 0u);
}

TEST(ProgressTest, FailedSnapshotProbesFromMatch) {
  Progress pr = Make(3, 4, ProgressState::kProbe);
  pr.BecomeSnapshot(20);
  pr.SnapshotFailed();
  EXPECT_EQ(pr.state(), ProgressState::kProbe);
  EXPECT_EQ(pr.next(), 4u);
}

TEST(ProgressTest, CanBumpCommit) {
  Progress pr = Make(0, 1, ProgressState::kReplicate);
  pr.SentEntries(5, 5);  // next = 6
  pr.SentCommit(2);
  EXPECT_TRUE(pr.CanBumpCommit(3));
  EXPECT_FALSE(pr.CanBumpCommit(2));
  pr.SentCommit(5);
  EXPECT_FALSE(pr.CanBumpCommit(9));  // it has nothing beyond 5 yet
}

}  // namespace
}  // namespace spate::raft
