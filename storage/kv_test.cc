// WriteBatch, and the Kv contract checked against both implementations
// (MemKv and RocksKv) so that the simulator's disk behaves like the real one.
#include "storage/kv.h"

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "base/check.h"
#include "gtest/gtest.h"
#include "storage/mem_kv.h"
#include "storage/rocks_kv.h"
#include "storage/test_util.h"

namespace spate::storage {
namespace {

using KeyValues = std::vector<std::pair<std::string, std::string>>;

TEST(WriteBatchTest, RecordsOperationsInOrder) {
  WriteBatch batch;
  EXPECT_TRUE(batch.empty());
  batch.Put(Space::kState, "k1", "v1");
  batch.Delete(Space::kRaftLog, "k2");
  batch.DeleteRange(Space::kMessages, "a", "b");
  batch.DeleteRange(Space::kMessages, "c", "c");  // empty: dropped
  EXPECT_EQ(batch.count(), 3u);
  EXPECT_FALSE(batch.empty());
  EXPECT_GE(batch.bytes(), 2u + 2u + 2u + 1u + 1u);

  std::vector<std::string> seen;
  batch.ForEach([&](const WriteBatch::Op& op) {
    seen.push_back(std::to_string(static_cast<int>(op.type)) + ":" +
                   std::string(SpaceName(op.space)) + ":" +
                   std::string(op.key) + ":" + std::string(op.value));
  });
  EXPECT_EQ(seen, (std::vector<std::string>{
                      "1:state:k1:v1", "2:raft_log:k2:", "3:messages:a:b"}));

  WriteBatch other;
  other.Put(Space::kRaftState, "x", std::string(1000, 'y'));
  batch.Append(other);
  EXPECT_EQ(batch.count(), 4u);
  batch.Clear();
  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(batch.bytes(), 0u);
}

TEST(WriteBatchDeathTest, InvertedRangeIsABug) {
  WriteBatch batch;
  EXPECT_DEATH(batch.DeleteRange(Space::kState, "b", "a"), "begin > end");
}

// Builds a fresh Kv of one kind.
struct KvFactory {
  std::string name;
  std::function<std::unique_ptr<Kv>()> make;
};

// Names the parameter in gtest's output.
void PrintTo(const KvFactory& factory, std::ostream* os) {
  *os << factory.name;
}

class KvContractTest : public ::testing::TestWithParam<KvFactory> {
 protected:
  void SetUp() override { kv_ = GetParam().make(); }

  void Put(Space space, const std::string& key, const std::string& value) {
    WriteBatch batch;
    batch.Put(space, key, value);
    ASSERT_TRUE(kv_->Write(batch, /*sync=*/false).ok());
  }

  KeyValues ScanAll(Space space, const std::string& begin,
                    const std::string& end, bool reverse,
                    size_t limit = SIZE_MAX) {
    KeyValues out;
    absl::Status status =
        kv_->Scan(space, begin, end, reverse,
                  [&](absl::string_view key, absl::string_view value) {
                    out.emplace_back(std::string(key), std::string(value));
                    return out.size() < limit;
                  });
    EXPECT_TRUE(status.ok()) << status;
    return out;
  }

