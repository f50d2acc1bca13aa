// RocksKv: the production Kv, one RocksDB instance per node with one column
// family per Space (DESIGN.md §6). Never a column family per channel: each
// column family has its own memtables and flushes, so thousands of them
// would multiply memory and I/O; groups and channels are key prefixes
// instead (storage/keys.h).
//
// This is the only file pair that includes <rocksdb/...> (besides the
// test-only storage/power_loss_fs.h it can plug in); rocksdb::Status is
// converted to absl::Status in exactly one function (rocks_kv.cc ToStatus):
// Corruption -> DataLoss, IOError -> Unavailable (NoSpace ->
// ResourceExhausted), NotFound -> NotFound, and so on; every message names
// the directory and the operation.
//
// Why these options (RocksKvOptions has the numbers):
// - Durability: the WAL is always on; Write(sync = true) fdatasyncs it, which
//   covers every earlier write. Recovery mode kTolerateCorruptedTailRecords:
//   a torn last record (crash mid-write of an unsynced batch) is dropped, but
//   corruption anywhere else in the WAL refuses to open instead of silently
//   rolling back synced, acknowledged writes (RocksDB's default,
//   kPointInTimeRecovery, would stop replay at the damage and open). A log
//   that lost its synced tail cleanly (cut at a record boundary, or torn
//   where recovery takes it for an unsynced write) is caught by the sync
//   watermark (storage/sync_watermark.h): Open fails with DataLoss.
//   paranoid_checks is on: a failed write or a bad file stops the store.
// - Write-heavy logs: the raft log and messages spaces get large memtables.
//   Raft log entries are usually deleted (compacted after a snapshot) soon
//   after being written, and a flush drops keys already covered by a range
//   tombstone, so a big memtable keeps most of the log from ever reaching
//   an SST. The small, overwrite-heavy state spaces get small memtables. A
//   total memtable budget and a WAL size limit stop rarely-written column
//   families from pinning old WAL files.
// - Compression: none for the raft log (short-lived, written on the commit
//   path, payloads are often already compressed) and the small state
//   records; LZ4 for the long-lived messages when RocksDB has it.
// - Reads: one modest shared LRU block cache with index/filter blocks in it,
//   and bloom filters for point lookups (Get of one record or entry).
//
// Threading: Get/Scan/GetStats from any thread; Write from one thread (the
// event loop). RocksDB itself is thread-safe; RocksKv adds no state.
#ifndef SPATE_STORAGE_ROCKS_KV_H_
#define SPATE_STORAGE_ROCKS_KV_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/kv.h"

namespace spate::storage {

struct RocksKvOptions {
  // Memtable size of each of the write-heavy column families (raft_log,
  // messages); up to `write_buffers_per_space` of them may exist at once
  // while older ones flush.
  uint64_t log_write_buffer_bytes = 64 << 20;
  // Memtable size of the small state column families (raft_state, state).
  uint64_t state_write_buffer_bytes = 8 << 20;
  int write_buffers_per_space = 4;
  // All memtables together; beyond it RocksDB flushes the largest.
  uint64_t write_buffers_total_bytes_max = 256 << 20;
  // WAL files kept before forcing flushes of the column families that pin
  // the oldest one.
  uint64_t wal_total_bytes_max = 512 << 20;
  // Shared block cache for all column families.
  uint64_t block_cache_bytes = 32 << 20;
  // Background flush + compaction threads (the node has few cores).
  int background_jobs = 2;
  // LZ4 for the messages space if this RocksDB build supports it.
  bool compress_messages = true;

  // InvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

class RocksKv : public Kv {
 public:
  // Opens (creating if missing) the store in `dir`: the directory, the
  // database and the four column families. A corrupt store, one locked by
  // another process (or another RocksKv in this one), or one with unknown
  // column families is an error naming `dir` and the cause.
  static absl::StatusOr<std::unique_ptr<RocksKv>> Open(
      const std::string& dir, const RocksKvOptions& options);

  RocksKv(const RocksKv&) = delete;
  RocksKv& operator=(const RocksKv&) = delete;
  // Closes the database (nothing is lost: the WAL holds every write).
  ~RocksKv() override;

  absl::StatusOr<std::string> Get(Space space,
                                  absl::string_view key) const override;
  absl::Status Scan(
      Space space, absl::string_view begin, absl::string_view end, bool reverse,
      absl::FunctionRef<bool(absl::string_view key, absl::string_view value)>
          visit) const override;
  absl::Status Write(const WriteBatch& batch, bool sync) override;
  absl::StatusOr<KvStats> GetStats() const override;
  absl::StatusOr<std::unique_ptr<Kv>> NewSnapshot() const override;
  // A RocksDB checkpoint: memtables are flushed, SST files hard-linked
  // (copied across file systems), the rest copied. `dir` must not exist;
  // its parent must.
  absl::Status Checkpoint(const std::string& dir) const override;

  // Flushes every memtable to SST files and waits. Not needed for
  // durability (the WAL has it); for tools, tests and before backups.
  absl::Status Flush();

  const std::string& dir() const;

 private:
  class Impl;
  explicit RocksKv(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

// Test only (spate-server --test_lose_unsynced_writes): every RocksKv opened
// afterwards in this process writes through PowerLossFileSystem
// (storage/power_loss_fs.h), which holds written bytes in memory until they
// are fsynced, so that killing the process loses exactly what a power
// failure would. Call before the first Open; it cannot be undone.
void LoseUnsyncedWritesOnCrashForTesting();

}  // namespace spate::storage

#endif  // SPATE_STORAGE_ROCKS_KV_H_
