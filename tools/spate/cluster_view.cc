#include "tools/spate/cluster_view.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <ostream>
#include <set>
#include <thread>
#include <tuple>
#include <utility>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "proto/admin.grpc.pb.h"
#include "tools/spate/common.h"

ABSL_FLAG(bool, json, false, "print the data as JSON instead of tables");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(3),
          "how long to wait for each node's answer");

namespace spate::cli {
namespace {

// Discovery stops after this many rounds even if answers keep listing
// new addresses (a cluster whose nodes disagree about their peers).
constexpr int kDiscoveryRoundsMax = 4;

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

// One node's report of one group.
struct GroupReport {
  uint64_t node_id;
  const GroupStatus* status;
};

// Which report speaks for the group: the highest term wins (a deposed
// leader that has not heard of the new term is stale), then a leader
// over a follower, then the most applied.
bool BetterSource(const GroupReport& a, const GroupReport& b) {
  return std::make_tuple(a.status->term(), a.status->role() == "leader",
                         a.status->applied_index()) >
         std::make_tuple(b.status->term(), b.status->role() == "leader",
                         b.status->applied_index());
}

void FillReplicas(const std::vector<GroupReport>& reports,
                  const GroupStatus& source, GroupView* view) {
  absl::btree_map<uint64_t, ReplicaView> replicas;
  for (uint64_t voter : source.voters()) replicas[voter].set_node_id(voter);
  for (const GroupReport& report : reports) {
    ReplicaView& replica = replicas[report.node_id];
    replica.set_node_id(report.node_id);
    replica.set_reported(true);
    replica.set_role(report.status->role());
    replica.set_term(report.status->term());
    replica.set_commit_index(report.status->commit_index());
    replica.set_applied_index(report.status->applied_index());
    replica.set_last_index(report.status->last_index());
  }
  if (view->leader_answered()) {
    // Progress is the leader's record; a follower's own numbers may be
    // older or newer than what the leader has heard.
    for (const PeerProgress& peer : source.peers()) {
      ReplicaView& replica = replicas[peer.node_id()];
      replica.set_node_id(peer.node_id());
      replica.set_has_progress(true);
      replica.set_match_index(peer.match_index());
      replica.set_progress_state(peer.state());
      replica.set_recently_active(peer.recently_active());
      replica.set_lag(source.last_index() > peer.match_index()
                          ? source.last_index() - peer.match_index()
                          : 0);
    }
  }
  for (auto& [id, replica] : replicas) {
    *view->add_replicas() = std::move(replica);
  }
}

GroupView MergeGroup(const std::vector<GroupReport>& reports) {
  const GroupReport* best = &reports.front();
  for (const GroupReport& report : reports) {
    if (BetterSource(report, *best)) best = &report;
  }
  const GroupStatus& source = *best->status;
  GroupView view;
  view.set_group_id(source.group_id());
  view.set_channel(source.channel());
  for (const GroupReport& report : reports) {
    if (view.channel().empty()) view.set_channel(report.status->channel());
  }
  view.set_source_node_id(best->node_id);
  view.set_leader_id(source.leader_id());
  view.set_leader_answered(source.role() == "leader");
  view.set_term(source.term());
  view.set_commit_index(source.commit_index());
  view.set_applied_index(source.applied_index());
  view.set_first_index(source.first_index());
  view.set_last_index(source.last_index());
  *view.mutable_voters() = source.voters();
  view.set_first_sequence(source.first_sequence());
  view.set_last_sequence(source.last_sequence());
  view.set_msgs(source.msgs());
  view.set_bytes(source.bytes());
  view.set_subscriptions(source.subscriptions());
  FillReplicas(reports, source, &view);
  return view;
}

// The nodes every answer lists, with who reaches whom, plus the nodes
// that answered.
absl::btree_map<uint64_t, NodeView> MergeNodes(
    const absl::btree_map<uint64_t, const ClusterStatusResponse*>& answered) {
  absl::btree_map<uint64_t, NodeView> nodes;
  absl::btree_map<uint64_t, absl::btree_set<uint64_t>> reachable_from;
  for (const auto& [id, response] : answered) {
    for (const NodeStatus& node : response->nodes()) {
      NodeView& view = nodes[node.node_id()];
      view.set_node_id(node.node_id());
      // A node's description of itself wins over its peers' config.
      if (view.client_address().empty() || node.node_id() == id) {
        view.set_client_address(node.client_address());
        view.set_cluster_address(node.cluster_address());
      }
      if (node.reachable()) reachable_from[node.node_id()].insert(id);
    }
    NodeView& self = nodes[id];
    self.set_node_id(id);
    self.set_up(true);
    reachable_from[id].insert(id);
  }
  for (auto& [id, view] : nodes) {
    for (uint64_t from : reachable_from[id]) view.add_reachable_from(from);
  }
  return nodes;
}

}  // namespace

absl::StatusOr<ClusterStatusResponse> FetchClusterStatus(
    const std::string& address, absl::Duration timeout) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      DialFromFlags(address);
  if (!channel.ok()) return channel.status();
  std::unique_ptr<Admin::Stub> stub = Admin::NewStub(*channel);
  grpc::ClientContext context;
  AuthorizeFromFlags(&context);
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  ClusterStatusResponse response;
  const grpc::Status status =
      stub->ClusterStatus(&context, ClusterStatusRequest(), &response);
  if (!status.ok()) return FromGrpc(status);
  return response;
}

