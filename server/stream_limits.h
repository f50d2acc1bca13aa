// StreamLimits: how many client streams (Subscribe and PublishStream calls)
// a node holds open, and how many subscriptions each client id holds, so
// that a flood of connections or subscriptions is refused with
// RESOURCE_EXHAUSTED instead of exhausting the node's memory
// (ClientsConfig.max_streams, SubscriptionsConfig.max_subscriptions_per_
// client). Every successful Acquire is paired with one Release, done by the
// stream's reactor when gRPC is finished with it (OnDone).
//
// Threading: thread-safe; called from gRPC threads.
#ifndef SPATE_SERVER_STREAM_LIMITS_H_
#define SPATE_SERVER_STREAM_LIMITS_H_

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace spate::server {

class StreamLimits {
 public:
  // Limits <= 0 mean unlimited.
  StreamLimits(int32_t streams_max, int32_t subscriptions_per_client_max)
      : streams_max_(streams_max),
        subscriptions_per_client_max_(subscriptions_per_client_max) {}

  absl::Status AcquireStream();
  void ReleaseStream();
  absl::Status AcquireSubscription(absl::string_view client_id);
  void ReleaseSubscription(absl::string_view client_id);

  int32_t streams() const;
  int32_t subscriptions(absl::string_view client_id) const;

 private:
  const int32_t streams_max_;
  const int32_t subscriptions_per_client_max_;
  mutable absl::Mutex mu_;
  int32_t streams_ ABSL_GUARDED_BY(mu_) = 0;
  // Only client ids with at least one subscription (bounded by streams_).
  absl::flat_hash_map<std::string, int32_t> subscriptions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace spate::server

#endif  // SPATE_SERVER_STREAM_LIMITS_H_
