// ChannelFsm: the deterministic state machine of one channel. Every replica
// applies the same committed ChannelCommands (proto/command.proto) in log
// order and reaches the same state: stored messages, sequences, and the
// replicated part of every subscription (members, ack floor, acked set,
// redelivery counts, last sent). Apply never reads a clock or a random
// source: time arrives inside the commands, resolved by the leader.
//
// What is NOT here: who is waiting for which message right now, ack
// deadlines, stream handles. That volatile, leader-only state lives in the
// delivery engine (server/delivery.h), which reads this FSM.
//
// Persistence: Apply stages every change (messages, the channel record with
// the applied raft index, subscription records) into the caller's
// WriteBatch, so the state change and the index it covers are written
// atomically. Messages applied but not yet written stay readable from an
// in-memory cache until MarkWritten().
//
// Threading: owned by the node's event loop; not thread-safe.
#ifndef SPATE_SERVER_CHANNEL_FSM_H_
#define SPATE_SERVER_CHANNEL_FSM_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/command.pb.h"
#include "proto/records.pb.h"
#include "proto/snapshot.pb.h"
#include "proto/streaming.pb.h"
#include "storage/channel_store.h"
#include "storage/kv.h"

namespace spate::server {

// See ChannelFsmOptions::dedup_window_ms.
inline constexpr uint64_t kDedupKeptSequences = 1024;

struct ChannelFsmOptions {
  // Republishing a guid within this window (by message timestamps), or
  // while it is among the newest kDedupKeptSequences sequences, returns the
  // first sequence; at most dedup_entries_max guids are remembered. (The
  // sequence floor keeps a retry deduplicated when the leader's wall clock
  // jumps forward by more than the window: soak seeds 3028 and 3067.)
  int64_t dedup_window_ms = 120000;
  int32_t dedup_entries_max = 100000;
  // Recently applied messages kept in memory for delivery; messages not yet
  // written to the store are always kept regardless of this bound.
  int64_t cache_bytes_max = 8 << 20;
};

// The replicated state of one subscription, with its sets in ordered
// containers (the record's repeated/map fields stay empty in memory and are
// filled only when the record is written).
struct Subscription {
  SubscriptionRecord record;
  absl::btree_set<uint64_t> acked;  // all > record.ack_floor()
  absl::btree_map<uint64_t, uint32_t> redelivery_counts;

  bool durable() const { return !record.durable_name().empty(); }
  bool queue() const { return !record.q_group().empty(); }
  bool online() const { return record.members_size() > 0; }
  const MemberRecord* FindMember(absl::string_view member_id) const;
};

// Result of applying one command. For PublishBatch, one sequence per entry
// (a deduplicated entry gets its original sequence).
struct ChannelApplyResult {
  absl::Status status;
  std::vector<uint64_t> sequences;
  std::vector<bool> duplicates;
  uint64_t sub_id = 0;
  // SubscriptionCreate attached a member to an existing subscription.
  bool resumed = false;
  // SubscriptionCreate: last_sent before this command (unacked messages up
  // to it are pending from an earlier session and are redelivered).
  uint64_t previous_last_sent = 0;
  // Close/Delete removed the whole subscription.
  bool subscription_removed = false;
};

class ChannelFsm {
 public:
  // A new, empty channel; stages its record into `batch`.
  static std::unique_ptr<ChannelFsm> Create(
      const storage::ChannelStore* store, uint64_t channel_id,
      const std::string& name, const ChannelLimits& limits, int64_t created_ns,
      const ChannelFsmOptions& options, storage::WriteBatch* batch);

  // Loads a channel written earlier (restart recovery). NotFound when the
  // channel has no record; DataLoss when a record is damaged.
  static absl::StatusOr<std::unique_ptr<ChannelFsm>> Load(
      const storage::ChannelStore* store, uint64_t channel_id,
      const ChannelFsmOptions& options);

  // Applies the command at raft index `index` (> applied_index()).
  ChannelApplyResult Apply(uint64_t index, const ChannelCommand& command,
                           storage::WriteBatch* batch);

  // Entries without a channel command (raft no-ops, config changes) only
  // move the applied index.
  void ApplyEmpty(uint64_t index, storage::WriteBatch* batch);

  // The batch holding everything applied so far has been written.
  void MarkWritten();

  // The channel's state as of applied_index() for a raft snapshot (record
  // and subscriptions; messages travel separately).
  ChannelSnapshot Image() const;
  // Replaces the whole state with `image` (a leader's, at a later raft
  // index). Its messages first_sequence..last_sequence must already be in
  // the store; messages outside that range are deleted. DataLoss if a
  // message the image needs is missing.
  absl::Status Install(const ChannelSnapshot& image,
                       storage::WriteBatch* batch);

  // The same checks Apply will make for a SubscriptionCreate, for the leader
  // to refuse early (ALREADY_EXISTS, RESOURCE_EXHAUSTED).
  absl::Status CheckSubscriptionCreate(const SubscriptionCreate& create) const;

  // Resolves a request's start position to the first sequence to deliver
  // (DESIGN.md §4): NEW_ONLY → last+1; LAST_RECEIVED → last (or first when
  // empty); TIME_DELTA_START → first message with timestamp >= now - delta;
  // SEQUENCE_START → clamped to [first, last+1]; FIRST → first.
  absl::StatusOr<uint64_t> ResolveStartSequence(
      const SubscriptionRequest& request, int64_t now_ns) const;

