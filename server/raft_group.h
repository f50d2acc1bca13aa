// RaftGroup: one raft group hosted on this node — the Replica, its LogStore,
// and the proposals waiting for their entries to be applied. It knows
// nothing about what the entries mean: the node applies them through the
// group's state machine (ChannelFsm or MetaFsm) and hands each result to
// the waiter of that index.
//
// A proposal completes exactly once: with the apply result when its entry
// is applied at the index and term it was proposed with, or with
// UNAVAILABLE ("retry") when leadership changed and the entry was replaced
// or may never commit. Clients retry publishes safely: guids deduplicate.
//
// "Serving" means: this replica leads and has applied the first entry of
// its term, so its state machine reflects every committed command and
// leader-side checks (durable in use, start positions) are correct.
//
// Threading: owned by the node's event loop.
#ifndef SPATE_SERVER_RAFT_GROUP_H_
#define SPATE_SERVER_RAFT_GROUP_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "raft/replica.h"
#include "storage/kv.h"
#include "storage/log_store.h"

namespace spate::server {

struct ChannelApplyResult;
struct MetaApplyResult;

// What a proposal's waiter learns. Exactly one of channel/meta is set when
// status is OK; the pointee lives only during the call.
struct ApplyOutcome {
  absl::Status status;
  const ChannelApplyResult* channel = nullptr;
  const MetaApplyResult* meta = nullptr;
};

using ProposalDone = absl::AnyInvocable<void(const ApplyOutcome&)>;
using ServingDone = absl::AnyInvocable<void(absl::Status)>;
// Builds a snapshot of the group's state machine as of its applied index
// (raft calls it, through LogReader::GetSnapshot, when a follower needs
// one). Unavailable asks raft to try again later.
using SnapshotMaker = std::function<absl::StatusOr<raft::Snapshot>()>;

// The LogReader raft sees: the group's LogStore for the log, and a fresh
// snapshot of the state machine from `maker` (Spate does not keep state
// images: the store is the state, and a snapshot is cut when needed).
class GroupLogReader : public raft::LogReader {
 public:
  GroupLogReader(const storage::LogStore* log, SnapshotMaker maker)
      : log_(log), maker_(std::move(maker)) {}
  absl::StatusOr<raft::InitialState> LoadInitialState() const override {
    return log_->LoadInitialState();
  }
  absl::StatusOr<std::vector<raft::Entry>> Entries(
      raft::Index lo, raft::Index hi, uint64_t max_bytes) const override {
    return log_->Entries(lo, hi, max_bytes);
  }
  absl::StatusOr<raft::Term> TermAt(raft::Index i) const override {
    return log_->TermAt(i);
  }
  raft::Index FirstIndex() const override { return log_->FirstIndex(); }
  raft::Index LastIndex() const override { return log_->LastIndex(); }
  absl::StatusOr<raft::Snapshot> GetSnapshot() const override {
    return maker_();
  }

 private:
  const storage::LogStore* log_;
  SnapshotMaker maker_;
};

class RaftGroup {
 public:
  // Opens the persisted group (its LogStore must have been bootstrapped)
  // and creates its replica; `applied` is the state machine's applied index.
  static absl::StatusOr<std::unique_ptr<RaftGroup>> Open(
      storage::Kv* kv, const raft::ReplicaOptions& options,
      SnapshotMaker snapshot_maker);

  raft::GroupId id() const { return replica_->group(); }
  raft::Replica* replica() { return replica_.get(); }
  const raft::Replica* replica() const { return replica_.get(); }
  storage::LogStore* log() { return log_.get(); }

  // Proposes `data`; `done` runs when it is applied or fails (possibly
  // right away, e.g. FailedPrecondition when not leader → mapped to
  // UNAVAILABLE with the leader hint in the message).
  void Propose(std::string data, ProposalDone done);

