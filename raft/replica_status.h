// ReplicaStatus (a snapshot of one replica's state, for monitoring, tests and
// the host's decisions) and ReplicaStats (monotonic counters: why messages
// were dropped, elections, proposals...). Exported by the server as
// /streaming/*z fields and Prometheus counters.
// Threading: plain values.
#ifndef SPATE_RAFT_REPLICA_STATUS_H_
#define SPATE_RAFT_REPLICA_STATUS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "proto/raft.pb.h"
#include "raft/progress.h"
#include "raft/ready.h"
#include "raft/types.h"

namespace spate::raft {

// Why an incoming message was not acted upon.
enum class DropReason {
  kWrongGroup,      // m.group is another group: a routing bug in the host
  kWrongRecipient,  // m.to is not this replica
  kMalformed,       // fields inconsistent (see Replica::Step)
  kUnknownPeer,     // sender is not a member and the type requires it
  kStaleTerm,       // m.term below ours (a deposed leader, a late message)
  kLeaseActive,     // vote request ignored: we hear from a live leader
  kHalted,          // this replica stopped after a storage error
  kCount,
};

const char* DropReasonName(DropReason reason);

struct ReplicaStats {
  std::array<uint64_t, static_cast<size_t>(DropReason::kCount)> dropped{};
  uint64_t pre_campaigns = 0;      // pre-vote rounds started
  uint64_t campaigns = 0;          // elections started (term incremented)
  uint64_t elections_won = 0;      // became leader
  uint64_t leader_step_downs = 0;  // stopped leading (any reason)
  uint64_t check_quorum_step_downs = 0;
  uint64_t proposals = 0;  // entries accepted by Propose*
  uint64_t proposals_refused = 0;
  uint64_t snapshots_sent = 0;
  uint64_t snapshots_restored = 0;  // incoming snapshots accepted
  uint64_t append_rejects_sent = 0;
  // Followers found to have lost acknowledged entries (wiped storage).
  uint64_t followers_lost_entries = 0;
  uint64_t transfers_started = 0;
  uint64_t read_indexes_served = 0;
  // Vote requests refused during ReplicaOptions.votes_withheld_ticks.
  uint64_t votes_withheld = 0;
  // Vote and pre-vote requests answered "rebuilding"
  // (ReplicaOptions.rebuilding).
  uint64_t votes_rebuilding = 0;
  // Elections won with every non-rebuilding voter's grant but not a
  // majority of grants (see ReplicaOptions.rebuilding).
  uint64_t elections_won_rebuilding = 0;

  uint64_t dropped_of(DropReason reason) const {
    return dropped[static_cast<size_t>(reason)];
  }
  uint64_t dropped_total() const;
};

struct PeerStatus {
  NodeId id = kNoNode;
  Index match = 0;
  Index next = 0;
  ProgressState state = ProgressState::kProbe;
  bool learner = false;
  bool recent_active = false;
  size_t inflight_msgs = 0;
};

struct ReplicaStatus {
  NodeId id = kNoNode;
  GroupId group = 0;
  Role role = Role::kFollower;
  Term term = 0;
  NodeId vote = kNoNode;
  NodeId leader = kNoNode;
  Index commit = 0;
  Index applied = 0;
  Index first_index = 0;
  Index last_index = 0;
  NodeId lead_transferee = kNoNode;
  bool quiesced = false;
  // Halted after a storage error (halt_status): no longer votes, campaigns,
  // leads or answers; the host must repair the replica (see Replica).
  bool halted = false;
  absl::Status halt_status;
  ConfState conf_state;
  // Leader only: every member but this replica, by id.
  std::vector<PeerStatus> peers;

  std::string DebugString() const;
};

}  // namespace spate::raft

#endif  // SPATE_RAFT_REPLICA_STATUS_H_
