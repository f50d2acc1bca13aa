// Replica: one member of one raft group, as a pure deterministic state
// machine in the style of etcd-io/raft. No threads, clocks, sockets or disk:
// the host feeds it ticks and messages and carries out the Ready batches it
// produces (see ready.h for the order). The same inputs always produce the
// same outputs; election jitter comes from a base::Prng seeded by the
// options.
//
// Implements (section numbers: Raft paper / Ongaro's thesis): leader
// election with randomized timeouts (§5.2), Pre-Vote (thesis §9.6) and
// CheckQuorum (thesis §6.2); log replication with per-follower Progress
// (probe / replicate / snapshot), pipelining bounded by an inflight window,
// fast back-off on rejection (§5.3); the commit rule (§5.4.2: only entries
// of the leader's term commit by counting, with a no-op at the start of each
// term); snapshots (§7); leadership transfer (thesis §3.10); single-server
// membership changes and learners (thesis §4.1, §4.2.1); ReadIndex (thesis
// §6.4).
//
// Lifecycle. The host persists the initial ConfState of a new group (all
// voters) in its LogReader before Create; a replica joining an existing
// group starts with an empty ConfState and is caught up by the leader
// (snapshot or entries). On restart, Create reads the persisted hard state,
// snapshot and log back from the LogReader.
//
// The Ready loop (host side):
//   if (replica->HasReady()) {
//     Ready rd = replica->TakeReady();
//     persist(rd.snapshot, rd.entries, rd.hard_state, sync = rd.must_sync);
//     send(rd.messages);
//     apply(rd.committed_entries);   // conf changes: ApplyConfChange
//     replica->Advance(rd);
//   }
// Between TakeReady and Advance the host may still call Step, Tick, Propose
// etc.; it may not call TakeReady again before Advance.
//
// Membership changes. ProposeConfChange appends an ENTRY_CONF_CHANGE entry
// (data: a serialized ConfChange). Like etcd, a change takes effect when
// *applied*: when the host applies such a committed entry it calls
// ApplyConfChange(cc) and persists the returned ConfState together with the
// applied index (LogReader::LoadInitialState must return it after a
// restart). Only one change may be pending (proposed and not applied), and
// only once the leader has applied an entry of its own term (this closes the
// single-server change bug described on raft-dev in 2015).
//
// Errors (STYLE.md "Crash on bugs, return Status on weather"):
// - Invalid input (a message for another group or node, from an unknown
//   member where membership matters, or malformed) is refused with
//   InvalidArgument, counted in stats().dropped, and changes nothing.
// - Stale messages (lower term, vote requests inside a leader lease) are
//   ignored with OK and counted.
// - Storage errors from the LogReader other than "compacted"/"not found"
//   (DataLoss, I/O) never crash: the replica *halts*. It becomes a follower
//   without leader, stops voting, campaigning, leading and answering;
//   every later Step/Propose returns FailedPrecondition. The host learns it
//   from the returned Status, from halted() and from Status().halted /
//   halt_status, and must repair the replica (e.g. discard the group's data
//   on this node and re-add it as a new member caught up by the leader).
// - Invariants (term never decreases, commit <= last index, a vote or
//   acknowledgement is never sent before the state it depends on is in a
//   Ready to persist) are CHECKed.
//
// Quiescence (multi-raft: idle groups cost nothing). The host may stop
// ticking an idle group:
// - A leader for which Quiescent() is true may call Quiesce(): it sends a
//   final heartbeat with `quiesce` set and reports quiesced(); the host stops
//   ticking it.
// - A follower that receives such a heartbeat from its leader while its log
//   is caught up (last index == commit == the leader's commit) reports
//   quiesced(); its host stops ticking it.
// - Any Tick, proposal, read, transfer, campaign or message (other than a
//   quiesce heartbeat or a heartbeat response that needs nothing) wakes the
//   replica: quiesced() turns false and the host must tick it again. On
//   waking, a follower restarts its election timer from zero, so it never
//   campaigns right after being ticked again: it gives the leader a full
//   election timeout to show up. A waking leader treats all members as
//   recently active so CheckQuorum does not depose it for the quiet period.
// - The host must wake the followers of a group whose leader's node it
//   believes dead (node-level liveness from its coalesced heartbeats), or
//   they would never elect a new leader.
//
// Threading: not thread-safe; owned by the host's event loop.
#ifndef SPATE_RAFT_REPLICA_H_
#define SPATE_RAFT_REPLICA_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/prng.h"
#include "proto/raft.pb.h"
#include "raft/log_reader.h"
#include "raft/options.h"
#include "raft/progress_tracker.h"
#include "raft/raft_log.h"
#include "raft/read_only.h"
#include "raft/ready.h"
#include "raft/replica_status.h"
#include "raft/replicator.h"
#include "raft/types.h"

