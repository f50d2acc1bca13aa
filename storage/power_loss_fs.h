// PowerLossFileSystem: a test-only RocksDB FileSystem wrapper (RocksDB's
// public FileSystemWrapper API) that makes a process crash lose what a power
// failure would. Every byte RocksDB appends to a file it writes stays in this
// process's memory until RocksDB syncs that file (Sync/Fsync); only then does
// it reach the real file, followed by the real fsync. Killing the process
// (SIGKILL) therefore drops everything that was written but never fsynced,
// exactly the bytes a power loss at that instant could drop, while bytes
// that were synced are on disk as usual.
//
// It is enabled in spate-server by --test_lose_unsynced_writes (see
// storage/rocks_kv.h LoseUnsyncedWritesOnCrashForTesting) and exercised by
// the fault-injection harness (tests/faults/): a node SIGKILLed while
// running with it has suffered a simulated power loss.
//
// Limits of the model, both on the lenient side:
// - A file closed without a sync has its buffered bytes written through (no
//   fsync) at Close, because RocksDB may read a file it closed; such bytes
//   survive a later SIGKILL. RocksDB syncs WAL, MANIFEST and SST files
//   before relying on them, so this concerns scratch files.
// - Directory entries are not modelled: a file created (or renamed) and
//   not yet covered by a directory fsync still exists after the crash.
// The info LOG files pass through unbuffered (they are not data).
//
// Threading: as thread-safe as the wrapped FileSystem; each wrapped file
// guards its buffer with a mutex (RocksDB may sync from another thread).
#ifndef SPATE_STORAGE_POWER_LOSS_FS_H_
#define SPATE_STORAGE_POWER_LOSS_FS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "rocksdb/file_system.h"

namespace spate::storage {

class PowerLossFileSystem : public rocksdb::FileSystemWrapper {
 public:
  explicit PowerLossFileSystem(std::shared_ptr<rocksdb::FileSystem> target);

  static const char* kClassName() { return "SpatePowerLossFileSystem"; }
  const char* Name() const override { return kClassName(); }

  rocksdb::IOStatus NewWritableFile(
      const std::string& fname, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(
      const std::string& fname, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(
      const std::string& fname, const std::string& old_fname,
      const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override;

  // Bytes currently held in memory (written, not yet synced) over all open
  // files; what a crash right now would lose.
  uint64_t unsynced_bytes() const { return unsynced_bytes_.load(); }

 private:
  // Wraps `*result` (when `status` is OK and the file is data) in place.
  rocksdb::IOStatus Wrap(const std::string& fname, rocksdb::IOStatus status,
                         std::unique_ptr<rocksdb::FSWritableFile>* result);

  std::atomic<uint64_t> unsynced_bytes_{0};
};

}  // namespace spate::storage

#endif  // SPATE_STORAGE_POWER_LOSS_FS_H_
