// Single-server membership changes on a ConfState (Raft thesis §4.1): each
// ConfChange adds, removes, promotes or demotes exactly one node, so any
// majority of the old voters overlaps any majority of the new ones and no
// joint consensus is needed. Pure functions; the Replica enforces the rest of
// the protocol (one change pending at a time, only after the leader
// committed an entry of its term).
//
// Semantics of each change against a configuration:
//   ADD_VOTER     absent -> voter; learner -> voter (promotion); voter: no-op
//   ADD_LEARNER   absent -> learner; voter -> learner (demotion); learner:
//                 no-op
//   REMOVE_VOTER  voter or learner -> absent; absent: no-op
// A change that would leave no voter is refused.
// Threading: pure functions.
#ifndef SPATE_RAFT_CONF_CHANGE_H_
#define SPATE_RAFT_CONF_CHANGE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/raft.pb.h"
#include "raft/types.h"

namespace spate::raft {

// OK if `cs` is well formed: no node 0, no duplicates, no node both voter
// and learner. (An empty ConfState is well formed: a joining replica.)
absl::Status ValidateConfState(const ConfState& cs);

// `cs` with voters and learners sorted (the canonical form persisted and
// compared everywhere).
ConfState NormalizeConfState(ConfState cs);

// Applies `cc` to `cs` (which must be valid): the new, normalized ConfState,
// or InvalidArgument (bad node id or type, or no voter left) with `cs`
// untouched.
absl::StatusOr<ConfState> ApplyConfChangeTo(const ConfState& cs,
                                            const ConfChange& cc);

bool IsVoter(const ConfState& cs, NodeId id);
bool IsLearner(const ConfState& cs, NodeId id);

// "voters=(1,2,3) learners=(4)".
std::string ConfStateString(const ConfState& cs);
// "add-voter 4" / "remove-voter 2" / "add-learner 5".
std::string ConfChangeString(const ConfChange& cc);

}  // namespace spate::raft

#endif  // SPATE_RAFT_CONF_CHANGE_H_
