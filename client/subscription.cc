#include "client/subscription.h"

#include "base/log.h"

namespace spate::client {

Subscription::~Subscription() {
  if (stream_->ended()) return;
  const absl::Status status = Close();
  if (!status.ok()) {
    // Nobody is left to tell: the stream ended anyway, so the server
    // closes the subscription on its side.
    LOG(WARNING) << "closing subscription subject=" << subject()
                 << " failed: " << status;
  }
}

absl::Status Subscription::Unsubscribe() {
  return stream_->End(SubscriptionStream::EndMode::kUnsubscribe);
}

absl::Status Subscription::Close() {
  return stream_->End(SubscriptionStream::EndMode::kClose);
}

}  // namespace spate::client
