// The checker catches each kind of violation it is meant to catch (and
// stays quiet otherwise). Replicas are real ones over crafted MemoryLogs;
// the observations are fed by hand, as the hosts would.
#include "tests/sim/checker.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/raft.pb.h"
#include "raft/ready.h"
#include "raft/replica.h"
#include "raft/testing/memory_log.h"
#include "tests/sim/app_state.h"

namespace spate::sim {
namespace {

using ::testing::HasSubstr;

raft::ConfState Voters(std::vector<raft::NodeId> ids) {
  raft::ConfState cs;
  for (raft::NodeId id : ids) cs.add_voters(id);
  return cs;
}

raft::Entry MakeEntry(raft::Index index, raft::Term term, std::string data) {
  raft::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(std::move(data));
  return e;
}

// A replica over a MemoryLog holding `entries`, at `term`.
struct TestReplica {
  TestReplica(raft::NodeId id, const raft::ConfState& cs, raft::Term term,
              const std::vector<raft::Entry>& entries = {})
      : log(cs) {
    EXPECT_TRUE(log.Append(entries).ok());
    raft::HardState hs;
    hs.set_term(term);
    log.SetHardState(hs);
    raft::ReplicaOptions options;
    options.id = id;
    options.group = 1;
    replica = *raft::Replica::Create(options, &log);
  }
  raft::testing::MemoryLog log;
  std::unique_ptr<raft::Replica> replica;
};

AppState StateAfter(raft::Index applied, uint64_t digest) {
  AppState s;
  s.applied = applied;
  s.digest = digest;
  return s;
}

TEST(CheckerTest, OneLeaderPerTerm) {
  // Two single-voter groups: each node elects itself in term 1.
  TestReplica a(1, Voters({1}), 0);
  TestReplica b(2, Voters({2}), 0);
  ASSERT_TRUE(a.replica->Campaign().ok());
  ASSERT_TRUE(b.replica->Campaign().ok());
  Checker checker(2);
  EXPECT_TRUE(checker.CheckStep({a.replica.get(), nullptr}).ok());
  const absl::Status s = checker.CheckStep({a.replica.get(), b.replica.get()});
  EXPECT_THAT(std::string(s.message()), HasSubstr("election safety"));
}

TEST(CheckerTest, SameIndexAndTermMeansSameEntry) {
  TestReplica a(1, Voters({1, 2}), 1);
  TestReplica b(2, Voters({1, 2}), 1);
  Checker checker(2);
  raft::Ready ra;
  ra.entries = {MakeEntry(1, 1, "x")};
  checker.OnReady(*a.replica, ra);
  raft::Ready same = ra;
  checker.OnReady(*b.replica, same);
  EXPECT_TRUE(checker.status().ok());
  raft::Ready rb;
  rb.entries = {MakeEntry(1, 1, "y")};
  checker.OnReady(*b.replica, rb);
  EXPECT_THAT(std::string(checker.status().message()),
              HasSubstr("log matching"));
}

TEST(CheckerTest, SameIndexAndTermMeansSamePredecessor) {
  TestReplica a(1, Voters({1, 2}), 2, {MakeEntry(1, 1, "x")});
  TestReplica b(2, Voters({1, 2}), 2, {MakeEntry(1, 2, "y")});
  Checker checker(2);
  raft::Ready ready;
  ready.entries = {MakeEntry(2, 2, "z")};
  checker.OnReady(*a.replica, ready);
  EXPECT_TRUE(checker.status().ok());
  checker.OnReady(*b.replica, ready);
  EXPECT_THAT(std::string(checker.status().message()),
              HasSubstr("after an entry of term"));
}

TEST(CheckerTest, CommittedEntriesNeverChange) {
  TestReplica a(1, Voters({1, 2}), 2);
  TestReplica b(2, Voters({1, 2}), 2);
  Checker checker(2);
  checker.OnApply(*a.replica, MakeEntry(1, 1, "x"), StateAfter(1, 10));
  EXPECT_TRUE(checker.status().ok());
  EXPECT_EQ(checker.max_committed(), 1u);
  checker.OnApply(*b.replica, MakeEntry(1, 2, "y"), StateAfter(1, 11));
  EXPECT_THAT(std::string(checker.status().message()),
              HasSubstr("committed entry changed"));
}

TEST(CheckerTest, EqualStatesAtEqualIndexes) {
  TestReplica a(1, Voters({1, 2}), 1);
  TestReplica b(2, Voters({1, 2}), 1);
  Checker checker(2);
  checker.OnApply(*a.replica, MakeEntry(1, 1, "x"), StateAfter(1, 10));
  checker.OnApply(*b.replica, MakeEntry(1, 1, "x"), StateAfter(1, 11));
  EXPECT_THAT(std::string(checker.status().message()),
              HasSubstr("state machines diverged"));
}

TEST(CheckerTest, EntriesApplyInOrderAndCommandsOnce) {
  TestReplica a(1, Voters({1, 2}), 1);
  {
    Checker checker(2);
    checker.OnApply(*a.replica, MakeEntry(2, 1, "x"), StateAfter(2, 10));
    EXPECT_THAT(std::string(checker.status().message()),
                HasSubstr("after index 0"));
  }
  Checker checker(2);
  checker.OnApply(*a.replica, MakeEntry(1, 1, "x"), StateAfter(1, 10));
  checker.OnApply(*a.replica, MakeEntry(2, 1, "x"), StateAfter(2, 11));
  EXPECT_THAT(std::string(checker.status().message()),
              HasSubstr("applied command \"x\" at index 2"));
}

TEST(CheckerTest, LeaderCommitsOnlyEntriesOfItsTerm) {
  // Node 1 is first seen leading term 2 with nothing committed...
  TestReplica before(1, Voters({1}), 1);
  ASSERT_TRUE(before.replica->Campaign().ok());
  Checker checker(1);
  ASSERT_TRUE(checker.CheckStep({before.replica.get()}).ok());
  // ...and later, still leading term 2, with its commit index on an entry
  // of term 1 (as if it had counted replicas of an old entry).
  TestReplica after(1, Voters({1}), 1, {MakeEntry(1, 1, "x")});
  raft::HardState hs = after.log.hard_state();
  hs.set_commit(1);
  after.log.SetHardState(hs);
  raft::ReplicaOptions options;
  options.id = 1;
  options.group = 1;
  after.replica = *raft::Replica::Create(options, &after.log);
  ASSERT_TRUE(after.replica->Campaign().ok());
  ASSERT_EQ(after.replica->term(), 2u);
  ASSERT_EQ(after.replica->log().committed(), 1u);
  const absl::Status s = checker.CheckStep({after.replica.get()});
  EXPECT_THAT(std::string(s.message()), HasSubstr("commit rule"));
}

TEST(CheckerTest, LeaderHoldsEveryEntryCommittedInAnEarlierTerm) {
  // Node 1 saw (1, term 1) committed while in term 1.
  TestReplica a(1, Voters({1, 2}), 1);
  Checker checker(2);
  checker.OnApply(*a.replica, MakeEntry(1, 1, "x"), StateAfter(1, 10));
  // Node 2 leads term 2 with another entry at index 1 (its no-op).
  TestReplica b(2, Voters({2}), 1);
  ASSERT_TRUE(b.replica->Campaign().ok());
  ASSERT_EQ(b.replica->term(), 2u);
  const absl::Status s = checker.CheckStep({nullptr, b.replica.get()});
  EXPECT_THAT(std::string(s.message()), HasSubstr("leader completeness"));
}

}  // namespace
}  // namespace spate::sim
