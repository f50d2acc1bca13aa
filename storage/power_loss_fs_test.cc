// PowerLossFileSystem through RocksKv: a child process writes synced and
// unsynced batches and is SIGKILLed; the parent reopens the store and finds
// exactly the synced writes (and, without the wrapper, the unsynced ones
// too, which is why the wrapper is needed to model a power loss).
#include "storage/power_loss_fs.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>

#include "gtest/gtest.h"
#include "rocksdb/file_system.h"
#include "storage/kv.h"
#include "storage/rocks_kv.h"
#include "storage/test_util.h"

namespace spate::storage {
namespace {

// Runs `body` in a forked child and returns its exit code (or 128 + the
// signal that ended it). Every RocksDB store in this test lives in a child:
// RocksDB's background threads do not survive a fork, so the parent never
// starts them.
int InChild(const std::function<int()>& body) {
  const pid_t pid = fork();
  if (pid == 0) _exit(body());
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

// Opens `dir`, writes "a" with sync = true, then "b" with sync = false,
// then dies by SIGKILL (no close, no flush).
int WriteAndCrash(const std::string& dir, bool lose_unsynced) {
  if (lose_unsynced) LoseUnsyncedWritesOnCrashForTesting();
  auto kv = RocksKv::Open(dir, RocksKvOptions());
  if (!kv.ok()) return 3;
  WriteBatch synced;
  synced.Put(Space::kMessages, "a", "synced");
  if (!(*kv)->Write(synced, /*sync=*/true).ok()) return 4;
  WriteBatch unsynced;
  unsynced.Put(Space::kMessages, "b", "unsynced");
  if (!(*kv)->Write(unsynced, /*sync=*/false).ok()) return 5;
  kill(getpid(), SIGKILL);
  return 6;
}

// 0 if `key` holds `value`, 1 if it is absent, 2 + on other outcomes.
int Lookup(const std::string& dir, const std::string& key,
           const std::string& value) {
  auto kv = RocksKv::Open(dir, RocksKvOptions());
  if (!kv.ok()) return 3;
  absl::StatusOr<std::string> got = (*kv)->Get(Space::kMessages, key);
  if (absl::IsNotFound(got.status())) return 1;
  if (!got.ok()) return 4;
  return *got == value ? 0 : 2;
}

TEST(PowerLossFileSystemTest, CrashLosesExactlyTheUnsyncedWrites) {
  const std::string dir = MakeTempDir();
  ASSERT_EQ(InChild([&] { return WriteAndCrash(dir, true); }), 128 + SIGKILL);
  EXPECT_EQ(InChild([&] { return Lookup(dir, "a", "synced"); }), 0);
  EXPECT_EQ(InChild([&] { return Lookup(dir, "b", "unsynced"); }), 1)
      << "an unsynced write survived the simulated power loss";
}

TEST(PowerLossFileSystemTest, WithoutItAKillKeepsUnsyncedWrites) {
  // Why the wrapper exists: a plain SIGKILL leaves written bytes in the
  // page cache, so it never loses what a power failure would.
  const std::string dir = MakeTempDir();
  ASSERT_EQ(InChild([&] { return WriteAndCrash(dir, false); }), 128 + SIGKILL);
  EXPECT_EQ(InChild([&] { return Lookup(dir, "b", "unsynced"); }), 0);
}

TEST(PowerLossFileSystemTest, ClosedStoreReopensWithEverything) {
  // A clean close after unsynced writes keeps them (closing writes the
  // buffers through), so graceful restarts behave as without the wrapper.
  const std::string dir = MakeTempDir();
  ASSERT_EQ(InChild([&] {
              LoseUnsyncedWritesOnCrashForTesting();
              auto kv = RocksKv::Open(dir, RocksKvOptions());
              if (!kv.ok()) return 3;
              for (int i = 0; i < 100; ++i) {
                WriteBatch batch;
                batch.Put(Space::kMessages, "k" + std::to_string(i), "v");
                if (!(*kv)->Write(batch, /*sync=*/i % 10 == 0).ok()) return 4;
              }
              return 0;
            }),
            0);
  for (int i : {0, 55, 99}) {
    EXPECT_EQ(
        InChild([&] { return Lookup(dir, "k" + std::to_string(i), "v"); }), 0)
        << i;
  }
}

TEST(PowerLossFileSystemTest, FileSizeCountsBufferedBytes) {
  const std::string dir = MakeTempDir();
  auto fs =
      std::make_shared<PowerLossFileSystem>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::FSWritableFile> file;
  ASSERT_TRUE(
      fs->NewWritableFile(dir + "/f", rocksdb::FileOptions(), &file, nullptr)
          .ok());
  ASSERT_TRUE(file->Append("hello", rocksdb::IOOptions(), nullptr).ok());
  EXPECT_EQ(file->GetFileSize(rocksdb::IOOptions(), nullptr), 5u);
  EXPECT_EQ(fs->unsynced_bytes(), 5u);
  uint64_t on_disk = 99;
  ASSERT_TRUE(
      fs->GetFileSize(dir + "/f", rocksdb::IOOptions(), &on_disk, nullptr)
          .ok());
  EXPECT_EQ(on_disk, 0u);  // not written before the sync
  ASSERT_TRUE(file->Sync(rocksdb::IOOptions(), nullptr).ok());
  EXPECT_EQ(fs->unsynced_bytes(), 0u);
  ASSERT_TRUE(
      fs->GetFileSize(dir + "/f", rocksdb::IOOptions(), &on_disk, nullptr)
          .ok());
  EXPECT_EQ(on_disk, 5u);
  ASSERT_TRUE(file->Close(rocksdb::IOOptions(), nullptr).ok());
}

}  // namespace
}  // namespace spate::storage
