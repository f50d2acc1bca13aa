// LogStore conformance: every test runs against MemKv and RocksKv, and
// "restart" means a crash of the machine (MemKv keeps only synced writes) or
// closing and reopening the RocksDB directory.
#include "storage/log_store.h"

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "base/check.h"
#include "gtest/gtest.h"
#include "storage/keys.h"
#include "storage/mem_kv.h"
#include "storage/record_codec.h"
#include "storage/rocks_kv.h"
#include "storage/test_util.h"

namespace spate::storage {
namespace {

using raft::Entry;
using raft::HardState;

// Forwards to a real Kv and counts writes, so tests can check group commit
// on either implementation.
class CountingKv : public Kv {
 public:
  explicit CountingKv(Kv* base) : base_(base) {}
  absl::StatusOr<std::string> Get(Space space,
                                  absl::string_view key) const override {
    ++reads;
    return base_->Get(space, key);
  }
  absl::Status Scan(
      Space space, absl::string_view begin, absl::string_view end, bool reverse,
      absl::FunctionRef<bool(absl::string_view, absl::string_view)> visit)
      const override {
    ++reads;
    return base_->Scan(space, begin, end, reverse, visit);
  }
  absl::Status Write(const WriteBatch& batch, bool sync) override {
    ++writes;
    syncs += sync;
    return base_->Write(batch, sync);
  }
  absl::StatusOr<std::unique_ptr<Kv>> NewSnapshot() const override {
    return base_->NewSnapshot();
  }
  absl::StatusOr<KvStats> GetStats() const override {
    return base_->GetStats();
  }
  mutable int reads = 0;
  int writes = 0;
  int syncs = 0;

 private:
  Kv* base_;
};

// A Kv that can be "restarted".
class KvEnv {
 public:
  virtual ~KvEnv() = default;
  virtual Kv* kv() = 0;
  // Machine crash + reboot (MemKv) or close + reopen (RocksKv).
  virtual void Restart() = 0;
};

class MemKvEnv : public KvEnv {
 public:
  Kv* kv() override { return &kv_; }
  void Restart() override { kv_.SimulateCrash(); }

 private:
  MemKv kv_;
};

class RocksKvEnv : public KvEnv {
 public:
  RocksKvEnv() : dir_(MakeTempDir()) { Restart(); }
  Kv* kv() override { return kv_.get(); }
  void Restart() override {
    kv_.reset();
    absl::StatusOr<std::unique_ptr<RocksKv>> kv =
        RocksKv::Open(dir_, RocksKvOptions());
    CHECK_OK(kv.status());
    kv_ = std::move(kv).value();
  }

 private:
  std::string dir_;
  std::unique_ptr<RocksKv> kv_;
};

struct EnvFactory {
  std::string name;
  std::function<std::unique_ptr<KvEnv>()> make;
};

// Names the parameter in gtest's output.
void PrintTo(const EnvFactory& factory, std::ostream* os) {
  *os << factory.name;
}

Entry MakeEntry(raft::Index index, raft::Term term, std::string data = "") {
  Entry entry;
  entry.set_index(index);
  entry.set_term(term);
  entry.set_data(data.empty() ? "cmd" + std::to_string(index) : data);
  return entry;
}

std::vector<Entry> MakeEntries(raft::Index first, raft::Index last,
                               raft::Term term, size_t data_bytes = 0) {
  std::vector<Entry> entries;
  for (raft::Index i = first; i <= last; ++i) {
    entries.push_back(MakeEntry(
        i, term, data_bytes == 0 ? "" : std::string(data_bytes, 'a' + i % 26)));
  }
  return entries;
}

HardState MakeHardState(raft::Term term, raft::NodeId vote,
                        raft::Index commit) {
  HardState state;
  state.set_term(term);
  state.set_vote(vote);
  state.set_commit(commit);
  return state;
}

raft::Snapshot MakeSnapshot(raft::Index index, raft::Term term,
                            std::string data,
                            std::vector<raft::NodeId> voters = {1, 2, 3}) {
  raft::Snapshot snapshot;
  snapshot.mutable_metadata()->set_index(index);
  snapshot.mutable_metadata()->set_term(term);
  for (raft::NodeId voter : voters) {
    snapshot.mutable_metadata()->mutable_conf_state()->add_voters(voter);
  }
  snapshot.set_data(std::move(data));
  return snapshot;
}

raft::ConfState Voters(std::vector<raft::NodeId> voters) {
  raft::ConfState conf;
  for (raft::NodeId voter : voters) conf.add_voters(voter);
  return conf;
}

class LogStoreTest : public ::testing::TestWithParam<EnvFactory> {
 protected:
  void SetUp() override {
    env_ = GetParam().make();
    counting_ = std::make_unique<CountingKv>(env_->kv());
  }

