// The leader's sending side. Outbox collects a replica's outgoing messages,
// stamping each with the group, the sender and the current term. Replicator
// turns the leader's per-follower Progress into AppendEntries (batched up to
// append_bytes_max, pipelined within the inflight window, probing one at a
// time), snapshots for followers whose next entries were compacted away
// (Raft §7), and heartbeats carrying min(match, commit) (never a commit
// index beyond what the follower is known to hold).
// Threading: owned by a Replica; event loop only.
#ifndef SPATE_RAFT_REPLICATOR_H_
#define SPATE_RAFT_REPLICATOR_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/raft.pb.h"
#include "raft/options.h"
#include "raft/progress_tracker.h"
#include "raft/raft_log.h"
#include "raft/replica_status.h"
#include "raft/types.h"

namespace spate::raft {

class Outbox {
 public:
  // `term` is the owner's current term, read at each Send.
  Outbox(NodeId self, GroupId group, const Term* term)
      : self_(self), group_(group), term_(term) {}

  // Queues `m` for a peer (never this replica) with group, from and, when
  // m.term() is 0, the current term filled in.
  void Send(Message m);
  bool empty() const { return messages_.empty(); }
  // Moves the queued messages to *out (which must be empty).
  void TakeAll(std::vector<Message>* out);

 private:
  NodeId self_;
  GroupId group_;
  const Term* term_;
  std::vector<Message> messages_;
};

class Replicator {
 public:
  Replicator(const ReplicaOptions* options, const RaftLog* log,
             ProgressTracker* tracker, Outbox* outbox, ReplicaStats* stats)
      : options_(options),
        log_(log),
        tracker_(tracker),
        outbox_(outbox),
        stats_(stats) {}

  // Sends `to` the entries from its next index (or, if they were compacted,
  // the snapshot) unless its progress is paused. With !send_if_empty, sends
  // nothing when there are no entries to send (no commit-only messages).
  // Returns whether a message was sent; storage errors other than
  // "compacted" are returned.
  absl::StatusOr<bool> MaybeSendAppend(NodeId to, bool send_if_empty);
  absl::Status SendAppend(NodeId to) {
    return MaybeSendAppend(to, true).status();
  }
  // SendAppend to every member but this replica.
  absl::Status BcastAppend();
  // A heartbeat to every member but this replica, with the ReadIndex
  // `context` (may be empty) and the quiesce flag.
  void BcastHeartbeat(const std::string& context, bool quiesce);

 private:
  absl::StatusOr<bool> MaybeSendSnapshot(NodeId to, Progress* pr);

  const ReplicaOptions* options_;
  const RaftLog* log_;
  ProgressTracker* tracker_;
  Outbox* outbox_;
  ReplicaStats* stats_;
  // Entries read for one message, moved into it; kept for its capacity.
  std::vector<Entry> scratch_;
};

}  // namespace spate::raft

#endif  // SPATE_RAFT_REPLICATOR_H_
