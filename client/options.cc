#include "client/options.h"

#include "absl/strings/str_cat.h"

namespace spate::client {

absl::Status ClientOptions::Validate() const {
  if (servers.empty()) {
    return absl::InvalidArgumentError("no server address given");
  }
  for (const std::string& server : servers) {
    if (server.empty()) {
      return absl::InvalidArgumentError("empty server address");
    }
  }
  if (client_id.empty()) {
    return absl::InvalidArgumentError("client_id must not be empty");
  }
  if (connect_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("connect_timeout must be positive");
  }
  if (pub_ack_wait <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("pub_ack_wait must be positive");
  }
  if (max_pub_acks_in_flight < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_pub_acks_in_flight must be >= 1, got ", max_pub_acks_in_flight));
  }
  if (reconnect_wait < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("reconnect_wait must not be negative");
  }
  if (ping_interval < absl::ZeroDuration() || ping_max_out < 0) {
    return absl::InvalidArgumentError(
        "ping_interval and ping_max_out must not be negative");
  }
  return absl::OkStatus();
}

absl::Status SubscribeOptions::Validate() const {
  if (max_in_flight < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_in_flight must be >= 1, got ", max_in_flight));
  }
  if (ack_wait < absl::Seconds(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ack_wait must be at least 1s, got ", absl::FormatDuration(ack_wait)));
  }
  if (start.kind() == StartPosition::Kind::kTimeDelta &&
      start.time_delta() < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("start time delta must not be negative");
  }
  return absl::OkStatus();
}

}  // namespace spate::client
