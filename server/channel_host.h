// ChannelHost: one channel on this node — its raft group, its ChannelFsm,
// and (while this node leads the channel) its delivery engine and the
// subscriber streams attached here. It turns client requests into channel
// commands, batches them (all publishes that arrive in one loop iteration
// become one raft entry), and completes requests when their command is
// applied.
//
// Leadership: requests wait (bounded) until the group is serving. When
// this node starts serving it closes every member left attached in the
// FSM by a previous leader or a previous run of this node (their streams
// are gone), recording the sent lease as last_sent so their unacked
// messages come back redelivered. When it stops leading, streams attached
// here end with UNAVAILABLE and waiting requests fail UNAVAILABLE
// (retryable).
//
// Threading: owned by the node's event loop; every method runs there, and
// completion callbacks run there too.
#ifndef SPATE_SERVER_CHANNEL_HOST_H_
#define SPATE_SERVER_CHANNEL_HOST_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "proto/command.pb.h"
#include "proto/config.pb.h"
#include "proto/streaming.pb.h"
#include "server/channel_fsm.h"
#include "server/clock.h"
#include "server/delivery.h"
#include "server/metrics.h"
#include "server/raft_group.h"
#include "server/subscriber_stream.h"

namespace spate::server {

using PublishDone = absl::AnyInvocable<void(const PubAck&)>;
using StatusDone = absl::AnyInvocable<void(absl::Status)>;

struct ChannelHostOptions {
  const ServerConfig* config = nullptr;
  DeliveryOptions delivery;
  // How long a request waits for this node to serve the channel.
  int64_t serving_wait_ns = 3'000'000'000;
  // Bounds of one PublishBatch command.
  size_t publish_batch_entries_max = 4096;
  int64_t publish_batch_bytes_max = 4 << 20;
  // Prefix of the member ids this node creates (unique per node run).
  std::string member_id_prefix;
  // Whether a member's connection is still registered (metadata group).
  std::function<bool(const std::string& client_id, const std::string& conn_id)>
      connection_alive;
  // Thread-safe routes back into the node for a local stream's acks and end
  // (they post to the loop, which calls Acks / StreamEnded).
  std::function<void(uint64_t channel_id, std::string member_id,
                     std::vector<uint64_t> seqs)>
      post_acks;
  std::function<void(uint64_t channel_id, std::string member_id)>
      post_stream_end;
  // Where publishes, deliveries and acks are counted (optional; outlives
  // the host).
  Metrics* metrics = nullptr;
};

// A PubAck carrying `status` as its error (code and message).
PubAck ErrorAck(const std::string& guid, const absl::Status& status);

class ChannelHost {
 public:
  ChannelHost(std::unique_ptr<ChannelFsm> fsm, std::unique_ptr<RaftGroup> group,
              const ChannelHostOptions& options, const Clock* clock);
  ChannelHost(const ChannelHost&) = delete;
  ChannelHost& operator=(const ChannelHost&) = delete;
  ~ChannelHost();

  // ---- Requests (already validated at the edge) ----
  void Publish(const PubMsg& msg, PublishDone done);
  // Errors end the stream with the status.
  void Subscribe(const SubscriptionRequest& request,
                 std::shared_ptr<SubscriberStream> stream);
  void Acks(const std::string& member_id, absl::Span<const uint64_t> seqs);
  void StreamEnded(const std::string& member_id);
  void Unsubscribe(const UnsubscribeRequest& request, StatusDone done);
  // Leader only (no-op otherwise): closes every member of `client_id`
  // (only those of connection `conn_id` when it is not empty); their
  // streams end with `stream_status`.
  void CloseClientMembers(const std::string& client_id,
                          const std::string& conn_id,
                          const absl::Status& stream_status);

  // ---- Driven by the node's loop ----
  // Proposes the pending publish batch and delivery progress.
  void FlushProposals();
  // Applies a committed entry of this group (empty data: a raft no-op).
  ChannelApplyResult Apply(const raft::Entry& entry,
                           storage::WriteBatch* batch);
  // The apply batch with everything applied so far was written.
  void AfterApplyWritten();
  // Replaces the state machine with a snapshot image (follower; its
  // messages were fetched already).
  absl::Status InstallSnapshot(const ChannelSnapshot& image,
                               storage::WriteBatch* batch);
  // Starts or stops leading after raft role changes and applies.
  void UpdateLeadership();
  // Deliveries due now.
  void Pump(int64_t now_ns);
  // Leader only (no-op otherwise or while a change is in flight): proposes
  // `limits` when they differ from the channel's (a config reload).
  void SetLimits(const ChannelLimits& limits);
  // Timers: serving waits, max_age trimming.
  void OnTick(int64_t now_ns);
  // Earliest time this host needs Pump/OnTick for ack deadlines.
  int64_t NextDeadline() const;

  RaftGroup* group() { return group_.get(); }
  const RaftGroup* group() const { return group_.get(); }
  const ChannelFsm& fsm() const { return *fsm_; }
  bool leading() const { return delivery_ != nullptr; }
  // The delivery engine while leading, else nullptr (monitoring).
  const ChannelDelivery* delivery() const { return delivery_.get(); }
  // Last publish or subscribe seen by this node (for max_inactivity).
  int64_t last_activity_ns() const { return last_activity_ns_; }
  size_t attached_streams() const { return streams_.size(); }
  // Fails everything waiting and ends streams (channel deleted, shutdown).
  void Shutdown(const absl::Status& status);

 private:
  struct PendingPublish {
    PublishBatch batch;
    std::vector<PublishDone> dones;
    int64_t bytes = 0;
    int64_t first_arrival_ns = 0;  // for the publish→commit histogram
  };

  // Whether requests can be served now (leading, caught up); starts the
  // leader-side state if that has not happened yet.
  bool Serving();
  void StartLeading();
  void StopLeading(const absl::Status& status);
  void ProposePublishes();
  void ProposeProgress();
  void ProposeClose(uint64_t sub_id, const std::string& member_id,
                    uint64_t last_sent, StatusDone done);
  void DoSubscribe(const SubscriptionRequest& request,
                   std::shared_ptr<SubscriberStream> stream);
  void DoUnsubscribe(const UnsubscribeRequest& request, StatusDone done);
  // Stops delivering to `member_id` here; returns the last sequence sent to
  // its subscription (or the FSM's lease when it was not attached).
  uint64_t DetachMember(uint64_t sub_id, const std::string& member_id,
                        const absl::Status& stream_status);
  void MaybeTrim(int64_t now_ns);
  std::string NewMemberId();

  std::unique_ptr<ChannelFsm> fsm_;
  std::unique_ptr<RaftGroup> group_;
  ChannelHostOptions options_;
  const Clock* clock_;
  std::unique_ptr<ChannelDelivery> delivery_;  // only while leading
  ChannelCounters* counters_ = nullptr;        // with options_.metrics
  absl::flat_hash_map<std::string, std::shared_ptr<SubscriberStream>> streams_;
  PendingPublish pending_;
  uint64_t member_counter_ = 0;
  int64_t last_activity_ns_ = 0;
  int64_t next_trim_check_ns_ = 0;
  bool trim_in_flight_ = false;
  bool limits_in_flight_ = false;
};

}  // namespace spate::server

#endif  // SPATE_SERVER_CHANNEL_HOST_H_
