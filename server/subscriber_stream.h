// SubscriberStream: the server side of one client Subscribe stream (the
// gRPC reactor in streaming_service.cc implements it), and
// SubscriptionUpstream: where that stream's acks and end go — the channel
// on this node (the node's loop), or a relay stream to the node that leads
// the channel (server/forwarder.h).
//
//   client ⇄ SubscriberStream ⇄ SubscriptionUpstream ⇄ ChannelHost (leader)
//
// Implementations must not block: they queue and return.
#ifndef SPATE_SERVER_SUBSCRIBER_STREAM_H_
#define SPATE_SERVER_SUBSCRIBER_STREAM_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "proto/streaming.pb.h"
#include "server/delivery.h"

namespace spate::server {

class SubscriptionUpstream {
 public:
  virtual ~SubscriptionUpstream() = default;
  // Acks from the client.
  virtual void Acks(std::vector<uint64_t> seqs) = 0;
  // The client half-closed: close the subscription (a durable keeps its
  // position); the stream ends once that is done.
  virtual void HalfClosed() = 0;
  // The client is gone (cancelled, broken): close, nobody is listening.
  virtual void Gone() = 0;
};

class SubscriberStream : public DeliverySink {
 public:
  // The subscription is attached: sends the response frame first; later
  // acks and the stream's end go to `upstream`. Returns false when the
  // client is already gone (the caller then closes the subscription).
  virtual bool Started(const SubscriptionResponse& response,
                       std::shared_ptr<SubscriptionUpstream> upstream) = 0;
  // Ends the stream with `status` (OK after Unsubscribe or Close).
  // Idempotent; later Deliver calls return false.
  virtual void End(const absl::Status& status) = 0;
};

}  // namespace spate::server

#endif  // SPATE_SERVER_SUBSCRIBER_STREAM_H_