namespace spate::raft {

// The payload key under which a FailedPrecondition "not leader" status
// carries the known leader's node id (decimal), if any.
inline constexpr char kLeaderHintPayload[] = "spate.raft.leader";
// The leader hint carried by `status`, if any.
std::optional<NodeId> LeaderHint(const absl::Status& status);

class Replica {
 public:
  // Validates `options` (InvalidArgument) and loads the persisted state from
  // `reader` (its errors, or DataLoss when it is inconsistent, e.g. a
  // commit index beyond the log). `reader` must outlive the replica.
  static absl::StatusOr<std::unique_ptr<Replica>> Create(
      const ReplicaOptions& options, const LogReader* reader);

  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  // One logical tick: followers and candidates count towards an election
  // timeout; leaders send heartbeats and check their quorum. Wakes a
  // quiesced replica. No-op once halted.
  void Tick();

  // Handles one message from a peer. See the class comment for the error
  // contract. Messages must be for this group and node, from a member (a
  // replica with an empty configuration accepts its future leader), with a
  // term >= 1 and consistent fields: append entries contiguous from
  // index + 1 with terms in [log_term, term]; snapshots with an index and a
  // configuration containing this node; rejections with reject_hint <= index.
  absl::Status Step(const Message& message);

  // Leader only: appends a command to the log and returns its index. It is
  // committed when a later Ready lists it in committed_entries (at this
  // index and the leader's current term); a leader change may drop it.
  // FailedPrecondition when not leader (leader hint attached, see
  // LeaderHint), Unavailable during a leadership transfer, ResourceExhausted
  // over uncommitted_bytes_max, InvalidArgument for empty data (empty
  // entries are the leaders' no-ops).
  absl::StatusOr<Index> Propose(std::string data);

  // Leader only: proposes a membership change (see the class comment).
  // Errors as Propose, plus FailedPrecondition while another change is
  // pending or before the leader applied an entry of its term, and
  // InvalidArgument for a change that is invalid against the current
  // configuration (conf_change.h).
  absl::StatusOr<Index> ProposeConfChange(const ConfChange& change);

  // Applies a committed conf change (host, while applying the entry, before
  // Advance): the ConfChange parsed from the entry's data. Returns the new
  // ConfState to persist with the applied index; an error (the change is
  // invalid against the current configuration, which then stays) is the
  // same on every replica, since all apply the same log. Entries proposed by
  // ProposeConfChange carry the resulting membership (conf_state): a
  // replica with an empty membership (a new member replaying the log from
  // index 1, which never saw the bootstrap membership) adopts it; any other
  // replica CHECKs that its own result agrees.
  absl::StatusOr<ConfState> ApplyConfChange(const ConfChange& change);

  // Leader only: hands leadership to voter `to` once it is caught up (it
  // then campaigns at once, without pre-vote). Proposals are refused while
  // the transfer is in flight; it is abandoned after an election timeout.
  // OK and no-op when `to` is this leader or already the transferee.
  absl::Status TransferLeadership(NodeId to);

  // Requests a linearizable read point: a ReadState{index, context} appears
  // in a later Ready once this replica's leader has confirmed its leadership
  // with a quorum; reading the state machine after applying up to index is
  // then linearizable. Followers forward the request to the leader.
  // FailedPrecondition when no leader is known, ResourceExhausted beyond
  // 4096 pending reads.
  absl::Status ReadIndex(std::string context);

  // Starts an election now (with pre-vote when enabled), as if the election
  // timeout had fired. FailedPrecondition if this replica cannot lead:
  // already leader, a learner or not a member, halted, snapshot pending, or
  // committed conf changes not applied yet.
  absl::Status Campaign();

