#include "server/gateway_metrics.h"

#include <map>
#include <utility>

namespace spate::server {
namespace {

// Raises `counter` to `total` (counters only grow).
void RaiseTo(prometheus::Counter* counter, int64_t total) {
  const double delta = static_cast<double>(total) - counter->Value();
  if (delta > 0) counter->Increment(delta);
}

}  // namespace

GatewayMetrics::GatewayMetrics(prometheus::Registry* registry)
    : bytes_sent_(&prometheus::BuildCounter()
                       .Name("spate_gateway_bytes_sent_total")
                       .Help("Bytes this node sent to a remote cluster's "
                             "gateway (requests)")
                       .Register(*registry)),
      bytes_received_(&prometheus::BuildCounter()
                           .Name("spate_gateway_bytes_received_total")
                           .Help("Bytes this node received from a remote "
                                 "cluster's gateway (answers)")
                           .Register(*registry)),
      link_up_(&prometheus::BuildGauge()
                    .Name("spate_gateway_link_up")
                    .Help("1 while this node's link to the remote cluster "
                          "is UP, else 0")
                    .Register(*registry)),
      mirror_lag_(&prometheus::BuildGauge()
                       .Name("spate_mirror_lag_messages")
                       .Help("Messages a mirror fed by this node is behind "
                             "its source")
                       .Register(*registry)) {}

void GatewayMetrics::Update(const GatewayStatus& status) {
  absl::MutexLock lock(&mu_);
  for (const GatewayLinkStatus& link : status.links()) {
    const std::map<std::string, std::string> labels = {
        {"remote", link.cluster()}};
    RaiseTo(&bytes_sent_->Add(labels), link.bytes_sent());
    RaiseTo(&bytes_received_->Add(labels), link.bytes_received());
    link_up_->Add(labels).Set(link.state() == "UP" ? 1 : 0);
  }
  absl::flat_hash_map<std::string, prometheus::Gauge*> lags;
  for (const MirrorStatus& mirror : status.mirrors()) {
    prometheus::Gauge* gauge =
        &mirror_lag_->Add({{"channel", mirror.channel()}});
    gauge->Set(static_cast<double>(mirror.lag()));
    lags[mirror.channel()] = gauge;
  }
  for (const auto& [channel, gauge] : lags_) {
    if (!lags.contains(channel)) mirror_lag_->Remove(gauge);
  }
  lags_ = std::move(lags);
}

}  // namespace spate::server
