// MonitorEndpoints: answers one monitoring request — a path such as
// "/streaming/channelsz" and its query parameters — with an HTTP status and
// a body (JSON, or the Prometheus text for /metrics). The HTTP listener
// (monitor_server.h) and the Admin.Monitor RPC (the `spate` CLI's `subs`
// and `clients`) both serve through it, so they always agree.
//
//   /streaming/serverz    node, role, uptime, totals in/out, open fds
//   /streaming/storez     store type, limits, stored totals
//   /streaming/clientsz   ?offset=&limit=&subs=1&client=ID
//   /streaming/channelsz  ?offset=&limit=&subs=1&channel=NAME
//   /streaming/clusterz   raft groups: leader, term, indexes, follower lag
//   /streaming/gatewayz   links to other clusters, mirrors fed here, name
//                         conflicts (GatewayClient::Status(), no snapshot)
//   /healthz              200 only when connected to a quorum, caught up
//   /metrics              Prometheus text (server/metrics.h, and the
//                         gateway series of server/gateway_metrics.h)
// Unknown channel, client or path: 404 with {"error": ...}; a node too busy
// to answer within `snapshot_wait`: 503.
//
// Each request asks the node's loop for a snapshot (Node::
// GetMonitorSnapshot) and waits at most snapshot_wait; nothing here touches
// loop state.
// Threading: thread-safe (no mutable state besides what Node/Metrics
// guard). The node and metrics must outlive it.
#ifndef SPATE_SERVER_MONITOR_ENDPOINTS_H_
#define SPATE_SERVER_MONITOR_ENDPOINTS_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/gateway_metrics.h"
#include "server/metrics.h"
#include "server/monitor_snapshot.h"
#include "server/node.h"

namespace spate::server {

struct MonitorAnswer {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

class MonitorEndpoints {
 public:
  MonitorEndpoints(Node* node, Metrics* metrics,
                   absl::Duration snapshot_wait = absl::Seconds(2));

  MonitorAnswer Handle(const std::string& path,
                       const std::map<std::string, std::string>& params);

 private:
  // The node's snapshot for `query`, or UNAVAILABLE after the wait.
  absl::StatusOr<MonitorSnapshot> Snapshot(const MonitorQuery& query);
  MonitorAnswer Metrics();
  MonitorAnswer Gatewayz();

  Node* node_;
  server::Metrics* metrics_;
  absl::Duration snapshot_wait_;
  int64_t start_time_ns_;
  GatewayMetrics gateway_metrics_;
};

}  // namespace spate::server

#endif  // SPATE_SERVER_MONITOR_ENDPOINTS_H_
