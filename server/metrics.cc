#include "server/metrics.h"

#include <prometheus/text_serializer.h>

#include <utility>
#include <vector>

namespace spate::server {

namespace {

prometheus::Family<prometheus::Counter>* CounterFamily(
    prometheus::Registry* registry, const std::string& name,
    const std::string& help) {
  return &prometheus::BuildCounter().Name(name).Help(help).Register(*registry);
}

prometheus::Counter* Counter(prometheus::Registry* registry,
                             const std::string& name, const std::string& help) {
  return &CounterFamily(registry, name, help)->Add({});
}

prometheus::Gauge* Gauge(prometheus::Registry* registry,
                         const std::string& name, const std::string& help) {
  return &prometheus::BuildGauge()
              .Name(name)
              .Help(help)
              .Register(*registry)
              .Add({});
}

prometheus::Histogram* Histogram(prometheus::Registry* registry,
                                 const std::string& name,
                                 const std::string& help,
                                 std::vector<double> buckets) {
  return &prometheus::BuildHistogram()
              .Name(name)
              .Help(help)
              .Register(*registry)
              .Add({},
                   prometheus::Histogram::BucketBoundaries(std::move(buckets)));
}

// 100 µs .. ~3 s, doubling: publish commit and fsync latencies.
std::vector<double> LatencyBuckets() {
  std::vector<double> buckets;
  for (double b = 0.0001; b < 4; b *= 2) buckets.push_back(b);
  return buckets;
}

}  // namespace

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  prometheus::Registry* r = registry_.get();
  published_msgs_ = CounterFamily(r, "spate_channel_published_msgs_total",
                                  "Messages committed, by channel (leader)");
  published_bytes_ =
      CounterFamily(r, "spate_channel_published_bytes_total",
                    "Payload bytes committed, by channel (leader)");
  delivered_msgs_ =
      CounterFamily(r, "spate_channel_delivered_msgs_total",
                    "Messages sent to subscribers, by channel (leader)");
  delivered_bytes_ =
      CounterFamily(r, "spate_channel_delivered_bytes_total",
                    "Payload bytes sent to subscribers, by channel (leader)");
  acked_msgs_ = CounterFamily(r, "spate_channel_acked_msgs_total",
                              "Subscriber acks accepted, by channel (leader)");
  redelivered_msgs_ =
      CounterFamily(r, "spate_channel_redelivered_msgs_total",
                    "Messages redelivered, by channel (leader)");
  in_msgs_ = Counter(r, "spate_in_msgs_total", "Messages published");
  in_bytes_ = Counter(r, "spate_in_bytes_total", "Payload bytes published");
  out_msgs_ = Counter(r, "spate_out_msgs_total", "Messages delivered");
  out_bytes_ = Counter(r, "spate_out_bytes_total", "Payload bytes delivered");
  publish_commit_ =
      Histogram(r, "spate_publish_commit_seconds",
                "From a publish batch's first message arriving to its commit",
                LatencyBuckets());
  elections_ = Counter(r, "spate_raft_elections_total",
                       "Elections started by replicas on this node");
  leader_changes_ = Counter(r, "spate_raft_leader_changes_total",
                            "New leaders learned by replicas on this node");
  append_batch_entries_ =
      Histogram(r, "spate_raft_append_batch_entries",
                "Raft entries of all groups written by one group commit",
                {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096});
  fsync_seconds_ =
      Histogram(r, "spate_raft_fsync_seconds",
                "Duration of one synced group-commit write", LatencyBuckets());
  local_groups_ =
      Gauge(r, "spate_raft_groups", "Raft groups with a replica on this node");
  leading_groups_ =
      Gauge(r, "spate_raft_leading_groups", "Raft groups this node leads");
  channels_ = Gauge(r, "spate_channels", "Channels in the cluster");
  clients_ = Gauge(r, "spate_clients", "Clients connected to the cluster");
  subscriptions_ = Gauge(r, "spate_subscriptions",
                         "Subscriptions of channels replicated here");
}

ChannelCounters* Metrics::ForChannel(const std::string& name) {
  absl::MutexLock lock(&mu_);
  std::unique_ptr<ChannelCounters>& slot = channels_by_name_[name];
  if (slot == nullptr) {
    const prometheus::Labels labels = {{"channel", name}};
    slot = std::make_unique<ChannelCounters>(ChannelCounters{
        &published_msgs_->Add(labels), &published_bytes_->Add(labels),
        &delivered_msgs_->Add(labels), &delivered_bytes_->Add(labels),
        &acked_msgs_->Add(labels), &redelivered_msgs_->Add(labels)});
  }
  return slot.get();
}

void Metrics::Published(ChannelCounters* channel, int64_t msgs, int64_t bytes) {
  channel->published_msgs->Increment(static_cast<double>(msgs));
  channel->published_bytes->Increment(static_cast<double>(bytes));
  in_msgs_->Increment(static_cast<double>(msgs));
  in_bytes_->Increment(static_cast<double>(bytes));
}

void Metrics::Delivered(ChannelCounters* channel, int64_t msgs, int64_t bytes,
                        int64_t redelivered) {
  channel->delivered_msgs->Increment(static_cast<double>(msgs));
  channel->delivered_bytes->Increment(static_cast<double>(bytes));
  if (redelivered > 0) {
    channel->redelivered_msgs->Increment(static_cast<double>(redelivered));
  }
  out_msgs_->Increment(static_cast<double>(msgs));
  out_bytes_->Increment(static_cast<double>(bytes));
}

void Metrics::GroupCommit(int64_t entries, double fsync_seconds, bool synced) {
  if (entries > 0) append_batch_entries_->Observe(static_cast<double>(entries));
  if (synced) fsync_seconds_->Observe(fsync_seconds);
}

void Metrics::SetGroups(int64_t local, int64_t leading, int64_t channels,
                        int64_t clients, int64_t subscriptions) {
  local_groups_->Set(static_cast<double>(local));
  leading_groups_->Set(static_cast<double>(leading));
  channels_->Set(static_cast<double>(channels));
  clients_->Set(static_cast<double>(clients));
  subscriptions_->Set(static_cast<double>(subscriptions));
}

std::string Metrics::Serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace spate::server