  // The host could not deliver a message to `node`: stop pipelining to it
  // (probe until it answers).
  void ReportUnreachable(NodeId node);
  // The fate of a MSG_SNAPSHOT to `node`: delivered (ok) or failed/dropped
  // (!ok). The host must report every snapshot message it was handed: the
  // leader sends nothing more to that follower until it hears back, so a
  // snapshot lost without a report would stall the follower (as in etcd).
  void ReportSnapshot(NodeId node, bool ok);

  // Quiescence (see the class comment).
  bool Quiescent() const;
  void Quiesce();
  bool quiesced() const { return quiesced_; }

  // Whether TakeReady would return something. O(1).
  bool HasReady() const;
  // The next batch of work (see ready.h). Requires no Ready in flight.
  Ready TakeReady();
  // The host finished `ready` (persisted, sent, applied).
  void Advance(const Ready& ready);

  ReplicaStatus Status() const;
  const ReplicaStats& stats() const { return stats_; }
  bool halted() const { return !halt_status_.ok(); }
  // True while the replica rebuilds a lost store (ReplicaOptions.rebuilding):
  // it turns false, for good, once it applied up to a commit index learned
  // from a leader. The host watches it to clear its own durable marker.
  bool rebuilding() const { return rebuilding_; }

  // Read-only accessors (invariant checks, tests, the host).
  NodeId id() const { return options_.id; }
  GroupId group() const { return options_.group; }
  Role role() const { return role_; }
  Term term() const { return term_; }
  NodeId vote() const { return vote_; }
  NodeId leader() const { return leader_; }
  const RaftLog& log() const { return log_; }
  const ProgressTracker& tracker() const { return tracker_; }
  const ReplicaOptions& options() const { return options_; }
  NodeId lead_transferee() const { return lead_transferee_; }
  Index pending_conf_index() const { return pending_conf_index_; }
  // Leader only (0 otherwise): the index of this leader's first entry, its
  // no-op. Once the host applied it, it applied everything committed before
  // this term, so it may serve reads from its state machine (with ReadIndex
  // or a lease).
  Index term_start_index() const { return term_start_index_; }
  bool ready_in_flight() const { return ready_in_flight_; }
  Index applying() const { return applying_; }
  int election_elapsed() const { return election_elapsed_; }
  int randomized_election_timeout() const {
    return randomized_election_timeout_;
  }

 private:
  enum class CampaignType { kPreElection, kElection, kTransfer };

  Replica(const ReplicaOptions& options, const LogReader* reader);
  absl::Status Load();

  // Role transitions (etcd's becomeX).
  void Reset(Term term);
  void BecomeFollower(Term term, NodeId leader);
  void BecomePreCandidate();
  void BecomeCandidate();
  absl::Status BecomeLeader();

  // Elections.
  absl::StatusOr<bool> CanCampaign() const;
  absl::Status Hup(CampaignType type);
  absl::Status StartCampaign(CampaignType type);
  absl::Status HandleVoteRequest(const Message& m);
  absl::Status HandleVoteResponse(const Message& m);
  bool InLease() const;

  // Dispatch.
  absl::Status StepChecked(const Message& m);
  absl::Status StepByTerm(const Message& m, bool* done);
  absl::Status StepLeader(const Message& m);
  absl::Status StepCandidate(const Message& m);
  absl::Status StepFollower(const Message& m);

  // Follower side.
  absl::Status HandleAppend(const Message& m);
  absl::Status HandleHeartbeat(const Message& m);
  absl::Status HandleSnapshot(const Message& m);
  absl::StatusOr<bool> Restore(const Snapshot& snapshot);

  // Leader side.
  absl::Status HandleAppendResponse(const Message& m, Progress* pr);
  absl::Status HandleHeartbeatResponse(const Message& m, Progress* pr);
  absl::Status HandleReadIndexRequest(NodeId from, std::string context);
  void AnswerRead(NodeId from, Index index, std::string context);
  absl::Status ReleasePendingReads();
  absl::Status AppendEntry(Entry&& entry);
  absl::StatusOr<bool> MaybeCommit();
  // The leader's commit index advanced: tells followers (see
  // ReplicaOptions::lazy_commit_broadcast) and sends entries not sent yet.
  absl::Status SendAfterCommit();
  void SendTimeoutNow(NodeId to);
  bool CommittedEntryInCurrentTerm() const;
  absl::Status CheckProposable(bool conf_change) const;
  absl::Status SwitchToConfig(const ConfState& cs);

