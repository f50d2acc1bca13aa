// CheckMessage: validation of an incoming raft Message before the Replica
// acts on it, so that bad input changes nothing (STYLE.md: every bad input
// gets a clear error). It checks addressing (group, recipient, sender), the
// type, field consistency, and that the sender is a member when the type
// requires one. Term staleness is judged later, by the Replica.
// Threading: pure function.
#ifndef SPATE_RAFT_MESSAGE_CHECK_H_
#define SPATE_RAFT_MESSAGE_CHECK_H_

#include "proto/raft.pb.h"
#include "raft/progress_tracker.h"
#include "raft/replica_status.h"
#include "raft/types.h"

namespace spate::raft {

// Sent only by a leader of m.term().
inline bool IsFromLeader(MessageType type) {
  return type == MSG_APPEND || type == MSG_HEARTBEAT || type == MSG_SNAPSHOT;
}

inline bool IsVoteRequest(MessageType type) {
  return type == MSG_VOTE || type == MSG_PRE_VOTE;
}

// DropReason::kCount when `m` may be stepped by replica `self` of `group`
// whose membership is `tracker`; otherwise why it must be dropped:
// - kWrongGroup / kWrongRecipient: misrouted;
// - kMalformed: no sender, from itself, term 0, unknown type, or fields that
//   contradict each other: append entries not contiguous after (index,
//   log_term) or with terms outside [log_term, term]; a rejection hint above
//   the rejected index; a vote request whose log term exceeds its term; a
//   snapshot without index, term or voters;
// - kUnknownPeer: the sender is not a member and the type needs one.
//   Leaders (append, heartbeat, snapshot, timeout-now) and candidates (vote
//   requests) are accepted from non-members: this replica's membership may
//   lag the one that added them, and refusing could block elections. A
//   replica with an empty membership (joining) accepts any sender.
DropReason CheckMessage(const Message& m, NodeId self, GroupId group,
                        const ProgressTracker& tracker);

}  // namespace spate::raft

#endif  // SPATE_RAFT_MESSAGE_CHECK_H_
