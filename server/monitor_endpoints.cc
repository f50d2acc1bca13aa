#include "server/monitor_endpoints.h"

#include <dirent.h>
#include <sys/resource.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/monitor_json.h"

namespace spate::server {

namespace {

constexpr char kVersion[] = "0.1.0";
// Largest page a request may ask for.
constexpr int kPageLimitMax = 10000;

using Params = std::map<std::string, std::string>;

int64_t OpenFds() {
  int64_t count = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (dirent* entry = readdir(dir)) {
      if (entry->d_name[0] != '.') ++count;
    }
    closedir(dir);
    --count;  // the directory stream itself
  }
  return count;
}

int64_t MaxFds() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  return static_cast<int64_t>(limit.rlim_cur);
}

std::string Param(const Params& params, const char* name) {
  auto it = params.find(name);
  return it == params.end() ? "" : it->second;
}

int IntParam(const Params& params, const char* name, int fallback) {
  int value = 0;
  auto it = params.find(name);
  if (it == params.end() || !absl::SimpleAtoi(it->second, &value) ||
      value < 0) {
    return fallback;
  }
  return value;
}

bool BoolParam(const Params& params, const char* name) {
  auto it = params.find(name);
  if (it == params.end()) return false;
  return it->second == "1" || it->second == "true" || it->second.empty();
}

MonitorAnswer Json(int status, std::string body) {
  MonitorAnswer response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

}  // namespace

MonitorEndpoints::MonitorEndpoints(Node* node, server::Metrics* metrics,
                                   absl::Duration snapshot_wait)
    : node_(node),
      metrics_(metrics),
      snapshot_wait_(snapshot_wait),
      start_time_ns_(absl::GetCurrentTimeNanos()),
      gateway_metrics_(&metrics->registry()) {}

absl::StatusOr<MonitorSnapshot> MonitorEndpoints::Snapshot(
    const MonitorQuery& query) {
  // The callback may run after we gave up waiting: it owns the state too.
  struct Pending {
    absl::Mutex mu;
    std::optional<absl::StatusOr<MonitorSnapshot>> result ABSL_GUARDED_BY(mu);
  };
  auto pending = std::make_shared<Pending>();
  node_->GetMonitorSnapshot(
      query, [pending](absl::StatusOr<MonitorSnapshot> snapshot) {
        absl::MutexLock lock(&pending->mu);
        pending->result = std::move(snapshot);
      });
  absl::MutexLock lock(&pending->mu);
  auto ready = [&pending]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(pending->mu) {
    return pending->result.has_value();
  };
  if (!pending->mu.AwaitWithTimeout(absl::Condition(&ready), snapshot_wait_)) {
    return absl::UnavailableError("node did not answer in time");
  }
  return *std::move(pending->result);
}

MonitorAnswer MonitorEndpoints::Metrics() {
  // Gauges come from a snapshot; counters are always current, so a busy
  // node still answers with them.
  absl::StatusOr<MonitorSnapshot> snapshot = Snapshot(MonitorQuery());
  if (snapshot.ok()) {
    metrics_->SetGroups(snapshot->local_groups, snapshot->leading_groups,
                        snapshot->channel_count, snapshot->client_count,
                        snapshot->subscription_count);
  }
  if (const GatewayClient* gateways = node_->gateways()) {
    gateway_metrics_.Update(gateways->Status());
  }
  MonitorAnswer response;
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  response.body = metrics_->Serialize();
  return response;
}

MonitorAnswer MonitorEndpoints::Gatewayz() {
  // The links' status is guarded by the gateway client itself: no loop
  // snapshot needed, so it answers even while the node is busy.
  const GatewayClient* gateways = node_->gateways();
  GatewayStatus status;
  if (gateways != nullptr) {
    status = gateways->Status();
  } else {
    status.set_cluster_name(node_->config().node().cluster_name());
  }
  return Json(200, GatewayzJson(status, gateways != nullptr,
                                absl::GetCurrentTimeNanos()));
}

MonitorAnswer MonitorEndpoints::Handle(const std::string& path,
                                       const Params& params) {
  if (path == "/metrics") return Metrics();
  if (path == "/streaming/gatewayz") return Gatewayz();
  MonitorQuery query;
  MonitorPage page;
  bool single = false;
  if (path == "/streaming/clusterz") {
    query.groups = true;
  } else if (path == "/streaming/channelsz" || path == "/streaming/clientsz") {
    const bool channels = path == "/streaming/channelsz";
    query.channels = channels;
    query.clients = !channels;
    query.channel = channels ? Param(params, "channel") : "";
    query.client = channels ? "" : Param(params, "client");
    single = !query.channel.empty() || !query.client.empty();
    query.subs = BoolParam(params, "subs") || single;
    query.offset = page.offset = IntParam(params, "offset", 0);
    query.limit = page.limit =
        std::min(IntParam(params, "limit", 1024), kPageLimitMax);
  } else if (path != "/streaming/serverz" && path != "/streaming/storez" &&
             path != "/healthz") {
    return Json(404, ErrorJson(absl::StrCat("no such endpoint: ", path)));
  }
  absl::StatusOr<MonitorSnapshot> snapshot = Snapshot(query);
  if (!snapshot.ok()) {
    return Json(503, ErrorJson(std::string(snapshot.status().message())));
  }
  MonitorContext context;
  context.version = kVersion;
  context.start_time_ns = start_time_ns_;
  context.now_ns = absl::GetCurrentTimeNanos();
  context.open_fds = OpenFds();
  context.max_fds = MaxFds();
  context.in_msgs = metrics_->in_msgs();
  context.in_bytes = metrics_->in_bytes();
  context.out_msgs = metrics_->out_msgs();
  context.out_bytes = metrics_->out_bytes();
  const int found = snapshot->found ? 200 : 404;
  if (path == "/streaming/serverz") {
    return Json(200, ServerzJson(*snapshot, context));
  }
  if (path == "/streaming/storez") {
    return Json(200, StorezJson(*snapshot, context));
  }
  if (path == "/streaming/clusterz") {
    return Json(200, ClusterzJson(*snapshot, context));
  }
  if (path == "/streaming/channelsz") {
    return Json(found,
                ChannelszJson(*snapshot, context, page, query.subs, single));
  }
  if (path == "/streaming/clientsz") {
    return Json(found,
                ClientszJson(*snapshot, context, page, query.subs, single));
  }
  return Json(snapshot->healthy ? 200 : 503, HealthzJson(*snapshot));
}

}  // namespace spate::server
