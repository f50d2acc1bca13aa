// SubscriptionStream: one subscription — its handler, its threads and the
// Subscribe call (gRPC stream) currently carrying it; the engine behind the
// Subscription handle (subscription.h). Shared by the handle, the
// Connection (which interrupts it to reconnect and ends it on Close or
// loss) and Messages (weakly, for Message::Ack).
//
// Threads, per subscription, for its whole life:
//   "spate-sub-read"  drives the calls: reads Delivery frames into a bounded
//                     queue; when a call ends unasked, gets the
//                     connection's verdict and resubscribes (below). It
//                     runs no user code but the SubscriptionLostHandler;
//   "spate-sub-msgs"  runs the MessageHandler serially in delivery order,
//                     then queues the auto-ack;
//   "spate-sub-acks"  writes every queued ack as one AckBatch frame per write
//                     (manual acks come from any thread) to the open call,
//                     and half-closes it on Close.
// One mutex (mu_) guards all state; no user code runs while it is held.
//
// Lifecycle:
//   kOpening --response--> kOpen --End()--> kEnding --> kEnded
//       |                   |  ^
//       +--error/timeout    |  +-- resubscribed (same handle, same threads)
//                           +--call ends unasked: resubscribe, or lost
// Resubscribing. When a call ends without the client asking, the reader
// drops the messages it queued but did not hand out (they come again),
// asks the connection for a check (session_tracker.h) and then:
//   - the connection is gone for good or closed: the subscription ends
//     quietly (the ConnectionLostHandler reports it);
//   - the call ended with UNAVAILABLE (a leader moved, a node stopped) or
//     the connection reconnected meanwhile: it resubscribes on the
//     connection's current session. A durable subscription (or durable
//     queue member) asks with its original options and the server resumes
//     it at its first unacked message (redeliveries are flagged); a plain
//     subscription (or non-durable queue member) asks for SEQUENCE_START
//     at the sequence after the last one handed to the handler, so the
//     application sees no gap;
//   - otherwise (the server ended it for a reason resubscribing cannot
//     fix) the lost handler runs.
// A resubscribe refused with UNAVAILABLE, ALREADY_EXISTS (the server has
// not yet closed the old durable member), DEADLINE_EXCEEDED or refused by
// a connection that changed meanwhile is retried with a backoff
// (kResubscribeDelayMin doubling to kResubscribeDelayMax) for up to
// reconnect_wait; any other refusal, or running out of time, runs the lost
// handler. reconnect_wait == 0 disables resubscribing.
// Ending stops dispatching (queued, unacked messages will be redelivered).
// Close: the ack writer writes the queued acks and half-closes; the server
// applies those acks, closes the subscription (a durable keeps its
// position) and ends the call; we wait for that up to connect_timeout,
// then cancel. Unsubscribe: the Unsubscribe RPC, then the same ending.
// Between calls there is nothing to half-close: End just stops.
#ifndef SPATE_CLIENT_SUBSCRIPTION_STREAM_H_
#define SPATE_CLIENT_SUBSCRIPTION_STREAM_H_

