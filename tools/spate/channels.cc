#include "tools/spate/channels.h"

#include <algorithm>
#include <ostream>
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

constexpr char kChannelsUsage[] =
    R"(usage: spate channels [--json] [--timeout DURATION]

Lists the channels: stored messages, bytes, first and last sequence,
subscriptions and leader node, as the channel's leader reports them
(LEADER n? when only a follower answered). --json prints the list.)";

constexpr char kChannelUsage[] =
    R"(usage: spate channel info NAME [--json] [--timeout DURATION]

Shows one channel: its leader and term, stored messages, its raft log
indexes, and each replica's role, term, commit/applied/last index and, as
the leader records it, match index, lag and replication state.)";

// Gathers the view; prints the error and returns false if no node
// answered (or the flags are wrong).
bool Gather(const Io& io, const char* command, ClusterView* view, int* exit) {
  const absl::Status gathered = GatherFromFlags(view);
  if (gathered.ok()) return true;
  *exit = absl::IsInvalidArgument(gathered)
              ? UsageError(io, command, gathered.message())
              : PrintError(io, command, gathered);
  return false;
}

int RunChannels(const std::vector<std::string>& args, const Io& io) {
  if (!args.empty()) return UsageError(io, "channels", "expected no argument");
  ClusterView view;
  int exit = kExitOk;
  if (!Gather(io, "channels", &view, &exit)) return exit;
  ChannelList list;
  for (const GroupView& group : view.groups()) {
    if (!group.channel().empty()) *list.add_channels() = group;
  }
  std::sort(list.mutable_channels()->begin(), list.mutable_channels()->end(),
            [](const GroupView& a, const GroupView& b) {
              return a.channel() < b.channel();
            });
  if (absl::GetFlag(FLAGS_json)) return PrintJson(list, io, "channels");
  if (list.channels().empty()) {
    *io.out << "no channels" << std::endl;
    return kExitOk;
  }
  Table table({"CHANNEL", "MSGS", "BYTES", "FIRST", "LAST", "SUBS", "LEADER"});
  for (const GroupView& group : list.channels()) {
    table.AddRow({group.channel(), absl::StrCat(group.msgs()),
                  absl::StrCat(group.bytes()),
                  absl::StrCat(group.first_sequence()),
                  absl::StrCat(group.last_sequence()),
                  absl::StrCat(group.subscriptions()), LeaderCell(group)});
  }
  table.Print(*io.out);
  io.out->flush();
  return kExitOk;
}

void PrintReplicas(const ClusterView& view, const GroupView& group,
                   std::ostream& out) {
  auto up = [&view](uint64_t id) {
    for (const NodeView& node : view.nodes()) {
      if (node.node_id() == id) return node.up();
    }
    return false;
  };
  Table table({"NODE", "ROLE", "TERM", "COMMIT", "APPLIED", "LAST", "MATCH",
               "LAG", "PROGRESS"});
  for (const ReplicaView& replica : group.replicas()) {
    auto own = [&replica](uint64_t value) {
      return replica.reported() ? absl::StrCat(value) : std::string("-");
    };
    auto progress = [&replica](auto value) {
      return replica.has_progress() ? absl::StrCat(value) : std::string("-");
    };
    std::string role = replica.role();
    if (!replica.reported()) {
      role = up(replica.node_id()) ? "(no replica)" : "(down)";
    }
    table.AddRow({absl::StrCat(replica.node_id()), role, own(replica.term()),
                  own(replica.commit_index()), own(replica.applied_index()),
                  own(replica.last_index()), progress(replica.match_index()),
                  progress(replica.lag()),
                  replica.has_progress() ? replica.progress_state() : "-"});
  }
  table.Print(out);
}

void PrintChannelInfo(const ClusterView& view, const GroupView& group,
                      std::ostream& out) {
  out << "channel " << group.channel() << " (raft group " << group.group_id()
      << ")\n"
      << "  leader         " << (group.leader_id() == 0 ? "" : "node ")
      << LeaderCell(group) << ", term " << group.term() << "\n"
      << "  messages       " << group.msgs() << " (" << group.bytes()
      << " bytes), sequences " << group.first_sequence() << ".."
      << group.last_sequence() << "\n"
      << "  subscriptions  " << group.subscriptions() << "\n"
      << "  raft log       first index " << group.first_index() << ", last "
      << group.last_index() << ", commit " << group.commit_index()
      << ", applied " << group.applied_index() << " (node "
      << group.source_node_id() << "'s view)\n"
      << "  voters         " << absl::StrJoin(group.voters(), ",") << "\n\n";
  PrintReplicas(view, group, out);
}

int RunChannel(const std::vector<std::string>& args, const Io& io) {
  if (args.size() != 2 || args[0] != "info") {
    return UsageError(io, "channel", "expected `info NAME`");
  }
  const std::string& name = args[1];
  ClusterView view;
  int exit = kExitOk;
  if (!Gather(io, "channel", &view, &exit)) return exit;
  for (const GroupView& group : view.groups()) {
    if (group.channel() != name) continue;
    if (absl::GetFlag(FLAGS_json)) return PrintJson(group, io, "channel");
    PrintChannelInfo(view, group, *io.out);
    io.out->flush();
    return kExitOk;
  }
  return PrintError(
      io, "channel",
      absl::NotFoundError(absl::StrCat("no channel named \"", name,
                                       "\" (`spate channels` lists them)")));
}

}  // namespace

Command ChannelsCommand() {
  return Command{"channels",
                 "list the channels with their messages, sequences, leader",
                 kChannelsUsage,
                 {"json", "timeout"},
                 RunChannels};
}

Command ChannelCommand() {
  return Command{"channel",
                 "channel info NAME: one channel and its replicas in detail",
                 kChannelUsage,
                 {"json", "timeout"},
                 RunChannel};
}

}  // namespace spate::cli
