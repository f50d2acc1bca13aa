// SubscriptionStream: one subscription's Subscribe stream and its threads;
// the engine behind the Subscription handle (subscription.h). Shared by the
// handle, the Connection (which ends it on Close or loss) and Messages
// (weakly, for Message::Ack).
//
// Threads, per subscription:
//   "spate-sub-read"  reads Delivery frames into a bounded queue (it never
//                     runs user code except the SubscriptionLostHandler);
//   "spate-sub-msgs"  runs the MessageHandler serially in delivery order,
//                     then queues the auto-ack;
//   "spate-sub-acks"  writes every queued ack as one AckBatch frame per write
//                     (manual acks come from any thread), and half-closes.
// One mutex (mu_) guards all state; no user code runs while it is held.
//
// Lifecycle:
//   kOpening --response--> kOpen --End()--> kEnding --> kEnded
//       |                    |
//       +--error/timeout-----+--stream ends unasked: lost_handler (state
//                                stays kOpen; End still cleans up)
// Ending stops dispatching (queued, unacked messages will be redelivered).
// Close: the ack writer writes the queued acks and half-closes; the server
// applies those acks, closes the subscription (a durable keeps its
// position) and ends the stream; we wait for that up to connect_timeout,
// then cancel. Unsubscribe: the Unsubscribe RPC, then the same ending.
#ifndef SPATE_CLIENT_SUBSCRIPTION_STREAM_H_
#define SPATE_CLIENT_SUBSCRIPTION_STREAM_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/message.h"
#include "client/options.h"
#include "client/session.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/sync_stream.h"
#include "proto/streaming.pb.h"

namespace spate::client {

class SubscriptionStream
    : public AckSink,
      public std::enable_shared_from_this<SubscriptionStream> {
 public:
  // Acks per AckBatch frame, so one frame stays small however many wait.
  static constexpr int kAcksPerFrameMax = 4096;

  enum class EndMode {
    kUnsubscribe,  // Unsubscribe RPC: the server deletes the subscription.
    kClose,        // Half-close: the server closes it, a durable is kept.
  };

  // Opens the stream, sends the SubscriptionRequest and waits up to
  // connect_timeout for the SubscriptionResponse. The server's error status
  // comes back as is (code and message).
  static absl::StatusOr<std::shared_ptr<SubscriptionStream>> Open(
      std::shared_ptr<const Session> session, std::string subject,
      SubscribeOptions options, MessageHandler handler);

  SubscriptionStream(const SubscriptionStream&) = delete;
  SubscriptionStream& operator=(const SubscriptionStream&) = delete;
  // Ends with kClose if still open and joins every thread. Must not run on
  // one of this subscription's threads.
  ~SubscriptionStream() override;

  // Manual ack, from any thread.
  absl::Status Ack(uint64_t sequence) override;

  // Ends the subscription (see the lifecycle above); idempotent: later
  // calls return the first call's result. From the MessageHandler it
  // returns without waiting for the handler's own thread.
  absl::Status End(EndMode mode);

  // Non-blocking: cancels the stream without any RPC (the connection is
  // gone). End() or the destructor joins the threads later.
  void Cancel();

  const std::string& subject() const { return subject_; }
  const std::string& id() const { return response_.subscription_id(); }
  uint64_t start_sequence() const { return response_.start_sequence(); }
  bool ended() const;

 private:
  enum class State { kOpening, kOpen, kEnding, kEnded };

  SubscriptionStream(std::shared_ptr<const Session> session,
                     std::string subject, SubscribeOptions options,
                     MessageHandler handler);

  absl::Status Start();
  SubscriptionRequest BuildRequest() const;
  void ReadLoop();
  void DispatchLoop();
  void AckLoop();
  // Queues an auto-ack; dropped once the stream is ending.
  void EnqueueAck(uint64_t sequence);
  // Stops the ack writer after it wrote what is queued and half-closed,
  // waits up to connect_timeout for the server to end the stream (else
  // cancels it), and joins. True if the server ended it in time.
  bool EndStream();
  absl::Status UnsubscribeRpc();
  void JoinUnlessSelf(std::thread* thread);

  const std::shared_ptr<const Session> session_;
  const std::string subject_;
  const SubscribeOptions options_;
  const MessageHandler handler_;
  // Most messages read but not yet handled; the reader waits beyond.
  const size_t queue_max_;

  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<SubscribeFrame, Delivery>> rw_;
  // Set once before kOpen, read-only afterwards.
  SubscriptionResponse response_;

  std::thread reader_;
  std::thread dispatcher_;
  std::thread acker_;

  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kOpening;
  bool got_response_ ABSL_GUARDED_BY(mu_) = false;
  // The first frame had no SubscriptionResponse.
  absl::Status protocol_error_ ABSL_GUARDED_BY(mu_);
  std::deque<MsgProto> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_dispatch_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<uint64_t> acks_ ABSL_GUARDED_BY(mu_);
  bool ack_writing_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_acks_ ABSL_GUARDED_BY(mu_) = false;
  bool half_close_ ABSL_GUARDED_BY(mu_) = false;
  // True while no ack writer runs; Finish() on the call waits for it.
  bool acker_exited_ ABSL_GUARDED_BY(mu_) = true;
  // The client asked the stream to end (no lost_handler then).
  bool requested_end_ ABSL_GUARDED_BY(mu_) = false;
  bool read_done_ ABSL_GUARDED_BY(mu_) = false;
  // The stream's final status, once read_done_.
  absl::Status stream_status_ ABSL_GUARDED_BY(mu_);
  absl::Status end_result_ ABSL_GUARDED_BY(mu_);
};

}  // namespace spate::client

#endif  // SPATE_CLIENT_SUBSCRIPTION_STREAM_H_
