#include "raft/testing/memory_log.h"

#include "gtest/gtest.h"

namespace spate::raft::testing {
namespace {

Entry E(Index index, Term term, std::string data = "") {
  Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(std::move(data));
  return e;
}

std::vector<Term> Terms(const MemoryLog& log) {
  std::vector<Term> terms;
  for (const Entry& e : log.AllEntries()) terms.push_back(e.term());
  return terms;
}

TEST(MemoryLogTest, EmptyLog) {
  MemoryLog log;
  EXPECT_EQ(log.FirstIndex(), 1u);
  EXPECT_EQ(log.LastIndex(), 0u);
  EXPECT_EQ(*log.TermAt(0), 0u);
  EXPECT_TRUE(absl::IsNotFound(log.TermAt(1).status()));
  EXPECT_EQ(log.GetSnapshot()->metadata().index(), 0u);
}

TEST(MemoryLogTest, AppendTruncatesConflicts) {
  MemoryLog log;
  ASSERT_TRUE(log.Append({E(1, 1), E(2, 1), E(3, 2)}).ok());
  ASSERT_TRUE(log.Append({E(2, 3)}).ok());
  EXPECT_EQ(Terms(log), (std::vector<Term>{1, 3}));
  EXPECT_EQ(log.Append({E(5, 3)}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log.Append({E(3, 3), E(5, 3)}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Terms(log), (std::vector<Term>{1, 3}));
}

TEST(MemoryLogTest, EntriesRespectRangeAndBytes) {
  MemoryLog log;
  ASSERT_TRUE(log.Append({E(1, 1, "aa"), E(2, 1, "bb"), E(3, 1, "cc")}).ok());
  EXPECT_EQ(log.Entries(1, 4, 100)->size(), 3u);
  EXPECT_EQ(log.Entries(1, 4, 4)->size(), 2u);
  EXPECT_EQ(log.Entries(1, 4, 0)->size(), 1u);
  EXPECT_TRUE(absl::IsNotFound(log.Entries(1, 5, 100).status()));
}

TEST(MemoryLogTest, CompactKeepsTheSnapshotTerm) {
  MemoryLog log;
  ASSERT_TRUE(log.Append({E(1, 1), E(2, 2), E(3, 2), E(4, 3)}).ok());
  ConfState cs;
  cs.add_voters(1);
  ASSERT_TRUE(log.Compact(3, "image", cs).ok());
  EXPECT_EQ(log.FirstIndex(), 4u);
  EXPECT_EQ(log.LastIndex(), 4u);
  EXPECT_EQ(*log.TermAt(3), 2u);
  EXPECT_TRUE(absl::IsOutOfRange(log.TermAt(2).status()));
  EXPECT_TRUE(absl::IsOutOfRange(log.Entries(3, 4, 10).status()));
  Snapshot snap = *log.GetSnapshot();
  EXPECT_EQ(snap.metadata().index(), 3u);
  EXPECT_EQ(snap.metadata().term(), 2u);
  EXPECT_EQ(snap.data(), "image");
  EXPECT_TRUE(absl::IsOutOfRange(log.Compact(3, "", cs)));
  // Appends below the first index are ignored, the rest applies.
  ASSERT_TRUE(log.Append({E(3, 2), E(4, 4)}).ok());
  EXPECT_EQ(Terms(log), (std::vector<Term>{4}));
}

TEST(MemoryLogTest, ApplySnapshotReplacesEverything) {
  MemoryLog log;
  ASSERT_TRUE(log.Append({E(1, 1), E(2, 1)}).ok());
  Snapshot snap;
  snap.mutable_metadata()->set_index(10);
  snap.mutable_metadata()->set_term(3);
  snap.mutable_metadata()->mutable_conf_state()->add_voters(2);
  ASSERT_TRUE(log.ApplySnapshot(snap).ok());
  EXPECT_EQ(log.FirstIndex(), 11u);
  EXPECT_EQ(log.LastIndex(), 10u);
  EXPECT_EQ(*log.TermAt(10), 3u);
  EXPECT_EQ(log.conf_state().voters_size(), 1);
  EXPECT_TRUE(absl::IsOutOfRange(log.ApplySnapshot(snap)));
}

TEST(MemoryLogTest, InjectedDataLoss) {
  MemoryLog log;
  ASSERT_TRUE(log.Append({E(1, 1), E(2, 1)}).ok());
  log.InjectDataLoss(2);
  EXPECT_TRUE(absl::IsDataLoss(log.TermAt(2).status()));
  EXPECT_TRUE(absl::IsDataLoss(log.Entries(1, 3, 100).status()));
  EXPECT_TRUE(log.Entries(1, 2, 100).ok());
  log.ClearDataLoss();
  EXPECT_TRUE(log.TermAt(2).ok());
}

}  // namespace
}  // namespace spate::raft::testing
