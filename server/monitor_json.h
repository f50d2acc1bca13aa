// Monitoring JSON: turns a MonitorSnapshot (server/monitor_snapshot.h) into
// the bodies of the HTTP endpoints. Field names follow NATS Streaming's
// monitoring (/streaming/serverz, storez, clientsz, channelsz) so existing
// dashboards and habits carry over; /streaming/clusterz is Spate's own
// (raft groups). Pure functions of their inputs (tested without a server).
//
// Threading: pure; called on the HTTP threads.
#ifndef SPATE_SERVER_MONITOR_JSON_H_
#define SPATE_SERVER_MONITOR_JSON_H_

#include <cstdint>
#include <string>

#include "server/monitor_snapshot.h"

namespace spate::server {

// What the HTTP side adds to a snapshot: process facts and traffic totals.
struct MonitorContext {
  std::string version;
  int64_t start_time_ns = 0;  // wall clock, for start_time and uptime
  int64_t now_ns = 0;
  int64_t open_fds = 0;
  int64_t max_fds = 0;
  double in_msgs = 0;
  double in_bytes = 0;
  double out_msgs = 0;
  double out_bytes = 0;
};

struct MonitorPage {
  int offset = 0;
  int limit = 1024;
};

std::string ServerzJson(const MonitorSnapshot& snapshot,
                        const MonitorContext& context);
std::string StorezJson(const MonitorSnapshot& snapshot,
                       const MonitorContext& context);
// A page of channels (names only unless `subs`), or with `single` the one
// channel's object.
std::string ChannelszJson(const MonitorSnapshot& snapshot,
                          const MonitorContext& context,
                          const MonitorPage& page, bool subs, bool single);
std::string ClientszJson(const MonitorSnapshot& snapshot,
                         const MonitorContext& context, const MonitorPage& page,
                         bool subs, bool single);
std::string ClusterzJson(const MonitorSnapshot& snapshot,
                         const MonitorContext& context);
std::string HealthzJson(const MonitorSnapshot& snapshot);
// /streaming/gatewayz: this node's links to other clusters (state, address,
// connected since, bytes in/out, reconnects), the mirrors it feeds (source
// and local last sequence, lag) and channel name conflicts, from
// GatewayClient::Status(). `configured` false: no gateways (empty lists).
std::string GatewayzJson(const GatewayStatus& status, bool configured,
                         int64_t now_ns);
// {"error": message}
std::string ErrorJson(const std::string& message);

// "1h2m3s" the way NATS prints uptime.
std::string FormatUptime(int64_t ns);
// RFC 3339 with nanoseconds, UTC.
std::string FormatTime(int64_t unix_ns);

}  // namespace spate::server

#endif  // SPATE_SERVER_MONITOR_JSON_H_