  // The node applied the entry at `index` with `term`: completes its waiter
  // (if any) with `outcome`, or with UNAVAILABLE when the waiter expected
  // another term. Also fails waiters at lower indexes that were skipped.
  void Applied(raft::Index index, raft::Term term, const ApplyOutcome& outcome);
  raft::Index applied_index() const { return applied_index_; }

  // A Ready reported a role or leader change.
  void OnSoftState(const raft::SoftState& state);
  bool serving() const;
  bool leader() const { return replica_->role() == raft::Role::kLeader; }
  // The leader named by the last soft state seen (kNoNode before any).
  raft::NodeId known_leader() const { return known_leader_; }
  raft::Role known_role() const { return known_role_; }

  // Runs `done(OK)` once serving, or `done(UNAVAILABLE)` after
  // `deadline_ns` (checked by ExpireServingWaiters).
  void WhenServing(int64_t deadline_ns, ServingDone done);
  // Like WhenServing, but also runs `done(OK)` as soon as another node is
  // known to lead (so the caller can forward).
  void WhenRoutable(int64_t deadline_ns, ServingDone done);
  // The known leader: this node when serving, another node, or kNoNode.
  raft::NodeId leader_id() const { return replica_->leader(); }

  // Linearizable read barrier (ReadIndex): `done(OK)` once this replica
  // has applied everything committed when the barrier was asked for;
  // UNAVAILABLE when no leader answers before `deadline_ns`.
  void ReadBarrier(int64_t deadline_ns, ServingDone done);
  // A Ready carried read states (the node calls this before applying).
  void OnReadStates(const std::vector<raft::ReadState>& states);
  // The state machine installed a snapshot at `index`: proposals waiting at
  // or below it cannot learn their outcome and fail UNAVAILABLE (retry).
  void AppliedSnapshot(raft::Index index);
  void ExpireServingWaiters(int64_t now_ns);
  // Runs serving waiters if serving now.
  void MaybeStartServing();

  // One raft tick unless the group is quiesced (idle groups cost nothing).
  // A leader that stayed quiescent (everything committed, applied and
  // acknowledged) for `quiesce_after_ticks` ticks quiesces: it tells its
  // followers and stops being ticked until something happens.
  void Tick(int quiesce_after_ticks);
  bool quiesced() const { return replica_->quiesced(); }
  // The leader's node is believed dead: a quiesced follower starts
  // ticking again so it can elect a new leader.
  void WakeIfLedBy(raft::NodeId node);

  // Fails every waiting proposal and serving waiter (leadership lost, group
  // removed, node stopping).
  void FailAll(const absl::Status& status);
  size_t waiting_proposals() const { return waiters_.size(); }

 private:
  RaftGroup(std::unique_ptr<storage::LogStore> log,
            std::unique_ptr<GroupLogReader> reader);

  struct Waiter {
    raft::Term term;
    ProposalDone done;
  };
  struct ServingWaiter {
    int64_t deadline_ns;
    ServingDone done;
    bool routable = false;  // also satisfied by a known remote leader
  };
  struct ReadWaiter {
    int64_t deadline_ns;
    raft::Index index = 0;  // 0 until the read state arrived
    ServingDone done;
  };
  void RunReadWaiters();

  std::unique_ptr<storage::LogStore> log_;
  std::unique_ptr<GroupLogReader> reader_;
  std::unique_ptr<raft::Replica> replica_;
  absl::btree_map<raft::Index, Waiter> waiters_;
  std::vector<ServingWaiter> serving_waiters_;
  raft::Index applied_index_ = 0;
  // Consecutive ticks this leader was quiescent.
  int quiescent_ticks_ = 0;
  // Index of the first entry of this replica's current leadership term.
  raft::Index term_start_index_ = 0;
  raft::NodeId known_leader_ = raft::kNoNode;
  raft::Role known_role_ = raft::Role::kFollower;
  absl::btree_map<uint64_t, ReadWaiter> read_waiters_;  // by context
  uint64_t next_read_context_ = 1;
};

}  // namespace spate::server

#endif  // SPATE_SERVER_RAFT_GROUP_H_
