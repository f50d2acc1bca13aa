// ChannelStore: the stored messages and records of channels (the server's
// state machines' data), stateless over a Kv. Writes go into the caller's
// WriteBatch, so a state machine puts a change and its applied index
// (ChannelRecord.applied_index / MetaRecord.applied_index) in the same batch
// as the raft entries of the cycle (DESIGN.md §6). Reads go straight to the
// Kv. Policy — which sequences to trim for limits, when a channel is idle —
// belongs to the state machine, not here.
//
// Keys (storage/keys.h): messages under channel_id|sequence in
// Space::kMessages; records in Space::kState ('C' channel, 'S' subscription,
// 'L' client, 'M' meta, 'D' directory). Every value is a checksummed
// record (record_codec.h): a damaged one is absl::DataLossError naming the
// channel and sequence (or record), never returned.
//
// Threading: reads from any thread (Kv reads are thread-safe); the
// Put/Delete methods only append to the caller's batch. The Kv must outlive
// the store.
#ifndef SPATE_STORAGE_CHANNEL_STORE_H_
#define SPATE_STORAGE_CHANNEL_STORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/records.pb.h"
#include "storage/kv.h"

namespace spate::storage {

class ChannelStore {
 public:
  explicit ChannelStore(const Kv* kv);

  // --- Messages (Space::kMessages) ---

  // Stores `message` under message.sequence().
  void PutMessage(uint64_t channel_id, const StoredMessage& message,
                  WriteBatch* batch) const;
  // NotFound if absent; DataLoss if damaged or stored under the wrong
  // sequence.
  absl::StatusOr<StoredMessage> GetMessage(uint64_t channel_id,
                                           uint64_t sequence) const;
  // Appends to `*out` the stored messages with from_seq <= sequence <=
  // to_seq, ascending, stopping after max_count messages or before the
  // payload bytes (StoredMessage.data) collected by this call would exceed
  // max_bytes — but always at least one message if any is in range and
  // max_count > 0. Gaps (trimmed sequences) are skipped silently: trimming
  // is the state machine's business. On error `*out` holds the messages
  // before the damaged one.
  absl::Status ScanMessages(uint64_t channel_id, uint64_t from_seq,
                            uint64_t to_seq, size_t max_count,
                            uint64_t max_bytes,
                            std::vector<StoredMessage>* out) const;
  // Deletes messages from_seq..to_seq (inclusive). A single message is a
  // point delete; a longer run is one DeleteRange (one range tombstone
  // instead of one tombstone per message).
  void DeleteMessages(uint64_t channel_id, uint64_t from_seq, uint64_t to_seq,
                      WriteBatch* batch) const;

  // --- Channel records ('C' | channel_id) ---
  void PutChannel(const ChannelRecord& record, WriteBatch* batch) const;
  absl::StatusOr<ChannelRecord> GetChannel(uint64_t channel_id) const;
  absl::StatusOr<std::vector<ChannelRecord>> ListChannels() const;
  // Deletes the channel's messages, subscriptions and record (not its
  // directory entry, which the metadata group owns).
  void DeleteChannel(uint64_t channel_id, WriteBatch* batch) const;

  // --- Subscriptions ('S' | channel_id | sub_id) ---
  // Stored under record.sub_id().
  void PutSubscription(uint64_t channel_id, const SubscriptionRecord& record,
                       WriteBatch* batch) const;
  absl::StatusOr<SubscriptionRecord> GetSubscription(uint64_t channel_id,
                                                     uint64_t sub_id) const;
  void DeleteSubscription(uint64_t channel_id, uint64_t sub_id,
                          WriteBatch* batch) const;
  // Every subscription of the channel, by ascending sub_id.
  absl::StatusOr<std::vector<SubscriptionRecord>> ListSubscriptions(
      uint64_t channel_id) const;

  // --- Clients ('L' | client_id) ---
  void PutClient(const ClientRecord& record, WriteBatch* batch) const;
  absl::StatusOr<ClientRecord> GetClient(absl::string_view client_id) const;
  void DeleteClient(absl::string_view client_id, WriteBatch* batch) const;
  // Every client, by client id.
  absl::StatusOr<std::vector<ClientRecord>> ListClients() const;

  // --- Cluster nodes ('N' | node_id) ---
  void PutNode(const NodeRecord& record, WriteBatch* batch) const;
  void DeleteNode(uint64_t node_id, WriteBatch* batch) const;
  absl::StatusOr<std::vector<NodeRecord>> ListNodes() const;

  // --- Cluster metadata ('M') ---
  void PutMeta(const MetaRecord& record, WriteBatch* batch) const;
  // NotFound before the first PutMeta.
  absl::StatusOr<MetaRecord> GetMeta() const;

  // --- Channel directory ('D' | name) ---
  void PutDirectoryEntry(const ChannelDirectoryEntry& entry,
                         WriteBatch* batch) const;
  absl::StatusOr<ChannelDirectoryEntry> GetDirectoryEntry(
      absl::string_view name) const;
  void DeleteDirectoryEntry(absl::string_view name, WriteBatch* batch) const;
  // Every entry, by name.
  absl::StatusOr<std::vector<ChannelDirectoryEntry>> ListDirectory() const;

 private:
  const Kv* const kv_;
};

}  // namespace spate::storage

#endif  // SPATE_STORAGE_CHANNEL_STORE_H_
