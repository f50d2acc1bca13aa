// RocksKv specifics: reopening, locking, and damaged files. The Kv contract
// itself (scans, batches, spaces) is tested on both Kvs in kv_test.cc.
#include "storage/rocks_kv.h"

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "storage/test_util.h"

namespace spate::storage {
namespace {

namespace fs = std::filesystem;

std::unique_ptr<RocksKv> OpenOrDie(const std::string& dir) {
  absl::StatusOr<std::unique_ptr<RocksKv>> kv =
      RocksKv::Open(dir, RocksKvOptions());
  EXPECT_TRUE(kv.ok()) << kv.status();
  return kv.ok() ? std::move(kv).value() : nullptr;
}

std::string Key(int i) {
  char key[16];
  snprintf(key, sizeof(key), "key%06d", i);
  return key;
}

// Distinct, checkable content per key.
std::string Value(int i, size_t size) {
  std::string value = absl::StrCat("value-", i, "-");
  while (value.size() < size)
    value += static_cast<char>('a' + (value.size() + i) % 26);
  return value;
}

std::vector<fs::path> FilesWithExtension(const std::string& dir,
                                         const std::string& extension) {
  std::vector<fs::path> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == extension && entry.file_size() > 0) {
      files.push_back(entry.path());
    }
  }
  return files;
}

void FlipByte(const fs::path& file, uint64_t offset) {
  std::fstream stream(file, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(stream.good()) << file;
  stream.seekg(static_cast<std::streamoff>(offset));
  char byte = 0;
  stream.read(&byte, 1);
  byte = static_cast<char>(byte ^ 0x5a);
  stream.seekp(static_cast<std::streamoff>(offset));
  stream.write(&byte, 1);
  ASSERT_TRUE(stream.good()) << file;
}

TEST(RocksKvTest, ReopenKeepsEveryWriteAndEverySpace) {
  const std::string dir = MakeTempDir() + "/nested/store";  // created
  {
    std::unique_ptr<RocksKv> kv = OpenOrDie(dir);
    ASSERT_NE(kv, nullptr);
    EXPECT_EQ(kv->dir(), dir);
    WriteBatch batch;
    batch.Put(Space::kRaftState, "s", "raft state");
    batch.Put(Space::kRaftLog, "l", "log");
    batch.Put(Space::kMessages, "m", "message");
    batch.Put(Space::kState, "t", "state");
    ASSERT_TRUE(kv->Write(batch, /*sync=*/true).ok());
    WriteBatch unsynced;
    unsynced.Put(Space::kState, "u", "unsynced survives a clean close");
    ASSERT_TRUE(kv->Write(unsynced, /*sync=*/false).ok());
  }
  std::unique_ptr<RocksKv> kv = OpenOrDie(dir);
  ASSERT_NE(kv, nullptr);
  EXPECT_EQ(kv->Get(Space::kRaftState, "s").value(), "raft state");
  EXPECT_EQ(kv->Get(Space::kRaftLog, "l").value(), "log");
  EXPECT_EQ(kv->Get(Space::kMessages, "m").value(), "message");
  EXPECT_EQ(kv->Get(Space::kState, "t").value(), "state");
  EXPECT_EQ(kv->Get(Space::kState, "u").value(),
            "unsynced survives a clean close");
  // Flushed data reads back the same, in both scan directions.
  ASSERT_TRUE(kv->Flush().ok());
  std::vector<std::string> keys;
  ASSERT_TRUE(kv->Scan(Space::kState, "a", "z", true,
                       [&](absl::string_view key, absl::string_view) {
                         keys.emplace_back(key);
                         return true;
                       })
                  .ok());
  EXPECT_EQ(keys, (std::vector<std::string>{"u", "t"}));
}

TEST(RocksKvTest, SecondOpenInTheSameProcessFailsClearly) {
  const std::string dir = MakeTempDir();
  std::unique_ptr<RocksKv> first = OpenOrDie(dir);
  ASSERT_NE(first, nullptr);
  absl::StatusOr<std::unique_ptr<RocksKv>> second =
      RocksKv::Open(dir, RocksKvOptions());
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::StrContains(second.status().message(), dir))
      << second.status();
  EXPECT_TRUE(absl::StrContains(second.status().message(), "lock"))
      << second.status();
}

