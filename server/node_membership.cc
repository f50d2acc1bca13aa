// Node, part: cluster membership. The metadata leader records the node
// table and places channel replicas (placement.h); every node, once a
// second, makes its local replicas follow the directory and, for groups it
// leads, moves the raft membership one change at a time toward it. Leader
// balancing hands leaderships to less loaded replicas. Loop thread only.
#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/check.h"
#include "base/log.h"
#include "server/node.h"
#include "server/placement.h"
#include "storage/keys.h"

namespace spate::server {

// ---- Membership ----

std::vector<uint64_t> Node::ActiveNodes() const {
  if (meta_->nodes().empty()) {
    return std::vector<uint64_t>(cluster_nodes_.begin(), cluster_nodes_.end());
  }
  std::vector<uint64_t> active;
  for (const auto& [id, node] : meta_->nodes()) {
    if (node.state() == NodeRecord::ACTIVE) active.push_back(id);
  }
  return active;
}

void Node::RefreshPeers() {
  for (const PeerConfig& peer : config_.node().peers()) {
    known_addresses_[peer.id()] = peer;
  }
  for (const auto& [id, node] : meta_->nodes()) {
    PeerConfig& peer = known_addresses_[id];
    peer.set_id(id);
    peer.set_cluster_address(node.cluster_address());
    peer.set_client_address(node.client_address());
  }
  // Peers: the node table (or the configured peers before it exists), and
  // every member of a local group's current membership — a node being
  // moved out keeps its links until no group of ours counts on it.
  absl::flat_hash_set<raft::NodeId> wanted;
  if (meta_->nodes().empty()) {
    for (const PeerConfig& peer : config_.node().peers())
      wanted.insert(peer.id());
  } else {
    for (const auto& [id, node] : meta_->nodes()) wanted.insert(id);
  }
  auto add_members = [&](RaftGroup* group) {
    const raft::ConfState conf = group->replica()->Status().conf_state;
    for (uint64_t id : conf.voters()) wanted.insert(id);
    for (uint64_t id : conf.learners()) wanted.insert(id);
  };
  add_members(meta_group_.get());
  for (auto& [id, host] : channels_) add_members(host->group());
  wanted.erase(self_);
  peers_.clear();
  for (raft::NodeId id : wanted) {
    auto known = known_addresses_.find(id);
    if (known != known_addresses_.end()) peers_[id] = known->second;
  }
  cluster_nodes_.assign(1, self_);
  PeerAddresses cluster;
  absl::flat_hash_map<raft::NodeId, std::string> clients;
  for (const auto& [id, peer] : peers_) {
    cluster_nodes_.push_back(id);
    cluster[id] = peer.cluster_address();
    if (!peer.client_address().empty()) clients[id] = peer.client_address();
  }
  std::sort(cluster_nodes_.begin(), cluster_nodes_.end());
  if (transport_ != nullptr) {
    absl::Status status = transport_->SetPeers(cluster);
    if (!status.ok()) LOG(WARNING) << "transport peers not updated: " << status;
  }
  if (forwarder_ != nullptr) forwarder_->SetAddresses(std::move(clients));
}

void Node::ReconcileMembership() {
  ReconcileLocalReplicas();
  for (auto& [id, host] : channels_) {
    if (!host->group()->serving()) continue;
    const ChannelDirectoryEntry* entry = meta_->FindChannel(host->fsm().name());
    if (entry == nullptr || entry->replicas().empty()) continue;
    ReconcileGroupMembers(host->group(),
                          std::vector<uint64_t>(entry->replicas().begin(),
                                                entry->replicas().end()));
  }
  if (meta_group_->serving()) ReconcileMetadataLeader();
}

void Node::MaybeFinishRebuild() {
  if (!rebuilding_ || meta_group_->replica()->rebuilding()) return;
  // The metadata replica caught up, so every channel this node held before
  // the damage is in the directory and has a local replica by now.
  for (const auto& [name, entry] : meta_->channels()) {
    if (std::find(entry.replicas().begin(), entry.replicas().end(), self_) ==
        entry.replicas().end()) {
      continue;
    }
    auto it = channels_.find(entry.channel_id());
    if (it == channels_.end() || it->second->group()->replica()->rebuilding()) {
      return;
    }
  }
  storage::WriteBatch batch;
  batch.Delete(storage::Space::kState, storage::RebuildingKey());
  if (absl::Status s = kv_->Write(batch, /*sync=*/true); !s.ok()) {
    LOG(WARNING) << "cannot clear the rebuilding marker: " << s;
    return;  // retried in a second
  }
  rebuilding_ = false;
  LOG(INFO) << "store rebuilt: every local replica caught up from a leader";
}

void Node::ReconcileLocalReplicas() {
  storage::WriteBatch batch;
  for (const auto& [name, entry] : meta_->channels()) {
    const auto& replicas = entry.replicas();
    if (std::find(replicas.begin(), replicas.end(), self_) == replicas.end() ||
        FindChannel(entry.channel_id()) != nullptr ||
        pending_fsms_.contains(entry.channel_id())) {
      continue;
    }
    // A replica moved here: join the group empty; its leader adds this
    // node as a learner and catches it up.
    LOG(INFO) << "joining channel as a new replica channel=" << name;
    StageChannelCreate(entry, /*bootstrap=*/false, &batch);
  }
  for (auto& [id, host] : channels_) {
    const ChannelDirectoryEntry* entry = meta_->FindChannel(host->fsm().name());
    if (entry == nullptr) continue;  // deleted through its own command
    const auto& replicas = entry->replicas();
    if (std::find(replicas.begin(), replicas.end(), self_) != replicas.end()) {
      continue;
    }
    // Moved away: drop the local copy once the group removed this node.
    const raft::ConfState conf = host->group()->replica()->Status().conf_state;
    const bool member =
        std::find(conf.voters().begin(), conf.voters().end(), self_) !=
            conf.voters().end() ||
        std::find(conf.learners().begin(), conf.learners().end(), self_) !=
            conf.learners().end();
    if (member || (conf.voters().empty() && conf.learners().empty())) continue;
    LOG(INFO) << "dropping replica moved to other nodes channel="
              << host->fsm().name();
    StageChannelDelete(id, host->fsm().name(), &batch);
  }
  if (batch.empty()) return;
  absl::Status status = kv_->Write(batch, /*sync=*/true);
  CHECK(status.ok()) << "replica change write failed: " << status;
  for (uint64_t id : deleted_channels_) channels_.erase(id);
  deleted_channels_.clear();
  MaterializeCreatedChannels();
}

void Node::ReconcileGroupMembers(RaftGroup* group,
                                 const std::vector<uint64_t>& desired) {
  raft::Replica* replica = group->replica();
  const raft::ReplicaStatus status = replica->Status();
  if (status.role != raft::Role::kLeader ||
      replica->pending_conf_index() > status.applied) {
    return;  // not leading, or a change is still on its way
  }
  auto caught_up = [&](raft::NodeId node) {
    for (const raft::PeerStatus& peer : status.peers) {
      if (peer.id == node) return peer.match >= status.commit;
    }
    return false;
  };
  raft::NodeId transfer_to = raft::kNoNode;
  std::optional<raft::ConfChange> change = NextConfChange(
      desired, status.conf_state, self_, caught_up, &transfer_to);
  if (change.has_value()) {
    absl::StatusOr<raft::Index> index = replica->ProposeConfChange(*change);
    LOG(INFO) << "membership change group=" << group->id() << " "
              << raft::ConfChange::Type_Name(change->type())
              << " node=" << change->node_id() << " "
              << (index.ok() ? "proposed" : index.status().ToString());
  } else if (transfer_to != raft::kNoNode) {
    // This leader is being moved out: hand over first.
    absl::Status status = replica->TransferLeadership(transfer_to);
    LOG(INFO) << "leaving group=" << group->id()
              << ": transferring leadership to=" << transfer_to << " "
              << status;
  }
}

void Node::ProposeChannelReplicas(const std::string& name,
                                  std::vector<uint64_t> replicas) {
  const ChannelDirectoryEntry* entry = meta_->FindChannel(name);
  if (entry == nullptr || !replica_updates_in_flight_.insert(name).second) {
    return;
  }
  MetaCommand command;
  ChannelReplicas* update = command.mutable_channel_replicas();
  update->set_name(name);
  update->set_channel_id(entry->channel_id());
  for (uint64_t node : replicas) update->add_replicas(node);
  LOG(INFO) << "moving channel replicas channel=" << name
            << " to=" << update->ShortDebugString();
  ProposeMeta(command, [this, name](const ApplyOutcome&) {
    replica_updates_in_flight_.erase(name);
  });
}

void Node::ReconcileMetadataLeader() {
  if (meta_->nodes().empty()) {
    // A new cluster: record its configured members, all in one command.
    if (recording_nodes_) return;
    recording_nodes_ = true;
    MetaCommand command;
    for (raft::NodeId id : cluster_nodes_) {
      NodeRecord* node = command.mutable_upsert_node()->add_nodes();
      node->set_node_id(id);
      if (id == self_) {
        const NodeConfig& me = config_.node();
        node->set_cluster_address(me.advertise_cluster_address().empty()
                                      ? me.cluster_address()
                                      : me.advertise_cluster_address());
        node->set_client_address(me.advertise_client_address().empty()
                                     ? me.client_address()
                                     : me.advertise_client_address());
      } else if (auto peer = peers_.find(id); peer != peers_.end()) {
        node->set_cluster_address(peer->second.cluster_address());
        node->set_client_address(peer->second.client_address());
      }
    }
    ProposeMeta(command,
                [this](const ApplyOutcome&) { recording_nodes_ = false; });
    return;
  }
  const std::vector<uint64_t> active = ActiveNodes();
  absl::flat_hash_set<uint64_t> holding;  // nodes holding replicas
  for (const auto& [name, entry] : meta_->channels()) {
    for (uint64_t node : entry.replicas()) holding.insert(node);
  }
  // Metadata membership: active nodes, plus leaving ones until their
  // replicas moved away.
  std::vector<uint64_t> desired = active;
  for (const auto& [id, node] : meta_->nodes()) {
    if (node.state() == NodeRecord::LEAVING && holding.contains(id)) {
      desired.push_back(id);
    }
  }
  std::sort(desired.begin(), desired.end());
  ReconcileGroupMembers(meta_group_.get(), desired);

  std::vector<ReplicaMove> moves =
      PlanEvacuation(active, meta_->channels(), /*max_moves=*/8);
  for (ReplicaMove& move : moves) {
    ProposeChannelReplicas(move.channel, std::move(move.replicas));
  }
  if (moves.empty() && replica_updates_in_flight_.empty()) {
    if (std::optional<ReplicaMove> move =
            PlanRebalance(active, meta_->channels())) {
      ProposeChannelReplicas(move->channel, std::move(move->replicas));
    }
  }
  // Forget nodes that left completely.
  const raft::ConfState conf = meta_group_->replica()->Status().conf_state;
  for (const auto& [id, node] : meta_->nodes()) {
    const bool member =
        std::find(conf.voters().begin(), conf.voters().end(), id) !=
            conf.voters().end() ||
        std::find(conf.learners().begin(), conf.learners().end(), id) !=
            conf.learners().end();
    if (node.state() == NodeRecord::LEAVING && !holding.contains(id) &&
        !member) {
      MetaCommand command;
      command.mutable_delete_node()->set_node_id(id);
      LOG(INFO) << "node left the cluster node=" << id;
      ProposeMeta(command, [](const ApplyOutcome&) {});
    }
  }
}

void Node::AddNode(const AddNodeRequest& request, int hops, StatusDone done) {
  auto shared = std::make_shared<StatusDone>(std::move(done));
  if (!Post([this, request, hops, shared] {
        RouteMeta(
            hops, Deadline(),
            [this, request, hops, shared](absl::StatusOr<raft::NodeId> leader) {
              if (!leader.ok()) {
                (*shared)(leader.status());
                return;
              }
              if (*leader != self_) {
                (*shared)(absl::UnavailableError(absl::StrCat(
                    "node ", *leader, " leads the metadata group: ask it")));
                return;
              }
              if (meta_->nodes().empty()) {
                (*shared)(absl::UnavailableError(
                    "the cluster's members are being recorded; retry"));
                return;
              }
              if (meta_->nodes().contains(request.node_id()) &&
                  meta_->nodes().at(request.node_id()).state() ==
                      NodeRecord::ACTIVE) {
                (*shared)(absl::OkStatus());  // already a member
                return;
              }
              MetaCommand command;
              NodeRecord* node = command.mutable_upsert_node()->add_nodes();
              node->set_node_id(request.node_id());
              node->set_cluster_address(request.cluster_address());
              node->set_client_address(request.client_address());
              ProposeMeta(command, [shared](const ApplyOutcome& outcome) {
                (*shared)(OutcomeStatus(outcome));
              });
            });
      })) {
    (*shared)(absl::UnavailableError("server is busy or stopping; retry"));
  }
}

void Node::RemoveNode(const RemoveNodeRequest& request, int hops,
                      StatusDone done) {
  auto shared = std::make_shared<StatusDone>(std::move(done));
  if (!Post([this, request, hops, shared] {
        RouteMeta(
            hops, Deadline(),
            [this, request, shared](absl::StatusOr<raft::NodeId> leader) {
              if (!leader.ok()) {
                (*shared)(leader.status());
                return;
              }
              if (*leader != self_) {
                (*shared)(absl::UnavailableError(absl::StrCat(
                    "node ", *leader, " leads the metadata group: ask it")));
                return;
              }
              auto it = meta_->nodes().find(request.node_id());
              if (it == meta_->nodes().end()) {
                (*shared)(absl::NotFoundError(absl::StrCat(
                    "no node ", request.node_id(), " in the cluster")));
                return;
              }
              if (it->second.state() == NodeRecord::ACTIVE &&
                  ActiveNodes().size() <= 1) {
                (*shared)(absl::FailedPreconditionError(
                    "cannot remove the last active node"));
                return;
              }
              MetaCommand command;
              NodeRecord* leaving = command.mutable_upsert_node()->add_nodes();
              *leaving = it->second;
              leaving->set_state(NodeRecord::LEAVING);
              ProposeMeta(command, [shared](const ApplyOutcome& outcome) {
                (*shared)(OutcomeStatus(outcome));
              });
            });
      })) {
    (*shared)(absl::UnavailableError("server is busy or stopping; retry"));
  }
}

void Node::BalanceLeaders() {
  if (cluster_nodes_.size() < 2) return;
  // Leaders per node among the channels this node replicates (in a 3-node
  // cluster: all of them), counting only nodes that are up.
  absl::flat_hash_map<raft::NodeId, int> leads;
  int up_nodes = 0;
  for (raft::NodeId node : ActiveNodes()) {
    if (node == self_ || PeerUp(node)) {
      leads[node] = 0;
      ++up_nodes;
    }
  }
  int channels = 0;
  for (auto& [id, host] : channels_) {
    ++channels;
    auto it = leads.find(host->group()->leader_id());
    if (it != leads.end()) ++it->second;
  }
  const int fair = (channels + up_nodes - 1) / std::max(up_nodes, 1);
  int mine = leads[self_];
  // A few transfers per round: every node converges without a stampede.
  constexpr int kTransfersPerRound = 4;
  int transfers = 0;
  for (auto& [id, host] : channels_) {
    if (mine <= fair || transfers >= kTransfersPerRound) break;
    RaftGroup* group = host->group();
    if (!group->serving()) continue;
    raft::NodeId target = raft::kNoNode;
    const raft::ReplicaStatus status = group->replica()->Status();
    // Leave groups whose membership is being moved alone.
    const ChannelDirectoryEntry* entry = meta_->FindChannel(host->fsm().name());
    if (entry == nullptr || status.conf_state.learners_size() > 0 ||
        !std::equal(entry->replicas().begin(), entry->replicas().end(),
                    status.conf_state.voters().begin(),
                    status.conf_state.voters().end())) {
      continue;
    }
    for (raft::NodeId node : status.conf_state.voters()) {
      auto it = leads.find(node);
      if (node == self_ || it == leads.end() || it->second + 1 > fair) continue;
      if (target == raft::kNoNode || it->second < leads[target]) target = node;
    }
    if (target == raft::kNoNode) continue;
    if (!group->replica()->TransferLeadership(target).ok()) continue;
    LOG(INFO) << "transferring leadership to balance channel="
              << host->fsm().name() << " to=" << target << " leads=" << mine
              << " fair=" << fair;
    --mine;
    ++leads[target];
    ++transfers;
  }
}

void Node::WakeGroupsOfLostPeers() {
  if (transport_ == nullptr) return;
  for (const auto& [peer, address] : peers_) {
    const bool up = transport_->PeerReachable(peer);
    bool& was_up = peer_up_[peer];
    if (was_up && !up) {
      // Quiesced followers hear nothing from a leader by design: a lost
      // link to the leader's node is their only cue to elect another.
      LOG(INFO) << "peer unreachable, waking its groups peer=" << peer;
      meta_group_->WakeIfLedBy(peer);
      for (auto& [id, host] : channels_) host->group()->WakeIfLedBy(peer);
    }
    was_up = up;
  }
}

// ---- Graceful shutdown ----

bool Node::TransferGroupLeadership(RaftGroup* group) {
  raft::Replica* replica = group->replica();
  const raft::ReplicaStatus status = replica->Status();
  if (status.role != raft::Role::kLeader) return false;
  // The most caught-up voter that is reachable now.
  raft::NodeId target = raft::kNoNode;
  raft::Index best = 0;
  for (const raft::PeerStatus& peer : status.peers) {
    const bool voter = std::find(status.conf_state.voters().begin(),
                                 status.conf_state.voters().end(),
                                 peer.id) != status.conf_state.voters().end();
    if (!voter || !peer.recent_active || !PeerUp(peer.id)) continue;
    if (target == raft::kNoNode || peer.match > best) {
      target = peer.id;
      best = peer.match;
    }
  }
  if (target == raft::kNoNode) return false;  // nobody to hand over to
  if (status.lead_transferee == raft::kNoNode) {
    absl::Status transfer = replica->TransferLeadership(target);
    LOG(INFO) << "shutdown: transferring leadership group=" << group->id()
              << " to=" << target << " " << transfer;
  }
  return true;
}

int Node::TransferLeadershipAway() {
  int leading = TransferGroupLeadership(meta_group_.get()) ? 1 : 0;
  for (auto& [id, host] : channels_) {
    if (TransferGroupLeadership(host->group())) ++leading;
  }
  return leading;
}

void Node::HandOffLeadership(absl::Duration max_wait) {
  const absl::Time deadline = absl::Now() + max_wait;
  struct Round {
    absl::Mutex mu;
    int leading ABSL_GUARDED_BY(mu) = -1;
  };
  int leading = -1;
  while (absl::Now() < deadline) {
    auto round = std::make_shared<Round>();
    if (!Post([this, round] {
          const int n = TransferLeadershipAway();
          absl::MutexLock lock(&round->mu);
          round->leading = n;
        })) {
      return;
    }
    {
      absl::MutexLock lock(&round->mu);
      auto answered = [&round]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(round->mu) {
        return round->leading >= 0;
      };
      if (!round->mu.AwaitWithDeadline(absl::Condition(&answered), deadline)) {
        break;
      }
      leading = round->leading;
    }
    if (leading == 0) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  LOG(INFO) << "shutdown: leadership handed off, still leading=" << leading;
}

}  // namespace spate::server
