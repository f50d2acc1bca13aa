#include "raft/quorum.h"

#include <algorithm>
#include <functional>

#include "absl/container/inlined_vector.h"
#include "base/check.h"

namespace spate::raft {

const char* VoteResultName(VoteResult result) {
  switch (result) {
    case VoteResult::kPending:
      return "pending";
    case VoteResult::kLost:
      return "lost";
    case VoteResult::kWon:
      return "won";
  }
  return "?";
}

Index MajorityCommitted(absl::Span<const Index> match_per_voter) {
  if (match_per_voter.empty()) return 0;
  absl::InlinedVector<Index, 7> sorted(match_per_voter.begin(),
                                       match_per_voter.end());
  // Sorted in decreasing order, the (majority)-th largest index is held by a
  // majority: it and every larger one.
  const size_t pos = MajoritySize(sorted.size()) - 1;
  std::nth_element(sorted.begin(), sorted.begin() + pos, sorted.end(),
                   std::greater<Index>());
  return sorted[pos];
}

VoteResult MajorityVote(size_t voters, size_t granted, size_t rejected) {
  CHECK_LE(granted + rejected, voters);
  if (voters == 0) return VoteResult::kPending;
  const size_t majority = MajoritySize(voters);
  if (granted >= majority) return VoteResult::kWon;
  // The rest may still grant: lost only if even that cannot reach a majority.
  if (voters - rejected < majority) return VoteResult::kLost;
  return VoteResult::kPending;
}

}  // namespace spate::raft
