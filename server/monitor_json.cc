#include "server/monitor_json.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace spate::server {

namespace {

using Json = nlohmann::json;

// NATS Streaming's role names: Leader, Follower, Candidate.
std::string RoleName(const std::string& role) {
  if (role.empty()) return role;
  std::string out = role;
  out[0] = absl::ascii_toupper(out[0]);
  return out;
}

Json Header(const MonitorSnapshot& snapshot, const MonitorContext& context) {
  Json json;
  json["cluster_id"] = snapshot.cluster_name;
  json["server_id"] = absl::StrCat(snapshot.node_id);
  json["node_id"] = snapshot.node_id;
  json["now"] = FormatTime(context.now_ns);
  return json;
}

Json SubscriptionJson(const SubscriptionView& sub) {
  Json json;
  json["client_id"] = sub.client_id;
  json["channel"] = sub.channel;
  json["sub_id"] = sub.sub_id;
  json["durable_name"] = sub.durable_name;
  json["queue_name"] = sub.queue_name;
  json["is_durable"] = sub.is_durable;
  json["is_offline"] = sub.is_offline;
  json["max_inflight"] = sub.max_inflight;
  // NATS reports ack_wait in seconds.
  json["ack_wait"] = sub.ack_wait_ms / 1000;
  json["ack_wait_ms"] = sub.ack_wait_ms;
  json["last_sent"] = sub.last_sent;
  json["pending_count"] = sub.pending_count;
  json["is_stalled"] = sub.is_stalled;
  json["ack_floor"] = sub.ack_floor;
  json["exact"] = sub.exact;
  return json;
}

Json ChannelJson(const ChannelView& channel, bool subs) {
  Json json;
  json["name"] = channel.name;
  json["channel_id"] = channel.channel_id;
  json["msgs"] = channel.msgs;
  json["bytes"] = channel.bytes;
  json["first_seq"] = channel.first_seq;
  json["last_seq"] = channel.last_seq;
  json["leader_id"] = channel.leader_id;
  json["is_leader"] = channel.leading;
  json["subscription_count"] = channel.subscription_count;
  if (subs) {
    Json list = Json::array();
    for (const SubscriptionView& sub : channel.subscriptions) {
      list.push_back(SubscriptionJson(sub));
    }
    json["subscriptions"] = std::move(list);
  }
  return json;
}

Json ClientJson(const ClientView& client, bool subs) {
  Json json;
  json["id"] = client.client_id;
  json["conn_id"] = client.conn_id;
  json["connected"] = FormatTime(client.connected_ns);
  if (subs) {
    // As NATS: {"channel": [subscription, ...]}.
    Json by_channel = Json::object();
    for (const SubscriptionView& sub : client.subscriptions) {
      by_channel[sub.channel].push_back(SubscriptionJson(sub));
    }
    json["subscriptions"] = std::move(by_channel);
  }
  return json;
}

Json LimitsJson(const LimitsConfig& limits) {
  Json json;
  json["max_msgs"] = limits.max_msgs();
  json["max_bytes"] = limits.max_bytes();
  json["max_age"] = FormatUptime(limits.max_age_ms() * 1000000);
  json["max_age_ms"] = limits.max_age_ms();
  json["max_subscriptions"] = limits.max_subs();
  json["max_inactivity"] = FormatUptime(limits.max_inactivity_ms() * 1000000);
  json["max_inactivity_ms"] = limits.max_inactivity_ms();
  return json;
}

Json PageJson(const MonitorSnapshot& snapshot, const MonitorContext& context,
              const MonitorPage& page, size_t count) {
  Json json = Header(snapshot, context);
  json["offset"] = page.offset;
  json["limit"] = page.limit;
  json["count"] = count;
  json["total"] = snapshot.total;
  return json;
}

}  // namespace

std::string FormatUptime(int64_t ns) {
  int64_t s = ns / 1000000000;
  const int64_t days = s / 86400;
  s %= 86400;
  const int64_t hours = s / 3600;
  s %= 3600;
  const int64_t minutes = s / 60;
  s %= 60;
  std::string out;
  if (days > 0) absl::StrAppend(&out, days, "d");
  if (days > 0 || hours > 0) absl::StrAppend(&out, hours, "h");
  if (days > 0 || hours > 0 || minutes > 0) absl::StrAppend(&out, minutes, "m");
  absl::StrAppend(&out, s, "s");
  return out;
}

