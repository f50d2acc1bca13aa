// Placement: pure decisions about where replicas live and how a raft
// group's membership moves toward them. No I/O; the node applies them.
//
// - A channel has three replicas (all nodes in a smaller cluster).
// - The metadata leader records each channel's desired replicas in its
//   directory entry: new channels on the least loaded nodes; a node being
//   removed is evacuated; after a node joins, replicas move onto it one at
//   a time until loads differ by at most one.
// - Each group's leader moves the raft membership toward the desired set
//   one single-server change at a time: add the new node as a learner,
//   promote it once caught up, then remove a voter that is no longer
//   desired (raft refuses a second pending change anyway).
#ifndef SPATE_SERVER_PLACEMENT_H_
#define SPATE_SERVER_PLACEMENT_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "proto/raft.pb.h"
#include "proto/records.pb.h"
#include "raft/types.h"

namespace spate::server {

inline constexpr size_t kChannelReplicas = 3;

using Directory = absl::btree_map<std::string, ChannelDirectoryEntry>;

// Replicas for a new channel: the `kChannelReplicas` active nodes holding
// the fewest replicas (ties: lower id), ascending.
std::vector<uint64_t> PlaceNewChannel(const std::vector<uint64_t>& active_nodes,
                                      const Directory& directory);

struct ReplicaMove {
  std::string channel;
  std::vector<uint64_t> replicas;  // the new desired set, ascending
};

// Replicas on nodes outside `active_nodes` (leaving or gone) replaced by
// active nodes, at most `max_moves` channels.
std::vector<ReplicaMove> PlanEvacuation(
    const std::vector<uint64_t>& active_nodes, const Directory& directory,
    size_t max_moves);

// One move from the most to the least loaded active node, when their loads
// differ by more than one (after a node joined); nullopt when balanced.
std::optional<ReplicaMove> PlanRebalance(
    const std::vector<uint64_t>& active_nodes, const Directory& directory);

// The next membership change of a group toward `desired` (its leader is
// `self`), or nullopt when the membership matches. `caught_up(node)`
// tells whether a learner has the leader's log. Removing `self` is never
// planned: the leader first hands leadership to another desired voter
// (`*transfer_to` is set to it instead).
std::optional<raft::ConfChange> NextConfChange(
    const std::vector<uint64_t>& desired, const raft::ConfState& current,
    raft::NodeId self, const std::function<bool(raft::NodeId)>& caught_up,
    raft::NodeId* transfer_to);

}  // namespace spate::server

#endif  // SPATE_SERVER_PLACEMENT_H_
