#include "server/validation.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace spate::server {
namespace {

bool IsIdChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '-';
}

// Printable ASCII other than space.
bool IsVisible(char c) { return c > ' ' && c < 0x7f; }

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

}  // namespace

absl::Status ValidateClientId(absl::string_view client_id) {
  if (client_id.empty()) return Invalid("client_id", "must not be empty");
  if (client_id.size() > kClientIdMaxBytes) {
    return Invalid("client_id",
                   absl::StrCat("longer than ", kClientIdMaxBytes, " bytes"));
  }
  for (char c : client_id) {
    if (!IsIdChar(c)) {
      return Invalid(
          "client_id",
          absl::StrCat("'", client_id, "' may only contain [A-Za-z0-9_-]"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateChannelName(absl::string_view name) {
  if (name.empty()) return Invalid("subject", "channel name must not be empty");
  if (name.size() > kChannelNameMaxBytes) {
    return Invalid("subject", absl::StrCat("channel name longer than ",
                                           kChannelNameMaxBytes, " bytes"));
  }
  std::vector<absl::string_view> tokens = absl::StrSplit(name, '.');
  if (tokens.size() > kChannelTokensMax) {
    return Invalid("subject", absl::StrCat("channel name has more than ",
                                           kChannelTokensMax, " tokens"));
  }
  for (absl::string_view token : tokens) {
    if (token.empty()) {
      return Invalid("subject", absl::StrCat("channel name '", name,
                                             "' has an empty token"));
    }
    if (token == "*" || token == ">" ||
        token.find_first_of("*>") != absl::string_view::npos) {
      return Invalid("subject", absl::StrCat("channel name '", name,
                                             "' must not contain wildcards"));
    }
    for (char c : token) {
      if (!IsVisible(c)) {
        return Invalid("subject",
                       "channel name may only contain printable ASCII "
                       "without spaces");
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateName(absl::string_view what, absl::string_view name) {
  if (name.empty()) return Invalid(what, "must not be empty");
  if (name.size() > kNameMaxBytes) {
    return Invalid(what, absl::StrCat("longer than ", kNameMaxBytes, " bytes"));
  }
  for (char c : name) {
    if (!IsIdChar(c) && c != '.') {
      return Invalid(
          what, absl::StrCat("'", name, "' may only contain [A-Za-z0-9_.-]"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateConnId(absl::string_view conn_id) {
  if (conn_id.size() > kConnIdMaxBytes) {
    return Invalid("conn_id",
                   absl::StrCat("longer than ", kConnIdMaxBytes, " bytes"));
  }
  return absl::OkStatus();
}

int64_t MessageBytes(
    absl::string_view data,
    const google::protobuf::Map<std::string, std::string>& headers) {
  int64_t bytes = static_cast<int64_t>(data.size());
  for (const auto& [key, value] : headers) {
    bytes += static_cast<int64_t>(key.size() + value.size());
  }
  return bytes;
}

absl::Status ValidatePubMsg(const PubMsg& msg, const StoreConfig& store) {
  if (absl::Status s = ValidateClientId(msg.client_id()); !s.ok()) return s;
  if (absl::Status s = ValidateChannelName(msg.subject()); !s.ok()) return s;
  if (absl::Status s = ValidateConnId(msg.conn_id()); !s.ok()) return s;
  if (msg.guid().size() > kGuidMaxBytes) {
    return Invalid("guid",
                   absl::StrCat("longer than ", kGuidMaxBytes, " bytes"));
  }
  for (char c : msg.guid()) {
    if (!IsVisible(c)) return Invalid("guid", "must be printable ASCII");
  }
  if (msg.reply().size() > kReplyMaxBytes) {
    return Invalid("reply",
                   absl::StrCat("longer than ", kReplyMaxBytes, " bytes"));
  }
  if (msg.headers_size() > static_cast<int>(kHeadersMax)) {
    return Invalid("headers", absl::StrCat("more than ", kHeadersMax));
  }
  for (const auto& [key, value] : msg.headers()) {
    if (key.empty() || key.size() > kHeaderKeyMaxBytes) {
      return Invalid("headers", absl::StrCat("keys must be 1 to ",
                                             kHeaderKeyMaxBytes, " bytes"));
    }
  }
  const int64_t bytes = MessageBytes(msg.data(), msg.headers());
  if (bytes > store.max_payload_bytes()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "data: message of ", bytes, " bytes exceeds max_payload of ",
        store.max_payload_bytes(), " bytes"));
  }
  return absl::OkStatus();
}

absl::Status ValidateSubscriptionRequest(const SubscriptionRequest& request,
                                         const SubscriptionsConfig& subs) {
  if (absl::Status s = ValidateClientId(request.client_id()); !s.ok()) return s;
  if (absl::Status s = ValidateChannelName(request.subject()); !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateConnId(request.conn_id()); !s.ok()) return s;
  if (!request.durable_name().empty()) {
    if (absl::Status s = ValidateName("durable_name", request.durable_name());
        !s.ok()) {
      return s;
    }
  }
  if (!request.q_group().empty()) {
    if (absl::Status s = ValidateName("q_group", request.q_group()); !s.ok()) {
      return s;
    }
  }
  if (request.max_in_flight() < 1) {
    return Invalid("max_in_flight", "must be at least 1");
  }
  if (request.max_in_flight() > subs.max_in_flight_max()) {
    return Invalid("max_in_flight",
                   absl::StrCat("must be at most ", subs.max_in_flight_max()));
  }
  const int64_t ack_wait_ms = int64_t{request.ack_wait_in_secs()} * 1000;
  if (ack_wait_ms < subs.min_ack_wait_ms()) {
    return Invalid("ack_wait_in_secs",
                   absl::StrCat("must be at least ",
                                (subs.min_ack_wait_ms() + 999) / 1000, " s"));
  }
  if (ack_wait_ms > kAckWaitMaxMs) {
    return Invalid("ack_wait_in_secs", "must be at most one day");
  }
  if (!StartPosition_IsValid(request.start_position())) {
    return Invalid("start_position",
                   absl::StrCat("unknown value ", request.start_position()));
  }
  switch (request.start_position()) {
    case SEQUENCE_START:
      if (request.start_sequence() < 1) {
        return Invalid("start_sequence",
                       "must be at least 1 with SEQUENCE_START");
      }
      break;
    case TIME_DELTA_START:
      if (request.start_time_delta_ns() < 0) {
        return Invalid("start_time_delta_ns",
                       "must not be negative with TIME_DELTA_START");
      }
      break;
    default:
      break;
  }
  return absl::OkStatus();
}

absl::Status ValidateUnsubscribeRequest(const UnsubscribeRequest& request) {
  if (absl::Status s = ValidateClientId(request.client_id()); !s.ok()) return s;
  if (absl::Status s = ValidateChannelName(request.subject()); !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateConnId(request.conn_id()); !s.ok()) return s;
  if (request.subscription_id().empty()) {
    return Invalid("subscription_id", "must not be empty");
  }
  if (request.subscription_id().size() > kNameMaxBytes) {
    return Invalid("subscription_id", "too long");
  }
  if (!request.durable_name().empty()) {
    return ValidateName("durable_name", request.durable_name());
  }
  return absl::OkStatus();
}

}  // namespace spate::server
