// RaftLog: one replica's view of its raft log: the persisted part read
// through the LogReader, the Unstable tail not yet persisted, and the
// committed and applied indexes (etcd's raftLog).
//
//   snapshot | persisted entries (LogReader)   | unstable tail
//   ... first-1 | first ................. offset-1 | offset .... last
//   applied <= committed <= last
//
// Every read that may reach storage returns a Status. absl::OutOfRange
// (compacted) and absl::NotFound (beyond the log) are expected answers that
// callers handle; any other error (DataLoss, I/O) is returned up to the
// Replica, which halts the group rather than act on a log it cannot read.
// Threading: owned by a Replica; event loop only.
#ifndef SPATE_RAFT_RAFT_LOG_H_
#define SPATE_RAFT_RAFT_LOG_H_

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "proto/raft.pb.h"
#include "raft/log_reader.h"
#include "raft/types.h"
#include "raft/unstable.h"

namespace spate::raft {

// True for the storage answers that are part of normal operation.
inline bool IsBenignLogError(const absl::Status& status) {
  return absl::IsOutOfRange(status) || absl::IsNotFound(status);
}

// Bytes an entry counts for in the *_bytes_max limits: its data size.
inline uint64_t EntryBytes(const Entry& entry) { return entry.data().size(); }

class RaftLog {
 public:
  // Starts from what `reader` has persisted: committed = applied = the
  // snapshot index. `reader` must outlive this object.
  explicit RaftLog(const LogReader* reader);

  Index FirstIndex() const;
  Index LastIndex() const;
  // Everything below this index is persisted (requires no pending snapshot).
  Index PersistedLastIndex() const;

  // Term of entry i, for FirstIndex()-1 <= i <= LastIndex(); OutOfRange
  // below, NotFound above.
  absl::StatusOr<Term> TermAt(Index i) const;
  absl::StatusOr<Term> LastTerm() const;
  // Whether entry i exists with term t (false when i is out of range).
  absl::StatusOr<bool> MatchTerm(Index i, Term t) const;
  // Raft §5.4.1: a log ending at (index, term) is at least as up-to-date as
  // ours.
  absl::StatusOr<bool> IsUpToDate(Index index, Term term) const;

  // The follower side of AppendEntries (§5.3): if our entry prev_index has
  // prev_term, appends `entries` (dropping those we already have, truncating
  // from the first conflict) and commits up to min(commit, last new index);
  // returns the last new index. nullopt if prev does not match.
  absl::StatusOr<std::optional<Index>> MaybeAppend(Index prev_index,
                                                   Term prev_term, Index commit,
                                                   const EntryList& entries);
  // Appends entries[start..] (contiguous, starting at <= LastIndex()+1 and
  // above committed); returns the new last index.
  Index Append(const EntryList& entries, int start = 0);
  // Appends one entry at LastIndex()+1 without copying its data.
  void AppendOne(Entry&& entry);
  // Index of the first entry whose term differs from ours (or that we do
  // not have), 0 if we have them all.
  absl::StatusOr<Index> FindConflict(const EntryList& entries) const;
  // The largest (index', term') with index' <= index and term' <= term in
  // our log, for fast log back-off; term' is 0 when it is unknown
  // (compacted).
  absl::StatusOr<std::pair<Index, Term>> FindConflictByTerm(Index index,
                                                            Term term) const;

  // Appends entries [lo, hi) to *out, at least one and then at most
  // max_bytes of data. OutOfRange if lo was compacted.
  absl::Status Slice(Index lo, Index hi, uint64_t max_bytes,
                     std::vector<Entry>* out) const;

  // Leader commit (§5.3, §5.4.2): commits `index` only if it is above the
  // commit index and holds an entry of `term` (the leader's current term).
  absl::StatusOr<bool> MaybeCommit(Index index, Term term);
  // Requires index <= LastIndex(); never moves the commit index backwards.
  void CommitTo(Index index);
  // Requires applied() <= index <= committed().
  void AppliedTo(Index index);

  // Committed entries after `after` (the highest index already handed out
  // for applying) are available, and no snapshot is pending.
  bool HasCommittedAfter(Index after) const;
  // Appends them to *out, at most max_bytes (at least one entry).
  absl::Status CommittedAfter(Index after, uint64_t max_bytes,
                              std::vector<Entry>* out) const;

  // The host persisted entries up to (index, term) / the snapshot at index.
  void StableTo(Index index, Term term) { unstable_.StableTo(index, term); }
  void StableSnapTo(Index index) { unstable_.StableSnapTo(index); }
  // Replaces the log with an incoming snapshot (committed = its index).
  void Restore(const Snapshot& snapshot);
  // The pending incoming snapshot, else the persisted one.
  absl::StatusOr<Snapshot> GetSnapshot() const;

  const Unstable& unstable() const { return unstable_; }
  bool HasPendingSnapshot() const { return unstable_.snapshot().has_value(); }
  Index committed() const { return committed_; }
  Index applied() const { return applied_; }
  const LogReader& reader() const { return *reader_; }

 private:
  const LogReader* reader_;
  Unstable unstable_;
  // Invariant: applied_ <= committed_ <= LastIndex().
  Index committed_;
  Index applied_;
};

}  // namespace spate::raft

#endif  // SPATE_RAFT_RAFT_LOG_H_