TEST(RocksKvTest, OpenLockedByAnotherProcessFailsClearly) {
  const std::string dir = MakeTempDir();
  int ready[2];
  int release[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(release), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child holds the store open until the parent closes `release`.
    close(ready[0]);
    close(release[1]);
    absl::StatusOr<std::unique_ptr<RocksKv>> kv =
        RocksKv::Open(dir, RocksKvOptions());
    const char result = kv.ok() ? 'y' : 'n';
    if (write(ready[1], &result, 1) != 1) _exit(2);
    char ignored;
    while (read(release[0], &ignored, 1) > 0) {
    }
    _exit(kv.ok() ? 0 : 1);
  }
  close(ready[1]);
  close(release[0]);
  char result = 0;
  ASSERT_EQ(read(ready[0], &result, 1), 1);
  ASSERT_EQ(result, 'y') << "the child could not open the store";

  absl::StatusOr<std::unique_ptr<RocksKv>> kv =
      RocksKv::Open(dir, RocksKvOptions());
  EXPECT_FALSE(kv.ok());
  EXPECT_TRUE(absl::StrContains(kv.status().message(), dir)) << kv.status();
  EXPECT_TRUE(absl::StrContains(kv.status().message(),
                                "another process using this directory"))
      << kv.status();

  close(release[1]);
  int wait_status = 0;
  ASSERT_EQ(waitpid(child, &wait_status, 0), child);
  EXPECT_TRUE(WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0);
  close(ready[0]);
  // Once the other process is gone the store opens.
  EXPECT_NE(OpenOrDie(dir), nullptr);
}

TEST(RocksKvTest, OpenOfAFileIsAClearError) {
  const std::string file = MakeTempDir() + "/not_a_dir";
  std::ofstream(file) << "x";
  absl::StatusOr<std::unique_ptr<RocksKv>> kv =
      RocksKv::Open(file, RocksKvOptions());
  ASSERT_FALSE(kv.ok());
  EXPECT_TRUE(absl::StrContains(kv.status().message(), file)) << kv.status();
}

TEST(RocksKvTest, InvalidOptionsAreRejected) {
  RocksKvOptions options;
  options.background_jobs = 0;
  absl::StatusOr<std::unique_ptr<RocksKv>> kv =
      RocksKv::Open(MakeTempDir(), options);
  EXPECT_EQ(kv.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(kv.status().message(), "background_jobs"));
}

constexpr int kKeys = 200;
constexpr size_t kValueBytes = 2000;

void WriteKeys(RocksKv* kv) {
  for (int i = 0; i < kKeys; ++i) {
    WriteBatch batch;
    batch.Put(Space::kRaftLog, Key(i), Value(i, kValueBytes));
    ASSERT_TRUE(kv->Write(batch, /*sync=*/true).ok());
  }
}

// Every key reads back intact or fails with DataLoss: never wrong bytes.
// Returns how many reads reported DataLoss.
int CheckNoGarbage(const RocksKv& kv) {
  int data_loss = 0;
  for (int i = 0; i < kKeys; ++i) {
    absl::StatusOr<std::string> value = kv.Get(Space::kRaftLog, Key(i));
    if (value.ok()) {
      EXPECT_EQ(*value, Value(i, kValueBytes)) << Key(i);
    } else {
      EXPECT_EQ(value.status().code(), absl::StatusCode::kDataLoss)
          << value.status();
      ++data_loss;
    }
  }
  int scanned = 0;
  const absl::Status scan =
      kv.Scan(Space::kRaftLog, Key(0), Key(kKeys), false,
              [&](absl::string_view key, absl::string_view value) {
                EXPECT_EQ(key, Key(scanned));
                EXPECT_EQ(value, Value(scanned, kValueBytes));
                ++scanned;
                return true;
              });
  if (!scan.ok()) {
    EXPECT_EQ(scan.code(), absl::StatusCode::kDataLoss) << scan;
    ++data_loss;
  } else {
    EXPECT_EQ(scanned, kKeys);
  }
  return data_loss;
}

TEST(RocksKvTest, CorruptSstIsReportedNeverReturned) {
  const std::string dir = MakeTempDir();
  {
    std::unique_ptr<RocksKv> kv = OpenOrDie(dir);
    ASSERT_NE(kv, nullptr);
    WriteKeys(kv.get());
    ASSERT_TRUE(kv->Flush().ok());
  }
  const std::vector<fs::path> ssts = FilesWithExtension(dir, ".sst");
  ASSERT_EQ(ssts.size(), 1u);
  // Data blocks come first in a block-based table: damage one of them.
  FlipByte(ssts[0], fs::file_size(ssts[0]) / 4);

  absl::StatusOr<std::unique_ptr<RocksKv>> kv =
      RocksKv::Open(dir, RocksKvOptions());
  if (!kv.ok()) {
    RecordProperty("detected_at", "open");
    EXPECT_TRUE(absl::StrContains(kv.status().message(), dir)) << kv.status();
    return;
  }
  RecordProperty("detected_at", "read");
  EXPECT_GT(CheckNoGarbage(**kv), 0) << "the damage went unnoticed";
}

