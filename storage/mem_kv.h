// MemKv: Kv in memory for unit tests and the deterministic simulator.
//
// It models what RocksDB with its write-ahead log promises across a machine
// crash (power loss): a write with sync = true makes it and every earlier
// write durable; writes since the last synced one are lost, possibly only
// partly, but always as a suffix (the WAL is replayed in order and never
// with holes). SimulateCrash() drops that suffix: by default all of it, or
// all but the first `unsynced_batches_kept` batches.
//
// Fault knobs for tests: CorruptValue() flips a bit of a stored value (so
// record checksums are exercised end to end); set_write_error() makes
// Write() fail without applying anything (disk full, I/O error).
//
// Deterministic: ordered maps, no clocks, no randomness, so a simulation run
// replays from its seed. Counters (writes, syncs) let tests assert group
// commit ("one fsync per cycle").
//
// Threading: like every Kv, reads from any thread and writes from one; an
// internal mutex makes that safe. Scan copies small chunks of the range under
// the mutex and calls `visit` without it, so a visitor may call back into the
// MemKv; a concurrent writer's effects may then show up mid-scan (RocksDB
// scans a consistent snapshot instead; the single-threaded simulator never
// sees the difference).
#ifndef SPATE_STORAGE_MEM_KV_H_
#define SPATE_STORAGE_MEM_KV_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "storage/kv.h"

namespace spate::storage {

class MemKv : public Kv {
 public:
  MemKv() = default;
  MemKv(const MemKv&) = delete;
  MemKv& operator=(const MemKv&) = delete;

  absl::StatusOr<std::string> Get(Space space,
                                  absl::string_view key) const override;
  absl::Status Scan(
      Space space, absl::string_view begin, absl::string_view end, bool reverse,
      absl::FunctionRef<bool(absl::string_view key, absl::string_view value)>
          visit) const override;
  absl::Status Write(const WriteBatch& batch, bool sync) override;
  absl::StatusOr<KvStats> GetStats() const override;
  // A copy of what reads see now, read-only.
  absl::StatusOr<std::unique_ptr<Kv>> NewSnapshot() const override;

  // The machine crashed and rebooted: the first `unsynced_batches_kept`
  // unsynced batches survive (the OS had flushed that much of the WAL), the
  // rest is lost. Keeping more than there are keeps them all.
  void SimulateCrash(size_t unsynced_batches_kept = 0);

  // Flips bit `bit` (0..7) of byte `byte_offset` of the value under `key`,
  // in memory and in the durable image, as a disk could. NotFound if the
  // key is absent, OutOfRange if the value is shorter.
  absl::Status CorruptValue(Space space, absl::string_view key,
                            size_t byte_offset, int bit);

  // While `status` is not OK, every Write returns it and applies nothing.
  void set_write_error(absl::Status status);

  // Writes that returned OK, and how many of them had sync = true.
  uint64_t write_count() const;
  uint64_t sync_count() const;
  // Batches written since the last synced write (what a crash would drop).
  size_t unsynced_batch_count() const;

 private:
  using Map = std::map<std::string, std::string, std::less<>>;
  using Image = std::array<Map, kSpaceCount>;

  static void Apply(const WriteBatch& batch, Image* image);

  // std::mutex rather than absl::Mutex: Debian's abseil is not built with
  // ThreadSanitizer annotations, so --config=tsan could not see its locking.
  mutable std::mutex mu_;
  // What reads see: every applied write.
  Image visible_ ABSL_GUARDED_BY(mu_);
  // What survives a crash: every write up to the last synced one.
  Image durable_ ABSL_GUARDED_BY(mu_);
  // Writes after the last synced one, oldest first.
  std::vector<WriteBatch> unsynced_ ABSL_GUARDED_BY(mu_);
  // A snapshot view refuses writes.
  bool read_only_ = false;
  absl::Status write_error_ ABSL_GUARDED_BY(mu_);
  uint64_t write_count_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t sync_count_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace spate::storage

#endif  // SPATE_STORAGE_MEM_KV_H_
