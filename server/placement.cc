#include "server/placement.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"

namespace spate::server {
namespace {

bool Contains(const google::protobuf::RepeatedField<uint64_t>& nodes,
              uint64_t node) {
  return std::find(nodes.begin(), nodes.end(), node) != nodes.end();
}

bool Contains(const std::vector<uint64_t>& nodes, uint64_t node) {
  return std::find(nodes.begin(), nodes.end(), node) != nodes.end();
}

absl::flat_hash_map<uint64_t, size_t> Loads(
    const std::vector<uint64_t>& active_nodes, const Directory& directory) {
  absl::flat_hash_map<uint64_t, size_t> load;
  for (uint64_t node : active_nodes) load[node] = 0;
  for (const auto& [name, entry] : directory) {
    for (uint64_t node : entry.replicas()) {
      auto it = load.find(node);
      if (it != load.end()) ++it->second;
    }
  }
  return load;
}

// Active nodes not in `exclude`, least loaded first (ties: lower id).
std::vector<uint64_t> ByLoad(const std::vector<uint64_t>& active_nodes,
                             const absl::flat_hash_map<uint64_t, size_t>& load,
                             const std::vector<uint64_t>& exclude) {
  std::vector<uint64_t> nodes;
  for (uint64_t node : active_nodes) {
    if (!Contains(exclude, node)) nodes.push_back(node);
  }
  std::sort(nodes.begin(), nodes.end(), [&](uint64_t a, uint64_t b) {
    const size_t la = load.at(a), lb = load.at(b);
    return la != lb ? la < lb : a < b;
  });
  return nodes;
}

}  // namespace

std::vector<uint64_t> PlaceNewChannel(const std::vector<uint64_t>& active_nodes,
                                      const Directory& directory) {
  std::vector<uint64_t> nodes =
      ByLoad(active_nodes, Loads(active_nodes, directory), {});
  if (nodes.size() > kChannelReplicas) nodes.resize(kChannelReplicas);
  std::sort(nodes.begin(), nodes.end());
  return nodes;
}

std::vector<ReplicaMove> PlanEvacuation(
    const std::vector<uint64_t>& active_nodes, const Directory& directory,
    size_t max_moves) {
  absl::flat_hash_map<uint64_t, size_t> load = Loads(active_nodes, directory);
  std::vector<ReplicaMove> moves;
  for (const auto& [name, entry] : directory) {
    if (moves.size() >= max_moves) break;
    std::vector<uint64_t> kept;
    for (uint64_t node : entry.replicas()) {
      if (Contains(active_nodes, node)) kept.push_back(node);
    }
    if (kept.size() == static_cast<size_t>(entry.replicas_size())) continue;
    const size_t want =
        std::min(kChannelReplicas, std::max(active_nodes.size(), size_t{1}));
    for (uint64_t node : ByLoad(active_nodes, load, kept)) {
      if (kept.size() >= want) break;
      kept.push_back(node);
      ++load[node];
    }
    if (kept.empty()) continue;  // nowhere to go (no active node)
    std::sort(kept.begin(), kept.end());
    moves.push_back({name, std::move(kept)});
  }
  return moves;
}

std::optional<ReplicaMove> PlanRebalance(
    const std::vector<uint64_t>& active_nodes, const Directory& directory) {
  if (active_nodes.size() <= kChannelReplicas) return std::nullopt;
  absl::flat_hash_map<uint64_t, size_t> load = Loads(active_nodes, directory);
  std::vector<uint64_t> order = ByLoad(active_nodes, load, {});
  const uint64_t lightest = order.front();
  const uint64_t heaviest = order.back();
  if (load[heaviest] <= load[lightest] + 1) return std::nullopt;
  for (const auto& [name, entry] : directory) {
    if (!Contains(entry.replicas(), heaviest) ||
        Contains(entry.replicas(), lightest)) {
      continue;
    }
    std::vector<uint64_t> replicas;
    for (uint64_t node : entry.replicas()) {
      replicas.push_back(node == heaviest ? lightest : node);
    }
    std::sort(replicas.begin(), replicas.end());
    return ReplicaMove{name, std::move(replicas)};
  }
  return std::nullopt;
}

std::optional<raft::ConfChange> NextConfChange(
    const std::vector<uint64_t>& desired, const raft::ConfState& current,
    raft::NodeId self, const std::function<bool(raft::NodeId)>& caught_up,
    raft::NodeId* transfer_to) {
  *transfer_to = raft::kNoNode;
  raft::ConfChange change;
  // 1. New nodes join as learners first: they catch up without counting
  //    towards any quorum.
  for (uint64_t node : desired) {
    if (!Contains(current.voters(), node) &&
        !Contains(current.learners(), node)) {
      change.set_type(raft::ConfChange::ADD_LEARNER);
      change.set_node_id(node);
      return change;
    }
  }
  // 2. Caught-up learners become voters; unwanted learners go.
  for (uint64_t node : current.learners()) {
    if (!Contains(desired, node)) {
      change.set_type(raft::ConfChange::REMOVE_VOTER);
      change.set_node_id(node);
      return change;
    }
    if (caught_up(node)) {
      change.set_type(raft::ConfChange::ADD_VOTER);
      change.set_node_id(node);
      return change;
    }
  }
  if (current.learners_size() > 0) return std::nullopt;  // still catching up
  // 3. Only then, with every desired node voting, remove the others.
  for (uint64_t node : current.voters()) {
    if (Contains(desired, node)) continue;
    if (node == self) {
      for (uint64_t other : desired) {
        if (other != self && Contains(current.voters(), other)) {
          *transfer_to = other;
          break;
        }
      }
      return std::nullopt;
    }
    change.set_type(raft::ConfChange::REMOVE_VOTER);
    change.set_node_id(node);
    return change;
  }
  return std::nullopt;
}

}  // namespace spate::server
