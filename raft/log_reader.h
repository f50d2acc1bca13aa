// LogReader: the read-only view of one group's *persisted* raft state that
// the core consults (etcd's Storage). storage::LogStore implements it over
// RocksDB; raft/testing's MemoryLog implements it in memory.
//
// Contract:
// - The host writes everything a Ready asked to persist (entries, hard
//   state, snapshot) *before* calling Replica::Advance; from then on the
//   LogReader must return it.
// - The log holds entries FirstIndex()..LastIndex(). Entries before
//   FirstIndex() were compacted into the snapshot, whose index is
//   FirstIndex() - 1 (0 with no snapshot). An empty log has
//   LastIndex() == FirstIndex() - 1.
// - Errors: an index below FirstIndex() is absl::OutOfRangeError
//   ("compacted"); above LastIndex() is absl::NotFoundError; a record that
//   fails its checksum is absl::DataLossError — the core must then stop
//   voting and leading for the group, never serve or truncate around it.
// Threading: called only from the thread that owns the group (event loop).
#ifndef SPATE_RAFT_LOG_READER_H_
#define SPATE_RAFT_LOG_READER_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/raft.pb.h"
#include "raft/types.h"

namespace spate::raft {

struct InitialState {
  HardState hard_state;
  // Membership as of the last persisted conf change or snapshot.
  ConfState conf_state;
};

class LogReader {
 public:
  virtual ~LogReader() = default;

  virtual absl::StatusOr<InitialState> LoadInitialState() const = 0;

  // Entries in [lo, hi), lo >= FirstIndex(), hi <= LastIndex() + 1. Returns
  // at least one entry when lo < hi, then stops before the total data size
  // would exceed max_bytes.
  virtual absl::StatusOr<std::vector<Entry>> Entries(
      Index lo, Index hi, uint64_t max_bytes) const = 0;

  // Term of entry i for FirstIndex() - 1 <= i <= LastIndex() (the snapshot's
  // term at FirstIndex() - 1; 0 for index 0).
  virtual absl::StatusOr<Term> TermAt(Index i) const = 0;

  virtual Index FirstIndex() const = 0;
  virtual Index LastIndex() const = 0;

  // The latest snapshot (metadata index 0 when there is none).
  virtual absl::StatusOr<Snapshot> GetSnapshot() const = 0;
};

}  // namespace spate::raft

#endif  // SPATE_RAFT_LOG_READER_H_
