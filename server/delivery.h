// ChannelDelivery: the leader-side delivery engine of one channel. It pushes
// messages to the attached members of the channel's subscriptions and
// enforces DESIGN.md §4:
// - in sequence order per subscription; a queue group's messages go to the
//   least-loaded member that is not stalled;
// - at most max_in_flight unacked messages per member for new deliveries;
//   redeliveries are never blocked by that limit;
// - AckWait expiry redelivers, oldest first, with redelivered=true and
//   redelivery_count + 1;
// - a departing member's pending messages go to the others at once;
// - a member is never offered more bytes in one pump than its sink takes
//   without cutting the client off (DeliverySink::FreeBytes); what does
//   not fit (a resumed durable's redelivery burst, a catch-up read, many
//   expiries at once) waits for the next pump, retried every
//   paced_retry_ns. A member that has had messages due but no room for
//   slow_consumer_stall_ns is offered them anyway, and its sink cuts it off
//   as a slow consumer;
// - nothing beyond the subscription's committed sent lease
//   (SubscriptionRecord.last_sent) is ever delivered, so after a failover
//   or restart every possibly-delivered unacked message is flagged
//   redelivered.
//
// It holds only volatile state (cursors, pending sets, deadlines, stream
// sinks), rebuilt from the ChannelFsm when a member attaches. Replicated
// effects (acks, redeliveries, lease extensions) are handed to the node via
// TakeProgress() and proposed as one ProgressBatch.
//
// Lifecycle: created when the node leads the channel and a member attaches;
// dropped (Reset) when leadership is lost.
// Threading: owned by the node's event loop; not thread-safe. Sinks are
// called from the loop and must not block.
#ifndef SPATE_SERVER_DELIVERY_H_
#define SPATE_SERVER_DELIVERY_H_

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "proto/command.pb.h"
#include "proto/streaming.pb.h"
#include "server/channel_fsm.h"
#include "server/metrics.h"

namespace spate::server {

// Where a member's messages go: its Subscribe stream. Deliver takes the
// messages (moved out) and returns false when the stream is gone or the
// client fell too far behind (slow consumer); the member is then reported
// by TakeDeadMembers() and gets nothing more.
class DeliverySink {
 public:
  virtual ~DeliverySink() = default;
  virtual bool Deliver(std::vector<MsgProto>* msgs) = 0;
  // Bytes of messages (MsgProto::ByteSizeLong) Deliver accepts right now;
  // unlimited by default. Called on the engine's thread; thread-safe
  // implementations may shrink or grow it concurrently.
  virtual int64_t FreeBytes() { return std::numeric_limits<int64_t>::max(); }
};

struct DeliveryOptions {
  // Messages read from the store per member per pump.
  size_t read_batch_max = 512;
  int64_t read_bytes_max = 1 << 20;
  // The sent lease is extended to cursor + lease_ahead once the cursor is
  // within lease_ahead / 2 of its end (at least 4 × max_in_flight).
  uint64_t lease_ahead_min = 4096;
  // A member whose sink has no room for what is due is pumped again after
  // this long; after slow_consumer_stall_ns without room, it is offered
  // what is due regardless (its sink then cuts it off as a slow consumer).
  int64_t paced_retry_ns = 5'000'000;
  int64_t slow_consumer_stall_ns = 2'000'000'000;
};

class ChannelDelivery {
 public:
  ChannelDelivery(const ChannelFsm* fsm, const DeliveryOptions& options);
  ChannelDelivery(const ChannelDelivery&) = delete;
  ChannelDelivery& operator=(const ChannelDelivery&) = delete;

  // The lease a SubscriptionCreate for a subscription starting at `start`
  // should carry, so first deliveries need no extra round.
  uint64_t InitialLease(uint64_t start, int max_in_flight) const;

  // A member was attached by an applied SubscriptionCreate (result gives
  // sub_id and previous_last_sent). Unacked messages up to
  // previous_last_sent were delivered in an earlier session: redelivered.
  void Attach(uint64_t sub_id, const std::string& member_id,
              uint64_t previous_last_sent, std::shared_ptr<DeliverySink> sink);
  // The member left (close, unsubscribe, stream end). Its pending messages
  // go to the remaining members. Returns the exact last sequence delivered
  // to the subscription (for SubscriptionClose.last_sent).
  uint64_t Detach(const std::string& member_id);
  bool HasMember(const std::string& member_id) const;

  // An ack from a member's stream. Unknown or duplicate acks are ignored.
  void Ack(const std::string& member_id, uint64_t sequence);

  // Sends whatever is due: expired redeliveries, hand-overs, new messages.
  void Pump(int64_t now_ns);
  // Something may be sendable (new messages, acks, attach): Pump soon.
  bool NeedsPump(int64_t now_ns) const;
  void MarkDirty() { dirty_ = true; }
  // Earliest ack deadline, or INT64_MAX.
  int64_t NextDeadline() const;

