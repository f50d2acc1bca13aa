// ReplicaOptions: every knob of one raft replica, validated once by
// Replica::Create. Values are in raft ticks (the host decides how long a tick
// is), entries or bytes; names carry the unit.
// Threading: a plain value type.
#ifndef SPATE_RAFT_OPTIONS_H_
#define SPATE_RAFT_OPTIONS_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "raft/types.h"

namespace spate::raft {

struct ReplicaOptions {
  // This replica's node id (>= 1) and the group it belongs to. Every outgoing
  // message carries both; incoming messages for another group or node are
  // refused.
  NodeId id = kNoNode;
  GroupId group = 0;

  // A follower that hears nothing from a leader for a randomized timeout in
  // [election_ticks, 2 * election_ticks) starts an election (Raft §5.2). The
  // leader sends heartbeats every heartbeat_ticks and, with check_quorum,
  // steps down after election_ticks without hearing from a quorum.
  int election_ticks = 10;
  int heartbeat_ticks = 1;

  // Flow control per follower in the replicate state (etcd's
  // MaxInflightMsgs/MaxInflightBytes): at most this many AppendEntries, and
  // this many entry bytes, unacknowledged at once.
  size_t inflight_msgs_max = 256;
  uint64_t inflight_bytes_max = 64 << 20;
  // Entry data bytes per AppendEntries (at least one entry is always sent).
  uint64_t append_bytes_max = 1 << 20;
  // Entry data bytes of committed entries handed out in one Ready (at least
  // one entry).
  uint64_t committed_bytes_max = 16 << 20;
  // Entry data bytes a leader accepts into its log before they commit;
  // beyond it Propose returns ResourceExhausted (back-pressure on clients).
  uint64_t uncommitted_bytes_max = 64 << 20;

  // Pre-Vote (thesis §9.6): a candidate first asks whether it could win, so
  // a partitioned node that rejoins does not bump the term and depose a
  // healthy leader.
  bool pre_vote = true;
  // CheckQuorum (thesis §6.2): a leader that has not heard from a quorum
  // within election_ticks steps down; followers that hear from a leader
  // ignore vote requests for election_ticks (leader stickiness).
  bool check_quorum = true;
  // When an entry commits, etcd's leader at once sends every follower an
  // AppendEntries carrying the new commit index, even an empty one. Lazy:
  // followers learn it with the next append or heartbeat instead (at most
  // heartbeat_ticks later; the quiescing heartbeat carries it too). Commit
  // itself and what the leader acknowledges are unchanged; only followers
  // apply a little later, and a one-at-a-time workload sends half the
  // messages (no empty append and no answer to it per commit).
  bool lazy_commit_broadcast = false;

  // A replica whose node may have lost its persisted vote (a wiped or
  // replaced data directory looks exactly like a new one) could grant a
  // second vote in a term it already voted in. For its first this many
  // ticks it neither grants votes nor campaigns, so every election it may
  // have voted in before has ended (a candidate stays in one term for less
  // than 2 * election_ticks). Pre-votes are still answered: they bind
  // nothing. 0: vote at once (a replica whose hard state was found).
  int votes_withheld_ticks = 0;
  // The node lost this replica's store (damage found and the store rebuilt
  // empty) while it was a member: its empty log would vote for any
  // candidate, and two such voters form a majority of three without the
  // data. While rebuilding, the replica neither grants votes (pre-votes
  // included) nor campaigns; it answers vote requests with `rebuilding`
  // set. It stops rebuilding once it has applied up to a commit index
  // learned from a leader (an AppendEntries' commit or a snapshot's index),
  // see Replica::rebuilding(). A candidate wins without the rebuilding
  // voters' grants when every other voter granted (it then holds every
  // committed entry that survives anywhere: see Replica::HandleVoteResponse).
  bool rebuilding = false;
  // Seeds the election jitter (base::Prng). The generator is seeded from
  // (seed, group, id), so replicas configured with the same seed still draw
  // different timeouts. Runs are replayable from the seed.
  uint64_t seed = 0;

  // The host's applied index at restart: committed entries up to it are not
  // handed out again. 0 on a fresh start (or to re-apply everything after
  // the snapshot).
  Index applied = 0;

  // OK, or InvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

}  // namespace spate::raft

#endif  // SPATE_RAFT_OPTIONS_H_
