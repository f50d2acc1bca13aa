// Fuzz target: decoding of stored records and keys (storage/record_codec.h,
// storage/keys.h). A node reads these back after crashes, disk damage and
// upgrades, so arbitrary bytes must give a clean DataLoss /
// FailedPrecondition, never a crash, and whatever decodes must re-encode to
// something that decodes to the same message.
//
// Input: byte 0 picks the record type, the rest is the stored value; the
// same bytes are also tried as a key of every key space.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "base/check.h"
#include "google/protobuf/message_lite.h"
#include "proto/raft.pb.h"
#include "proto/records.pb.h"
#include "proto/snapshot.pb.h"
#include "storage/keys.h"
#include "storage/kv.h"
#include "storage/record_codec.h"
#include "tests/fuzz/fuzz_input.h"

namespace spate::fuzz {
namespace {

std::unique_ptr<google::protobuf::MessageLite> NewRecord(uint8_t selector) {
  switch (selector % 12) {
    case 0:
      return std::make_unique<StoredMessage>();
    case 1:
      return std::make_unique<ChannelRecord>();
    case 2:
      return std::make_unique<SubscriptionRecord>();
    case 3:
      return std::make_unique<ClientRecord>();
    case 4:
      return std::make_unique<NodeRecord>();
    case 5:
      return std::make_unique<MetaRecord>();
    case 6:
      return std::make_unique<ChannelDirectoryEntry>();
    case 7:
      return std::make_unique<raft::Entry>();
    case 8:
      return std::make_unique<raft::HardState>();
    case 9:
      return std::make_unique<raft::ConfState>();
    case 10:
      return std::make_unique<raft::SnapshotMetadata>();
    default:
      return std::make_unique<ChannelSnapshot>();
  }
}

// Decoding, and the round trip of whatever decodes.
void CheckRecord(uint8_t selector, absl::string_view record) {
  std::unique_ptr<google::protobuf::MessageLite> message = NewRecord(selector);
  if (storage::DecodeRecord(record, message.get()).ok()) {
    const std::string encoded = storage::EncodeRecord(*message);
    std::unique_ptr<google::protobuf::MessageLite> again = NewRecord(selector);
    CHECK_OK(storage::DecodeRecord(encoded, again.get()));
    CHECK(CanonicalBytes(*again) == CanonicalBytes(*message));
  }
  absl::StatusOr<absl::string_view> payload = storage::UnframeBytes(record);
  if (payload.ok()) {
    CHECK(storage::FrameBytes(*payload) == record)
        << "a valid frame is the framing of its payload";
  }
}

// Every key that parses is the encoding of what it parsed to.
void CheckKey(absl::string_view key) {
  raft::GroupId group;
  raft::Index index;
  if (storage::ParseRaftLogKey(key, &group, &index)) {
    CHECK(storage::RaftLogKey(group, index) == key);
  }
  storage::RaftStateKind kind;
  if (storage::ParseRaftStateKey(key, &group, &kind)) {
    CHECK(storage::RaftStateKey(group, kind) == key);
  }
  uint64_t channel_id;
  uint64_t sequence;
  if (storage::ParseMessageKey(key, &channel_id, &sequence)) {
    CHECK(storage::MessageKey(channel_id, sequence) == key);
  }
  for (storage::Space space :
       {storage::Space::kRaftState, storage::Space::kRaftLog,
        storage::Space::kMessages, storage::Space::kState}) {
    CHECK(!storage::DescribeKey(space, key).empty());
  }
}

}  // namespace
}  // namespace spate::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  spate::fuzz::QuietProtobufLogs();
  if (size == 0) return 0;
  const absl::string_view rest(reinterpret_cast<const char*>(data) + 1,
                               size - 1);
  spate::fuzz::CheckRecord(data[0], rest);
  spate::fuzz::CheckKey(rest);
  return 0;
}