  Kv* kv() { return counting_.get(); }

  void Restart() {
    env_->Restart();
    counting_ = std::make_unique<CountingKv>(env_->kv());
  }

  std::unique_ptr<LogStore> Open(raft::GroupId group,
                                 LogStoreOptions options = {}) {
    absl::StatusOr<std::unique_ptr<LogStore>> store =
        LogStore::Open(kv(), group, options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  // Writes `batch` synced and makes it visible in `stores`.
  void Persist(WriteBatch* batch, std::vector<LogStore*> stores) {
    ASSERT_TRUE(kv()->Write(*batch, /*sync=*/true).ok());
    batch->Clear();
    for (LogStore* store : stores) store->OnPersisted();
  }

  // Stages entries and a hard state committing `commit`, then persists.
  void Append(LogStore* store, const std::vector<Entry>& entries,
              std::optional<HardState> hard_state = std::nullopt) {
    WriteBatch batch;
    ASSERT_TRUE(store->Stage(hard_state, entries, std::nullopt, &batch).ok());
    Persist(&batch, {store});
  }

  void ExpectEntries(const LogStore& store, raft::Index lo, raft::Index hi,
                     raft::Term term) {
    absl::StatusOr<std::vector<Entry>> entries =
        store.Entries(lo, hi, UINT64_MAX);
    ASSERT_TRUE(entries.ok()) << entries.status();
    ASSERT_EQ(entries->size(), hi - lo);
    for (raft::Index i = lo; i < hi; ++i) {
      const Entry& entry = (*entries)[i - lo];
      EXPECT_EQ(entry.index(), i);
      EXPECT_EQ(entry.term(), term) << "index " << i;
      EXPECT_EQ(store.TermAt(i).value(), term) << "index " << i;
    }
  }

  std::unique_ptr<KvEnv> env_;
  std::unique_ptr<CountingKv> counting_;
};

TEST_P(LogStoreTest, NewGroupIsEmpty) {
  std::unique_ptr<LogStore> store = Open(7);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->FirstIndex(), 1u);
  EXPECT_EQ(store->LastIndex(), 0u);
  EXPECT_EQ(store->TermAt(0).value(), 0u);
  EXPECT_EQ(store->TermAt(1).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store->Entries(1, 1, 100).value().empty());
  EXPECT_EQ(store->Entries(1, 2, 100).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store->GetSnapshot().value().metadata().index(), 0u);
  const raft::InitialState state = store->LoadInitialState().value();
  EXPECT_EQ(state.hard_state.term(), 0u);
  EXPECT_EQ(state.conf_state.voters_size(), 0);
}

TEST_P(LogStoreTest, BootstrapPersistsTheInitialMembership) {
  WriteBatch batch;
  LogStore::Bootstrap(7, Voters({1, 2, 3}), &batch);
  ASSERT_TRUE(kv()->Write(batch, true).ok());
  Restart();
  std::unique_ptr<LogStore> store = Open(7);
  ASSERT_NE(store, nullptr);
  const raft::InitialState state = store->LoadInitialState().value();
  EXPECT_EQ(state.conf_state.voters_size(), 3);
  EXPECT_EQ(store->LastIndex(), 0u);
  EXPECT_EQ(LogStore::ListGroups(*kv()).value(), std::vector<raft::GroupId>{7});
}

TEST_P(LogStoreTest, AppendsAndReadsBackAcrossRestart) {
  std::unique_ptr<LogStore> store = Open(1);
  Append(store.get(), MakeEntries(1, 10, 1), MakeHardState(1, 2, 4));
  EXPECT_EQ(store->FirstIndex(), 1u);
  EXPECT_EQ(store->LastIndex(), 10u);
  ExpectEntries(*store, 1, 11, 1);
  Append(store.get(), MakeEntries(11, 12, 2), MakeHardState(2, 3, 11));

  Restart();
  store = Open(1);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->LastIndex(), 12u);
  ExpectEntries(*store, 1, 11, 1);
  ExpectEntries(*store, 11, 13, 2);
  const HardState state = store->LoadInitialState().value().hard_state;
  EXPECT_EQ(state.term(), 2u);
  EXPECT_EQ(state.vote(), 3u);
  EXPECT_EQ(state.commit(), 11u);
  EXPECT_EQ(store->Entries(3, 5, UINT64_MAX).value()[1].data(), "cmd4");
}

TEST_P(LogStoreTest, EntriesHonourMaxBytesButReturnAtLeastOne) {
  // A tiny cache so that the Kv path is exercised as well as the cache path.
  for (uint64_t cache_bytes : {uint64_t{1}, uint64_t{4} << 20}) {
    SCOPED_TRACE(cache_bytes);
    std::unique_ptr<LogStore> store = Open(cache_bytes, {cache_bytes});
    Append(store.get(), MakeEntries(1, 20, 1, /*data_bytes=*/100));
    const uint64_t entry_bytes = 100;  // data bytes, as the core counts
    EXPECT_EQ(store->Entries(1, 21, 0).value().size(), 1u);
    EXPECT_EQ(store->Entries(1, 21, entry_bytes).value().size(), 1u);
    EXPECT_EQ(store->Entries(1, 21, 3 * entry_bytes + 1).value().size(), 3u);
    EXPECT_EQ(store->Entries(5, 21, 30 * entry_bytes).value().size(), 16u);
    EXPECT_EQ(store->Entries(0, 5, UINT64_MAX).status().code(),
              absl::StatusCode::kOutOfRange);
    EXPECT_EQ(store->Entries(5, 22, UINT64_MAX).status().code(),
              absl::StatusCode::kNotFound);
  }
}

TEST_P(LogStoreTest, StagedDataIsInvisibleUntilOnPersisted) {
  std::unique_ptr<LogStore> store = Open(1);
  Append(store.get(), MakeEntries(1, 3, 1), MakeHardState(1, 1, 3));

  WriteBatch batch;
  ASSERT_TRUE(store
                  ->Stage(MakeHardState(2, 2, 4), MakeEntries(4, 5, 2),
                          std::nullopt, &batch)
                  .ok());
  // Staging again before the write: both stages become visible together.
  ASSERT_TRUE(
      store->Stage(std::nullopt, MakeEntries(6, 6, 2), std::nullopt, &batch)
          .ok());
  EXPECT_TRUE(store->has_staged());
  EXPECT_EQ(store->LastIndex(), 3u);
  EXPECT_EQ(store->TermAt(4).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->Entries(1, 5, UINT64_MAX).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store->LoadInitialState().value().hard_state.term(), 1u);

  ASSERT_TRUE(kv()->Write(batch, true).ok());
  store->OnPersisted();
  EXPECT_FALSE(store->has_staged());
  EXPECT_EQ(store->LastIndex(), 6u);
  ExpectEntries(*store, 4, 7, 2);
  EXPECT_EQ(store->LoadInitialState().value().hard_state.term(), 2u);
}

TEST_P(LogStoreTest, DiscardStagedForgetsAFailedWrite) {
  std::unique_ptr<LogStore> store = Open(1);
  Append(store.get(), MakeEntries(1, 3, 1));
  WriteBatch batch;
  ASSERT_TRUE(
      store->Stage(std::nullopt, MakeEntries(2, 2, 2), std::nullopt, &batch)
          .ok());
  store->DiscardStaged();  // the batch was never written
  EXPECT_FALSE(store->has_staged());
  ExpectEntries(*store, 1, 4, 1);
  // Staging continues from the visible state.
  Append(store.get(), MakeEntries(4, 4, 1));
  ExpectEntries(*store, 1, 5, 1);
}

TEST_P(LogStoreTest, ConflictingSuffixIsReplaced) {
  for (uint64_t cache_bytes : {uint64_t{1}, uint64_t{4} << 20}) {
    SCOPED_TRACE(cache_bytes);
    const raft::GroupId group = cache_bytes;
    std::unique_ptr<LogStore> store = Open(group, {cache_bytes});
    Append(store.get(), MakeEntries(1, 10, 1));
    // A new leader overwrites 6.. with a shorter log of term 2.
    Append(store.get(), MakeEntries(6, 7, 2));
    EXPECT_EQ(store->LastIndex(), 7u);
    ExpectEntries(*store, 1, 6, 1);
    ExpectEntries(*store, 6, 8, 2);
    EXPECT_EQ(store->TermAt(8).status().code(), absl::StatusCode::kNotFound);

    // Two conflicting stages in one batch.
    WriteBatch batch;
    ASSERT_TRUE(
        store->Stage(std::nullopt, MakeEntries(7, 9, 3), std::nullopt, &batch)
            .ok());
    ASSERT_TRUE(
        store->Stage(std::nullopt, MakeEntries(8, 8, 4), std::nullopt, &batch)
            .ok());
    Persist(&batch, {store.get()});
    EXPECT_EQ(store->LastIndex(), 8u);
    EXPECT_EQ(store->TermAt(7).value(), 3u);
    EXPECT_EQ(store->TermAt(8).value(), 4u);

    Restart();
    store = Open(group, {cache_bytes});
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->LastIndex(), 8u);
    ExpectEntries(*store, 1, 6, 1);
    EXPECT_EQ(store->TermAt(6).value(), 2u);
    EXPECT_EQ(store->TermAt(7).value(), 3u);
    EXPECT_EQ(store->TermAt(8).value(), 4u);
  }
}

TEST_P(LogStoreTest, InvalidInputIsRejectedAndNothingStaged) {
  std::unique_ptr<LogStore> store = Open(1);
  Append(store.get(), MakeEntries(1, 5, 2), MakeHardState(2, 1, 3));
  struct Case {
    std::string name;
    std::optional<HardState> hard_state;
    std::vector<Entry> entries;
  };
  std::vector<Entry> holes = MakeEntries(6, 8, 2);
  holes.erase(holes.begin() + 1);
  std::vector<Entry> decreasing = MakeEntries(6, 7, 2);
  decreasing[1].set_term(1);
  const std::vector<Case> cases = {
      {"gap", std::nullopt, MakeEntries(7, 8, 2)},
      {"not contiguous", std::nullopt, holes},
      {"decreasing terms", std::nullopt, decreasing},
      {"term zero", std::nullopt, MakeEntries(6, 6, 0)},
      {"term goes back", MakeHardState(1, 1, 3), {}},
      {"vote changed", MakeHardState(2, 3, 3), {}},
      {"commit goes back", MakeHardState(2, 1, 2), {}},
      {"commit beyond last", MakeHardState(2, 1, 6), {}},
      {"commit beyond new entries", MakeHardState(2, 1, 7),
       MakeEntries(6, 6, 2)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    WriteBatch batch;
    const absl::Status status =
        store->Stage(c.hard_state, c.entries, std::nullopt, &batch);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_TRUE(batch.empty());
    EXPECT_FALSE(store->has_staged());
  }
  // A new term resets the vote; the log and commit may grow.
  WriteBatch batch;
  EXPECT_TRUE(store
                  ->Stage(MakeHardState(3, 2, 6), MakeEntries(6, 6, 3),
                          std::nullopt, &batch)
                  .ok());
}

TEST_P(LogStoreTest, CompactionKeepsSnapshotAndDropsThePrefix) {
  std::unique_ptr<LogStore> store = Open(1);
  Append(store.get(), MakeEntries(1, 5, 1), MakeHardState(1, 1, 5));
  Append(store.get(), MakeEntries(6, 10, 2), MakeHardState(2, 1, 8));

  WriteBatch batch;
  const std::string image(100000, 's');  // a large state machine image
  EXPECT_EQ(store->StageCompaction(MakeSnapshot(9, 2, image), &batch).code(),
            absl::StatusCode::kInvalidArgument);  // beyond the commit index
  EXPECT_EQ(store->StageCompaction(MakeSnapshot(7, 1, image), &batch).code(),
            absl::StatusCode::kInvalidArgument);  // wrong term
  EXPECT_TRUE(batch.empty());
  ASSERT_TRUE(store->StageCompaction(MakeSnapshot(7, 2, image), &batch).ok());
  EXPECT_EQ(store->FirstIndex(), 1u);  // not yet persisted
  Persist(&batch, {store.get()});

  auto check = [&](const LogStore& s) {
    EXPECT_EQ(s.FirstIndex(), 8u);
    EXPECT_EQ(s.LastIndex(), 10u);
    EXPECT_EQ(s.TermAt(7).value(), 2u);  // the snapshot's term
    EXPECT_EQ(s.TermAt(6).status().code(), absl::StatusCode::kOutOfRange);
    EXPECT_EQ(s.Entries(7, 9, UINT64_MAX).status().code(),
              absl::StatusCode::kOutOfRange);
    ExpectEntries(s, 8, 11, 2);
    const raft::Snapshot snapshot = s.GetSnapshot().value();
    EXPECT_EQ(snapshot.metadata().index(), 7u);
    EXPECT_EQ(snapshot.metadata().term(), 2u);
    EXPECT_EQ(snapshot.data(), image);
  };
  check(*store);
  // Not newer than the current snapshot.
  EXPECT_EQ(store->StageCompaction(MakeSnapshot(7, 2, ""), &batch).code(),
            absl::StatusCode::kInvalidArgument);

  Restart();
  store = Open(1);
  ASSERT_NE(store, nullptr);
  check(*store);
  // Compacting everything leaves an empty log after the snapshot.
  Append(store.get(), {}, MakeHardState(2, 1, 10));
  ASSERT_TRUE(store->StageCompaction(MakeSnapshot(10, 2, "all"), &batch).ok());
  Persist(&batch, {store.get()});
  EXPECT_EQ(store->FirstIndex(), 11u);
  EXPECT_EQ(store->LastIndex(), 10u);
  Restart();
  store = Open(1);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->FirstIndex(), 11u);
  EXPECT_EQ(store->LastIndex(), 10u);
  EXPECT_EQ(store->TermAt(10).value(), 2u);
  EXPECT_EQ(store->GetSnapshot().value().data(), "all");
}

TEST_P(LogStoreTest, CompactionOfStagedEntriesUsesTheStagedTerms) {
  std::unique_ptr<LogStore> store = Open(1);
  Append(store.get(), MakeEntries(1, 4, 1));
  WriteBatch batch;
  ASSERT_TRUE(store
                  ->Stage(MakeHardState(3, 1, 6), MakeEntries(3, 6, 3),
                          std::nullopt, &batch)
                  .ok());
  EXPECT_EQ(store->StageCompaction(MakeSnapshot(4, 1, "x"), &batch).code(),
            absl::StatusCode::kInvalidArgument);  // 4 now has term 3
  ASSERT_TRUE(store->StageCompaction(MakeSnapshot(4, 3, "x"), &batch).ok());
  Persist(&batch, {store.get()});
  EXPECT_EQ(store->FirstIndex(), 5u);
  ExpectEntries(*store, 5, 7, 3);
}

TEST_P(LogStoreTest, IncomingSnapshotReplacesTheLog) {
  std::unique_ptr<LogStore> store = Open(1);
  WriteBatch batch;
  LogStore::Bootstrap(1, Voters({1, 2, 3}), &batch);
  Persist(&batch, {});
  store = Open(1);
  Append(store.get(), MakeEntries(1, 5, 1), MakeHardState(1, 2, 3));

  // A far-behind follower gets a snapshot at 20 and the entries after it;
  // entries the snapshot covers are skipped.
  std::vector<Entry> entries = MakeEntries(19, 22, 3);
  ASSERT_TRUE(store
                  ->Stage(MakeHardState(3, 0, 21), entries,
                          MakeSnapshot(20, 3, "image", {1, 2, 3, 4}), &batch)
                  .ok());
  Persist(&batch, {store.get()});
  auto check = [&](const LogStore& s) {
    EXPECT_EQ(s.FirstIndex(), 21u);
    EXPECT_EQ(s.LastIndex(), 22u);
    EXPECT_EQ(s.TermAt(20).value(), 3u);
    ExpectEntries(s, 21, 23, 3);
    EXPECT_EQ(s.LoadInitialState().value().conf_state.voters_size(), 4);
    EXPECT_EQ(s.GetSnapshot().value().data(), "image");
  };
  check(*store);
  Restart();
  store = Open(1);
  ASSERT_NE(store, nullptr);
  check(*store);

  // An older snapshot is refused.
  EXPECT_EQ(
      store->Stage(std::nullopt, {}, MakeSnapshot(20, 3, "old"), &batch).code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(batch.empty());
}

TEST_P(LogStoreTest, ConfStateIsStagedLikeTheRest) {
  std::unique_ptr<LogStore> store = Open(1);
  WriteBatch batch;
  store->StageConfState(Voters({1, 2}), &batch);
  EXPECT_TRUE(store->has_staged());
  EXPECT_EQ(store->LoadInitialState().value().conf_state.voters_size(), 0);
  Persist(&batch, {store.get()});
  EXPECT_EQ(store->LoadInitialState().value().conf_state.voters_size(), 2);
  Restart();
  store = Open(1);
  EXPECT_EQ(store->LoadInitialState().value().conf_state.voters_size(), 2);
}

TEST_P(LogStoreTest, TwoGroupsInOneBatchStaySeparate) {
  std::unique_ptr<LogStore> a = Open(1);
  std::unique_ptr<LogStore> b = Open(2);
  WriteBatch batch;
  ASSERT_TRUE(a->Stage(MakeHardState(1, 1, 0), MakeEntries(1, 4, 1),
                       std::nullopt, &batch)
                  .ok());
  ASSERT_TRUE(b->Stage(MakeHardState(5, 2, 0), MakeEntries(1, 2, 5),
                       std::nullopt, &batch)
                  .ok());
  const int writes = counting_->writes;
  Persist(&batch, {a.get(), b.get()});
  EXPECT_EQ(counting_->writes, writes + 1);  // one write, one fsync
  EXPECT_EQ(counting_->syncs, 1);

  Restart();
  a = Open(1);
  b = Open(2);
  EXPECT_EQ(a->LastIndex(), 4u);
  EXPECT_EQ(b->LastIndex(), 2u);
  ExpectEntries(*a, 1, 5, 1);
  ExpectEntries(*b, 1, 3, 5);
  EXPECT_EQ(a->LoadInitialState().value().hard_state.term(), 1u);
  EXPECT_EQ(b->LoadInitialState().value().hard_state.term(), 5u);
  EXPECT_EQ(LogStore::ListGroups(*kv()).value(),
            (std::vector<raft::GroupId>{1, 2}));

  // Destroying one group leaves the other intact.
  a->Destroy(&batch);
  EXPECT_EQ(a->LastIndex(), 4u);  // staged only
  Persist(&batch, {a.get()});
  EXPECT_EQ(a->LastIndex(), 0u);
  EXPECT_EQ(a->FirstIndex(), 1u);
  Restart();
  EXPECT_EQ(LogStore::ListGroups(*kv()).value(), std::vector<raft::GroupId>{2});
  a = Open(1);
  b = Open(2);
  EXPECT_EQ(a->LastIndex(), 0u);
  EXPECT_EQ(a->LoadInitialState().value().hard_state.term(), 0u);
  ExpectEntries(*b, 1, 3, 5);
}

TEST_P(LogStoreTest, HotPathReadsComeFromTheCache) {
  std::unique_ptr<LogStore> store = Open(1);
  Append(store.get(), MakeEntries(1, 100, 1));
  const int reads = counting_->reads;
  for (raft::Index i = 1; i <= 100; ++i)
    ASSERT_EQ(store->TermAt(i).value(), 1u);
  ASSERT_EQ(store->Entries(50, 101, UINT64_MAX).value().size(), 51u);
  EXPECT_EQ(counting_->reads, reads);
  EXPECT_EQ(store->stats().kv_reads, 0u);
  EXPECT_EQ(store->stats().cache_entries, 100u);

  // A small cache keeps only the newest entries; older ones come from the Kv.
  std::unique_ptr<LogStore> small = Open(2, {/*cache_bytes_max=*/1000});
  Append(small.get(), MakeEntries(1, 100, 1, /*data_bytes=*/100));
  EXPECT_LE(small->stats().cache_bytes, 1000u);
  EXPECT_GE(small->stats().cache_entries, 1u);
  EXPECT_EQ(small->TermAt(100).value(), 1u);
  EXPECT_EQ(small->stats().kv_reads, 0u);
  EXPECT_EQ(small->TermAt(1).value(), 1u);
  EXPECT_EQ(small->stats().kv_reads, 1u);
  ExpectEntries(*small, 1, 101, 1);
}

// Replaces the stored value of `key` with a damaged copy of itself.
void DamageRecord(Kv* kv, Space space, const std::string& key) {
  std::string value = kv->Get(space, key).value();
  value[value.size() / 2] ^= 0x10;
  WriteBatch batch;
  batch.Put(space, key, value);
  ASSERT_TRUE(kv->Write(batch, true).ok());
}

TEST_P(LogStoreTest, DamagedEntryIsDataLossNeverServed) {
  std::unique_ptr<LogStore> store = Open(1);
  Append(store.get(), MakeEntries(1, 10, 1), MakeHardState(1, 1, 10));
  DamageRecord(kv(), Space::kRaftLog, RaftLogKey(1, 3));
  Restart();
  store = Open(1);  // only the last entry is read at open
  ASSERT_NE(store, nullptr);
  const absl::Status entries = store->Entries(1, 11, UINT64_MAX).status();
  EXPECT_EQ(entries.code(), absl::StatusCode::kDataLoss) << entries;
  EXPECT_TRUE(absl::StrContains(entries.message(), "group=1 index=3"))
      << entries;
  EXPECT_EQ(store->TermAt(3).status().code(), absl::StatusCode::kDataLoss);
  // Entries before the damage are still served.
  EXPECT_EQ(store->Entries(1, 3, UINT64_MAX).value().size(), 2u);
}

TEST_P(LogStoreTest, DamagedStateIsDataLossAtOpen) {
  std::unique_ptr<LogStore> store = Open(1);
  Append(store.get(), MakeEntries(1, 3, 1), MakeHardState(1, 1, 3));
  DamageRecord(kv(), Space::kRaftState,
               RaftStateKey(1, RaftStateKind::kHardState));
  const absl::Status status = LogStore::Open(kv(), 1).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "group=1 hard_state"))
      << status;
}

