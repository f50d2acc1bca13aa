// MemoryLog: an in-memory LogReader (etcd's MemoryStorage) plus the writes a
// host makes: append with conflict truncation, hard state, conf state,
// snapshots and compaction. Used by raft's own tests, the simulator and the
// server's tests; storage::LogStore is the production implementation.
//
// Layout: entries_[0] is a dummy holding the snapshot's (index, term), so
// FirstIndex() == entries_[0].index() + 1 and TermAt(FirstIndex() - 1)
// answers the snapshot term, as LogReader requires.
// Threading: not thread-safe; one owner.
#ifndef SPATE_RAFT_TESTING_MEMORY_LOG_H_
#define SPATE_RAFT_TESTING_MEMORY_LOG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/raft.pb.h"
#include "raft/log_reader.h"
#include "raft/ready.h"
#include "raft/types.h"

namespace spate::raft::testing {

class MemoryLog : public LogReader {
 public:
  // An empty log with an empty configuration: a replica joining a group.
  MemoryLog();
  // A new group's member: the host persisted the initial configuration.
  explicit MemoryLog(const ConfState& bootstrap);

  // LogReader.
  absl::StatusOr<InitialState> LoadInitialState() const override;
  absl::StatusOr<std::vector<Entry>> Entries(Index lo, Index hi,
                                             uint64_t max_bytes) const override;
  absl::StatusOr<Term> TermAt(Index i) const override;
  Index FirstIndex() const override;
  Index LastIndex() const override;
  absl::StatusOr<Snapshot> GetSnapshot() const override;

  // Appends contiguous entries. Entries at or below the last index replace
  // the log from their index on (a conflicting suffix); entries below
  // FirstIndex() are ignored (already compacted). A gap after the last
  // index is InvalidArgument.
  absl::Status Append(const std::vector<Entry>& entries);
  void SetHardState(const HardState& hs) { hard_state_ = hs; }
  void SetConfState(const ConfState& cs) { conf_state_ = cs; }
  // Replaces the log with `snapshot` (and takes its configuration).
  // OutOfRange if it is not newer than the current one.
  absl::Status ApplySnapshot(const Snapshot& snapshot);
  // Takes a snapshot at `index` (<= LastIndex()) with the host's state
  // `data` and configuration `cs` as of that index, and drops the entries up
  // to it. OutOfRange if index is already compacted.
  absl::Status Compact(Index index, std::string data, const ConfState& cs);
  // Persists what `ready` asks to persist: snapshot, entries, hard state.
  absl::Status Persist(const Ready& ready);

  // Test hook: reads of entry `index` (term or data) return DataLoss, as a
  // record failing its checksum would.
  void InjectDataLoss(Index index) { corrupt_index_ = index; }
  void ClearDataLoss() { corrupt_index_.reset(); }

  const HardState& hard_state() const { return hard_state_; }
  const ConfState& conf_state() const { return conf_state_; }
  // Entries FirstIndex()..LastIndex().
  std::vector<Entry> AllEntries() const;

 private:
  absl::Status CheckCorrupt(Index lo, Index hi) const;

  HardState hard_state_;
  ConfState conf_state_;
  Snapshot snapshot_;
  // entries_[0] is the dummy at the snapshot position (see above).
  std::vector<Entry> entries_;
  std::optional<Index> corrupt_index_;
};

}  // namespace spate::raft::testing

#endif  // SPATE_RAFT_TESTING_MEMORY_LOG_H_
