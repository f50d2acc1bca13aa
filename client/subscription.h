// Subscription: the handle Connection::Subscribe returns for one
// subscription. Its messages reach the MessageHandler on the
// subscription's own dispatch thread (see subscription_stream.h for the
// threads). The handle stays valid across reconnections: when the stream
// breaks the subscription is re-established behind it (durables resume at
// their first unacked message, plain ones after the last message handed
// out), with the same handler on the same thread. All methods are
// thread-safe; Unsubscribe and Close are idempotent and may be called from
// the handler itself.
#ifndef SPATE_CLIENT_SUBSCRIPTION_H_
#define SPATE_CLIENT_SUBSCRIPTION_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "client/subscription_stream.h"

namespace spate::client {

class Subscription {
 public:
  // Made by Connection::Subscribe.
  explicit Subscription(std::shared_ptr<SubscriptionStream> stream)
      : stream_(std::move(stream)) {}
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;
  // Close()s a subscription that is still open (bounded by
  // connect_timeout); must not run in the subscription's own handler.
  ~Subscription();

  // Removes the subscription on the server (Unsubscribe RPC: a durable's
  // position and pending set are deleted), then ends the stream. Unacked
  // messages queued locally are not handed to the handler any more.
  absl::Status Unsubscribe();

  // Detaches: writes the queued acks, half-closes the stream and waits (up
  // to connect_timeout) for the server to end it, which it does once it
  // closed the subscription. A durable keeps its position and pending set;
  // resubscribing with the same client id and durable name resumes after
  // the last acked message. DeadlineExceeded if the server did not confirm
  // in time (the stream is cancelled, which closes it too).
  absl::Status Close();

  // Manual ack of `sequence` (SubscribeOptions::manual_acks only); the
  // same as Message::Ack.
  absl::Status Ack(uint64_t sequence) { return stream_->Ack(sequence); }

  const std::string& subject() const { return stream_->subject(); }
  // The server's subscription id (it changes when the subscription is
  // re-established).
  std::string id() const { return stream_->id(); }
  // The first sequence the server was to deliver when the subscription was
  // created (resolved start position).
  uint64_t start_sequence() const { return stream_->start_sequence(); }
  // How often the subscription was re-established after its stream broke.
  int64_t resubscribes() const { return stream_->resubscribes(); }

 private:
  std::shared_ptr<SubscriptionStream> stream_;
};

}  // namespace spate::client

#endif  // SPATE_CLIENT_SUBSCRIPTION_H_