TEST_P(LogStoreTest, DamagedSnapshotIsDataLoss) {
  std::unique_ptr<LogStore> store = Open(1);
  Append(store.get(), MakeEntries(1, 3, 1), MakeHardState(1, 1, 3));
  WriteBatch batch;
  ASSERT_TRUE(store->StageCompaction(MakeSnapshot(2, 1, "image"), &batch).ok());
  Persist(&batch, {store.get()});
  DamageRecord(kv(), Space::kRaftState,
               RaftStateKey(1, RaftStateKind::kSnapshotData));
  EXPECT_EQ(store->GetSnapshot().status().code(), absl::StatusCode::kDataLoss);
}

TEST_P(LogStoreTest, HolesAndLostCommitsAreDataLoss) {
  std::unique_ptr<LogStore> store = Open(1);
  Append(store.get(), MakeEntries(1, 10, 1), MakeHardState(1, 1, 10));
  // A hole in the middle surfaces when read.
  WriteBatch batch;
  batch.Delete(Space::kRaftLog, RaftLogKey(1, 5));
  ASSERT_TRUE(kv()->Write(batch, true).ok());
  store = Open(1, {/*cache_bytes_max=*/1});
  ASSERT_NE(store, nullptr);
  const absl::Status hole = store->Entries(1, 11, UINT64_MAX).status();
  EXPECT_EQ(hole.code(), absl::StatusCode::kDataLoss) << hole;
  EXPECT_TRUE(absl::StrContains(hole.message(), "index=5")) << hole;
  EXPECT_EQ(store->TermAt(5).status().code(), absl::StatusCode::kDataLoss);

  // A missing first entry, or a commit index beyond the log, fails Open.
  batch.Delete(Space::kRaftLog, RaftLogKey(1, 1));
  ASSERT_TRUE(kv()->Write(batch, true).ok());
  EXPECT_EQ(LogStore::Open(kv(), 1).status().code(),
            absl::StatusCode::kDataLoss);
  const KeyRange log = RaftLogRange(1);
  batch.Clear();
  batch.DeleteRange(Space::kRaftLog, log.begin, log.end);
  ASSERT_TRUE(kv()->Write(batch, true).ok());
  const absl::Status lost = LogStore::Open(kv(), 1).status();
  EXPECT_EQ(lost.code(), absl::StatusCode::kDataLoss) << lost;
  EXPECT_TRUE(absl::StrContains(lost.message(), "commit index 10")) << lost;
}

