// Majority-quorum arithmetic for one voter set (Raft §5.2 elections, §5.3
// commitment). Pure functions over plain values; no state, no allocation for
// groups of up to 7 voters. Spate changes membership one server at a time
// (thesis §4.1), so a single majority config is all the core needs.
// Threading: pure functions, callable from anywhere.
#ifndef SPATE_RAFT_QUORUM_H_
#define SPATE_RAFT_QUORUM_H_

#include <cstddef>

#include "absl/types/span.h"
#include "raft/types.h"

namespace spate::raft {

enum class VoteResult {
  kPending,  // neither a majority of grants nor of rejections yet
  kLost,     // a majority rejected: the election cannot be won
  kWon,      // a majority granted
};

const char* VoteResultName(VoteResult result);

// The number of voters that make a majority of `voters` (0 for none).
inline size_t MajoritySize(size_t voters) {
  return voters == 0 ? 0 : voters / 2 + 1;
}

// The highest index that a majority of voters have acknowledged, given one
// match index per voter (order irrelevant). 0 for an empty voter set: an
// empty configuration commits nothing.
Index MajorityCommitted(absl::Span<const Index> match_per_voter);

// The outcome of an election among `voters` voters of which `granted`
// granted and `rejected` rejected (the rest have not answered).
// Requires granted + rejected <= voters.
VoteResult MajorityVote(size_t voters, size_t granted, size_t rejected);

}  // namespace spate::raft

#endif  // SPATE_RAFT_QUORUM_H_
