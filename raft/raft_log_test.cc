// RaftLog bookkeeping over a MemoryLog: the persisted part, the unstable
// tail, conflicts, slicing across both, commit rules and storage errors.
#include "raft/raft_log.h"

#include <vector>

#include "gtest/gtest.h"
#include "raft/testing/memory_log.h"

namespace spate::raft {
namespace {

using testing::MemoryLog;

Entry E(Index index, Term term, std::string data = "") {
  Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(std::move(data));
  return e;
}

EntryList List(std::vector<Entry> entries) {
  EntryList list;
  for (Entry& e : entries) *list.Add() = std::move(e);
  return list;
}

std::vector<Term> Terms(const RaftLog& log) {
  std::vector<Term> terms;
  for (Index i = log.FirstIndex(); i <= log.LastIndex(); ++i) {
    terms.push_back(*log.TermAt(i));
  }
  return terms;
}

// Persisted log 1..3 with terms 1,2,2 (first index 1).
MemoryLog Persisted() {
  MemoryLog storage;
  EXPECT_TRUE(storage.Append({E(1, 1), E(2, 2), E(3, 2)}).ok());
  return storage;
}

TEST(RaftLogTest, StartsFromPersistedState) {
  MemoryLog storage = Persisted();
  RaftLog log(&storage);
  EXPECT_EQ(log.FirstIndex(), 1u);
  EXPECT_EQ(log.LastIndex(), 3u);
  EXPECT_EQ(log.committed(), 0u);
  EXPECT_EQ(*log.LastTerm(), 2u);
  EXPECT_EQ(log.unstable().offset(), 4u);
}

TEST(RaftLogTest, StartsAfterASnapshot) {
  MemoryLog storage = Persisted();
  ConfState cs;
  cs.add_voters(1);
  ASSERT_TRUE(storage.Compact(2, "state", cs).ok());
  RaftLog log(&storage);
  EXPECT_EQ(log.FirstIndex(), 3u);
  EXPECT_EQ(log.committed(), 2u);
  EXPECT_EQ(log.applied(), 2u);
  EXPECT_EQ(*log.TermAt(2), 2u);  // the snapshot's term
  EXPECT_TRUE(absl::IsOutOfRange(log.TermAt(1).status()));
  EXPECT_TRUE(absl::IsNotFound(log.TermAt(4).status()));
  std::vector<Entry> out;
  EXPECT_TRUE(absl::IsOutOfRange(log.Slice(2, 4, 100, &out)));
}

TEST(RaftLogTest, AppendTruncatesConflictingUnstableAndPersisted) {
  MemoryLog storage = Persisted();
  RaftLog log(&storage);
  log.Append(List({E(4, 3), E(5, 3)}));
  EXPECT_EQ(Terms(log), (std::vector<Term>{1, 2, 2, 3, 3}));
  log.Append(List({E(5, 4)}));  // truncates the unstable suffix
  EXPECT_EQ(Terms(log), (std::vector<Term>{1, 2, 2, 3, 4}));
  log.Append(List({E(3, 5)}));  // replaces persisted entry 3 onwards
  EXPECT_EQ(Terms(log), (std::vector<Term>{1, 2, 5}));
  EXPECT_EQ(log.unstable().offset(), 3u);
  EXPECT_EQ(log.PersistedLastIndex(), 2u);
}

TEST(RaftLogTest, MaybeAppend) {
  struct Case {
    Index prev_index;
    Term prev_term;
    Index commit;
    std::vector<Entry> entries;
    std::optional<Index> want_last;
    std::vector<Term> want_terms;
    Index want_commit;
  };
  const Case cases[] = {
      // prev does not match: nothing happens.
      {3, 3, 3, {E(4, 4)}, std::nullopt, {1, 2, 2}, 0},
      {4, 2, 3, {E(5, 4)}, std::nullopt, {1, 2, 2}, 0},
      // Plain append; commit limited to the last new entry.
      {3, 2, 9, {E(4, 3)}, 4, {1, 2, 2, 3}, 4},
      // Heartbeat-like append with no entries.
      {3, 2, 2, {}, 3, {1, 2, 2}, 2},
      // Entries we already have: no truncation.
      {1, 1, 1, {E(2, 2)}, 2, {1, 2, 2}, 1},
      // Conflict at 3: truncate and replace.
      {2, 2, 3, {E(3, 3), E(4, 3)}, 4, {1, 2, 3, 3}, 3},
  };
  for (const Case& c : cases) {
    MemoryLog storage = Persisted();
    RaftLog log(&storage);
    auto last =
        log.MaybeAppend(c.prev_index, c.prev_term, c.commit, List(c.entries));
    ASSERT_TRUE(last.ok());
    EXPECT_EQ(*last, c.want_last) << c.prev_index << "/" << c.prev_term;
    EXPECT_EQ(Terms(log), c.want_terms);
    EXPECT_EQ(log.committed(), c.want_commit);
  }
}

TEST(RaftLogTest, FindConflictByTerm) {
  // The follower log of etcd's example: terms 1 3 3 4 4 5 5 5 6.
  MemoryLog storage;
  std::vector<Entry> entries;
  const Term terms[] = {1, 3, 3, 4, 4, 5, 5, 5, 6};
  for (Index i = 1; i <= 9; ++i) entries.push_back(E(i, terms[i - 1]));
  ASSERT_TRUE(storage.Append(entries).ok());
  RaftLog log(&storage);
  using P = std::pair<Index, Term>;
  EXPECT_EQ(*log.FindConflictByTerm(8, 3), P(3, 3));
  EXPECT_EQ(*log.FindConflictByTerm(9, 6), P(9, 6));
  EXPECT_EQ(*log.FindConflictByTerm(9, 5), P(8, 5));
  EXPECT_EQ(*log.FindConflictByTerm(9, 2), P(1, 1));
  EXPECT_EQ(*log.FindConflictByTerm(9, 0), P(0, 0));
  EXPECT_EQ(*log.FindConflictByTerm(0, 0), P(0, 0));
}

TEST(RaftLogTest, FindConflictByTermStopsAtCompaction) {
  MemoryLog storage = Persisted();
  ASSERT_TRUE(storage.Append({E(4, 3), E(5, 3)}).ok());
  ASSERT_TRUE(storage.Compact(3, "", ConfState()).ok());
  RaftLog log(&storage);
  using P = std::pair<Index, Term>;
  EXPECT_EQ(*log.FindConflictByTerm(5, 2), P(3, 2));  // the snapshot term
  EXPECT_EQ(*log.FindConflictByTerm(5, 1), P(2, 0));  // unknown below
}

TEST(RaftLogTest, SliceSpansStorageAndUnstableWithByteLimit) {
  MemoryLog storage;
  ASSERT_TRUE(storage.Append({E(1, 1, "aaaa"), E(2, 1, "bbbb")}).ok());
  RaftLog log(&storage);
  log.Append(List({E(3, 1, "cccc"), E(4, 1, "dddd")}));
  std::vector<Entry> out;
  ASSERT_TRUE(log.Slice(1, 5, 100, &out).ok());
  EXPECT_EQ(out.size(), 4u);
  out.clear();
  ASSERT_TRUE(log.Slice(1, 5, 10, &out).ok());  // 4+4 fits, +4 does not
  EXPECT_EQ(out.size(), 2u);
  out.clear();
  ASSERT_TRUE(log.Slice(2, 5, 8, &out).ok());  // across the boundary
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].data(), "cccc");
  out.clear();
  ASSERT_TRUE(log.Slice(3, 5, 0, &out).ok());  // always at least one
  EXPECT_EQ(out.size(), 1u);
}

