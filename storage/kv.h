// Kv: the node's only disk seam (STYLE.md "Deterministic simulation").
// Everything Spate stores goes through this interface: RocksKv implements it
// over one RocksDB per node, MemKv in memory for tests and the simulator.
// Above it, storage/keys.h encodes keys, storage/record_codec.h frames values
// with checksums, and LogStore / ChannelStore give them meaning.
//
// The store is split into four key spaces (one RocksDB column family each;
// never a column family per channel, see DESIGN.md §6). A WriteBatch is our
// own type so that callers (the server, LogStore, ChannelStore) never see
// RocksDB: many groups stage their writes into one batch and the event loop
// writes it with one fsync (group commit).
//
// Threading: reads (Get, Scan, GetStats) may come from any thread; writes
// (Write) come from one thread, the node's event loop. A WriteBatch is a plain
// value owned by one thread at a time.
#ifndef SPATE_STORAGE_KV_H_
#define SPATE_STORAGE_KV_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace spate::storage {

// One RocksDB column family each. The numeric values are only used in memory
// (WriteBatch encoding, arrays); on disk a space is named by SpaceName().
enum class Space : uint8_t {
  kRaftState = 0,  // per group: hard state, conf state, snapshot
  kRaftLog = 1,    // per group: log entries by index
  kMessages = 2,   // per channel: stored messages by sequence
  kState = 3,      // channel, subscription, client, metadata records
};
inline constexpr size_t kSpaceCount = 4;

// "raft_state", "raft_log", "messages", "state": the column family names.
absl::string_view SpaceName(Space space);

// An ordered list of Put / Delete / DeleteRange operations applied
// atomically by Kv::Write. Operations are kept in one contiguous buffer (like
// rocksdb::WriteBatch) so staging thousands of small records costs no
// allocation per record.
class WriteBatch {
 public:
  enum class OpType : uint8_t { kPut = 1, kDelete = 2, kDeleteRange = 3 };
  // One operation as seen by ForEach. The views point into the batch and are
  // valid until the batch is modified. For kDeleteRange, `key` is the
  // inclusive begin and `value` the exclusive end; for kDelete `value` is
  // empty.
  struct Op {
    OpType type;
    Space space;
    absl::string_view key;
    absl::string_view value;
  };

  WriteBatch() = default;
  WriteBatch(const WriteBatch&) = default;
  WriteBatch& operator=(const WriteBatch&) = default;
  WriteBatch(WriteBatch&&) = default;
  WriteBatch& operator=(WriteBatch&&) = default;

  void Put(Space space, absl::string_view key, absl::string_view value);
  void Delete(Space space, absl::string_view key);
  // Deletes every key in [begin, end). An empty range (begin == end) is not
  // recorded; begin > end is a bug (crash).
  void DeleteRange(Space space, absl::string_view begin, absl::string_view end);
  // Appends all of `other`'s operations after this batch's own.
  void Append(const WriteBatch& other);

  // Visits the operations in the order they were added.
  void ForEach(absl::FunctionRef<void(const Op&)> visit) const;

  // Encoded size (keys + values + a few bytes per operation).
  size_t bytes() const { return rep_.size(); }
  // Number of operations.
  size_t count() const { return count_; }
  bool empty() const { return count_ == 0; }
  void Clear();

 private:
  void AddOp(OpType type, Space space, absl::string_view key,
             absl::string_view value);

  // Per operation: type (1 byte), space (1 byte), key length and value
  // length (4 bytes each, little-endian), key, value.
  std::string rep_;
  size_t count_ = 0;
};

// Approximate size of one space, for monitoring (/streaming/storez).
struct SpaceStats {
  uint64_t keys_approx = 0;   // estimated number of live keys
  uint64_t disk_bytes = 0;    // SST files (0 in memory)
  uint64_t memory_bytes = 0;  // memtables (MemKv: keys + values)
};
struct KvStats {
  std::array<SpaceStats, kSpaceCount> spaces;  // indexed by Space
};

class Kv {
 public:
  virtual ~Kv() = default;

  // The value stored under `key`; absl::NotFoundError if absent. A storage
  // engine checksum failure is absl::DataLossError.
  virtual absl::StatusOr<std::string> Get(Space space,
                                          absl::string_view key) const = 0;

  // Visits the keys in [begin, end) in ascending byte order (descending with
  // reverse = true) until `visit` returns false or the range is exhausted.
  // begin >= end visits nothing. The views passed to `visit` are valid only
  // during the call. `visit` may call back into the Kv.
  virtual absl::Status Scan(
      Space space, absl::string_view begin, absl::string_view end, bool reverse,
      absl::FunctionRef<bool(absl::string_view key, absl::string_view value)>
          visit) const = 0;

  // Applies `batch` atomically (all of it or none of it, also across a
  // crash). With sync = true the batch, and every earlier write, is durable
  // (fsynced) before Write returns; with sync = false it survives a process
  // crash but may be lost (as a suffix of the unsynced writes) if the
  // machine loses power. An error means the batch was not applied.
  virtual absl::Status Write(const WriteBatch& batch, bool sync) = 0;

  // Cheap size estimates for monitoring.
  virtual absl::StatusOr<KvStats> GetStats() const = 0;

  // A consistent, read-only view of everything written so far: later
  // writes are invisible to it, and its Write fails (FailedPrecondition).
  // A leader reads a snapshot's messages from it while a follower fetches
  // them. The view must not outlive this Kv. Thread-safe reads.
  virtual absl::StatusOr<std::unique_ptr<Kv>> NewSnapshot() const = 0;

  // Writes a consistent, openable copy of everything written so far into
  // the new directory `dir` (a backup; open it as a node's data_dir to
  // restore). Thread-safe. Unimplemented for stores without one.
  virtual absl::Status Checkpoint(const std::string& dir) const {
    return absl::UnimplementedError("this store cannot make checkpoints");
  }
};

}  // namespace spate::storage

#endif  // SPATE_STORAGE_KV_H_
