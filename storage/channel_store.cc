#include "storage/channel_store.h"

#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/status_macros.h"
#include "storage/keys.h"
#include "storage/record_codec.h"

namespace spate::storage {
namespace {

// Decodes `value` stored under `key` into `*record` and checks that the
// record belongs under that key (`key_of` recomputes the key from it).
template <typename Record>
absl::Status DecodeStored(Space space, absl::string_view key,
                          absl::string_view value,
                          absl::FunctionRef<std::string(const Record&)> key_of,
                          Record* record) {
  absl::Status status = DecodeRecord(value, record);
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat(DescribeKey(space, key),
                                                    ": ", status.message()));
  }
  const std::string expected = key_of(*record);
  if (expected != key) {
    return absl::DataLossError(absl::StrCat(DescribeKey(space, key),
                                            ": holds the record of ",
                                            DescribeKey(space, expected)));
  }
  return absl::OkStatus();
}

template <typename Record>
absl::StatusOr<Record> GetStored(
    const Kv& kv, Space space, const std::string& key,
    absl::FunctionRef<std::string(const Record&)> key_of) {
  ASSIGN_OR_RETURN(const std::string value, kv.Get(space, key));
  Record record;
  RETURN_IF_ERROR(DecodeStored<Record>(space, key, value, key_of, &record));
  return record;
}

template <typename Record>
absl::StatusOr<std::vector<Record>> ListStored(
    const Kv& kv, const KeyRange& range,
    absl::FunctionRef<std::string(const Record&)> key_of) {
  std::vector<Record> records;
  absl::Status error;
  RETURN_IF_ERROR(kv.Scan(
      Space::kState, range.begin, range.end, /*reverse=*/false,
      [&](absl::string_view key, absl::string_view value) {
        Record record;
        error =
            DecodeStored<Record>(Space::kState, key, value, key_of, &record);
        if (!error.ok()) return false;
        records.push_back(std::move(record));
        return true;
      }));
  RETURN_IF_ERROR(error);
  return records;
}

std::string ChannelKeyOf(const ChannelRecord& record) {
  return ChannelRecordKey(record.channel_id());
}

std::string NodeKeyOf(const NodeRecord& record) {
  return NodeKey(record.node_id());
}

std::string ClientKeyOf(const ClientRecord& record) {
  return ClientKey(record.client_id());
}

std::string MetaKeyOf(const MetaRecord&) { return MetaKey(); }

std::string DirectoryKeyOf(const ChannelDirectoryEntry& entry) {
  return DirectoryKey(entry.name());
}

}  // namespace

ChannelStore::ChannelStore(const Kv* kv) : kv_(kv) { CHECK(kv_ != nullptr); }

// --- Messages ---

void ChannelStore::PutMessage(uint64_t channel_id, const StoredMessage& message,
                              WriteBatch* batch) const {
  batch->Put(Space::kMessages, MessageKey(channel_id, message.sequence()),
             EncodeRecord(message));
}

absl::StatusOr<StoredMessage> ChannelStore::GetMessage(
    uint64_t channel_id, uint64_t sequence) const {
  return GetStored<StoredMessage>(
      *kv_, Space::kMessages, MessageKey(channel_id, sequence),
      [channel_id](const StoredMessage& message) {
        return MessageKey(channel_id, message.sequence());
      });
}

absl::Status ChannelStore::ScanMessages(uint64_t channel_id, uint64_t from_seq,
                                        uint64_t to_seq, size_t max_count,
                                        uint64_t max_bytes,
                                        std::vector<StoredMessage>* out) const {
  if (max_count == 0) return absl::OkStatus();
  const KeyRange range = MessageSequenceRange(channel_id, from_seq, to_seq);
  size_t count = 0;
  uint64_t bytes = 0;
  absl::Status error;
  auto key_of = [channel_id](const StoredMessage& message) {
    return MessageKey(channel_id, message.sequence());
  };
  RETURN_IF_ERROR(
      kv_->Scan(Space::kMessages, range.begin, range.end, /*reverse=*/false,
                [&](absl::string_view key, absl::string_view value) {
                  StoredMessage message;
                  error = DecodeStored<StoredMessage>(Space::kMessages, key,
                                                      value, key_of, &message);
                  if (!error.ok()) return false;
                  const uint64_t size = message.data().size();
                  if (count > 0 && bytes + size > max_bytes) return false;
                  bytes += size;
                  out->push_back(std::move(message));
                  return ++count < max_count;
                }));
  return error;
}

void ChannelStore::DeleteMessages(uint64_t channel_id, uint64_t from_seq,
                                  uint64_t to_seq, WriteBatch* batch) const {
  if (from_seq > to_seq) return;
  // Trimming one message per publish (a channel at its max_msgs limit) must
  // not pile up range tombstones, which every later read of the space has to
  // consider: a single message gets a point tombstone.
  if (from_seq == to_seq) {
    batch->Delete(Space::kMessages, MessageKey(channel_id, from_seq));
    return;
  }
  const KeyRange range = MessageSequenceRange(channel_id, from_seq, to_seq);
  batch->DeleteRange(Space::kMessages, range.begin, range.end);
}

// --- Channels ---

