#include "server/stream_limits.h"

#include "absl/strings/str_cat.h"
#include "base/check.h"

namespace spate::server {

absl::Status StreamLimits::AcquireStream() {
  absl::MutexLock lock(&mu_);
  if (streams_max_ > 0 && streams_ >= streams_max_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "this node has ", streams_, " open streams (max_streams)"));
  }
  ++streams_;
  return absl::OkStatus();
}

void StreamLimits::ReleaseStream() {
  absl::MutexLock lock(&mu_);
  CHECK_GT(streams_, 0);
  --streams_;
}

absl::Status StreamLimits::AcquireSubscription(absl::string_view client_id) {
  absl::MutexLock lock(&mu_);
  auto it = subscriptions_.find(client_id);
  const int32_t held = it == subscriptions_.end() ? 0 : it->second;
  if (subscriptions_per_client_max_ > 0 &&
      held >= subscriptions_per_client_max_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("client ", client_id, " has ", held,
                     " open subscriptions on this node "
                     "(max_subscriptions_per_client)"));
  }
  ++subscriptions_[client_id];
  return absl::OkStatus();
}

void StreamLimits::ReleaseSubscription(absl::string_view client_id) {
  absl::MutexLock lock(&mu_);
  auto it = subscriptions_.find(client_id);
  CHECK(it != subscriptions_.end()) << "release without acquire";
  if (--it->second == 0) subscriptions_.erase(it);
}

int32_t StreamLimits::streams() const {
  absl::MutexLock lock(&mu_);
  return streams_;
}

int32_t StreamLimits::subscriptions(absl::string_view client_id) const {
  absl::MutexLock lock(&mu_);
  auto it = subscriptions_.find(client_id);
  return it == subscriptions_.end() ? 0 : it->second;
}

}  // namespace spate::server