  std::unique_ptr<Kv> kv_;
};

TEST_P(KvContractTest, GetReturnsWhatWasPutAndNotFoundOtherwise) {
  Put(Space::kState, "a", "1");
  Put(Space::kState, "a", "2");  // overwrite
  absl::StatusOr<std::string> value = kv_->Get(Space::kState, "a");
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, "2");
  // Spaces are separate.
  EXPECT_EQ(kv_->Get(Space::kRaftLog, "a").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(kv_->Get(Space::kState, "b").status().code(),
            absl::StatusCode::kNotFound);
  // Binary keys and values, including NUL and 0xff bytes.
  const std::string key("\x00\xff\x01", 3);
  const std::string bytes("\x00\x00\xfe", 3);
  Put(Space::kRaftLog, key, bytes);
  EXPECT_EQ(kv_->Get(Space::kRaftLog, key).value(), bytes);
}

TEST_P(KvContractTest, ScanBothDirectionsWithBoundsAndEarlyStop) {
  for (const char* key : {"a", "b", "ba", "c", "d"}) {
    Put(Space::kMessages, key, std::string("v") + key);
  }
  Put(Space::kState, "b", "other space");
  EXPECT_EQ(ScanAll(Space::kMessages, "b", "d", false),
            (KeyValues{{"b", "vb"}, {"ba", "vba"}, {"c", "vc"}}));
  EXPECT_EQ(ScanAll(Space::kMessages, "b", "d", true),
            (KeyValues{{"c", "vc"}, {"ba", "vba"}, {"b", "vb"}}));
  EXPECT_EQ(ScanAll(Space::kMessages, "a", "z", false, 2),
            (KeyValues{{"a", "va"}, {"b", "vb"}}));
  EXPECT_EQ(ScanAll(Space::kMessages, "a", "z", true, 2),
            (KeyValues{{"d", "vd"}, {"c", "vc"}}));
  EXPECT_TRUE(ScanAll(Space::kMessages, "c", "c", false).empty());
  EXPECT_TRUE(ScanAll(Space::kMessages, "d", "a", true).empty());
  EXPECT_TRUE(ScanAll(Space::kMessages, "e", "z", true).empty());
}

TEST_P(KvContractTest, LongScansCrossInternalChunks) {
  WriteBatch batch;
  for (int i = 0; i < 500; ++i) {
    char key[8];
    snprintf(key, sizeof(key), "k%04d", i);
    batch.Put(Space::kRaftLog, key, std::to_string(i));
  }
  ASSERT_TRUE(kv_->Write(batch, true).ok());
  const KeyValues forward = ScanAll(Space::kRaftLog, "k0100", "k0400", false);
  ASSERT_EQ(forward.size(), 300u);
  EXPECT_EQ(forward.front().first, "k0100");
  EXPECT_EQ(forward.back().first, "k0399");
  const KeyValues backward = ScanAll(Space::kRaftLog, "k0100", "k0400", true);
  ASSERT_EQ(backward.size(), 300u);
  EXPECT_EQ(backward.front().first, "k0399");
  EXPECT_EQ(backward.back().first, "k0100");
}

TEST_P(KvContractTest, VisitorMayReadTheKv) {
  Put(Space::kState, "a", "b");
  Put(Space::kState, "b", "c");
  std::vector<std::string> followed;
  ASSERT_TRUE(kv_->Scan(Space::kState, "a", "b", false,
                        [&](absl::string_view, absl::string_view value) {
                          followed.push_back(
                              kv_->Get(Space::kState, value).value());
                          return true;
                        })
                  .ok());
  EXPECT_EQ(followed, std::vector<std::string>{"c"});
}

TEST_P(KvContractTest, BatchAppliesInOrderWithDeleteAndDeleteRange) {
  WriteBatch setup;
  for (const char* key : {"a", "b", "c", "d", "e"}) {
    setup.Put(Space::kRaftLog, key, key);
  }
  ASSERT_TRUE(kv_->Write(setup, true).ok());

  WriteBatch batch;
  batch.DeleteRange(Space::kRaftLog, "b", "d");  // b, c
  batch.Put(Space::kRaftLog, "c", "new c");      // after the range delete
  batch.Delete(Space::kRaftLog, "e");
  batch.Put(Space::kRaftLog, "e", "new e");  // delete then put
  batch.Delete(Space::kRaftLog, "a");
  ASSERT_TRUE(kv_->Write(batch, true).ok());
  EXPECT_EQ(ScanAll(Space::kRaftLog, "", "z", false),
            (KeyValues{{"c", "new c"}, {"d", "d"}, {"e", "new e"}}));
}

TEST_P(KvContractTest, EmptyBatchAndStats) {
  ASSERT_TRUE(kv_->Write(WriteBatch(), true).ok());
  Put(Space::kMessages, "m", std::string(100, 'x'));
  absl::StatusOr<KvStats> stats = kv_->GetStats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  const SpaceStats& messages =
      stats->spaces[static_cast<size_t>(Space::kMessages)];
  EXPECT_GE(messages.keys_approx, 1u);
  EXPECT_GT(messages.memory_bytes + messages.disk_bytes, 0u);
}

std::vector<KvFactory> Factories() {
  return {
      {"MemKv", [] { return std::make_unique<MemKv>(); }},
      {"RocksKv",
       []() -> std::unique_ptr<Kv> {
         absl::StatusOr<std::unique_ptr<RocksKv>> kv =
             RocksKv::Open(MakeTempDir(), RocksKvOptions());
         CHECK_OK(kv.status());
         return std::move(kv).value();
       }},
  };
}

INSTANTIATE_TEST_SUITE_P(Both, KvContractTest, ::testing::ValuesIn(Factories()),
                         [](const ::testing::TestParamInfo<KvFactory>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace spate::storage

namespace spate::storage {
namespace {

// Both implementations: a snapshot sees what was written before it, never
// what comes after, and refuses writes.
template <typename MakeKv>
void CheckSnapshotIsolation(MakeKv make) {
  auto kv = make();
  WriteBatch before;
  before.Put(Space::kMessages, "a", "1");
  before.Put(Space::kMessages, "b", "2");
  ASSERT_TRUE(kv->Write(before, false).ok());
  absl::StatusOr<std::unique_ptr<Kv>> snapshot = kv->NewSnapshot();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  WriteBatch after;
  after.Put(Space::kMessages, "a", "changed");
  after.Delete(Space::kMessages, "b");
  after.Put(Space::kMessages, "c", "3");
  ASSERT_TRUE(kv->Write(after, true).ok());

  EXPECT_EQ(*(*snapshot)->Get(Space::kMessages, "a"), "1");
  EXPECT_EQ(*(*snapshot)->Get(Space::kMessages, "b"), "2");
  EXPECT_TRUE(
      absl::IsNotFound((*snapshot)->Get(Space::kMessages, "c").status()));
  std::vector<std::string> keys;
  ASSERT_TRUE((*snapshot)
                  ->Scan(Space::kMessages, "a", "z", false,
                         [&](absl::string_view key, absl::string_view) {
                           keys.emplace_back(key);
                           return true;
                         })
                  .ok());
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ((*snapshot)->Write(after, false).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(*kv->Get(Space::kMessages, "a"), "changed");
}

TEST(KvSnapshotTest, MemKvSnapshotIsIsolated) {
  CheckSnapshotIsolation([] { return std::make_unique<MemKv>(); });
}

TEST(KvSnapshotTest, RocksKvSnapshotIsIsolated) {
  const std::string dir = testing::TempDir() + "/kv_snapshot";
  CheckSnapshotIsolation(
      [&] { return std::move(RocksKv::Open(dir, RocksKvOptions())).value(); });
}

}  // namespace
}  // namespace spate::storage
