// FakeStreaming: a scripted, in-process stand-in for the Spate server's
// Streaming service, for the client library's and the CLI's unit tests.
// It is a test double, not a second server: it stores nothing, assigns
// sequences per subject (the same one again for a repeated guid), and does
// what the test scripts (errors to return, acks to hold, deliveries to
// push, streams to cancel or end) while recording every request and frame
// it receives.
// FakeServer runs it on 127.0.0.1 with a kernel-chosen port.
// Threading: gRPC calls the service on its own threads; every scripting
// and observation method is thread-safe (one mutex guards all state).
#ifndef SPATE_CLIENT_TESTING_FAKE_STREAMING_H_
#define SPATE_CLIENT_TESTING_FAKE_STREAMING_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "grpcpp/server_context.h"
#include "proto/streaming.grpc.pb.h"

namespace spate::client::testing {

class SubscribeReactor;

// Subscribe is served with gRPC's callback API so that the fake can end a
// stream with any status (a synchronous handler blocked in Read cannot);
// the other methods are synchronous.
class FakeStreaming final
    : public Streaming::WithCallbackMethod_Subscribe<Streaming::Service> {
 public:
  // --- Scripting. ---
  void set_connect_status(grpc::Status status);
  // The next `count` Connects fail with `status`, then set_connect_status
  // applies again.
  void FailNextConnects(int count, grpc::Status status);
  // Default: ping every 60 s (so tests only see pings they ask for).
  void set_connect_response(ConnectResponse response);
  void set_ping_status(grpc::Status status);
  void set_publish_status(grpc::Status status);
  // PublishStream: messages to `subject` are answered with a PubAck
  // carrying this error instead of a sequence.
  void set_ack_error(std::string subject, grpc::StatusCode code,
                     std::string message);
  void ClearAckErrors();
  // While held, PublishStream acks accumulate; releasing sends them.
  void set_hold_acks(bool hold);
  // While paused, PublishStream handlers do not read (the client's writes
  // back up in HTTP/2 flow control).
  void set_pause_reads(bool pause);
  void set_subscribe_status(grpc::Status status);
  // The real server ends a subscription's stream once it handled its
  // Unsubscribe RPC; the fake can only cancel it (a sync handler cannot
  // return while its reader waits), which the client sees the same way.
  void set_cancel_stream_on_unsubscribe(bool cancel);
  // While set, a half-closed Subscribe stream is not ended (as a server that
  // cannot commit the close would); it ends once unset or cancelled.
  void set_ignore_half_close(bool ignore);
  // Sends one Delivery of `msgs` on the index-th Subscribe stream (in order
  // of arrival, from 0).
  void Deliver(int stream_index, std::vector<MsgProto> msgs);
  // Server-side cancellation of every open stream of that kind (the client
  // sees CANCELLED).
  void CancelPublishStreams();
  void CancelSubscribeStreams();
  // Ends every open Subscribe stream with `status` (e.g. UNAVAILABLE, as a
  // node does when a channel's leader moves).
  void EndSubscribeStreams(grpc::Status status);

  // --- Observation (copies). ---
  std::vector<ConnectRequest> connect_requests() const;
  int ping_count() const;
  std::vector<PubMsg> sync_published() const;
  // Messages per PubBatch frame, in arrival order.
  std::vector<int> pub_batch_sizes() const;
  std::vector<PubMsg> stream_published() const;
  // Most PublishStream messages received but not yet acked at any moment.
  int max_unacked() const;
  std::vector<SubscriptionRequest> subscribe_requests() const;
  int subscribe_stream_count() const;
  // Acked sequences per AckBatch frame of the index-th Subscribe stream.
  std::vector<std::vector<uint64_t>> ack_frames(int stream_index) const;
  // The index-th Subscribe stream was half-closed by the client (not
  // cancelled) and the handler returned.
  bool subscribe_stream_half_closed(int stream_index) const;
  int open_streams() const;
  std::vector<UnsubscribeRequest> unsubscribes() const;
  std::vector<CloseRequest> closes() const;

  // --- The service. ---
  grpc::Status Connect(grpc::ServerContext* context,
                       const ConnectRequest* request,
                       ConnectResponse* response) override;
  grpc::Status Ping(grpc::ServerContext* context, const PingRequest* request,
                    PingResponse* response) override;
  grpc::Status Publish(grpc::ServerContext* context, const PubMsg* request,
                       PubAck* response) override;
  grpc::Status PublishStream(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<PubAckBatch, PubBatch>* stream) override;
  grpc::ServerBidiReactor<SubscribeFrame, Delivery>* Subscribe(
      grpc::CallbackServerContext* context) override;
  grpc::Status Unsubscribe(grpc::ServerContext* context,
                           const UnsubscribeRequest* request,
                           UnsubscribeResponse* response) override;
  grpc::Status Close(grpc::ServerContext* context, const CloseRequest* request,
                     CloseResponse* response) override;

 private:
  struct AckError {
    grpc::StatusCode code;
    std::string message;
  };
  friend class SubscribeReactor;

  struct SubscribeStream {
    // Null once the call is done.
    SubscribeReactor* reactor = nullptr;
    std::deque<Delivery> outgoing;
    std::vector<std::vector<uint64_t>> ack_frames;
    bool writing = false;
    bool finished = false;
    // Finish deferred until the outstanding write completes.
    bool finish_pending = false;
    grpc::Status finish_status;
    // The client half-closed while ignore_half_close_ was set.
    bool awaiting_release = false;
    bool half_closed = false;
  };

  // Sequence of `msg`: a new one, or the first one of its guid (the real
  // server deduplicates guids too).
  uint64_t SequenceFor(const PubMsg& msg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  PubAck AckFor(const PubMsg& msg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reactor helpers; all run under mu_ (gRPC does not run reactions inline
  // from application calls, so calling into the reactor here is safe).
  void StartNextWriteLocked(SubscribeStream* sub)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishLocked(SubscribeStream* sub, grpc::Status status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  grpc::Status connect_status_ ABSL_GUARDED_BY(mu_);
  int connect_failures_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::Status connect_failure_status_ ABSL_GUARDED_BY(mu_);
  ConnectResponse connect_response_ ABSL_GUARDED_BY(mu_);
  grpc::Status ping_status_ ABSL_GUARDED_BY(mu_);
  grpc::Status publish_status_ ABSL_GUARDED_BY(mu_);
  grpc::Status subscribe_status_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, AckError> ack_errors_ ABSL_GUARDED_BY(mu_);
  bool hold_acks_ ABSL_GUARDED_BY(mu_) = false;
  bool pause_reads_ ABSL_GUARDED_BY(mu_) = false;
  bool connect_response_set_ ABSL_GUARDED_BY(mu_) = false;
  bool cancel_stream_on_unsubscribe_ ABSL_GUARDED_BY(mu_) = false;
  bool ignore_half_close_ ABSL_GUARDED_BY(mu_) = false;

  std::map<std::string, uint64_t> last_sequence_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> sequence_by_guid_ ABSL_GUARDED_BY(mu_);
  std::vector<ConnectRequest> connect_requests_ ABSL_GUARDED_BY(mu_);
  int ping_count_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<PubMsg> sync_published_ ABSL_GUARDED_BY(mu_);
  std::vector<int> pub_batch_sizes_ ABSL_GUARDED_BY(mu_);
  std::vector<PubMsg> stream_published_ ABSL_GUARDED_BY(mu_);
  int unacked_ ABSL_GUARDED_BY(mu_) = 0;
  int max_unacked_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<grpc::ServerContext*> publish_contexts_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<SubscribeStream>> subscribe_streams_
      ABSL_GUARDED_BY(mu_);
  std::vector<SubscriptionRequest> subscribe_requests_ ABSL_GUARDED_BY(mu_);
  int open_streams_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<UnsubscribeRequest> unsubscribes_ ABSL_GUARDED_BY(mu_);
  std::vector<CloseRequest> closes_ ABSL_GUARDED_BY(mu_);
};

// FakeStreaming served on 127.0.0.1:<free port>.
class FakeServer {
 public:
  FakeServer();
  // Shutdown with a short grace period; open streams get cancelled.
  ~FakeServer();

  FakeStreaming& service() { return service_; }
  const std::string& address() const { return address_; }

 private:
  FakeStreaming service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

// Polls `condition` every millisecond until it holds (true) or `timeout`
// passes (false). For asserting on asynchronous effects without sleeps.
bool Eventually(const std::function<bool()>& condition,
                absl::Duration timeout = absl::Seconds(10));

// Client threads ("spate-*") alive in this process, from /proc.
int CountClientThreads();

}  // namespace spate::client::testing

#endif  // SPATE_CLIENT_TESTING_FAKE_STREAMING_H_
