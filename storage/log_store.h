// LogStore: one raft group's persistent state in the Kv — its log entries,
// hard state, conf state and latest snapshot — seen by the raft core through
// raft::LogReader (etcd's Storage) and written by the host through a
// WriteBatch.
//
// Group commit (DESIGN.md §5 "Multi-raft efficiency"): the store never
// writes by itself. For every group with a Ready, the event loop calls
// Stage() (and StageConfState / StageCompaction / Destroy as needed) into ONE
// shared WriteBatch, writes it with ONE Kv::Write(sync = true), then calls
// OnPersisted() on every store it staged into, and only then
// Replica::Advance. The cycle, per store:
//
//     Stage*(batch) ──► [host: kv->Write(batch, sync)] ──► OnPersisted()
//          │                        │ error
//          └── (more Stage* calls   └──► DiscardStaged()  (nothing applied)
//               before the write:
//               all become visible
//               together)
//
// Staged vs visible: Stage validates against, and updates, a *staged* view
// (what the Kv will hold once the batch is written); the LogReader methods
// answer from the *visible* view (what the Kv held at the last
// OnPersisted), so the core never sees unpersisted data. Between Kv::Write
// and OnPersisted the host must not call the LogReader methods (the Kv
// already holds data the visible view does not know about yet).
//
// Layout (storage/keys.h): Space::kRaftLog holds entries under group|index,
// each a framed raft::Entry; Space::kRaftState holds the hard state, conf
// state, snapshot metadata and, under its own key, the snapshot (metadata +
// data, which may be large and is read only by GetSnapshot). Every record is
// checksummed (record_codec.h): a damaged one is absl::DataLossError naming
// the group and index, never skipped or truncated around; so is a hole in
// the log or a stored commit index beyond the last entry (found by Open).
//
// A bounded in-memory cache keeps the most recent entries (a contiguous
// suffix of the visible log), so the leader serving followers and the
// core's TermAt calls on the hot path rarely read the Kv.
//
// Threading: owned by the event loop; every method, including the
// LogReader ones, is called from that one thread.
#ifndef SPATE_STORAGE_LOG_STORE_H_
#define SPATE_STORAGE_LOG_STORE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/raft.pb.h"
#include "raft/log_reader.h"
#include "raft/types.h"
#include "storage/kv.h"

namespace spate::storage {

struct LogStoreOptions {
  // Recent entries kept in memory (serialized size). Per group: a node with
  // thousands of groups should lower it. The newest entry is always kept.
  uint64_t cache_bytes_max = 4 << 20;
};

struct LogStoreStats {
  uint64_t cache_entries = 0;
  uint64_t cache_bytes = 0;
  // Entries and terms served from the cache vs read from the Kv.
  uint64_t cache_hits = 0;
  uint64_t kv_reads = 0;
};

class LogStore : public raft::LogReader {
 public:
  // Loads `group`'s state from `kv` (which must outlive the store): hard
  // state, conf state, snapshot metadata, first and last index. A group with
  // nothing stored opens empty (a new member the leader will catch up).
  // DataLoss if a record is damaged, the log has a hole after the snapshot,
  // or the stored commit index is beyond the last entry.
  static absl::StatusOr<std::unique_ptr<LogStore>> Open(
      Kv* kv, raft::GroupId group, const LogStoreOptions& options = {});

  // Stages the initial membership of a brand-new group (all its voters),
  // to be written before the group's first Open. Must not be used on a
  // group that has state.
  static void Bootstrap(raft::GroupId group, const raft::ConfState& conf_state,
                        WriteBatch* batch);

  // Every group with raft state in `kv`, ascending (what to Open at start).
  static absl::StatusOr<std::vector<raft::GroupId>> ListGroups(const Kv& kv);

  LogStore(const LogStore&) = delete;
  LogStore& operator=(const LogStore&) = delete;

  // --- raft::LogReader (visible view) ---
  absl::StatusOr<raft::InitialState> LoadInitialState() const override;
  // An entry counts for max_bytes with its data size, like the core's
  // raft::EntryBytes.
  absl::StatusOr<std::vector<raft::Entry>> Entries(
      raft::Index lo, raft::Index hi, uint64_t max_bytes) const override;
  absl::StatusOr<raft::Term> TermAt(raft::Index i) const override;
  raft::Index FirstIndex() const override;
  raft::Index LastIndex() const override;
  absl::StatusOr<raft::Snapshot> GetSnapshot() const override;

  // --- Staging (into the caller's batch) ---

