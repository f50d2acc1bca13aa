// Node, part: Admin.ClusterStatus, this node's view of the cluster (nodes
// and their reachability, every local raft group, per-channel totals), and
// the monitoring snapshot behind the HTTP endpoints, both built on the loop
// thread from the live state.
#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
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

namespace {

// Unacked messages of a subscription from its replicated state: sent up to
// last_sent, minus those acked (or removed by limits).
int64_t ReplicatedPending(const ChannelFsm& fsm, const Subscription& sub) {
  const uint64_t floor = fsm.EffectiveAckFloor(sub);
  const uint64_t last_sent =
      std::min(sub.record.last_sent(), fsm.last_sequence());
  if (last_sent <= floor) return 0;
  int64_t acked = 0;
  for (auto it = sub.acked.upper_bound(floor);
       it != sub.acked.end() && *it <= last_sent; ++it) {
    ++acked;
  }
  return static_cast<int64_t>(last_sent - floor) - acked;
}

}  // namespace

std::vector<SubscriptionView> Node::SubscriptionViews(
    const ChannelHost& host, const std::string& client_id) const {
  std::vector<SubscriptionView> views;
  const ChannelFsm& fsm = host.fsm();
  const ChannelDelivery* delivery = host.delivery();
  for (const auto& [sub_id, sub] : fsm.subscriptions()) {
    SubscriptionView base;
    base.channel = fsm.name();
    base.sub_id = sub_id;
    base.client_id = sub.record.client_id();
    base.durable_name = sub.record.durable_name();
    base.queue_name = sub.record.q_group();
    base.is_durable = sub.durable();
    base.ack_floor = fsm.EffectiveAckFloor(sub);
    base.last_sent = std::min(sub.record.last_sent(), fsm.last_sequence());
    base.pending_count = ReplicatedPending(fsm, sub);
    if (!sub.online()) {
      if (!client_id.empty() && base.client_id != client_id) continue;
      base.is_offline = true;
      views.push_back(std::move(base));
      continue;
    }
    for (const MemberRecord& member : sub.record.members()) {
      if (!client_id.empty() && member.client_id() != client_id) continue;
      SubscriptionView view = base;
      view.client_id = member.client_id();
      view.max_inflight = member.max_in_flight();
      view.ack_wait_ms = member.ack_wait_ms();
      ChannelDelivery::MemberStats stats;
      if (delivery != nullptr &&
          delivery->GetMemberStats(member.member_id(), &stats)) {
        view.exact = true;
        view.last_sent = stats.last_sent;
        view.pending_count = stats.in_flight;
        view.is_stalled = stats.stalled;
      }
      views.push_back(std::move(view));
    }
  }
  return views;
}

std::string Node::HealthProblem() {
  const raft::ReplicaStatus meta = meta_group_->replica()->Status();
  if (meta.halted) return "metadata replica halted";
  if (meta.leader == raft::kNoNode) return "no metadata leader known";
  int voters = 0;
  int reachable = 0;
  for (uint64_t voter : meta.conf_state.voters()) {
    ++voters;
    if (voter == self_ ||
        (transport_ != nullptr && transport_->PeerReachable(voter))) {
      ++reachable;
    }
  }
  if (voters > 0 && reachable <= voters / 2) {
    return absl::StrCat("reaches ", reachable, " of ", voters,
                        " metadata voters (no quorum)");
  }
  // Applying lags the commit index by at most one loop iteration.
  constexpr uint64_t kApplyLagMax = 1000;
  for (auto& [id, host] : channels_) {
    const raft::ReplicaStatus status = host->group()->replica()->Status();
    if (status.halted) return absl::StrCat("channel group ", id, " halted");
    if (status.leader == raft::kNoNode) {
      return absl::StrCat("channel group ", id, " has no leader");
    }
    if (status.commit > status.applied + kApplyLagMax) {
      return absl::StrCat("channel group ", id, " applying: applied ",
                          status.applied, " of ", status.commit);
    }
  }
  return "";
}