void ChannelStore::PutChannel(const ChannelRecord& record,
                              WriteBatch* batch) const {
  batch->Put(Space::kState, ChannelKeyOf(record), EncodeRecord(record));
}

absl::StatusOr<ChannelRecord> ChannelStore::GetChannel(
    uint64_t channel_id) const {
  return GetStored<ChannelRecord>(*kv_, Space::kState,
                                  ChannelRecordKey(channel_id), ChannelKeyOf);
}

absl::StatusOr<std::vector<ChannelRecord>> ChannelStore::ListChannels() const {
  return ListStored<ChannelRecord>(*kv_, ChannelRecordRange(), ChannelKeyOf);
}

void ChannelStore::DeleteChannel(uint64_t channel_id, WriteBatch* batch) const {
  const KeyRange messages = MessageRange(channel_id);
  batch->DeleteRange(Space::kMessages, messages.begin, messages.end);
  const KeyRange subscriptions = SubscriptionRange(channel_id);
  batch->DeleteRange(Space::kState, subscriptions.begin, subscriptions.end);
  batch->Delete(Space::kState, ChannelRecordKey(channel_id));
}

// --- Subscriptions ---

void ChannelStore::PutSubscription(uint64_t channel_id,
                                   const SubscriptionRecord& record,
                                   WriteBatch* batch) const {
  batch->Put(Space::kState, SubscriptionKey(channel_id, record.sub_id()),
             EncodeRecord(record));
}

absl::StatusOr<SubscriptionRecord> ChannelStore::GetSubscription(
    uint64_t channel_id, uint64_t sub_id) const {
  return GetStored<SubscriptionRecord>(
      *kv_, Space::kState, SubscriptionKey(channel_id, sub_id),
      [channel_id](const SubscriptionRecord& record) {
        return SubscriptionKey(channel_id, record.sub_id());
      });
}

void ChannelStore::DeleteSubscription(uint64_t channel_id, uint64_t sub_id,
                                      WriteBatch* batch) const {
  batch->Delete(Space::kState, SubscriptionKey(channel_id, sub_id));
}

absl::StatusOr<std::vector<SubscriptionRecord>> ChannelStore::ListSubscriptions(
    uint64_t channel_id) const {
  return ListStored<SubscriptionRecord>(
      *kv_, SubscriptionRange(channel_id),
      [channel_id](const SubscriptionRecord& record) {
        return SubscriptionKey(channel_id, record.sub_id());
      });
}

// --- Clients ---

void ChannelStore::PutClient(const ClientRecord& record,
                             WriteBatch* batch) const {
  batch->Put(Space::kState, ClientKeyOf(record), EncodeRecord(record));
}

absl::StatusOr<ClientRecord> ChannelStore::GetClient(
    absl::string_view client_id) const {
  return GetStored<ClientRecord>(*kv_, Space::kState, ClientKey(client_id),
                                 ClientKeyOf);
}

void ChannelStore::DeleteClient(absl::string_view client_id,
                                WriteBatch* batch) const {
  batch->Delete(Space::kState, ClientKey(client_id));
}

void ChannelStore::PutNode(const NodeRecord& record, WriteBatch* batch) const {
  batch->Put(Space::kState, NodeKeyOf(record), EncodeRecord(record));
}

void ChannelStore::DeleteNode(uint64_t node_id, WriteBatch* batch) const {
  batch->Delete(Space::kState, NodeKey(node_id));
}

absl::StatusOr<std::vector<NodeRecord>> ChannelStore::ListNodes() const {
  return ListStored<NodeRecord>(*kv_, NodeRange(), NodeKeyOf);
}

absl::StatusOr<std::vector<ClientRecord>> ChannelStore::ListClients() const {
  return ListStored<ClientRecord>(*kv_, ClientRange(), ClientKeyOf);
}

// --- Metadata ---

void ChannelStore::PutMeta(const MetaRecord& record, WriteBatch* batch) const {
  batch->Put(Space::kState, MetaKey(), EncodeRecord(record));
}

absl::StatusOr<MetaRecord> ChannelStore::GetMeta() const {
  return GetStored<MetaRecord>(*kv_, Space::kState, MetaKey(), MetaKeyOf);
}

// --- Directory ---

void ChannelStore::PutDirectoryEntry(const ChannelDirectoryEntry& entry,
                                     WriteBatch* batch) const {
  batch->Put(Space::kState, DirectoryKeyOf(entry), EncodeRecord(entry));
}

absl::StatusOr<ChannelDirectoryEntry> ChannelStore::GetDirectoryEntry(
    absl::string_view name) const {
  return GetStored<ChannelDirectoryEntry>(*kv_, Space::kState,
                                          DirectoryKey(name), DirectoryKeyOf);
}

void ChannelStore::DeleteDirectoryEntry(absl::string_view name,
                                        WriteBatch* batch) const {
  batch->Delete(Space::kState, DirectoryKey(name));
}

absl::StatusOr<std::vector<ChannelDirectoryEntry>> ChannelStore::ListDirectory()
    const {
  return ListStored<ChannelDirectoryEntry>(*kv_, DirectoryRange(),
                                           DirectoryKeyOf);
}

}  // namespace spate::storage
