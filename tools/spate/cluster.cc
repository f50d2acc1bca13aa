#include "tools/spate/cluster.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tools/spate/cluster_view.h"
#include "tools/spate/common.h"
#include "tools/spate/table.h"

namespace spate::cli {
namespace {

constexpr char kUsage[] =
    R"(usage: spate cluster status [--json] [--timeout DURATION]

Asks every node given with --server, and every node their answers list,
for its view of the cluster, and prints:
  - the nodes: id, client address, up (answered) or down, how many groups
    it leads, and which answering nodes' cluster links reach it;
  - the raft groups (the metadata group and one per channel), each from
    its leader's view: leader, term, commit and applied index, each
    follower's lag (leader's last index minus the follower's match index,
    as node:lag,...), and for channels the stored messages, bytes, first and
    last sequence and subscriptions.
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

int RunCluster(const std::vector<std::string>& args, const Io& io) {
  if (args.size() != 1 || args[0] != "status") {
    return UsageError(io, "cluster", "expected `status`");
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
  if (view.groups().empty()) return;
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

Command ClusterCommand() {
  return Command{"cluster",
                 "cluster status: nodes, raft groups, leaders, follower lag",
                 kUsage,
                 {"json", "timeout"},
                 RunCluster};
}

}  // namespace spate::cli
