// CheckInvariants: the single-replica invariants of the raft core, checked
// from the outside after every Step/Tick by tests and the simulator (LogCabin's
// Invariants, TigerBeetle's `defer self.invariants()`). Cross-replica safety
// (one leader per term, log matching, committed entries never change) needs
// the whole cluster and lives in the simulator's checker.
//
// Checked: applied <= applying <= committed <= last index; the unstable tail
// is contiguous and above the persisted commit; role consistency (a leader
// leads itself, voted for itself and is a voter; a candidate voted for
// itself); leader progress (match < next <= last + 1, inflight window within
// its bound, snapshot state has a pending snapshot); a halted replica is a
// leaderless follower.
// Threading: reads the replica; call from its owner.
#ifndef SPATE_RAFT_INVARIANTS_H_
#define SPATE_RAFT_INVARIANTS_H_

#include "absl/status/status.h"
#include "raft/replica.h"

namespace spate::raft {

// OK, or Internal listing every violated invariant.
absl::Status CheckInvariants(const Replica& replica);

}  // namespace spate::raft

#endif  // SPATE_RAFT_INVARIANTS_H_