TEST(RaftLogTest, CommitOnlyWithTheLeadersTerm) {
  MemoryLog storage = Persisted();
  RaftLog log(&storage);
  EXPECT_FALSE(*log.MaybeCommit(3, 1));  // entry 3 has term 2
  EXPECT_EQ(log.committed(), 0u);
  EXPECT_TRUE(*log.MaybeCommit(3, 2));
  EXPECT_EQ(log.committed(), 3u);
  EXPECT_FALSE(*log.MaybeCommit(2, 2));  // never backwards
  EXPECT_EQ(log.committed(), 3u);
}

TEST(RaftLogTest, CommittedAfterAndApplied) {
  MemoryLog storage = Persisted();
  RaftLog log(&storage);
  log.Append(List({E(4, 3, "x")}));
  log.CommitTo(4);
  EXPECT_TRUE(log.HasCommittedAfter(0));
  std::vector<Entry> out;
  ASSERT_TRUE(log.CommittedAfter(2, 1 << 20, &out).ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].index(), 3u);
  log.AppliedTo(4);
  EXPECT_FALSE(log.HasCommittedAfter(4));
}

TEST(RaftLogTest, StableToIgnoresSupersededEntries) {
  MemoryLog storage = Persisted();
  RaftLog log(&storage);
  log.Append(List({E(4, 3), E(5, 3)}));
  log.Append(List({E(5, 4)}));  // while 4..5@3 were being persisted
  log.StableTo(5, 3);           // the persisted 5 is not ours any more
  EXPECT_EQ(log.unstable().offset(), 4u);
  log.StableTo(5, 4);
  EXPECT_EQ(log.unstable().offset(), 6u);
  EXPECT_TRUE(log.unstable().entries().empty());
}

TEST(RaftLogTest, RestoreFromSnapshot) {
  MemoryLog storage = Persisted();
  RaftLog log(&storage);
  Snapshot snap;
  snap.mutable_metadata()->set_index(10);
  snap.mutable_metadata()->set_term(4);
  log.Restore(snap);
  EXPECT_TRUE(log.HasPendingSnapshot());
  EXPECT_EQ(log.FirstIndex(), 11u);
  EXPECT_EQ(log.LastIndex(), 10u);
  EXPECT_EQ(log.committed(), 10u);
  EXPECT_EQ(*log.TermAt(10), 4u);
  EXPECT_FALSE(log.HasCommittedAfter(0));  // apply the snapshot first
  EXPECT_EQ(log.GetSnapshot()->metadata().index(), 10u);
  log.StableSnapTo(10);
  EXPECT_FALSE(log.HasPendingSnapshot());
}

TEST(RaftLogTest, StorageErrorsPropagate) {
  MemoryLog storage = Persisted();
  storage.InjectDataLoss(2);
  RaftLog log(&storage);
  EXPECT_TRUE(absl::IsDataLoss(log.TermAt(2).status()));
  EXPECT_TRUE(absl::IsDataLoss(log.MatchTerm(2, 2).status()));
  EXPECT_TRUE(absl::IsDataLoss(log.FindConflictByTerm(3, 1).status()));
  std::vector<Entry> out;
  EXPECT_TRUE(absl::IsDataLoss(log.Slice(1, 4, 100, &out)));
  EXPECT_TRUE(log.TermAt(3).ok());
}

}  // namespace
}  // namespace spate::raft