  // Stages the persistent parts of a Ready, in this order: an incoming
  // `snapshot` replaces the whole log (its entries and everything after are
  // deleted; the conf state becomes the snapshot's); `entries` (contiguous,
  // ascending) are written, and every staged entry after the last new one
  // is deleted (a conflicting suffix); entries at or below the snapshot
  // index are skipped as already compacted; then `hard_state`.
  // InvalidArgument, with nothing staged, if the input breaks a raft
  // invariant: a gap after the last index, non-contiguous entries or
  // decreasing terms, a term that goes back, a vote changed within a term,
  // a commit index that goes back or beyond the last index, or a snapshot
  // older than the current one or than the commit index.
  absl::Status Stage(const std::optional<raft::HardState>& hard_state,
                     const std::vector<raft::Entry>& entries,
                     const std::optional<raft::Snapshot>& snapshot,
                     WriteBatch* batch);

  // Stages a new membership (after the core applied a conf change).
  void StageConfState(const raft::ConfState& conf_state, WriteBatch* batch);

  // Log compaction: stores `snapshot` (metadata + opaque state machine
  // image, at an applied index I) and deletes the log up to I. Requires
  // current snapshot index < I <= min(commit index, last index) and the
  // metadata's term equal to entry I's; otherwise InvalidArgument and
  // nothing staged. The conf state record is not changed (conf changes
  // after I may be in the log); the snapshot carries the conf state at I.
  absl::Status StageCompaction(const raft::Snapshot& snapshot,
                               WriteBatch* batch);

  // The group is removed from this node: deletes all of its raft state and
  // log. After OnPersisted the store reads as an empty group; further
  // staging is a bug.
  void Destroy(WriteBatch* batch);

  // The batch(es) holding everything staged so far were written: make it
  // visible to the LogReader methods.
  void OnPersisted();
  // The write failed: forget everything staged since the last OnPersisted
  // (the Kv, written atomically, still matches the visible view).
  void DiscardStaged();
  // Something was staged since the last OnPersisted / DiscardStaged.
  bool has_staged() const { return has_staged_; }

  raft::GroupId group() const { return group_; }
  LogStoreStats stats() const;

 private:
  // What the Kv holds (visible) or will hold (staged) for the group.
  struct View {
    raft::HardState hard_state;
    raft::ConfState conf_state;
    // Index 0 (and term 0) when the group has no snapshot.
    raft::SnapshotMetadata snapshot;
    raft::Index last_index = 0;
    raft::Index first_index() const { return snapshot.index() + 1; }
  };
  // A staged change the cache must follow at OnPersisted.
  struct PendingOp {
    enum class Kind { kAppend, kReplaceLog, kCompact, kDestroy };
    explicit PendingOp(Kind kind) : kind(kind) {}
    Kind kind;
    raft::Index index = 0;             // kReplaceLog, kCompact: snapshot index
    raft::Term term = 0;               // kReplaceLog, kCompact: snapshot term
    std::vector<raft::Entry> entries;  // kAppend
  };

  LogStore(Kv* kv, raft::GroupId group, const LogStoreOptions& options);

  absl::Status Load();
  absl::Status LoadLogBounds();
  absl::StatusOr<raft::Entry> ReadEntry(raft::Index index) const;
  absl::Status ReadEntriesFromKv(raft::Index lo, raft::Index hi,
                                 uint64_t max_bytes, uint64_t* bytes,
                                 std::vector<raft::Entry>* out) const;
  absl::StatusOr<raft::Term> StagedTermAt(raft::Index index) const;
  absl::Status ValidateHardState(const raft::HardState& hard_state,
                                 const View& next) const;
  absl::Status StageEntries(const std::vector<raft::Entry>& entries,
                            size_t skip, View* next, WriteBatch* batch);
  void StageSnapshotInstall(const raft::Snapshot& snapshot, View* next,
                            WriteBatch* batch);
  void CacheAppend(std::vector<raft::Entry> entries);
  void CacheDropThrough(raft::Index index);
  void CacheClear();

  Kv* const kv_;
  const raft::GroupId group_;
  const LogStoreOptions options_;

  View visible_;
  View staged_;
  std::vector<PendingOp> pending_;
  bool destroyed_ = false;  // Destroy was staged: no more staging
  bool has_staged_ = false;

  // Invariant: empty, or entries cache_.front().index() ..
  // visible_.last_index, contiguous, all >= visible_.first_index().
  std::deque<raft::Entry> cache_;
  uint64_t cache_bytes_ = 0;
  mutable uint64_t cache_hits_ = 0;
  mutable uint64_t kv_reads_ = 0;
};

}  // namespace spate::storage

#endif  // SPATE_STORAGE_LOG_STORE_H_
