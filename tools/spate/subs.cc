#include "tools/spate/subs.h"

#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "tools/spate/cluster_view.h"
#include "tools/spate/common.h"
#include "tools/spate/monitor_call.h"
#include "tools/spate/table.h"

namespace spate::cli {
namespace {

using Json = nlohmann::json;

constexpr char kSubsUsage[] =
    R"(usage: spate subs CHANNEL [--json] [--timeout DURATION]

Lists the subscriptions of CHANNEL as the channel's leader sees them: one
row per attached member (queue members each have one) and per offline
durable, with the in-flight window, messages delivered and not acked
(PENDING), the last sequence sent, the ack wait and whether the member is
stalled at its window. Asked of the leader when a --server node knows it
(a follower only knows the replicated state: an upper bound of what was
sent while a member is online). --json prints the channel's JSON.)";

constexpr char kClientsUsage[] =
    R"(usage: spate clients [--json] [--timeout DURATION]

Lists the connected clients (cluster-wide) with when they connected and
their subscriptions (channel:durable or channel:queue or channel).
--json prints the clients' JSON.)";

std::string Str(const Json& value) {
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

// The client address of node `id` from a clusterz answer, or "".
std::string ClientAddressOf(const Json& clusterz, uint64_t id) {
  if (!clusterz.contains("nodes")) return "";
  for (const Json& node : clusterz["nodes"]) {
    if (node.value("node_id", uint64_t{0}) == id) {
      return node.value("client_address", "");
    }
  }
  return "";
}

int PrintAnswer(const Io& io, const char* command,
                const absl::StatusOr<MonitorResult>& result,
                const std::string& missing) {
  if (!result.ok()) return PrintError(io, command, result.status());
  if (result->http_status == 404) {
    return PrintError(io, command, absl::NotFoundError(missing));
  }
  return PrintError(
      io, command,
      absl::UnavailableError(
          absl::StrCat(result->address, " answered ", result->http_status, ": ",
                       result->body.value("error", result->body.dump()))));
}

int RunSubs(const std::vector<std::string>& args, const Io& io) {
  if (args.size() != 1) return UsageError(io, "subs", "expected CHANNEL");
  const absl::Duration timeout = absl::GetFlag(FLAGS_timeout);
  const std::map<std::string, std::string> params = {{"channel", args[0]},
                                                     {"subs", "1"}};
  const std::string missing = absl::StrCat("no channel named \"", args[0],
                                           "\" (`spate channels` lists them)");
  absl::StatusOr<MonitorResult> result = CallAnyMonitor(
      ServersFromFlags(), "/streaming/channelsz", params, timeout);
  if (!result.ok() || result->http_status != 200) {
    return PrintAnswer(io, "subs", result, missing);
  }
  // Exact pending counts live on the leader: ask it when it is elsewhere.
  const uint64_t leader = result->body.value("leader_id", uint64_t{0});
  if (!result->body.value("is_leader", false) && leader != 0) {
    absl::StatusOr<MonitorResult> clusterz =
        CallMonitor(result->address, "/streaming/clusterz", {}, timeout);
    const std::string address =
        clusterz.ok() ? ClientAddressOf(clusterz->body, leader) : "";
    if (!address.empty()) {
      absl::StatusOr<MonitorResult> from_leader =
          CallMonitor(address, "/streaming/channelsz", params, timeout);
      if (from_leader.ok() && from_leader->http_status == 200) {
        result = std::move(from_leader);
      }
    }
  }
  const Json& channel = result->body;
  if (absl::GetFlag(FLAGS_json)) {
    *io.out << channel.dump(2) << std::endl;
    return kExitOk;
  }
  const Json subs = channel.value("subscriptions", Json::array());
  if (subs.empty()) {
    *io.out << "no subscriptions on " << args[0] << std::endl;
    return kExitOk;
  }
  Table table({"CLIENT", "DURABLE", "QUEUE", "STATE", "INFLIGHT", "PENDING",
               "LAST_SENT", "ACK_WAIT", "STALLED"});
  for (const Json& sub : subs) {
    auto dash = [](const std::string& s) { return s.empty() ? "-" : s; };
    table.AddRow({Str(sub["client_id"]), dash(Str(sub["durable_name"])),
                  dash(Str(sub["queue_name"])),
                  sub.value("is_offline", false) ? "offline" : "online",
                  Str(sub["max_inflight"]), Str(sub["pending_count"]),
                  Str(sub["last_sent"]),
                  absl::StrCat(Str(sub["ack_wait"]), "s"),
                  sub.value("is_stalled", false) ? "yes" : "no"});
  }
  *io.out << "channel " << args[0] << " (leader node "
          << channel.value("leader_id", uint64_t{0}) << ", asked "
          << result->address << ")\n";
  table.Print(*io.out);
  io.out->flush();
  return kExitOk;
}

int RunClients(const std::vector<std::string>& args, const Io& io) {
  if (!args.empty()) return UsageError(io, "clients", "expected no argument");
  absl::StatusOr<MonitorResult> result =
      CallAnyMonitor(ServersFromFlags(), "/streaming/clientsz", {{"subs", "1"}},
                     absl::GetFlag(FLAGS_timeout));
  if (!result.ok() || result->http_status != 200) {
    return PrintAnswer(io, "clients", result, "no clients");
  }
  if (absl::GetFlag(FLAGS_json)) {
    *io.out << result->body.dump(2) << std::endl;
    return kExitOk;
  }
  const Json clients = result->body.value("clients", Json::array());
  if (clients.empty()) {
    *io.out << "no clients" << std::endl;
    return kExitOk;
  }
  Table table({"CLIENT", "CONNECTED", "SUBS", "SUBSCRIPTIONS"});
  for (const Json& client : clients) {
    int count = 0;
    std::string list;
    const Json subs = client.value("subscriptions", Json::object());
    for (const auto& [channel, members] : subs.items()) {
      for (const Json& sub : members) {
        ++count;
        std::string name = channel;
        if (!Str(sub["durable_name"]).empty()) {
          absl::StrAppend(&name, ":", Str(sub["durable_name"]));
        }
        if (!Str(sub["queue_name"]).empty()) {
          absl::StrAppend(&name, "[", Str(sub["queue_name"]), "]");
        }
        absl::StrAppend(&list, list.empty() ? "" : ",", name);
      }
    }
    table.AddRow({Str(client["id"]), Str(client["connected"]),
                  absl::StrCat(count), list.empty() ? "-" : list});
  }
  table.Print(*io.out);
  io.out->flush();
  return kExitOk;
}

}  // namespace

Command SubsCommand() {
  return Command{"subs",
                 "subs CHANNEL: a channel's subscriptions, pending, stalled",
                 kSubsUsage,
                 {"json", "timeout"},
                 RunSubs};
}

Command ClientsCommand() {
  return Command{"clients",
                 "list the connected clients and their subscriptions",
                 kClientsUsage,
                 {"json", "timeout"},
                 RunClients};
}

}  // namespace spate::cli
