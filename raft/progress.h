// Progress: what a leader knows about one follower's log, and how it sends
// to it (etcd's tracker.Progress). One per voter and learner, owned by the
// ProgressTracker of the leader.
//
// States (the leader sends AppendEntries only when not paused):
//
//        reject / unreachable                 follower's log not available
//   +-------------------------+           +------------------------------+
//   v                         |           |                              v
//  PROBE --- ack ---> REPLICATE          PROBE/REPLICATE ------------> SNAPSHOT
//   ^   one message per        pipelined, up to                        paused
//   |   heartbeat interval     inflight_msgs_max                       |
//   +------------ snapshot applied (ack) or reported failed -----------+
//
// Invariant: match < next. `match` is the highest index known to match the
// leader's log; `next` is the next index to send.
// Threading: event loop only.
#ifndef SPATE_RAFT_PROGRESS_H_
#define SPATE_RAFT_PROGRESS_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "raft/inflights.h"
#include "raft/types.h"

namespace spate::raft {

enum class ProgressState { kProbe, kReplicate, kSnapshot };

const char* ProgressStateName(ProgressState state);

class Progress {
 public:
  Progress(Index next, size_t inflight_msgs_max, uint64_t inflight_bytes_max,
           bool learner);

  // State transitions (see the diagram above).
  void BecomeProbe();
  void BecomeReplicate();
  // The follower needs the snapshot at `snapshot_index`; sending pauses
  // until it is acknowledged or reported failed.
  void BecomeSnapshot(Index snapshot_index);
  // The snapshot could not be delivered: probe again from match.
  void SnapshotFailed();

  // Updates after sending an AppendEntries carrying `entries` entries of
  // `bytes` data bytes starting at next(). In replicate, next() advances
  // optimistically and the message joins the inflight window; in probe,
  // further sends pause until the follower answers.
  void SentEntries(size_t entries, uint64_t bytes);
  // Records that the follower has been told commit index `commit`.
  void SentCommit(Index commit) { sent_commit_ = commit; }
  // Whether sending `commit` could tell the follower something new that it
  // can act on (it has entries above what it was last told).
  bool CanBumpCommit(Index commit) const {
    return commit > sent_commit_ && sent_commit_ < next_ - 1;
  }

  // An acknowledgement up to `index`: returns false if stale (<= match).
  bool MaybeUpdate(Index index);
  // The follower no longer has entries it acknowledged (its storage was
  // wiped or repaired): its log ends at `last_index` < match. Match falls
  // back to it and probing starts there. The commit index never moves back,
  // so nothing committed is undone; the follower counts again only once it
  // has the entries again.
  void LostEntries(Index last_index);
  // A rejection of an AppendEntries whose previous entry was `rejected`,
  // with the follower's hint that its log may match up to `match_hint`.
  // Returns false (and changes nothing) if the rejection is stale.
  bool MaybeDecrTo(Index rejected, Index match_hint);

  // True when no AppendEntries should be sent now.
  bool IsPaused() const;

  Index match() const { return match_; }
  Index next() const { return next_; }
  ProgressState state() const { return state_; }
  Index pending_snapshot() const { return pending_snapshot_; }
  bool learner() const { return learner_; }
  void set_learner(bool learner) { learner_ = learner; }
  // Heard from within the current check-quorum period.
  bool recent_active() const { return recent_active_; }
  void set_recent_active(bool active) { recent_active_ = active; }
  // Probe/replicate pause flag; a heartbeat response clears it so that a
  // lost probe is retried once per heartbeat.
  void set_flow_paused(bool paused) { flow_paused_ = paused; }
  bool flow_paused() const { return flow_paused_; }
  const Inflights& inflights() const { return inflights_; }
  Inflights& inflights() { return inflights_; }
  // The follower is acknowledged at `match` after a leader change that
  // restarts tracking (self progress of a new leader).
  void ResetTo(Index match, Index next);

  std::string DebugString() const;

 private:
  void ResetState(ProgressState state);

  Index match_ = 0;
  Index next_;
  Index sent_commit_ = 0;
  ProgressState state_ = ProgressState::kProbe;
  // In kSnapshot: the index of the snapshot being sent (> 0).
  Index pending_snapshot_ = 0;
  bool recent_active_ = false;
  bool flow_paused_ = false;
  bool learner_;
  Inflights inflights_;
};

}  // namespace spate::raft

#endif  // SPATE_RAFT_PROGRESS_H_
