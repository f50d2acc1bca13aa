// Unstable: the tail of a replica's log that the core has accepted but the
// host has not yet persisted (etcd's unstable): new entries, possibly
// replacing a conflicting suffix of the persisted log, and an incoming
// snapshot. Entries leave it when Replica::Advance confirms they are stable.
//
// Layout: entries_[i] has index offset_ + i. When a snapshot is pending, it
// covers everything up to snapshot.index and offset_ == snapshot.index + 1.
// Threading: owned by RaftLog; event loop only.
#ifndef SPATE_RAFT_UNSTABLE_H_
#define SPATE_RAFT_UNSTABLE_H_

#include <optional>
#include <vector>

#include "absl/types/span.h"
#include "proto/raft.pb.h"
#include "raft/types.h"

namespace spate::raft {

// Entries as they arrive in a Message.
using EntryList = google::protobuf::RepeatedPtrField<Entry>;

class Unstable {
 public:
  explicit Unstable(Index offset) : offset_(offset) {}

  // First index after the pending snapshot, if there is one.
  std::optional<Index> MaybeFirstIndex() const;
  // Last index held here (entry or snapshot), if any.
  std::optional<Index> MaybeLastIndex() const;
  // Term of index i if this tail knows it.
  std::optional<Term> MaybeTerm(Index i) const;

  // The host persisted entries up to (i, t): drop them, unless a later
  // conflicting append replaced index i with another term meanwhile.
  void StableTo(Index i, Term t);
  // The host installed the snapshot at index i.
  void StableSnapTo(Index i);
  // An incoming snapshot replaces the whole log.
  void Restore(const Snapshot& snapshot);
  // Appends entries[start..] (contiguous, first index <= last index + 1),
  // truncating any conflicting suffix here first.
  void TruncateAndAppend(const EntryList& entries, int start);
  // Appends one entry right after the last one, without copying its data
  // (the leader's proposal path).
  void PushBack(Entry&& entry);
  // Entries [lo, hi); requires offset() <= lo <= hi <= last + 1.
  absl::Span<const Entry> Slice(Index lo, Index hi) const;

  Index offset() const { return offset_; }
  const std::vector<Entry>& entries() const { return entries_; }
  const std::optional<Snapshot>& snapshot() const { return snapshot_; }

 private:
  std::optional<Snapshot> snapshot_;
  // Reused across Readys: cleared, not reallocated, when everything is
  // persisted.
  std::vector<Entry> entries_;
  Index offset_;
};

}  // namespace spate::raft

#endif  // SPATE_RAFT_UNSTABLE_H_