#include <atomic>
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
#include "client/session_tracker.h"
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
  // Backoff between refused resubscribe attempts.
  static constexpr absl::Duration kResubscribeDelayMin = absl::Milliseconds(50);
  static constexpr absl::Duration kResubscribeDelayMax = absl::Seconds(1);

  enum class EndMode {
    kUnsubscribe,  // Unsubscribe RPC: the server deletes the subscription.
    kClose,        // Half-close: the server closes it, a durable is kept.
  };

  // Opens the first call on the tracker's current session, sends the
  // SubscriptionRequest and waits up to connect_timeout for the
  // SubscriptionResponse. The server's error status comes back as is (code
  // and message); the first subscribe is not retried.
  static absl::StatusOr<std::shared_ptr<SubscriptionStream>> Open(
      std::shared_ptr<SessionTracker> tracker, std::string subject,
      SubscribeOptions options, MessageHandler handler);

  SubscriptionStream(const SubscriptionStream&) = delete;
  SubscriptionStream& operator=(const SubscriptionStream&) = delete;
  // Ends with kClose if still open and joins every thread. Must not run on
  // one of this subscription's threads.
  ~SubscriptionStream() override;

  // Manual ack, from any thread. Between calls it waits for the next one.
  absl::Status Ack(uint64_t sequence) override;

  // Ends the subscription (see the lifecycle above); idempotent: later
  // calls return the first call's result. From the MessageHandler it
  // returns without waiting for the handler's own thread. Unsubscribe
  // while resubscribing fails with the server's NOT_FOUND (there is no
  // member to remove); Close works in every state.
  absl::Status End(EndMode mode);

  // The connection is reconnecting: cancels the current call; the reader
  // resubscribes once the connection has its new session.
  void Interrupt();

  // Non-blocking: the connection is gone for good. Cancels the call
  // without any RPC and without the lost handler. End() or the destructor
  // joins the threads later.
  void Cancel();

  const std::string& subject() const { return subject_; }
  // The server's id of the current (or last) call's subscription member.
  std::string id() const;
  // The first sequence the first call was to deliver (resolved start).
  uint64_t start_sequence() const;
  // Calls re-established after one ended unasked.
  int64_t resubscribes() const;
  bool ended() const;

 private:
  enum class State { kOpening, kOpen, kEnding, kEnded };

  // One Subscribe gRPC call. Replaced only by the reader, and only while
  // no ack write is in flight on it.
  struct Call {
    std::shared_ptr<const Session> session;
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReaderWriter<SubscribeFrame, Delivery>> rw;
  };

  SubscriptionStream(std::shared_ptr<SessionTracker> tracker,
                     std::string subject, SubscribeOptions options,
                     MessageHandler handler);

  absl::Status Start();
  // `resume`: the request of a resubscribe (see the class comment).
  SubscriptionRequest BuildRequest(const Session& session, bool resume) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Installs a new call on `session` and writes its request (a failed
  // write shows as the call's end in ReadCall).
  void OpenCall(std::shared_ptr<const Session> session, bool resume);
  void ReadLoop();
  // Reads the current call until it ends, then finishes it; returns its
  // final status.
  absl::Status ReadCall();
  // After the current call ended unasked with `status`: true once a new
  // call was opened, false when the reader should exit.
  bool Resubscribe(absl::Status status);
  // Sleeps up to `delay` unless the subscription is ended first (false).
  bool BackOff(absl::Duration delay);
  void RunLostHandler(const absl::Status& reason);
  void DispatchLoop();
  void AckLoop();
  bool WritableLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues an auto-ack; dropped once the subscription is ending.
  void EnqueueAck(uint64_t sequence);
  // Lets the ack writer write what is queued and half-close an open call,
  // waits up to connect_timeout for the reader to exit (else cancels the
  // call), and joins. True if the call ended in time by itself.
  bool EndCall();
  absl::Status UnsubscribeRpc();
  void JoinUnlessSelf(std::thread* thread);

  const std::shared_ptr<SessionTracker> tracker_;
  const std::string subject_;
  const SubscribeOptions options_;
  const MessageHandler handler_;
  // Copied from the first session (the same in every one).
  const absl::Duration connect_timeout_;
  const absl::Duration reconnect_wait_;
  // Most messages read but not yet handled; the reader waits beyond.
  const size_t queue_max_;
  // Set when the subscription ends; makes the reader stop waiting for the
  // connection.
  std::atomic<bool> abandon_{false};

  std::thread reader_;
  std::thread dispatcher_;
  std::thread acker_;

  // The reader's own: refused resubscribe attempts in a row, and when it
  // gives up on them.
  int attempts_ = 0;
  absl::Time give_up_ = absl::InfiniteFuture();

  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kOpening;
  std::unique_ptr<Call> call_ ABSL_GUARDED_BY(mu_);
  // The current call: got its response; its reads ended (no more writes);
  // half-closed or a write failed (no more writes).
  bool call_open_ ABSL_GUARDED_BY(mu_) = false;
  bool call_ended_ ABSL_GUARDED_BY(mu_) = false;
  bool call_writes_done_ ABSL_GUARDED_BY(mu_) = false;
  // The current call's first frame had no SubscriptionResponse.
  absl::Status protocol_error_ ABSL_GUARDED_BY(mu_);
  // The current (or last) call's response, and the first call's start.
  SubscriptionResponse response_ ABSL_GUARDED_BY(mu_);
  uint64_t first_start_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  // Where a plain subscription resumes: after the last message handed to
  // the handler, or the resolved start if none was.
  uint64_t resume_from_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t resubscribes_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<MsgProto> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_dispatch_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<uint64_t> acks_ ABSL_GUARDED_BY(mu_);
  // The ack writer is writing to call_ (which must not be replaced).
  bool ack_writing_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_acks_ ABSL_GUARDED_BY(mu_) = false;
  bool half_close_ ABSL_GUARDED_BY(mu_) = false;
  // The client asked the subscription to end (no lost handler, no
  // resubscribe then).
  bool requested_end_ ABSL_GUARDED_BY(mu_) = false;
  // The lost handler ran (or is about to): the subscription is over.
  bool lost_ ABSL_GUARDED_BY(mu_) = false;
  bool reader_exited_ ABSL_GUARDED_BY(mu_) = false;
  // The last call's final status, once call_ended_.
  absl::Status call_status_ ABSL_GUARDED_BY(mu_);
  absl::Status end_result_ ABSL_GUARDED_BY(mu_);
};

}  // namespace spate::client

#endif  // SPATE_CLIENT_SUBSCRIPTION_STREAM_H_