std::vector<NodeAnswer> AskCluster(const std::vector<std::string>& servers,
                                   absl::Duration timeout) {
  std::vector<NodeAnswer> answers;
  std::set<std::string> asked;
  std::set<uint64_t> answered;
  std::vector<std::string> round;
  auto add = [&](const std::string& address) {
    if (address.empty() || asked.count(address) > 0) return;
    asked.insert(address);
    round.push_back(address);
  };
  for (const std::string& server : servers) add(server);
  for (int r = 0; r < kDiscoveryRoundsMax && !round.empty(); ++r) {
    const size_t first = answers.size();
    for (const std::string& address : round) {
      answers.push_back(
          NodeAnswer{address, absl::UnknownError("not asked yet")});
    }
    round.clear();
    // One thread per address: a node that hangs (paused, partitioned)
    // costs one timeout, not one per node.
    std::vector<std::thread> threads;
    for (size_t i = first; i < answers.size(); ++i) {
      threads.emplace_back([&answers, i, timeout] {
        answers[i].status = FetchClusterStatus(answers[i].address, timeout);
      });
    }
    for (std::thread& thread : threads) thread.join();
    for (size_t i = first; i < answers.size(); ++i) {
      if (answers[i].status.ok()) answered.insert(answers[i].status->node_id());
    }
    for (size_t i = first; i < answers.size(); ++i) {
      if (!answers[i].status.ok()) continue;
      for (const NodeStatus& node : answers[i].status->nodes()) {
        if (answered.count(node.node_id()) == 0) add(node.client_address());
      }
    }
  }
  return answers;
}

namespace {

// Every node's links as they are; each mirror from the node feeding it
// (the freshest when two report it during a leader change); conflicts as
// any node reports them (every node resolves them the same way).
void MergeGateways(
    const absl::btree_map<uint64_t, const ClusterStatusResponse*>& answered,
    ClusterView* view) {
  absl::btree_map<std::string, MirrorView> mirrors;
  absl::btree_map<std::string, ConflictView> conflicts;
  for (const auto& [id, response] : answered) {
    const GatewayStatus& gateways = response->gateways();
    for (const GatewayLinkStatus& link : gateways.links()) {
      GatewayLinkView* out = view->add_gateway_links();
      out->set_node_id(id);
      out->set_remote(link.cluster());
      out->set_state(link.state());
      out->set_address(link.address());
      out->set_connected_since_ns(link.connected_since_ns());
      out->set_bytes_sent(link.bytes_sent());
      out->set_bytes_received(link.bytes_received());
      out->set_reconnects(link.reconnects());
      out->set_remote_channels(link.channels());
      out->set_error(link.error());
    }
    for (const MirrorStatus& mirror : gateways.mirrors()) {
      auto it = mirrors.find(mirror.channel());
      if (it != mirrors.end() &&
          it->second.local_last_sequence() >= mirror.local_last_sequence()) {
        continue;
      }
      MirrorView out;
      out.set_channel(mirror.channel());
      out.set_node_id(id);
      out.set_source_cluster(mirror.source_cluster());
      out.set_source_channel(mirror.source_channel());
      out.set_local_last_sequence(mirror.local_last_sequence());
      out.set_source_last_sequence(mirror.source_last_sequence());
      out.set_lag(mirror.lag());
      out.set_state(mirror.state());
      out.set_error(mirror.error());
      mirrors[mirror.channel()] = std::move(out);
    }
    for (const GatewayConflict& conflict : gateways.conflicts()) {
      if (conflicts.contains(conflict.channel())) continue;
      ConflictView out;
      out.set_channel(conflict.channel());
      for (const std::string& cluster : conflict.clusters()) {
        out.add_clusters(cluster);
      }
      out.set_routed_to(conflict.routed_to());
      conflicts[conflict.channel()] = std::move(out);
    }
  }
  for (auto& [name, mirror] : mirrors) *view->add_mirrors() = std::move(mirror);
  for (auto& [name, conflict] : conflicts) {
    *view->add_conflicts() = std::move(conflict);
  }
}

}  // namespace

