// Fuzz target: validation of client requests at the edge
// (server/validation.h) and the apply of what passes it. Every client RPC
// runs these checks before anything is proposed, so whatever bytes a
// client sends must give a clean error, and whatever passes must respect
// the rules the rest of the node relies on (literal channel names within
// size limits, payloads within max_payload_bytes) and must apply to a
// channel and read back unchanged.
//
// Input: byte 0 picks the request type and byte 1 the configured payload
// limit; the rest is the serialized request (or a raw name).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "base/check.h"
#include "proto/config.pb.h"
#include "proto/records.pb.h"
#include "proto/streaming.pb.h"
#include "server/channel_fsm.h"
#include "server/validation.h"
#include "storage/channel_store.h"
#include "storage/mem_kv.h"
#include "tests/fuzz/fuzz_input.h"

namespace spate::fuzz {
namespace {

using server::ValidateChannelName;

// What every accepted channel name satisfies (checked independently of the
// validator's own loop).
void CheckChannelNameRules(absl::string_view name) {
  CHECK(!name.empty());
  CHECK_LE(name.size(), server::kChannelNameMaxBytes);
  for (absl::string_view token : absl::StrSplit(name, '.')) {
    CHECK(!token.empty());
    for (char c : token) CHECK(c > ' ' && c < 0x7f && c != '*' && c != '>');
  }
}

// Publishes an accepted message as the leader would and reads it back.
void ApplyPublish(const PubMsg& msg) {
  storage::MemKv kv;
  storage::ChannelStore store(&kv);
  storage::WriteBatch batch;
  std::unique_ptr<server::ChannelFsm> fsm =
      server::ChannelFsm::Create(&store, 1, msg.subject(), ChannelLimits(), 0,
                                 server::ChannelFsmOptions(), &batch);
  ChannelCommand command;
  PublishEntry* entry = command.mutable_publish()->add_entries();
  entry->set_client_id(msg.client_id());
  entry->set_guid(msg.guid());
  entry->set_reply(msg.reply());
  entry->set_data(msg.data());
  *entry->mutable_headers() = msg.headers();
  entry->set_timestamp_ns(1);
  server::ChannelApplyResult result = fsm->Apply(1, command, &batch);
  CHECK_OK(result.status);
  CHECK_EQ(result.sequences.size(), 1u);
  CHECK_EQ(result.sequences[0], 1u);
  CHECK_OK(kv.Write(batch, /*sync=*/true));
  fsm->MarkWritten();
  absl::StatusOr<StoredMessage> stored = fsm->ReadMessage(1);
  CHECK_OK(stored.status());
  CHECK(stored->data() == msg.data());
  CHECK_EQ(stored->headers_size(), msg.headers_size());
}

void CheckPubMsg(absl::string_view bytes, int64_t max_payload) {
  PubMsg msg;
  if (!msg.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return;
  }
  StoreConfig store;
  store.set_max_payload_bytes(max_payload);
  if (!server::ValidatePubMsg(msg, store).ok()) return;
  CHECK_OK(server::ValidateClientId(msg.client_id()));
  CheckChannelNameRules(msg.subject());
  CHECK_LE(server::MessageBytes(msg.data(), msg.headers()), max_payload);
  CHECK_LE(msg.guid().size(), server::kGuidMaxBytes);
  ApplyPublish(msg);
}

void CheckSubscription(absl::string_view bytes) {
  SubscriptionRequest request;
  if (!request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return;
  }
  SubscriptionsConfig subs;
  if (!server::ValidateSubscriptionRequest(request, subs).ok()) return;
  CheckChannelNameRules(request.subject());
  CHECK_GE(request.max_in_flight(), 1);
  CHECK_LE(request.max_in_flight(), subs.max_in_flight_max());
}

void CheckUnsubscribe(absl::string_view bytes) {
  UnsubscribeRequest request;
  if (!request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return;
  }
  if (!server::ValidateUnsubscribeRequest(request).ok()) return;
  CHECK_OK(server::ValidateClientId(request.client_id()));
  CheckChannelNameRules(request.subject());
}

void CheckConnect(absl::string_view bytes) {
  ConnectRequest request;
  if (!request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return;
  }
  if (!server::ValidateClientId(request.client_id()).ok()) return;
  CHECK_LE(request.client_id().size(), server::kClientIdMaxBytes);
}

void CheckNames(absl::string_view raw) {
  if (ValidateChannelName(raw).ok()) CheckChannelNameRules(raw);
  if (server::ValidateName("durable_name", raw).ok()) {
    CHECK(!raw.empty());
    CHECK_LE(raw.size(), server::kNameMaxBytes);
  }
  if (server::ValidateClientId(raw).ok()) {
    CHECK_OK(server::ValidateName("durable_name", raw));
  }
}

}  // namespace
}  // namespace spate::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  spate::fuzz::QuietProtobufLogs();
  if (size < 2) return 0;
  const absl::string_view rest(reinterpret_cast<const char*>(data) + 2,
                               size - 2);
  // Payload limits from 0 to 16 KiB, so that the limit is reachable.
  const int64_t max_payload = int64_t{data[1]} * 64;
  switch (data[0] % 5) {
    case 0:
      spate::fuzz::CheckPubMsg(rest, max_payload);
      break;
    case 1:
      spate::fuzz::CheckSubscription(rest);
      break;
    case 2:
      spate::fuzz::CheckUnsubscribe(rest);
      break;
    case 3:
      spate::fuzz::CheckConnect(rest);
      break;
    default:
      spate::fuzz::CheckNames(rest);
      break;
  }
  return 0;
}
