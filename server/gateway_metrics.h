// GatewayMetrics: the gateway series of a node's Prometheus registry
// (server/metrics.h), brought up to date from GatewayClient::Status() just
// before each /metrics scrape, so the links' hot paths stay free of
// metrics code:
//
//   spate_gateway_bytes_sent_total{remote}      bytes sent on the link
//   spate_gateway_bytes_received_total{remote}  bytes received on it
//   spate_gateway_link_up{remote}               1 while the link is UP
//   spate_mirror_lag_messages{channel}          messages a mirror fed by
//                                               this node is behind
//
// The counters follow the link's own totals (which only grow); a mirror's
// series is removed when this node stops feeding it (another node leads
// it now and reports it).
// Threading: thread-safe (one mutex; scrapes are rare).
#ifndef SPATE_SERVER_GATEWAY_METRICS_H_
#define SPATE_SERVER_GATEWAY_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "proto/admin.pb.h"

namespace spate::server {

class GatewayMetrics {
 public:
  // Registers the families in `registry`, which must outlive this.
  explicit GatewayMetrics(prometheus::Registry* registry);
  GatewayMetrics(const GatewayMetrics&) = delete;
  GatewayMetrics& operator=(const GatewayMetrics&) = delete;

  void Update(const GatewayStatus& status);

 private:
  prometheus::Family<prometheus::Counter>* bytes_sent_;
  prometheus::Family<prometheus::Counter>* bytes_received_;
  prometheus::Family<prometheus::Gauge>* link_up_;
  prometheus::Family<prometheus::Gauge>* mirror_lag_;

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, prometheus::Gauge*> lags_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace spate::server

#endif  // SPATE_SERVER_GATEWAY_METRICS_H_
