// ProgressTracker: the current membership (voters and learners) of a group
// as seen by one replica, a Progress per member (used while leading), and
// the votes of the ongoing election (etcd's tracker.ProgressTracker, without
// joint consensus). Iteration is in node id order, so everything derived
// from it (message order, status) is deterministic.
// Threading: owned by a Replica; event loop only.
#ifndef SPATE_RAFT_PROGRESS_TRACKER_H_
#define SPATE_RAFT_PROGRESS_TRACKER_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "proto/raft.pb.h"
#include "raft/progress.h"
#include "raft/quorum.h"
#include "raft/types.h"

namespace spate::raft {

class ProgressTracker {
 public:
  ProgressTracker(size_t inflight_msgs_max, uint64_t inflight_bytes_max);

  // Switches to membership `cs` (valid, see ValidateConfState). Members that
  // stay keep their progress (and learners promoted to voters keep theirs);
  // new members are probed at the last index (so the first probe carries an
  // entry and gets an answer at once) and count as recently active so that
  // CheckQuorum does not depose the leader before they could answer.
  void SetConfState(const ConfState& cs, Index last_index);
  // The membership, normalized.
  const ConfState& conf_state() const { return conf_state_; }

  bool IsVoter(NodeId id) const { return voters_.contains(id); }
  bool IsMember(NodeId id) const { return progress_.contains(id); }
  // A lone voter decides alone (elections, commits, reads).
  bool IsSingleton() const { return voters_.size() == 1; }
  const absl::btree_set<NodeId>& voters() const { return voters_; }

  // nullptr if `id` is not a member.
  Progress* Find(NodeId id);
  const Progress* Find(NodeId id) const;
  const absl::btree_map<NodeId, Progress>& progress() const {
    return progress_;
  }
  absl::btree_map<NodeId, Progress>& mutable_progress() { return progress_; }

  // Restarts every member's progress for a new term: match 0, next
  // next_index, probing; `self` gets match self_match.
  void ResetProgress(NodeId self, Index self_match, Index next_index);

  // Raft §5.3: the largest index stored on a majority of voters.
  Index Committed() const;
  // CheckQuorum: a majority of voters was recently active.
  bool QuorumActive() const;
  // Whether the voters in `acks` make a majority.
  bool HasQuorum(const absl::btree_set<NodeId>& acks) const;

  // Election bookkeeping; votes from non-voters are ignored.
  void ResetVotes() { votes_.clear(); }
  void RecordVote(NodeId id, bool granted);
  VoteResult TallyVotes(size_t* granted, size_t* rejected) const;

 private:
  size_t inflight_msgs_max_;
  uint64_t inflight_bytes_max_;
  ConfState conf_state_;
  absl::btree_set<NodeId> voters_;
  // One entry per voter and learner.
  absl::btree_map<NodeId, Progress> progress_;
  // Votes of the current election: node -> granted. At most one per voter.
  absl::btree_map<NodeId, bool> votes_;
};

}  // namespace spate::raft

#endif  // SPATE_RAFT_PROGRESS_TRACKER_H_