  // Reads one message (cache first). NotFound when removed or not yet
  // published.
  absl::StatusOr<StoredMessage> ReadMessage(uint64_t sequence) const;
  // Messages from `from` on (ascending), up to max_count / max_bytes.
  absl::Status ReadMessages(uint64_t from, size_t max_count, int64_t max_bytes,
                            std::vector<StoredMessage>* out) const;

  const ChannelRecord& record() const { return record_; }
  uint64_t channel_id() const { return record_.channel_id(); }
  const std::string& name() const { return record_.name(); }
  uint64_t first_sequence() const { return record_.first_sequence(); }
  uint64_t last_sequence() const { return record_.last_sequence(); }
  uint64_t applied_index() const { return record_.applied_index(); }

  const absl::btree_map<uint64_t, Subscription>& subscriptions() const {
    return subs_;
  }
  const Subscription* FindSubscription(uint64_t sub_id) const;
  // The subscription `create` would attach to (a durable being resumed, a
  // queue group being joined), or nullptr when it creates a new one.
  const Subscription* FindExisting(const SubscriptionCreate& create) const;
  // The subscription holding member `member_id`, or nullptr.
  const Subscription* FindByMember(absl::string_view member_id) const;
  // Number of subscriptions as counted against max_subs: each attached
  // member, plus one per offline durable.
  int SubscriptionCount() const;
  // Ack floor with removed messages counted as acknowledged.
  uint64_t EffectiveAckFloor(const Subscription& sub) const;

  // Every (sub_id, member_id) whose member belongs to `client_id`.
  std::vector<std::pair<uint64_t, std::string>> MembersOfClient(
      absl::string_view client_id) const;

 private:
  struct OldestInfo {
    uint64_t sequence;
    int64_t bytes;
    int64_t timestamp_ns;
  };
  struct DedupEntry {
    uint64_t sequence;
    int64_t timestamp_ns;
    std::string guid;
  };

  ChannelFsm(const storage::ChannelStore* store,
             const ChannelFsmOptions& options);

  void ApplyPublish(const PublishBatch& publish, storage::WriteBatch* batch,
                    ChannelApplyResult* result);
  void ApplySubscribe(const SubscriptionCreate& create,
                      storage::WriteBatch* batch, ChannelApplyResult* result);
  void ApplyClose(const SubscriptionClose& close, storage::WriteBatch* batch,
                  ChannelApplyResult* result);
  void ApplyDelete(const SubscriptionDelete& del, storage::WriteBatch* batch,
                   ChannelApplyResult* result);
  void ApplyProgress(const ProgressBatch& progress, storage::WriteBatch* batch);
  void ApplyTrim(const ChannelTrim& trim, storage::WriteBatch* batch);
  // A mirror's messages, stored with the source's sequences and
  // timestamps; FAILED_PRECONDITION (nothing applied) unless the channel
  // still ends at the batch's prev_sequence.
  void ApplyMirrorAppend(const MirrorAppend& append, storage::WriteBatch* batch,
                         ChannelApplyResult* result);
  void ApplySetLimits(const ChannelSetLimits& set, storage::WriteBatch* batch);

  // Removes the oldest messages while the channel is over max_msgs or
  // max_bytes, or (when cutoff_ns > 0) older than cutoff_ns.
  void EnforceLimits(int64_t cutoff_ns, storage::WriteBatch* batch);
  absl::StatusOr<OldestInfo> Oldest();
  void DedupEvict(int64_t now_ns);
  std::optional<uint64_t> DedupLookup(const std::string& guid) const;
  absl::Status RebuildDedup();

  void NormalizeFloor(Subscription* sub) const;
  void WriteSubscription(const Subscription& sub,
                         storage::WriteBatch* batch) const;
  void RemoveSubscription(uint64_t sub_id, storage::WriteBatch* batch);
  void IndexSubscription(const Subscription& sub);
  void WriteRecord(storage::WriteBatch* batch) const;
  static std::string DurableKey(absl::string_view client_id,
                                absl::string_view durable);
  static std::string QueueKey(absl::string_view durable,
                              absl::string_view group);

  const storage::ChannelStore* store_;
  ChannelFsmOptions options_;
  ChannelRecord record_;
  absl::btree_map<uint64_t, Subscription> subs_;
  absl::flat_hash_map<std::string, uint64_t> durable_index_;
  absl::flat_hash_map<std::string, uint64_t> queue_index_;
  absl::flat_hash_map<std::string, uint64_t> member_index_;

  // Recent messages, contiguous sequences ending at last_sequence().
  std::deque<StoredMessage> cache_;
  int64_t cache_bytes_ = 0;
  // Every message with sequence <= written_through_ is in the store.
  uint64_t written_through_ = 0;
  // Sizes and times of the oldest messages not in the cache (for trimming).
  std::deque<OldestInfo> oldest_;

  absl::flat_hash_map<std::string, uint64_t> dedup_;
  std::deque<DedupEntry> dedup_order_;  // ascending sequence
};

}  // namespace spate::server

#endif  // SPATE_SERVER_CHANNEL_FSM_H_
