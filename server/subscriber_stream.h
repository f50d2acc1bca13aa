// SubscriberStream: the node's view of one client Subscribe stream (the
// gRPC reactor in streaming_service.cc implements it). The node calls it
// from its event loop only; implementations must not block (they queue
// frames and write them asynchronously).
#ifndef SPATE_SERVER_SUBSCRIBER_STREAM_H_
#define SPATE_SERVER_SUBSCRIBER_STREAM_H_

#include <cstdint>

#include "absl/status/status.h"
#include "proto/streaming.pb.h"
#include "server/delivery.h"

namespace spate::server {

class SubscriberStream : public DeliverySink {
 public:
  // The subscription is attached: sends the response frame first. Later
  // acks and the stream's end are reported to the node with `channel_id`
  // and response.subscription_id(). Returns false when the client is
  // already gone (the node then detaches the member).
  virtual bool Started(uint64_t channel_id,
                       const SubscriptionResponse& response) = 0;
  // Ends the stream with `status` (OK after Unsubscribe or Close).
  // Idempotent; later Deliver calls return false.
  virtual void End(const absl::Status& status) = 0;
};

}  // namespace spate::server

#endif  // SPATE_SERVER_SUBSCRIBER_STREAM_H_