TEST(LogStoreMemKvTest, UnsyncedWritesAreLostAsAWhole) {
  MemKv kv;
  absl::StatusOr<std::unique_ptr<LogStore>> store = LogStore::Open(&kv, 1);
  ASSERT_TRUE(store.ok());
  WriteBatch batch;
  ASSERT_TRUE((*store)
                  ->Stage(MakeHardState(1, 1, 2), MakeEntries(1, 2, 1),
                          std::nullopt, &batch)
                  .ok());
  ASSERT_TRUE(kv.Write(batch, true).ok());
  (*store)->OnPersisted();
  batch.Clear();
  ASSERT_TRUE((*store)
                  ->Stage(MakeHardState(2, 2, 3), MakeEntries(3, 4, 2),
                          std::nullopt, &batch)
                  .ok());
  ASSERT_TRUE(kv.Write(batch, false).ok());
  kv.SimulateCrash();
  store = LogStore::Open(&kv, 1);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->LastIndex(), 2u);
  EXPECT_EQ((*store)->LoadInitialState().value().hard_state.term(), 1u);
}

TEST(LogStoreDeathTest, StagingAfterDestroyIsABug) {
  MemKv kv;
  std::unique_ptr<LogStore> store = LogStore::Open(&kv, 1).value();
  WriteBatch batch;
  store->Destroy(&batch);
  EXPECT_DEATH(store->StageConfState(Voters({1}), &batch), "after Destroy");
}

std::vector<EnvFactory> Envs() {
  return {
      {"MemKv", [] { return std::make_unique<MemKvEnv>(); }},
      {"RocksKv", [] { return std::make_unique<RocksKvEnv>(); }},
  };
}

INSTANTIATE_TEST_SUITE_P(Both, LogStoreTest, ::testing::ValuesIn(Envs()),
                         [](const ::testing::TestParamInfo<EnvFactory>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace spate::storage