ClusterView MergeAnswers(const std::vector<NodeAnswer>& answers) {
  // The first answer of each node (two addresses may reach the same one).
  absl::btree_map<uint64_t, const ClusterStatusResponse*> answered;
  for (const NodeAnswer& answer : answers) {
    if (answer.status.ok())
      answered.emplace(answer.status->node_id(), &*answer.status);
  }
  absl::btree_map<uint64_t, NodeView> nodes = MergeNodes(answered);
  // Addresses that failed: the node listed there, or an unknown one.
  std::vector<NodeView> unknown;
  for (const NodeAnswer& answer : answers) {
    if (answer.status.ok()) continue;
    const std::string error(answer.status.status().ToString());
    auto known = std::find_if(nodes.begin(), nodes.end(), [&](auto& entry) {
      return entry.second.client_address() == answer.address;
    });
    if (known != nodes.end()) {
      if (!known->second.up() && known->second.error().empty()) {
        known->second.set_error(error);
      }
      continue;
    }
    NodeView view;
    view.set_client_address(answer.address);
    view.set_error(error);
    unknown.push_back(std::move(view));
  }

  absl::btree_map<uint64_t, std::vector<GroupReport>> reports;
  for (const auto& [id, response] : answered) {
    for (const GroupStatus& group : response->groups()) {
      reports[group.group_id()].push_back(GroupReport{id, &group});
    }
  }
  ClusterView view;
  for (const auto& [group_id, group_reports] : reports) {
    GroupView group = MergeGroup(group_reports);
    auto leader = nodes.find(group.leader_id());
    if (group.leader_id() != 0 && leader != nodes.end()) {
      leader->second.set_groups_led(leader->second.groups_led() + 1);
    }
    *view.add_groups() = std::move(group);
  }
  for (auto& [id, node] : nodes) *view.add_nodes() = std::move(node);
  for (NodeView& node : unknown) *view.add_nodes() = std::move(node);
  MergeGateways(answered, &view);
  if (!answered.empty()) {
    // The metadata group's best-informed node knows the channel and
    // client counts best; any answer will do otherwise.
    uint64_t meta_source = answered.begin()->first;
    if (!view.groups().empty() && view.groups(0).group_id() == 0) {
      meta_source = view.groups(0).source_node_id();
    }
    const ClusterStatusResponse& response = *answered.at(meta_source);
    view.set_cluster_name(response.cluster_name());
    view.set_channels(response.channels());
    view.set_clients(response.clients());
  }
  return view;
}

std::string LeaderCell(const GroupView& group) {
  if (group.leader_id() == 0) return "none";
  return absl::StrCat(group.leader_id(), group.leader_answered() ? "" : "?");
}

absl::Status GatherFromFlags(ClusterView* view) {
  const absl::Duration timeout = absl::GetFlag(FLAGS_timeout);
  if (timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--timeout must be positive");
  }
  const std::vector<NodeAnswer> answers =
      AskCluster(ServersFromFlags(), timeout);
  *view = MergeAnswers(answers);
  std::vector<std::string> errors;
  for (const NodeAnswer& answer : answers) {
    if (answer.status.ok()) return absl::OkStatus();
    errors.push_back(
        absl::StrCat(answer.address, ": ", answer.status.status().message()));
  }
  return absl::UnavailableError(
      absl::StrCat("no node answered (", absl::StrJoin(errors, "; "), ")"));
}

int PrintJson(const google::protobuf::Message& message, const Io& io,
              absl::string_view command) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  const auto status =
      google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    return PrintError(io, command, absl::InternalError(status.ToString()));
  }
  *io.out << json;
  if (json.empty() || json.back() != '\n') *io.out << "\n";
  io.out->flush();
  return kExitOk;
}

}  // namespace spate::cli
