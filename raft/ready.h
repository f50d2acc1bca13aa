// Ready: everything a Replica asks its host to do, in one batch, and the
// small value types it carries. The host acts on a Ready in this order:
//
//   1. persist snapshot (if any), entries and hard_state, in one write;
//      fsync it when must_sync;
//   2. send messages;
//   3. apply committed_entries in order (and install the snapshot into the
//      state machine); call Replica::ApplyConfChange for conf changes;
//   4. call Replica::Advance(ready).
//
// Step 1 before step 2 is what makes votes and acknowledgements durable
// before anyone relies on them (Raft §5.2/§5.3, DESIGN.md §6).
// Threading: plain values.
#ifndef SPATE_RAFT_READY_H_
#define SPATE_RAFT_READY_H_

#include <optional>
#include <string>
#include <vector>

#include "proto/raft.pb.h"
#include "raft/types.h"

namespace spate::raft {

enum class Role { kFollower, kPreCandidate, kCandidate, kLeader };

const char* RoleName(Role role);

// Volatile state the host may want to react to (leadership changes).
struct SoftState {
  NodeId leader = kNoNode;
  Role role = Role::kFollower;

  bool operator==(const SoftState& other) const {
    return leader == other.leader && role == other.role;
  }
  bool operator!=(const SoftState& other) const { return !(*this == other); }
};

// The answer to a ReadIndex request: once the host has applied up to
// `index`, a read of its state machine is linearizable.
struct ReadState {
  Index index = 0;
  std::string context;
};

struct Ready {
  // Term, vote and commit to persist, when they changed.
  std::optional<HardState> hard_state;
  // Entries to append to the persisted log. The first may be at or below the
  // persisted last index: then the persisted entries from there on are
  // replaced (a conflicting suffix, Raft §5.3).
  std::vector<Entry> entries;
  // An incoming snapshot to persist and install; it replaces the whole log
  // and the membership (snapshot->metadata().conf_state()).
  std::optional<Snapshot> snapshot;
  // Whether step 1 must be fsynced before sending: set when entries, a
  // snapshot, or the term or vote changed. A change of the commit index alone
  // need not be synced (it can be re-learned from the leader).
  bool must_sync = false;
  // Messages to send, only after step 1. For every MSG_SNAPSHOT the host
  // later calls Replica::ReportSnapshot with its fate.
  std::vector<Message> messages;
  // Entries to apply, in order, after step 1. They may include entries from
  // `entries` of this same Ready.
  std::vector<Entry> committed_entries;
  // Answers to ReadIndex requests.
  std::vector<ReadState> read_states;
  // Role or leader changed.
  std::optional<SoftState> soft_state;

  bool empty() const {
    return !hard_state && entries.empty() && !snapshot && messages.empty() &&
           committed_entries.empty() && read_states.empty() && !soft_state;
  }
};

}  // namespace spate::raft

#endif  // SPATE_RAFT_READY_H_
