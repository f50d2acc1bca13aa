// Edge validation of client requests (DESIGN.md §3, non-negotiable 4: bad
// input gets a clear error and changes nothing). Every check here is pure:
// it looks only at the request and the server's configured limits, never at
// channel state, so it runs on gRPC threads before anything is queued.
// Errors are absl::InvalidArgumentError (bad names or options) or
// absl::ResourceExhaustedError (a configured size limit), with a message
// naming the field and the rule.
#ifndef SPATE_SERVER_VALIDATION_H_
#define SPATE_SERVER_VALIDATION_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proto/config.pb.h"
#include "proto/streaming.pb.h"

namespace spate::server {

inline constexpr size_t kClientIdMaxBytes = 128;
inline constexpr size_t kChannelNameMaxBytes = 255;
inline constexpr size_t kChannelTokensMax = 32;
inline constexpr size_t kNameMaxBytes = 128;  // durable and queue names
inline constexpr size_t kGuidMaxBytes = 64;
inline constexpr size_t kReplyMaxBytes = 255;
inline constexpr size_t kConnIdMaxBytes = 64;
inline constexpr size_t kHeadersMax = 64;
inline constexpr size_t kHeaderKeyMaxBytes = 256;
inline constexpr int64_t kAckWaitMaxMs = int64_t{24} * 3600 * 1000;

// [A-Za-z0-9_-]+, at most kClientIdMaxBytes.
absl::Status ValidateClientId(absl::string_view client_id);

// Literal tokens separated by '.': no empty token, no wildcard ('*', '>'),
// printable ASCII without spaces, at most kChannelNameMaxBytes and
// kChannelTokensMax tokens.
absl::Status ValidateChannelName(absl::string_view name);

// Durable and queue group names: [A-Za-z0-9_.-]+, at most kNameMaxBytes.
// `what` names the field in the error ("durable_name", "q_group").
absl::Status ValidateName(absl::string_view what, absl::string_view name);

absl::Status ValidateConnId(absl::string_view conn_id);

// Payload plus header bytes count against max_payload_bytes.
absl::Status ValidatePubMsg(const PubMsg& msg, const StoreConfig& store);

absl::Status ValidateSubscriptionRequest(const SubscriptionRequest& request,
                                         const SubscriptionsConfig& subs);

absl::Status ValidateUnsubscribeRequest(const UnsubscribeRequest& request);

// Size of a message as counted against max_payload and max_bytes: payload
// plus header keys and values.
int64_t MessageBytes(
    absl::string_view data,
    const google::protobuf::Map<std::string, std::string>& headers);

}  // namespace spate::server

#endif  // SPATE_SERVER_VALIDATION_H_
