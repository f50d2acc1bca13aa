#include "storage/mem_kv.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace spate::storage {
namespace {

absl::Status PutOne(MemKv* kv, const std::string& key, const std::string& value,
                    bool sync) {
  WriteBatch batch;
  batch.Put(Space::kRaftLog, key, value);
  return kv->Write(batch, sync);
}

bool Has(const MemKv& kv, const std::string& key) {
  return kv.Get(Space::kRaftLog, key).ok();
}

TEST(MemKvTest, CrashDropsExactlyTheUnsyncedSuffix) {
  MemKv kv;
  ASSERT_TRUE(PutOne(&kv, "1", "a", false).ok());
  ASSERT_TRUE(PutOne(&kv, "2", "a", true).ok());  // makes 1 and 2 durable
  ASSERT_TRUE(PutOne(&kv, "3", "a", false).ok());
  ASSERT_TRUE(PutOne(&kv, "2", "overwritten", false).ok());
  EXPECT_EQ(kv.unsynced_batch_count(), 2u);
  EXPECT_EQ(kv.Get(Space::kRaftLog, "2").value(), "overwritten");

  kv.SimulateCrash();
  EXPECT_TRUE(Has(kv, "1"));
  EXPECT_TRUE(Has(kv, "2"));
  EXPECT_EQ(kv.Get(Space::kRaftLog, "2").value(), "a");
  EXPECT_FALSE(Has(kv, "3"));
  EXPECT_EQ(kv.unsynced_batch_count(), 0u);

  // A second crash loses nothing more.
  kv.SimulateCrash();
  EXPECT_TRUE(Has(kv, "1"));
  EXPECT_TRUE(Has(kv, "2"));
}

TEST(MemKvTest, CrashCanKeepAPrefixOfUnsyncedWrites) {
  MemKv kv;
  ASSERT_TRUE(PutOne(&kv, "1", "a", false).ok());
  ASSERT_TRUE(PutOne(&kv, "2", "a", false).ok());
  ASSERT_TRUE(PutOne(&kv, "3", "a", false).ok());
  kv.SimulateCrash(/*unsynced_batches_kept=*/2);
  EXPECT_TRUE(Has(kv, "1"));
  EXPECT_TRUE(Has(kv, "2"));
  EXPECT_FALSE(Has(kv, "3"));
}

TEST(MemKvTest, DeletesAreLostLikeWritesAndBatchesStayAtomic) {
  MemKv kv;
  WriteBatch setup;
  setup.Put(Space::kRaftLog, "1", "a");
  setup.Put(Space::kRaftLog, "2", "a");
  ASSERT_TRUE(kv.Write(setup, true).ok());
  WriteBatch unsynced;
  unsynced.DeleteRange(Space::kRaftLog, "1", "3");
  unsynced.Put(Space::kRaftLog, "4", "a");
  ASSERT_TRUE(kv.Write(unsynced, false).ok());
  EXPECT_FALSE(Has(kv, "1"));
  kv.SimulateCrash();
  EXPECT_TRUE(Has(kv, "1"));
  EXPECT_TRUE(Has(kv, "2"));
  EXPECT_FALSE(Has(kv, "4"));
}

TEST(MemKvTest, CountsWritesAndSyncs) {
  MemKv kv;
  ASSERT_TRUE(PutOne(&kv, "1", "a", false).ok());
  ASSERT_TRUE(PutOne(&kv, "2", "a", true).ok());
  EXPECT_EQ(kv.write_count(), 2u);
  EXPECT_EQ(kv.sync_count(), 1u);
}

TEST(MemKvTest, WriteErrorAppliesNothing) {
  MemKv kv;
  kv.set_write_error(absl::UnavailableError("disk gone"));
  EXPECT_EQ(PutOne(&kv, "1", "a", true).code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(Has(kv, "1"));
  EXPECT_EQ(kv.write_count(), 0u);
  kv.set_write_error(absl::OkStatus());
  EXPECT_TRUE(PutOne(&kv, "1", "a", true).ok());
  EXPECT_TRUE(Has(kv, "1"));
}

TEST(MemKvTest, CorruptValueFlipsOneBitDurably) {
  MemKv kv;
  ASSERT_TRUE(PutOne(&kv, "1", "a", true).ok());
  ASSERT_TRUE(kv.CorruptValue(Space::kRaftLog, "1", 0, 0).ok());
  EXPECT_EQ(kv.Get(Space::kRaftLog, "1").value(), "`");  // 'a' ^ 1
  kv.SimulateCrash();
  EXPECT_EQ(kv.Get(Space::kRaftLog, "1").value(), "`");
  EXPECT_EQ(kv.CorruptValue(Space::kRaftLog, "1", 1, 0).code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(kv.CorruptValue(Space::kRaftLog, "2", 0, 0).code(),
            absl::StatusCode::kNotFound);
}

TEST(MemKvTest, ReadersOnOtherThreadsSeeWholeBatches) {
  // The event loop writes; monitoring or gRPC threads read. Every batch sets
  // "a" and "b" to the same value, so a reader must never see them differ
  // inside one scan, nor see values go back.
  MemKv kv;
  std::atomic<bool> done{false};
  std::vector<std::thread> readers;
  std::atomic<int> torn{0};
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      int last_seen = -1;
      while (!done.load()) {
        std::vector<int> values;
        const absl::Status status =
            kv.Scan(Space::kState, "a", "c", false,
                    [&](absl::string_view, absl::string_view value) {
                      values.push_back(std::stoi(std::string(value)));
                      return true;
                    });
        if (!status.ok() || (values.size() == 2 && values[0] != values[1]) ||
            (!values.empty() && values[0] < last_seen)) {
          ++torn;
        }
        if (!values.empty()) last_seen = values[0];
      }
    });
  }
  for (int i = 0; i < 2000; ++i) {
    WriteBatch batch;
    batch.Put(Space::kState, "a", std::to_string(i));
    batch.Put(Space::kState, "b", std::to_string(i));
    ASSERT_TRUE(kv.Write(batch, i % 10 == 0).ok());
  }
  done = true;
  for (std::thread& reader : readers) reader.join();
  EXPECT_EQ(torn.load(), 0);
}

}  // namespace
}  // namespace spate::storage
