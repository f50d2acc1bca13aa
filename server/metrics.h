// Metrics: the node's Prometheus registry (prometheus-cpp) and the handles
// the hot paths update. `/metrics` (server/monitor_server.h) serializes it
// in the Prometheus text format; `/streaming/serverz` reads the totals.
//
// Cost: counters are lock-free atomics (prometheus-cpp 1.0); the publish
// path adds a handful of increments per proposed batch, not per message,
// and one histogram observation (a short mutex) per batch. Per-channel
// handles are created once, when a channel's host is built (ForChannel
// takes the registry's lock), and kept by the host.
//
// Gateways register their own families through registry()
// (server/gateway_metrics.h: spate_gateway_bytes_{sent,received}_total,
// spate_gateway_link_up, spate_mirror_lag_messages). Nothing here needs to
// change for them.
//
// Threading: thread-safe. Created before the node starts and destroyed
// after every user stopped (the Server owns it).
#ifndef SPATE_SERVER_METRICS_H_
#define SPATE_SERVER_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace spate::server {

// One channel's counters (labels {channel=NAME}). Counted by the node that
// leads the channel, when the event happens there.
struct ChannelCounters {
  prometheus::Counter* published_msgs;
  prometheus::Counter* published_bytes;
  prometheus::Counter* delivered_msgs;
  prometheus::Counter* delivered_bytes;
  prometheus::Counter* acked_msgs;
  prometheus::Counter* redelivered_msgs;
};

class Metrics {
 public:
  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // The counters of channel `name`, created on first use; the pointer stays
  // valid for the Metrics' lifetime.
  ChannelCounters* ForChannel(const std::string& name);

  // Publishes committed on a channel this node leads.
  void Published(ChannelCounters* channel, int64_t msgs, int64_t bytes);
  // Messages sent to subscribers (new deliveries and redeliveries).
  void Delivered(ChannelCounters* channel, int64_t msgs, int64_t bytes,
                 int64_t redelivered);
  void Acked(ChannelCounters* channel, int64_t msgs) {
    channel->acked_msgs->Increment(static_cast<double>(msgs));
  }
  // From a publish batch's first message arriving to its commit.
  void PublishCommitted(double seconds) { publish_commit_->Observe(seconds); }
  // A replica on this node ran for leader (became candidate, or leader
  // at once).
  void ElectionStarted() { elections_->Increment(); }
  // A group on this node learned of a new leader.
  void LeaderChanged() { leader_changes_->Increment(); }
  // One group commit: entries of all groups in one write, and its fsync.
  void GroupCommit(int64_t entries, double fsync_seconds, bool synced);

  // Gauges, set from a monitoring snapshot before each scrape.
  void SetGroups(int64_t local, int64_t leading, int64_t channels,
                 int64_t clients, int64_t subscriptions);

  // Totals over every channel since start (serverz).
  double in_msgs() const { return in_msgs_->Value(); }
  double in_bytes() const { return in_bytes_->Value(); }
  double out_msgs() const { return out_msgs_->Value(); }
  double out_bytes() const { return out_bytes_->Value(); }

  // The Prometheus text exposition of every metric.
  std::string Serialize() const;
  prometheus::Registry& registry() { return *registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* published_msgs_;
  prometheus::Family<prometheus::Counter>* published_bytes_;
  prometheus::Family<prometheus::Counter>* delivered_msgs_;
  prometheus::Family<prometheus::Counter>* delivered_bytes_;
  prometheus::Family<prometheus::Counter>* acked_msgs_;
  prometheus::Family<prometheus::Counter>* redelivered_msgs_;
  prometheus::Counter* in_msgs_;
  prometheus::Counter* in_bytes_;
  prometheus::Counter* out_msgs_;
  prometheus::Counter* out_bytes_;
  prometheus::Histogram* publish_commit_;
  prometheus::Counter* elections_;
  prometheus::Counter* leader_changes_;
  prometheus::Histogram* append_batch_entries_;
  prometheus::Histogram* fsync_seconds_;
  prometheus::Gauge* local_groups_;
  prometheus::Gauge* leading_groups_;
  prometheus::Gauge* channels_;
  prometheus::Gauge* clients_;
  prometheus::Gauge* subscriptions_;

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<ChannelCounters>>
      channels_by_name_ ABSL_GUARDED_BY(mu_);
};

}  // namespace spate::server

#endif  // SPATE_SERVER_METRICS_H_
