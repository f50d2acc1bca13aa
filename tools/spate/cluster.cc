#include "tools/spate/cluster.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "proto/admin.grpc.pb.h"
#include "tools/spate/cluster_view.h"
#include "tools/spate/common.h"
#include "tools/spate/table.h"

namespace spate::cli {
namespace {

constexpr char kUsage[] =
    R"(usage: spate cluster status [--json] [--timeout DURATION]
       spate cluster add NODE_ID CLUSTER_ADDRESS CLIENT_ADDRESS
       spate cluster remove NODE_ID

add: records a new node (started with `node { join: true }` and the
existing members as its peers). It joins the metadata group as a learner,
becomes a voter once caught up, and channel replicas move onto it until
every node holds about as many. remove: moves the node's replicas to the
other nodes, then takes it out of the metadata group; stop the node once
`spate cluster status` no longer lists it. Both go to whichever --server
leads the metadata group.

Asks every node given with --server, and every node their answers list,
for its view of the cluster, and prints:
  - the nodes: id, client address, up (answered) or down, how many groups
    it leads, and which answering nodes' cluster links reach it;
  - the raft groups (the metadata group and one per channel), each from
    its leader's view: leader, term, commit and applied index, each
    follower's lag (leader's last index minus the follower's match index,
    as node:lag,...), and for channels the stored messages, bytes, first and
    last sequence and subscriptions;
  - with gateways, a Gateways section: each node's link to each remote
    cluster (state, address, how long it has been up, bytes out/in,
    reconnects, remote channels, the last error), each mirror as the node
    feeding it reports it (local and source last sequence, lag, state),
    and channel names owned by two clusters.
A node that does not answer is shown down; the command fails only when no
node answers. --json prints the merged data instead.)";

// "1 node", "3 nodes".
std::string Counted(int count, absl::string_view noun) {
  return absl::StrCat(count, " ", noun, count == 1 ? "" : "s");
}

std::string NodeName(uint64_t id) { return id == 0 ? "?" : absl::StrCat(id); }

std::string LagCell(const GroupView& group) {
  std::vector<std::string> lags;
  for (const ReplicaView& replica : group.replicas()) {
    if (replica.has_progress()) {
      lags.push_back(absl::StrCat(replica.node_id(), ":", replica.lag()));
    }
  }
  return lags.empty() ? "-" : absl::StrJoin(lags, ",");
}

void PrintNodes(const ClusterView& view, std::ostream& out) {
  Table table({"NODE", "CLIENT ADDRESS", "STATE", "LEADS", "REACHABLE FROM"});
  for (const NodeView& node : view.nodes()) {
    table.AddRow({NodeName(node.node_id()), node.client_address(),
                  node.up() ? "up" : "down", absl::StrCat(node.groups_led()),
                  node.reachable_from().empty()
                      ? "-"
                      : absl::StrJoin(node.reachable_from(), ",")});
  }
  table.Print(out);
}

void PrintGroups(const ClusterView& view, std::ostream& out) {
  Table table({"GROUP", "CHANNEL", "LEADER", "TERM", "COMMIT", "APPLIED",
               "FOLLOWER LAG", "MSGS", "BYTES", "FIRST", "LAST", "SUBS"});
  for (const GroupView& group : view.groups()) {
    const bool channel = !group.channel().empty();
    auto stat = [channel](auto value) {
      return channel ? absl::StrCat(value) : std::string("-");
    };
    table.AddRow(
        {absl::StrCat(group.group_id()),
         channel ? group.channel() : "(metadata)", LeaderCell(group),
         absl::StrCat(group.term()), absl::StrCat(group.commit_index()),
         absl::StrCat(group.applied_index()), LagCell(group),
         stat(group.msgs()), stat(group.bytes()), stat(group.first_sequence()),
         stat(group.last_sequence()), stat(group.subscriptions())});
  }
  table.Print(out);
}

// How long ago `since_ns` was, as "1h2m3s" (whole seconds).
std::string Since(int64_t since_ns) {
  if (since_ns <= 0) return "-";
  const absl::Duration ago = absl::Now() - absl::FromUnixNanos(since_ns);
  return absl::FormatDuration(
      absl::Trunc(std::max(ago, absl::ZeroDuration()), absl::Seconds(1)));
}

void PrintGateways(const ClusterView& view, std::ostream& out) {
  out << "\nGateways\n";
  Table links({"NODE", "REMOTE", "STATE", "ADDRESS", "UP FOR", "BYTES OUT",
               "BYTES IN", "RECONNECTS", "CHANNELS"});
  for (const GatewayLinkView& link : view.gateway_links()) {
    links.AddRow(
        {NodeName(link.node_id()), link.remote(), link.state(),
         link.address().empty() ? "-" : link.address(),
         Since(link.connected_since_ns()), absl::StrCat(link.bytes_sent()),
         absl::StrCat(link.bytes_received()), absl::StrCat(link.reconnects()),
         absl::StrCat(link.remote_channels())});
  }
  links.Print(out);
  for (const GatewayLinkView& link : view.gateway_links()) {
    if (!link.error().empty()) {
      out << "node " << link.node_id() << " -> " << link.remote() << ": "
          << link.error() << "\n";
    }
  }
  if (!view.mirrors().empty()) {
    out << "\n";
    Table mirrors(
        {"MIRROR", "SOURCE", "FED BY", "LAST", "SOURCE LAST", "LAG", "STATE"});
    for (const MirrorView& mirror : view.mirrors()) {
      std::string state = mirror.state();
      if (!mirror.error().empty()) {
        absl::StrAppend(&state, " (", mirror.error(), ")");
      }
      mirrors.AddRow(
          {mirror.channel(),
           absl::StrCat(mirror.source_cluster(), "/", mirror.source_channel()),
           NodeName(mirror.node_id()),
           absl::StrCat(mirror.local_last_sequence()),
           absl::StrCat(mirror.source_last_sequence()),
           absl::StrCat(mirror.lag()), state});
    }
    mirrors.Print(out);
  }
  for (const ConflictView& conflict : view.conflicts()) {
    out << "conflict: channel " << conflict.channel() << " is owned by "
        << absl::StrJoin(conflict.clusters(), ", ") << "; requests go to "
        << conflict.routed_to() << "\n";
  }
}

