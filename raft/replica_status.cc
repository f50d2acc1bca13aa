#include "raft/replica_status.h"

#include "absl/strings/str_cat.h"
#include "raft/conf_change.h"

namespace spate::raft {

const char* DropReasonName(DropReason reason) {
  switch (reason) {
    case DropReason::kWrongGroup:
      return "wrong_group";
    case DropReason::kWrongRecipient:
      return "wrong_recipient";
    case DropReason::kMalformed:
      return "malformed";
    case DropReason::kUnknownPeer:
      return "unknown_peer";
    case DropReason::kStaleTerm:
      return "stale_term";
    case DropReason::kLeaseActive:
      return "lease_active";
    case DropReason::kHalted:
      return "halted";
    case DropReason::kCount:
      break;
  }
  return "?";
}

uint64_t ReplicaStats::dropped_total() const {
  uint64_t total = 0;
  for (uint64_t n : dropped) total += n;
  return total;
}

std::string ReplicaStatus::DebugString() const {
  std::string out = absl::StrCat(
      id, " ", RoleName(role), " term=", term, " vote=", vote,
      " leader=", leader, " commit=", commit, " applied=", applied, " log=[",
      first_index, ",", last_index, "] ", ConfStateString(conf_state));
  if (lead_transferee != kNoNode) {
    absl::StrAppend(&out, " transferee=", lead_transferee);
  }
  if (quiesced) absl::StrAppend(&out, " quiesced");
  if (halted) absl::StrAppend(&out, " halted(", halt_status.ToString(), ")");
  for (const PeerStatus& peer : peers) {
    absl::StrAppend(&out, "\n  ", peer.id, ": ", ProgressStateName(peer.state),
                    " match=", peer.match, " next=", peer.next);
    if (peer.learner) absl::StrAppend(&out, " learner");
    if (!peer.recent_active) absl::StrAppend(&out, " inactive");
    if (peer.inflight_msgs > 0) {
      absl::StrAppend(&out, " inflight=", peer.inflight_msgs);
    }
  }
  return out;
}

}  // namespace spate::raft