TEST(RocksKvTest, CorruptWalRefusesToOpen) {
  const std::string dir = MakeTempDir();
  {
    std::unique_ptr<RocksKv> kv = OpenOrDie(dir);
    ASSERT_NE(kv, nullptr);
    WriteKeys(kv.get());
  }
  // Closing does not flush (the WAL already holds the data), so every write
  // is only in the WAL.
  const std::vector<fs::path> wals = FilesWithExtension(dir, ".log");
  ASSERT_EQ(wals.size(), 1u);
  FlipByte(wals[0], fs::file_size(wals[0]) / 2);

  absl::StatusOr<std::unique_ptr<RocksKv>> kv =
      RocksKv::Open(dir, RocksKvOptions());
  ASSERT_FALSE(kv.ok()) << "a damaged WAL must not silently drop writes";
  EXPECT_EQ(kv.status().code(), absl::StatusCode::kDataLoss) << kv.status();
  EXPECT_TRUE(absl::StrContains(kv.status().message(), dir)) << kv.status();
}

TEST(RocksKvTest, TornWalTailLosesOnlyTheLastUnsyncedWrite) {
  const std::string dir = MakeTempDir();
  {
    std::unique_ptr<RocksKv> kv = OpenOrDie(dir);
    ASSERT_NE(kv, nullptr);
    for (int i = 0; i < kKeys; ++i) {
      WriteBatch batch;
      batch.Put(Space::kRaftLog, Key(i), Value(i, kValueBytes));
      ASSERT_TRUE(kv->Write(batch, /*sync=*/i < kKeys - 1).ok());
    }
  }
  // A crash in the middle of appending the last record.
  const std::vector<fs::path> wals = FilesWithExtension(dir, ".log");
  ASSERT_EQ(wals.size(), 1u);
  fs::resize_file(wals[0], fs::file_size(wals[0]) - 100);

  std::unique_ptr<RocksKv> kv = OpenOrDie(dir);
  ASSERT_NE(kv, nullptr);
  for (int i = 0; i < kKeys - 1; ++i) {
    EXPECT_EQ(kv->Get(Space::kRaftLog, Key(i)).value(), Value(i, kValueBytes));
  }
  EXPECT_EQ(kv->Get(Space::kRaftLog, Key(kKeys - 1)).status().code(),
            absl::StatusCode::kNotFound);
}

// The write-ahead log cut at a record boundary, or torn, looks like a log
// that simply ends; only the sync watermark tells that synced writes are
// gone (storage/sync_watermark.h).
TEST(RocksKvTest, TruncatedSyncedWalRefusesToOpen) {
  const std::string dir = MakeTempDir();
  {
    std::unique_ptr<RocksKv> kv = OpenOrDie(dir);
    ASSERT_NE(kv, nullptr);
    WriteKeys(kv.get());
  }
  const std::vector<fs::path> wals = FilesWithExtension(dir, ".log");
  ASSERT_EQ(wals.size(), 1u);
  fs::resize_file(wals[0], fs::file_size(wals[0]) / 2);

  absl::StatusOr<std::unique_ptr<RocksKv>> kv =
      RocksKv::Open(dir, RocksKvOptions());
  ASSERT_FALSE(kv.ok()) << "synced writes vanished unnoticed";
  EXPECT_EQ(kv.status().code(), absl::StatusCode::kDataLoss) << kv.status();
  EXPECT_TRUE(absl::StrContains(kv.status().message(),
                                "lost writes it had "
                                "synced"))
      << kv.status();
}

TEST(RocksKvTest, TruncatedSyncedWalAfterACrashRefusesToOpen) {
  const std::string dir = MakeTempDir();
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Synced writes, then a crash: no clean close records the watermark.
    absl::StatusOr<std::unique_ptr<RocksKv>> kv =
        RocksKv::Open(dir, RocksKvOptions());
    if (!kv.ok()) _exit(2);
    for (int i = 0; i < kKeys; ++i) {
      WriteBatch batch;
      batch.Put(Space::kRaftLog, Key(i), Value(i, kValueBytes));
      if (!(*kv)->Write(batch, /*sync=*/true).ok()) _exit(3);
      if (i == kKeys / 2) usleep(50 * 1000);  // the watermark moves on
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  const std::vector<fs::path> wals = FilesWithExtension(dir, ".log");
  ASSERT_EQ(wals.size(), 1u);
  fs::resize_file(wals[0], fs::file_size(wals[0]) / 4);

  absl::StatusOr<std::unique_ptr<RocksKv>> kv =
      RocksKv::Open(dir, RocksKvOptions());
  ASSERT_FALSE(kv.ok()) << "synced writes vanished unnoticed";
  EXPECT_EQ(kv.status().code(), absl::StatusCode::kDataLoss) << kv.status();
}

}  // namespace
}  // namespace spate::storage