  // Moves accumulated acks, redeliveries and lease extensions into `out`.
  // Returns false when there is nothing to replicate.
  bool TakeProgress(ProgressBatch* out);
  // A ProgressBatch taken earlier was not committed (proposal refused or
  // leadership lost): lease extensions will be asked for again.
  void ProgressDropped();
  // Members whose sink refused delivery (gone or slow consumer).
  std::vector<std::string> TakeDeadMembers();

  // Counts deliveries, redeliveries and acks into `channel` (optional;
  // both outlive this engine).
  void set_metrics(Metrics* metrics, ChannelCounters* channel) {
    metrics_ = metrics;
    counters_ = channel;
  }

  bool empty() const { return subs_.empty(); }
  // Unacked messages of a member (monitoring, tests).
  int InFlight(const std::string& member_id) const;

  // What monitoring shows of one attached member: its unacked messages,
  // whether it is at its max_in_flight, and the subscription's last
  // delivered sequence. False when the member is not attached here.
  struct MemberStats {
    int in_flight = 0;
    bool stalled = false;
    uint64_t last_sent = 0;
  };
  bool GetMemberStats(const std::string& member_id, MemberStats* out) const;

 private:
  struct Member {
    std::string member_id;
    std::shared_ptr<DeliverySink> sink;
    int max_in_flight = 1;
    int64_t ack_wait_ns = 0;
    int in_flight = 0;
    bool dead = false;
    std::vector<MsgProto> outbox;  // filled during a pump, then delivered
    // This pump: the bytes the sink takes (FreeBytes, read at the start),
    // the estimated bytes in the outbox, and whether something due did not
    // fit.
    int64_t budget = std::numeric_limits<int64_t>::max();
    int64_t outbox_bytes = 0;
    bool budget_blocked = false;
    // Start of the current run of pumps that found it blocked, or -1.
    int64_t blocked_since_ns = -1;
  };
  struct Pending {
    std::string member_id;
    int64_t deadline_ns = 0;
    uint32_t redelivery_count = 0;
  };
  struct ActiveSub {
    uint64_t sub_id = 0;
    uint64_t cursor = 0;  // next new sequence to deliver
    std::vector<Member> members;
    absl::btree_map<uint64_t, Pending> pending;
    absl::btree_set<std::pair<int64_t, uint64_t>> deadlines;
    // Pending messages with no member (hand-over, earlier session).
    absl::btree_set<uint64_t> unassigned;
    std::vector<uint64_t> acked;
    std::vector<uint64_t> redelivered;
    // Lease extension wanted, and the last one proposed.
    uint64_t lease_requested = 0;
    uint64_t lease_proposed = 0;
  };

  ActiveSub* FindSubOfMember(const std::string& member_id);
  Member* FindMember(ActiveSub* sub, const std::string& member_id);
  // Least loaded live member with room for `bytes` more this pump; with
  // `respect_limit`, only one below its max_in_flight. nullptr when none
  // (members without room are marked budget_blocked).
  Member* PickMember(ActiveSub* sub, bool respect_limit, int64_t bytes);
  // Whether a live member that lacks room (not a missing one) is why
  // nothing was picked.
  static bool AnyLive(const ActiveSub& sub);
  // Whether `bytes` more fit `member`'s budget this pump; marks it blocked
  // when not.
  static bool Fits(Member* member, int64_t bytes);
  // An upper bound of the delivered MsgProto's size.
  int64_t WireBytes(const StoredMessage& msg) const;
  void Send(ActiveSub* sub, Member* member, const StoredMessage& msg,
            bool redelivered, uint32_t count, int64_t now_ns, int64_t bytes);
  void RedeliverExpired(ActiveSub* sub, int64_t now_ns);
  void SendUnassigned(ActiveSub* sub, int64_t now_ns);
  void SendNew(ActiveSub* sub, int64_t now_ns);
  void FlushOutboxes(ActiveSub* sub);
  void DropPending(ActiveSub* sub, uint64_t sequence);
  uint64_t LeaseAhead(const ActiveSub& sub) const;

  const ChannelFsm* fsm_;
  DeliveryOptions options_;
  absl::btree_map<uint64_t, ActiveSub> subs_;
  absl::flat_hash_map<std::string, uint64_t> member_to_sub_;
  std::vector<std::string> dead_members_;
  // Progress of subscriptions whose last member left before it was taken.
  absl::btree_map<uint64_t, SubscriptionProgress> orphan_progress_;
  size_t rotation_ = 0;
  bool dirty_ = false;
  // When a member blocked by its budget should be pumped again.
  int64_t paced_retry_at_ns_ = std::numeric_limits<int64_t>::max();
  Metrics* metrics_ = nullptr;
  ChannelCounters* counters_ = nullptr;
};

}  // namespace spate::server

#endif  // SPATE_SERVER_DELIVERY_H_