std::string FormatTime(int64_t unix_ns) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E9SZ", absl::FromUnixNanos(unix_ns),
                          absl::UTCTimeZone());
}

std::string ServerzJson(const MonitorSnapshot& snapshot,
                        const MonitorContext& context) {
  Json json = Header(snapshot, context);
  json["version"] = context.version;
  json["state"] = "CLUSTERED";
  json["role"] = RoleName(snapshot.meta.role());
  json["metadata_leader"] = snapshot.meta.leader_id();
  json["start_time"] = FormatTime(context.start_time_ns);
  json["uptime"] = FormatUptime(context.now_ns - context.start_time_ns);
  json["clients"] = snapshot.client_count;
  json["subscriptions"] = snapshot.subscription_count;
  json["channels"] = snapshot.channel_count;
  json["total_msgs"] = snapshot.stored_msgs;
  json["total_bytes"] = snapshot.stored_bytes;
  json["in_msgs"] = static_cast<int64_t>(context.in_msgs);
  json["in_bytes"] = static_cast<int64_t>(context.in_bytes);
  json["out_msgs"] = static_cast<int64_t>(context.out_msgs);
  json["out_bytes"] = static_cast<int64_t>(context.out_bytes);
  json["open_fds"] = context.open_fds;
  json["max_fds"] = context.max_fds;
  json["raft_groups"] = snapshot.local_groups;
  json["leading_groups"] = snapshot.leading_groups;
  json["healthy"] = snapshot.healthy;
  return json.dump(2);
}

std::string StorezJson(const MonitorSnapshot& snapshot,
                       const MonitorContext& context) {
  Json json = Header(snapshot, context);
  json["type"] = "ROCKSDB";
  Json limits = LimitsJson(snapshot.store.limits());
  limits["max_channels"] = snapshot.store.max_channels();
  limits["max_payload_bytes"] = snapshot.store.max_payload_bytes();
  Json overrides = Json::object();
  for (const ChannelLimitsOverride& o : snapshot.store.channel_overrides()) {
    overrides[o.pattern()] = LimitsJson(o.limits());
  }
  limits["channels"] = std::move(overrides);
  json["limits"] = std::move(limits);
  json["sync_writes"] = snapshot.store.sync_writes();
  json["total_msgs"] = snapshot.stored_msgs;
  json["total_bytes"] = snapshot.stored_bytes;
  return json.dump(2);
}

std::string ChannelszJson(const MonitorSnapshot& snapshot,
                          const MonitorContext& context,
                          const MonitorPage& page, bool subs, bool single) {
  if (single) {
    if (snapshot.channels.empty()) return ErrorJson("unknown channel");
    return ChannelJson(snapshot.channels.front(), subs).dump(2);
  }
  Json json = PageJson(snapshot, context, page, snapshot.channels.size());
  if (subs) {
    Json list = Json::array();
    for (const ChannelView& channel : snapshot.channels) {
      list.push_back(ChannelJson(channel, true));
    }
    json["channels"] = std::move(list);
  } else {
    Json names = Json::array();
    for (const ChannelView& channel : snapshot.channels) {
      names.push_back(channel.name);
    }
    json["names"] = std::move(names);
  }
  return json.dump(2);
}

std::string ClientszJson(const MonitorSnapshot& snapshot,
                         const MonitorContext& context, const MonitorPage& page,
                         bool subs, bool single) {
  if (single) {
    if (snapshot.clients.empty()) return ErrorJson("unknown client");
    return ClientJson(snapshot.clients.front(), subs).dump(2);
  }
  Json json = PageJson(snapshot, context, page, snapshot.clients.size());
  Json list = Json::array();
  for (const ClientView& client : snapshot.clients) {
    list.push_back(ClientJson(client, subs));
  }
  json["clients"] = std::move(list);
  return json.dump(2);
}

