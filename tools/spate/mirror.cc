#include "tools/spate/mirror.h"

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/flags/flag.h"
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
    R"(usage: spate mirror add CHANNEL SOURCE_CLUSTER [SOURCE_CHANNEL]
       spate mirror remove CHANNEL
       spate mirror list [--json] [--timeout DURATION]

add: declares CHANNEL of this cluster a mirror of SOURCE_CHANNEL (default:
the same name) of the linked cluster SOURCE_CLUSTER: a read-only local
copy with the source's sequences, fed through the gateway. Refused, with
nothing changed, when SOURCE_CLUSTER is not among the cluster's gateways
or CHANNEL exists as a regular channel or mirrors another source.
Declaring the same mirror again is not an error.
remove: deletes a mirror channel declared with `add` (the source is not
touched); mirrors declared in the config file are removed there.
Both go to whichever --server leads the metadata group.
list: every mirror the --server nodes know: source, local and source last
sequence, lag and feed state (RUNNING, or WAITING with the error), as
reported by the node feeding it (the mirror group's leader).)";

// Sends a request to each --server until the metadata leader takes it
// (the others answer UNAVAILABLE naming it); retries for 30 s.
template <typename Call>
absl::Status AtLeader(Call call) {
  absl::Status last = absl::UnavailableError("no server given");
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    for (const std::string& server : ServersFromFlags()) {
      absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
          DialFromFlags(server);
      if (!channel.ok()) return channel.status();
      auto stub = Admin::NewStub(*channel);
      grpc::ClientContext context;
      AuthorizeFromFlags(&context);
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
      const grpc::Status status = call(stub.get(), &context);
      if (status.ok()) return absl::OkStatus();
      last = absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
      if (!absl::IsUnavailable(last)) return last;
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  return last;
}

int RunAdd(const std::vector<std::string>& args, const Io& io) {
  if (args.size() != 3 && args.size() != 4) {
    return UsageError(io, "mirror",
                      "expected `add CHANNEL SOURCE_CLUSTER [SOURCE_CHANNEL]`");
  }
  AddMirrorRequest request;
  request.set_channel(args[1]);
  request.set_source_cluster(args[2]);
  if (args.size() == 4) request.set_source_channel(args[3]);
  AddMirrorResponse response;
  const absl::Status status =
      AtLeader([&](Admin::Stub* stub, grpc::ClientContext* context) {
        return stub->AddMirror(context, request, &response);
      });
  if (!status.ok()) return PrintError(io, "mirror", status);
  const std::string source = absl::StrCat(
      args[2], "/", request.source_channel().empty() ? args[1] : args[3]);
  *io.out << "mirror " << args[1] << " of " << source
          << (response.created() ? " declared; it catches up now"
                                 : " was declared already")
          << "\n";
  return kExitOk;
}

int RunRemove(const std::vector<std::string>& args, const Io& io) {
  if (args.size() != 2) {
    return UsageError(io, "mirror", "expected `remove CHANNEL`");
  }
  RemoveMirrorRequest request;
  request.set_channel(args[1]);
  RemoveMirrorResponse response;
  const absl::Status status =
      AtLeader([&](Admin::Stub* stub, grpc::ClientContext* context) {
        return stub->RemoveMirror(context, request, &response);
      });
  if (!status.ok()) return PrintError(io, "mirror", status);
  *io.out << "mirror " << args[1] << " removed\n";
  return kExitOk;
}

int RunList(const Io& io) {
  std::vector<ListMirrorsResponse> answers;
  std::vector<std::string> errors;
  for (const std::string& server : ServersFromFlags()) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        DialFromFlags(server);
    if (!channel.ok()) return PrintError(io, "mirror", channel.status());
    auto stub = Admin::NewStub(*channel);
    grpc::ClientContext context;
    AuthorizeFromFlags(&context);
    context.set_deadline(
        absl::ToChronoTime(absl::Now() + absl::GetFlag(FLAGS_timeout)));
    ListMirrorsResponse response;
    const grpc::Status status =
        stub->ListMirrors(&context, ListMirrorsRequest(), &response);
    if (status.ok()) {
      answers.push_back(std::move(response));
    } else {
      errors.push_back(absl::StrCat(server, ": ", status.error_message()));
    }
  }
  if (answers.empty()) {
    return PrintError(io, "mirror",
                      absl::UnavailableError(absl::StrCat(
                          "no node answered: ", absl::StrJoin(errors, "; "))));
  }
  const ListMirrorsResponse merged = MergeMirrorLists(answers);
  if (absl::GetFlag(FLAGS_json)) return PrintJson(merged, io, "mirror");
  PrintMirrors(merged, *io.out);
  io.out->flush();
  return kExitOk;
}

int RunMirror(const std::vector<std::string>& args, const Io& io) {
  if (!args.empty() && args[0] == "add") return RunAdd(args, io);
  if (!args.empty() && args[0] == "remove") return RunRemove(args, io);
  if (args.size() == 1 && args[0] == "list") return RunList(io);
  return UsageError(io, "mirror", "expected `add`, `remove` or `list`");
}

}  // namespace

ListMirrorsResponse MergeMirrorLists(
    const std::vector<ListMirrorsResponse>& answers) {
  absl::btree_map<std::string, MirrorEntry> merged;
  for (const ListMirrorsResponse& answer : answers) {
    for (const MirrorEntry& entry : answer.mirrors()) {
      auto [it, inserted] = merged.try_emplace(entry.channel(), entry);
      if (inserted) continue;
      MirrorEntry& best = it->second;
      // The feeding node knows the source's position; else the replica
      // with the most messages is the freshest.
      const bool feeds = entry.has_feed() && !best.has_feed();
      const bool fresher =
          !best.has_feed() && entry.has_replica() &&
          entry.local_last_sequence() > best.local_last_sequence();
      if (feeds || fresher || (!best.has_replica() && entry.has_replica())) {
        best = entry;
      }
    }
  }
  ListMirrorsResponse response;
  for (auto& [name, entry] : merged) *response.add_mirrors() = entry;
  return response;
}

void PrintMirrors(const ListMirrorsResponse& mirrors, std::ostream& out) {
  if (mirrors.mirrors().empty()) {
    out << "no mirrors\n";
    return;
  }
  Table table(
      {"CHANNEL", "SOURCE", "DECLARED", "LAST", "SOURCE LAST", "LAG", "STATE"});
  for (const MirrorEntry& entry : mirrors.mirrors()) {
    const bool fed = entry.has_feed();
    std::string state = fed ? entry.feed().state() : "-";
    if (fed && !entry.feed().error().empty()) {
      absl::StrAppend(&state, " (", entry.feed().error(), ")");
    }
    table.AddRow(
        {entry.channel(),
         absl::StrCat(entry.source_cluster(), "/", entry.source_channel()),
         entry.configured() ? "config" : "admin",
         entry.has_replica() ? absl::StrCat(entry.local_last_sequence()) : "-",
         fed ? absl::StrCat(entry.feed().source_last_sequence()) : "-",
         fed ? absl::StrCat(entry.feed().lag()) : "-", state});
  }
  table.Print(out);
}

Command MirrorCommand() {
  return Command{"mirror",
                 "mirror add|remove|list: channels copied from linked clusters",
                 kUsage,
                 {"json", "timeout"},
                 RunMirror};
}

}  // namespace spate::cli
