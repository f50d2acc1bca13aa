// Node, part: Admin.ClusterStatus, this node's view of the cluster (nodes
// and their reachability, every local raft group, per-channel totals),
// built on the loop thread from the live state.
#include "absl/strings/ascii.h"
#include "server/node.h"

namespace spate::server {

// ---- Status ----

namespace {

void FillGroupStatus(const raft::Replica& replica, GroupStatus* out) {
  const raft::ReplicaStatus status = replica.Status();
  out->set_group_id(status.group);
  out->set_role(absl::AsciiStrToLower(raft::RoleName(status.role)));
  out->set_leader_id(status.leader);
  out->set_term(status.term);
  out->set_commit_index(status.commit);
  out->set_applied_index(status.applied);
  out->set_first_index(status.first_index);
  out->set_last_index(status.last_index);
  out->set_quiesced(status.quiesced);
  out->set_halted(status.halted);
  *out->mutable_voters() = status.conf_state.voters();
  *out->mutable_learners() = status.conf_state.learners();
  for (const raft::PeerStatus& peer : status.peers) {
    PeerProgress* progress = out->add_peers();
    progress->set_node_id(peer.id);
    progress->set_match_index(peer.match);
    progress->set_next_index(peer.next);
    progress->set_state(
        absl::AsciiStrToLower(raft::ProgressStateName(peer.state)));
    progress->set_recently_active(peer.recent_active);
  }
}

}  // namespace

ClusterStatusResponse Node::BuildClusterStatus() {
  ClusterStatusResponse response;
  response.set_cluster_name(config_.node().cluster_name());
  response.set_node_id(self_);
  response.set_channels(static_cast<int>(meta_->channels().size()));
  response.set_clients(static_cast<int>(meta_->clients().size()));
  if (gateways_ != nullptr) *response.mutable_gateways() = gateways_->Status();
  NodeStatus* me = response.add_nodes();
  me->set_node_id(self_);
  me->set_client_address(config_.node().client_address());
  me->set_cluster_address(config_.node().cluster_address());
  me->set_reachable(true);
  for (const auto& [id, peer] : peers_) {
    NodeStatus* node = response.add_nodes();
    node->set_node_id(id);
    node->set_client_address(peer.client_address());
    node->set_cluster_address(peer.cluster_address());
    node->set_reachable(transport_ != nullptr && transport_->PeerReachable(id));
  }
  for (NodeStatus& node : *response.mutable_nodes()) {
    auto record = meta_->nodes().find(node.node_id());
    node.set_state(record == meta_->nodes().end() ||
                           record->second.state() == NodeRecord::ACTIVE
                       ? "active"
                       : "leaving");
  }
  FillGroupStatus(*meta_group_->replica(), response.add_groups());
  for (auto& [id, host] : channels_) {
    GroupStatus* group = response.add_groups();
    FillGroupStatus(*host->group()->replica(), group);
    const ChannelFsm& fsm = host->fsm();
    group->set_channel(fsm.name());
    group->set_first_sequence(fsm.first_sequence());
    group->set_last_sequence(fsm.last_sequence());
    group->set_msgs(fsm.record().msgs());
    group->set_bytes(fsm.record().bytes());
    group->set_subscriptions(static_cast<int>(fsm.subscriptions().size()));
  }
  return response;
}

void Node::ClusterStatus(
    absl::AnyInvocable<void(absl::StatusOr<ClusterStatusResponse>)> done) {
  auto shared = std::make_shared<decltype(done)>(std::move(done));
  if (!Post([this, shared] { (*shared)(BuildClusterStatus()); })) {
    (*shared)(absl::UnavailableError("server is busy or stopping; retry"));
  }
}

}  // namespace spate::server
