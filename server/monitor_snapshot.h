// MonitorQuery / MonitorSnapshot: what the HTTP monitoring endpoints
// (server/monitor_server.h) ask the node for and get back. The node fills a
// snapshot on its loop thread (Node::GetMonitorSnapshot) from live state and
// hands it to the HTTP thread, which turns it into JSON (monitor_json.h)
// without touching the node again. The query carries the filters and the
// page so the loop copies only what one response needs.
//
// Threading: plain values; built on the loop thread, read on another.
#ifndef SPATE_SERVER_MONITOR_SNAPSHOT_H_
#define SPATE_SERVER_MONITOR_SNAPSHOT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "proto/admin.pb.h"
#include "proto/config.pb.h"

namespace spate::server {

struct MonitorQuery {
  // Which parts to fill.
  bool channels = false;
  bool clients = false;
  bool groups = false;
  // With each channel's / client's subscriptions.
  bool subs = false;
  // Only this channel / client (empty: all, paged).
  std::string channel;
  std::string client;
  // Page over channels (by name) or clients (by id).
  int offset = 0;
  int limit = 1024;
};

// One subscription member (or an offline durable), as NATS Streaming's
// monitoring lists subscriptions.
struct SubscriptionView {
  std::string channel;
  std::string client_id;
  std::string durable_name;
  std::string queue_name;
  uint64_t sub_id = 0;
  bool is_durable = false;
  bool is_offline = false;
  int32_t max_inflight = 0;
  int64_t ack_wait_ms = 0;
  // Last sequence sent. From the leader's delivery engine when this node
  // leads the channel; otherwise the replicated sent lease (an upper
  // bound while the subscription is online).
  uint64_t last_sent = 0;
  // Messages delivered and not acked (same source as last_sent).
  int64_t pending_count = 0;
  // At max_inflight: new messages wait for acks.
  bool is_stalled = false;
  uint64_t ack_floor = 0;
  // The values come from this node's delivery engine (it leads).
  bool exact = false;
};

struct ChannelView {
  std::string name;
  uint64_t channel_id = 0;
  int64_t msgs = 0;
  int64_t bytes = 0;
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  uint64_t leader_id = 0;
  bool leading = false;
  int32_t subscription_count = 0;
  std::vector<SubscriptionView> subscriptions;  // with query.subs
};

struct ClientView {
  std::string client_id;
  std::string conn_id;  // hex
  int64_t connected_ns = 0;
  std::vector<SubscriptionView> subscriptions;  // with query.subs
};

struct MonitorSnapshot {
  std::string cluster_name;
  uint64_t node_id = 0;
  std::string client_address;
  // The metadata group as this node sees it.
  GroupStatus meta;
  // Totals over the whole cluster (metadata) and this node's replicas.
  int64_t channel_count = 0;
  int64_t client_count = 0;
  int64_t subscription_count = 0;
  int64_t stored_msgs = 0;
  int64_t stored_bytes = 0;
  int32_t local_groups = 0;
  int32_t leading_groups = 0;
  // Health (/healthz): reaches a quorum of the metadata group, every local
  // group knows a leader and has applied what it knows is committed.
  bool healthy = false;
  std::string health_detail;
  StoreConfig store;

  // Filled per query. `found` is false when query.channel / query.client
  // names something unknown.
  bool found = true;
  int64_t total = 0;  // channels or clients before paging
  std::vector<ChannelView> channels;
  std::vector<ClientView> clients;
  std::vector<GroupStatus> groups;
  std::vector<NodeStatus> nodes;
};

}  // namespace spate::server

#endif  // SPATE_SERVER_MONITOR_SNAPSHOT_H_