MonitorSnapshot Node::BuildMonitorSnapshot(const MonitorQuery& query) {
  server::MonitorSnapshot out;
  out.cluster_name = config_.node().cluster_name();
  out.node_id = self_;
  out.client_address = config_.node().client_address();
  out.store = LiveStore();
  FillGroupStatus(*meta_group_->replica(), &out.meta);
  out.channel_count = static_cast<int64_t>(meta_->channels().size());
  out.client_count = static_cast<int64_t>(meta_->clients().size());
  out.local_groups = static_cast<int32_t>(channels_.size()) + 1;
  out.leading_groups = out.meta.role() == "leader" ? 1 : 0;
  for (auto& [id, host] : channels_) {
    const ChannelFsm& fsm = host->fsm();
    out.subscription_count += fsm.SubscriptionCount();
    out.stored_msgs += fsm.record().msgs();
    out.stored_bytes += fsm.record().bytes();
    if (host->leading()) ++out.leading_groups;
  }
  out.health_detail = HealthProblem();
  out.healthy = out.health_detail.empty();

  if (query.groups) {
    const ClusterStatusResponse status = BuildClusterStatus();
    out.groups.assign(status.groups().begin(), status.groups().end());
    out.nodes.assign(status.nodes().begin(), status.nodes().end());
  }
  if (query.channels) {
    std::vector<ChannelHost*> hosts;
    for (auto& [id, host] : channels_) {
      if (!query.channel.empty() && host->fsm().name() != query.channel) {
        continue;
      }
      hosts.push_back(host.get());
    }
    std::sort(hosts.begin(), hosts.end(), [](ChannelHost* a, ChannelHost* b) {
      return a->fsm().name() < b->fsm().name();
    });
    out.found = query.channel.empty() || !hosts.empty();
    out.total = static_cast<int64_t>(hosts.size());
    const size_t begin = std::min<size_t>(query.offset, hosts.size());
    const size_t end =
        std::min<size_t>(begin + std::max(query.limit, 0), hosts.size());
    for (size_t i = begin; i < end; ++i) {
      ChannelHost* host = hosts[i];
      const ChannelFsm& fsm = host->fsm();
      ChannelView view;
      view.name = fsm.name();
      view.channel_id = fsm.channel_id();
      view.msgs = fsm.record().msgs();
      view.bytes = fsm.record().bytes();
      view.first_seq = fsm.first_sequence();
      view.last_seq = fsm.last_sequence();
      view.leader_id = host->group()->replica()->Status().leader;
      view.leading = host->leading();
      view.subscription_count = fsm.SubscriptionCount();
      if (query.subs) view.subscriptions = SubscriptionViews(*host, "");
      out.channels.push_back(std::move(view));
    }
  }
  if (query.clients) {
    auto it = meta_->clients().begin();
    auto end = meta_->clients().end();
    if (!query.client.empty()) {
      it = meta_->clients().find(query.client);
      out.found = it != end;
      if (it != end) end = std::next(it);
    }
    out.total = std::distance(it, end);
    for (int skipped = 0; it != end && skipped < query.offset; ++skipped) ++it;
    for (int n = 0; it != end && n < query.limit; ++it, ++n) {
      const ClientRecord& record = it->second;
      ClientView view;
      view.client_id = record.client_id();
      view.conn_id = absl::BytesToHexString(record.conn_id());
      view.connected_ns = record.connected_ns();
      if (query.subs) {
        for (auto& [id, host] : channels_) {
          std::vector<SubscriptionView> subs =
              SubscriptionViews(*host, record.client_id());
          for (SubscriptionView& sub : subs) {
            view.subscriptions.push_back(std::move(sub));
          }
        }
      }
      out.clients.push_back(std::move(view));
    }
  }
  return out;
}

void Node::GetMonitorSnapshot(
    const MonitorQuery& query,
    absl::AnyInvocable<void(absl::StatusOr<server::MonitorSnapshot>)> done) {
  auto shared = std::make_shared<decltype(done)>(std::move(done));
  if (!Post(
          [this, query, shared] { (*shared)(BuildMonitorSnapshot(query)); })) {
    (*shared)(absl::UnavailableError("server is busy or stopping; retry"));
  }
}

}  // namespace spate::server