  // Plumbing.
  void TickElection();
  void TickHeartbeat();
  void ResetRandomizedElectionTimeout();
  void Wake();
  absl::Status Drop(DropReason reason, const Message& m);
  // Halts on a non-benign storage error; returns `status` unchanged.
  absl::Status MaybeHalt(absl::Status status);
  HardState CurrentHardState() const;
  SoftState CurrentSoftState() const { return SoftState{leader_, role_}; }
  void CheckVotesPersisted(const Ready& ready) const;
  // Rebuilding (ReplicaOptions.rebuilding): learns a leader's commit index,
  // and stops rebuilding once it is applied.
  void LearnLeaderCommit(Index commit);
  void MaybeFinishRebuild();
  // Rebuilding: instead of campaigning, asks every voter for a pre-vote it
  // will never use, which wakes a quiesced leader (that then catches us up).
  void ProbeForLeader();
  // Candidate: won without a majority of grants because every voter that
  // refused is rebuilding (see HandleVoteResponse).
  bool WonOverRebuildingVoters() const;

  ReplicaOptions options_;
  const LogReader* reader_;
  RaftLog log_;
  ProgressTracker tracker_;
  Outbox outbox_;  // messages for the next Ready
  Replicator replicator_;
  ReadOnly read_only_;
  base::Prng prng_;

  // Persistent state (Raft Figure 2). Invariant: term_ never decreases.
  Term term_ = 0;
  NodeId vote_ = kNoNode;

  Role role_ = Role::kFollower;
  NodeId leader_ = kNoNode;
  // Leadership transfer target (leader only), kNoNode if none.
  NodeId lead_transferee_ = kNoNode;
  // Index of the last conf change proposed by this leader (or its first
  // entry, so that no change is proposed before it committed in its term).
  Index pending_conf_index_ = 0;
  // Leader only: index of its no-op (see term_start_index()).
  Index term_start_index_ = 0;
  // Data bytes of uncommitted entries appended by this leader.
  uint64_t uncommitted_bytes_ = 0;
  // Proposals appended since the last broadcast: flushed at TakeReady so
  // that a burst of proposals leaves as one AppendEntries per follower.
  bool append_pending_ = false;
  // ReadIndex requests queued since the last TakeReady: one heartbeat round
  // (carrying the newest request's id) confirms them all.
  bool read_heartbeat_pending_ = false;
  // ReadIndex requests waiting for this leader's first commit in its term.
  struct DeferredRead {
    NodeId from;
    std::string context;
  };
  std::vector<DeferredRead> deferred_reads_;

  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_election_timeout_ = 0;
  // Ticks left before this replica may vote or campaign
  // (ReplicaOptions.votes_withheld_ticks).
  int votes_withheld_left_ = 0;
  bool quiesced_ = false;
  // ReplicaOptions.rebuilding until caught up; rebuild_commit_ is the
  // largest commit index a leader told us (0: none yet).
  bool rebuilding_ = false;
  Index rebuild_commit_ = 0;
  // Candidate / pre-candidate: the voters that answered "rebuilding" in the
  // current campaign.
  std::vector<NodeId> rebuilding_voters_;
  // Non-OK once halted (see the class comment).
  absl::Status halt_status_;

  // ReadIndex answers waiting for the next Ready.
  std::vector<ReadState> read_states_;

  // Ready bookkeeping. prev_hard_state_ is the hard state last handed out
  // (what the host has persisted or is persisting); applying_ the last
  // committed index handed out for applying.
  HardState prev_hard_state_;
  SoftState prev_soft_state_;
  bool ready_in_flight_ = false;
  Index applying_ = 0;
  // The Ready in flight changed term or vote: Advance checks (one storage
  // read per election) that the host really persisted them.
  bool verify_vote_on_advance_ = false;

  ReplicaStats stats_;
};

}  // namespace spate::raft

#endif  // SPATE_RAFT_REPLICA_H_