// Sends a membership request to each --server until the metadata leader
// accepts it (the others answer UNAVAILABLE naming the leader).
template <typename Call>
int Membership(const Io& io, const std::string& what, Call call) {
  absl::Status last = absl::UnavailableError("no server given");
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    for (const std::string& server : ServersFromFlags()) {
      absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
          DialFromFlags(server);
      if (!channel.ok()) return PrintError(io, "cluster", channel.status());
      auto stub = Admin::NewStub(*channel);
      grpc::ClientContext context;
      AuthorizeFromFlags(&context);
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
      const grpc::Status status = call(stub.get(), &context);
      if (status.ok()) {
        *io.out << what << "\n";
        return kExitOk;
      }
      last = absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
      if (!absl::IsUnavailable(last)) return PrintError(io, "cluster", last);
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  return PrintError(io, "cluster", last);
}

int RunAdd(const std::vector<std::string>& args, const Io& io) {
  uint64_t id = 0;
  if (args.size() != 4 || !absl::SimpleAtoi(args[1], &id) || id == 0) {
    return UsageError(io, "cluster",
                      "expected `add NODE_ID CLUSTER_ADDRESS CLIENT_ADDRESS`");
  }
  AddNodeRequest request;
  request.set_node_id(id);
  request.set_cluster_address(args[2]);
  request.set_client_address(args[3]);
  return Membership(
      io, absl::StrCat("node ", id, " added; replicas move onto it now"),
      [&](Admin::Stub* stub, grpc::ClientContext* context) {
        AddNodeResponse response;
        return stub->AddNode(context, request, &response);
      });
}

int RunRemove(const std::vector<std::string>& args, const Io& io) {
  uint64_t id = 0;
  if (args.size() != 2 || !absl::SimpleAtoi(args[1], &id) || id == 0) {
    return UsageError(io, "cluster", "expected `remove NODE_ID`");
  }
  RemoveNodeRequest request;
  request.set_node_id(id);
  return Membership(
      io,
      absl::StrCat("node ", id,
                   " is leaving; stop it once `spate cluster status` no "
                   "longer lists it"),
      [&](Admin::Stub* stub, grpc::ClientContext* context) {
        RemoveNodeResponse response;
        return stub->RemoveNode(context, request, &response);
      });
}

int RunCluster(const std::vector<std::string>& args, const Io& io) {
  if (!args.empty() && args[0] == "add") return RunAdd(args, io);
  if (!args.empty() && args[0] == "remove") return RunRemove(args, io);
  if (args.size() != 1 || args[0] != "status") {
    return UsageError(io, "cluster", "expected `status`, `add` or `remove`");
  }
  ClusterView view;
  const absl::Status gathered = GatherFromFlags(&view);
  if (absl::IsInvalidArgument(gathered)) {
    return UsageError(io, "cluster", gathered.message());
  }
  if (absl::GetFlag(FLAGS_json)) {
    const int printed = PrintJson(view, io, "cluster");
    if (printed != kExitOk) return printed;
  } else {
    PrintClusterStatus(view, *io.out);
    io.out->flush();
  }
  if (!gathered.ok()) return PrintError(io, "cluster", gathered);
  return kExitOk;
}

}  // namespace

void PrintClusterStatus(const ClusterView& view, std::ostream& out) {
  int up = 0;
  for (const NodeView& node : view.nodes()) up += node.up() ? 1 : 0;
  out << "cluster \"" << view.cluster_name()
      << "\": " << Counted(view.nodes_size(), "node") << " (" << up << " up), "
      << Counted(view.channels(), "channel") << ", "
      << Counted(view.clients(), "client") << "\n\n";
  PrintNodes(view, out);
  if (!view.groups().empty()) {
    out << "\n";
    PrintGroups(view, out);
    bool unconfirmed = false;
    for (const GroupView& group : view.groups()) {
      unconfirmed |= group.leader_id() != 0 && !group.leader_answered();
    }
    if (unconfirmed) {
      out << "\nLEADER n?: a follower names node n, which did not answer as "
             "leader.\n";
    }
  }
  if (!view.gateway_links().empty()) PrintGateways(view, out);
}

Command ClusterCommand() {
  return Command{"cluster",
                 "cluster status|add|remove: nodes, groups, leaders, lag; "
                 "membership",
                 kUsage,
                 {"json", "timeout"},
                 RunCluster};
}

}  // namespace spate::cli
