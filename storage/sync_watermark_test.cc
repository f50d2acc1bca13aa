// SyncWatermark: survives reopening, tolerates a torn slot, starts at 0.
#include "storage/sync_watermark.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "storage/test_util.h"

namespace spate::storage {
namespace {

std::string FileOf(const std::string& dir) {
  return (std::filesystem::path(dir) / SyncWatermark::kFileName).string();
}

TEST(SyncWatermarkTest, NewFileRecordsZero) {
  const std::string dir = MakeTempDir();
  absl::StatusOr<std::unique_ptr<SyncWatermark>> mark =
      SyncWatermark::Open(dir);
  ASSERT_TRUE(mark.ok()) << mark.status();
  EXPECT_EQ((*mark)->recorded(), 0u);
  EXPECT_TRUE(std::filesystem::exists(FileOf(dir)));
}

TEST(SyncWatermarkTest, ReopenReadsTheLargestValueRecorded) {
  const std::string dir = MakeTempDir();
  {
    std::unique_ptr<SyncWatermark> mark = *SyncWatermark::Open(dir);
    ASSERT_TRUE(mark->Record(7).ok());
    ASSERT_TRUE(mark->Record(1000).ok());
    ASSERT_TRUE(mark->Record(999).ok());  // never moves backwards
    EXPECT_EQ(mark->recorded(), 1000u);
    ASSERT_TRUE(mark->Record(123456789012345).ok());
  }
  std::unique_ptr<SyncWatermark> mark = *SyncWatermark::Open(dir);
  EXPECT_EQ(mark->recorded(), 123456789012345u);
  // Writing continues in the older slot.
  ASSERT_TRUE(mark->Record(123456789012346).ok());
  EXPECT_EQ((*SyncWatermark::Open(dir))->recorded(), 123456789012346u);
}

TEST(SyncWatermarkTest, ATornSlotFallsBackToTheOther) {
  const std::string dir = MakeTempDir();
  {
    std::unique_ptr<SyncWatermark> mark = *SyncWatermark::Open(dir);
    ASSERT_TRUE(mark->Record(10).ok());  // slot 0
    ASSERT_TRUE(mark->Record(20).ok());  // slot 1
  }
  {
    // Damage the newest record's value: its checksum no longer matches.
    std::fstream file(FileOf(dir),
                      std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(16 + 3);
    file.put('\x5a');
  }
  EXPECT_EQ((*SyncWatermark::Open(dir))->recorded(), 10u);
}

TEST(SyncWatermarkTest, GarbageFileRecordsZero) {
  const std::string dir = MakeTempDir();
  {
    std::ofstream file(FileOf(dir), std::ios::binary);
    file << "not a watermark at all, just some bytes";
  }
  absl::StatusOr<std::unique_ptr<SyncWatermark>> mark =
      SyncWatermark::Open(dir);
  ASSERT_TRUE(mark.ok()) << mark.status();
  EXPECT_EQ((*mark)->recorded(), 0u);
}

}  // namespace
}  // namespace spate::storage
