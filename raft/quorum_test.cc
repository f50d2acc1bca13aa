#include "raft/quorum.h"

#include <vector>

#include "gtest/gtest.h"

namespace spate::raft {
namespace {

TEST(QuorumTest, MajoritySize) {
  EXPECT_EQ(MajoritySize(0), 0u);
  EXPECT_EQ(MajoritySize(1), 1u);
  EXPECT_EQ(MajoritySize(2), 2u);
  EXPECT_EQ(MajoritySize(3), 2u);
  EXPECT_EQ(MajoritySize(4), 3u);
  EXPECT_EQ(MajoritySize(5), 3u);
}

TEST(QuorumTest, CommittedIsTheIndexHeldByAMajority) {
  struct Case {
    std::vector<Index> matches;
    Index want;
  };
  const Case cases[] = {
      {{}, 0},
      {{5}, 5},
      {{5, 3}, 3},     // two voters need both
      {{5, 3, 1}, 3},  // order does not matter
      {{1, 5, 3}, 3},
      {{2, 2, 2}, 2},
      {{7, 0, 0}, 0},         // one voter ahead is not enough
      {{4, 8, 6, 2}, 4},      // four voters need three
      {{10, 9, 8, 1, 1}, 8},  // five voters need three
      {{10, 9, 1, 1, 1}, 1},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(MajorityCommitted(c.matches), c.want)
        << ::testing::PrintToString(c.matches);
  }
}

TEST(QuorumTest, VoteOutcome) {
  // 3 voters.
  EXPECT_EQ(MajorityVote(3, 1, 0), VoteResult::kPending);
  EXPECT_EQ(MajorityVote(3, 2, 0), VoteResult::kWon);
  EXPECT_EQ(MajorityVote(3, 1, 1), VoteResult::kPending);
  EXPECT_EQ(MajorityVote(3, 1, 2), VoteResult::kLost);
  EXPECT_EQ(MajorityVote(3, 0, 2), VoteResult::kLost);
  // 4 voters: 2-2 is a lost split vote, 2 grants are not enough.
  EXPECT_EQ(MajorityVote(4, 2, 1), VoteResult::kPending);
  EXPECT_EQ(MajorityVote(4, 2, 2), VoteResult::kLost);
  EXPECT_EQ(MajorityVote(4, 3, 1), VoteResult::kWon);
  // A single voter decides alone.
  EXPECT_EQ(MajorityVote(1, 1, 0), VoteResult::kWon);
  EXPECT_EQ(MajorityVote(1, 0, 1), VoteResult::kLost);
  // No voters: nothing can be decided.
  EXPECT_EQ(MajorityVote(0, 0, 0), VoteResult::kPending);
}

TEST(QuorumTest, VoteOutcomeIsMonotonic) {
  // More grants never turn a win into anything else; more rejections never
  // turn a loss into anything else (exhaustive for small groups).
  for (size_t n = 1; n <= 7; ++n) {
    for (size_t g = 0; g <= n; ++g) {
      for (size_t r = 0; g + r <= n; ++r) {
        const VoteResult result = MajorityVote(n, g, r);
        if (g + r < n) {
          if (result == VoteResult::kWon) {
            EXPECT_EQ(MajorityVote(n, g, r + 1), VoteResult::kWon);
          }
          if (result == VoteResult::kLost) {
            EXPECT_EQ(MajorityVote(n, g + 1, r), VoteResult::kLost);
          }
        }
        EXPECT_FALSE(result == VoteResult::kWon && 2 * g <= n);
      }
    }
  }
}

}  // namespace
}  // namespace spate::raft
