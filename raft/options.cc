#include "raft/options.h"

#include "absl/strings/str_cat.h"

namespace spate::raft {

absl::Status ReplicaOptions::Validate() const {
  if (id == kNoNode) {
    return absl::InvalidArgumentError("ReplicaOptions.id must be >= 1");
  }
  if (heartbeat_ticks < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ReplicaOptions.heartbeat_ticks must be >= 1, got ", heartbeat_ticks));
  }
  if (election_ticks <= heartbeat_ticks) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ReplicaOptions.election_ticks (", election_ticks,
        ") must be greater than heartbeat_ticks (", heartbeat_ticks, ")"));
  }
  if (votes_withheld_ticks < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("ReplicaOptions.votes_withheld_ticks must be >= 0, got ",
                     votes_withheld_ticks));
  }
  if (inflight_msgs_max < 1) {
    return absl::InvalidArgumentError(
        "ReplicaOptions.inflight_msgs_max must be >= 1");
  }
  if (append_bytes_max < 1) {
    return absl::InvalidArgumentError(
        "ReplicaOptions.append_bytes_max must be >= 1");
  }
  if (inflight_bytes_max < append_bytes_max) {
    return absl::InvalidArgumentError(
        absl::StrCat("ReplicaOptions.inflight_bytes_max (", inflight_bytes_max,
                     ") must be >= append_bytes_max (", append_bytes_max, ")"));
  }
  if (committed_bytes_max < 1) {
    return absl::InvalidArgumentError(
        "ReplicaOptions.committed_bytes_max must be >= 1");
  }
  if (uncommitted_bytes_max < 1) {
    return absl::InvalidArgumentError(
        "ReplicaOptions.uncommitted_bytes_max must be >= 1");
  }
  return absl::OkStatus();
}

}  // namespace spate::raft