std::string ClusterzJson(const MonitorSnapshot& snapshot,
                         const MonitorContext& context) {
  Json json = Header(snapshot, context);
  Json nodes = Json::array();
  for (const NodeStatus& node : snapshot.nodes) {
    nodes.push_back({{"node_id", node.node_id()},
                     {"client_address", node.client_address()},
                     {"cluster_address", node.cluster_address()},
                     {"reachable", node.reachable()},
                     {"state", node.state()}});
  }
  json["nodes"] = std::move(nodes);
  Json groups = Json::array();
  for (const GroupStatus& group : snapshot.groups) {
    Json g;
    g["group_id"] = group.group_id();
    g["channel"] = group.channel();
    g["role"] = RoleName(group.role());
    g["leader"] = group.leader_id();
    g["term"] = group.term();
    g["commit_index"] = group.commit_index();
    g["applied_index"] = group.applied_index();
    g["first_index"] = group.first_index();
    g["last_index"] = group.last_index();
    g["voters"] = Json(
        std::vector<uint64_t>(group.voters().begin(), group.voters().end()));
    g["learners"] = Json(std::vector<uint64_t>(group.learners().begin(),
                                               group.learners().end()));
    g["quiesced"] = group.quiesced();
    g["halted"] = group.halted();
    // Leader only: how far behind each follower's log is.
    Json followers = Json::array();
    for (const PeerProgress& peer : group.peers()) {
      const uint64_t lag = group.last_index() > peer.match_index()
                               ? group.last_index() - peer.match_index()
                               : 0;
      followers.push_back({{"node_id", peer.node_id()},
                           {"match_index", peer.match_index()},
                           {"next_index", peer.next_index()},
                           {"state", peer.state()},
                           {"recently_active", peer.recently_active()},
                           {"lag", lag}});
    }
    g["followers"] = std::move(followers);
    groups.push_back(std::move(g));
  }
  json["groups"] = std::move(groups);
  return json.dump(2);
}

std::string HealthzJson(const MonitorSnapshot& snapshot) {
  Json json;
  json["status"] = snapshot.healthy ? "ok" : "unavailable";
  if (!snapshot.healthy) json["error"] = snapshot.health_detail;
  return json.dump();
}

std::string GatewayzJson(const GatewayStatus& status, bool configured,
                         int64_t now_ns) {
  Json json;
  json["cluster"] = status.cluster_name();
  json["now"] = FormatTime(now_ns);
  json["gateways_configured"] = configured;
  Json links = Json::array();
  for (const GatewayLinkStatus& link : status.links()) {
    Json l;
    l["remote"] = link.cluster();
    l["address"] = link.address();
    l["state"] = link.state();
    const bool up = link.connected_since_ns() > 0;
    l["connected_since"] =
        up ? FormatTime(link.connected_since_ns()) : std::string();
    l["connected_for"] = up ? FormatUptime(std::max<int64_t>(
                                  0, now_ns - link.connected_since_ns()))
                            : std::string();
    l["bytes_in"] = link.bytes_received();
    l["bytes_out"] = link.bytes_sent();
    l["requests"] = link.requests();
    l["failures"] = link.failures();
    l["reconnects"] = link.reconnects();
    l["remote_channels"] = link.channels();
    l["error"] = link.error();
    links.push_back(std::move(l));
  }
  json["links"] = std::move(links);
  Json mirrors = Json::array();
  for (const MirrorStatus& mirror : status.mirrors()) {
    Json m;
    m["channel"] = mirror.channel();
    m["source_cluster"] = mirror.source_cluster();
    m["source_channel"] = mirror.source_channel();
    m["source_last_seq"] = mirror.source_last_sequence();
    m["local_last_seq"] = mirror.local_last_sequence();
    m["lag"] = mirror.lag();
    m["state"] = mirror.state();
    m["error"] = mirror.error();
    m["msgs_applied"] = mirror.messages_applied();
    m["bytes_applied"] = mirror.bytes_applied();
    mirrors.push_back(std::move(m));
  }
  json["mirrors"] = std::move(mirrors);
  Json conflicts = Json::array();
  for (const GatewayConflict& conflict : status.conflicts()) {
    conflicts.push_back(
        {{"channel", conflict.channel()},
         {"clusters", std::vector<std::string>(conflict.clusters().begin(),
                                               conflict.clusters().end())},
         {"routed_to", conflict.routed_to()}});
  }
  json["conflicts"] = std::move(conflicts);
  return json.dump(2);
}

std::string ErrorJson(const std::string& message) {
  return Json{{"error", message}}.dump();
}

}  // namespace spate::server
