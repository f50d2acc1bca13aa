// Raw protocol clients for server tests: thin wrappers over the generated
// gRPC stub that keep full control of every field (so tests can send
// malformed requests) and never block without a deadline.
//
// TestConnection: Connect/Ping/Publish/Unsubscribe/Close as unary calls.
// TestSubscriber: one Subscribe stream; a reader thread queues what the
// server sends, and the test waits on the queue with a timeout.
#ifndef SPATE_TESTS_TESTING_STREAM_CLIENT_H_
#define SPATE_TESTS_TESTING_STREAM_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/streaming.grpc.pb.h"

namespace spate::testing {

absl::Status FromGrpc(const grpc::Status& status);

// How a test client dials and authenticates (default: plaintext, no
// credentials).
struct TestCredentials {
  std::shared_ptr<grpc::ChannelCredentials> channel;
  // The `authorization` metadata of every call (server/auth.h).
  std::string authorization;
};

class TestConnection {
 public:
  TestConnection(const std::string& address, std::string client_id,
                 TestCredentials credentials = TestCredentials());

  absl::StatusOr<ConnectResponse> Connect();
  absl::Status Ping();
  // Publishes `data` with a fresh guid; returns the sequence.
  absl::StatusOr<uint64_t> Publish(const std::string& channel,
                                   const std::string& data,
                                   const std::string& guid = "");
  absl::StatusOr<PubAck> PublishRaw(const PubMsg& msg);
  // Publish, retried while the cluster answers UNAVAILABLE (for up to
  // `timeout`); a connection the node dropped meanwhile (this client does
  // not ping) connects again and the publish is retried.
  absl::StatusOr<uint64_t> PublishReconnecting(const std::string& channel,
                                               const std::string& data,
                                               absl::Duration timeout);
  // Sends every message on one PublishStream and returns the acks in the
  // order they arrived.
  absl::StatusOr<std::vector<PubAck>> PublishStream(
      const std::vector<PubMsg>& msgs, size_t msgs_per_frame = 64);
  absl::Status Unsubscribe(const std::string& channel,
                           const std::string& subscription_id, bool close_only);
  absl::Status Close();

  PubMsg Msg(const std::string& channel, const std::string& data) const;
  SubscriptionRequest SubRequest(const std::string& channel) const;

  Streaming::Stub* stub() { return stub_.get(); }
  const std::string& client_id() const { return client_id_; }
  const std::string& conn_id() const { return conn_id_; }
  void set_conn_id(std::string conn_id) { conn_id_ = std::move(conn_id); }
  const std::string& authorization() const { return authorization_; }

 private:
  // A call context with a deadline and the connection's credentials.
  std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout) const;

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<Streaming::Stub> stub_;
  std::string client_id_;
  std::string conn_id_;
  int guid_counter_ = 0;
  std::string authorization_;
};

class TestSubscriber {
 public:
  TestSubscriber(Streaming::Stub* stub, const SubscriptionRequest& request,
                 const std::string& authorization = "");
  ~TestSubscriber();  // cancels the stream and joins the reader

  // Waits for the SubscriptionResponse, or the stream's error status.
  absl::StatusOr<SubscriptionResponse> WaitStarted(
      absl::Duration timeout = absl::Seconds(10));
  // The next delivered message, or nullopt after `timeout` / stream end.
  std::optional<MsgProto> Next(absl::Duration timeout = absl::Seconds(10));
  // Collects messages until `count` arrived or `timeout` passed.
  std::vector<MsgProto> NextN(size_t count,
                              absl::Duration timeout = absl::Seconds(10));
  bool Ack(uint64_t sequence);
  bool AckAll(const std::vector<MsgProto>& msgs);
  // Half-closes (the server closes the subscription) and waits for the end.
  absl::Status CloseSend(absl::Duration timeout = absl::Seconds(10));
  void Cancel();
  // Waits for the stream's final status.
  absl::Status WaitEnd(absl::Duration timeout = absl::Seconds(10));
  bool ended();

 private:
  void ReadLoop();

  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<SubscribeFrame, Delivery>> stream_;
  std::thread reader_;
  absl::Mutex mu_;
  std::optional<SubscriptionResponse> response_ ABSL_GUARDED_BY(mu_);
  std::deque<MsgProto> messages_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> end_ ABSL_GUARDED_BY(mu_);
  absl::Mutex write_mu_;
  bool writes_done_ ABSL_GUARDED_BY(write_mu_) = false;
};

}  // namespace spate::testing

#endif  // SPATE_TESTS_TESTING_STREAM_CLIENT_H_
