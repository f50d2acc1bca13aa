#include "tests/testing/stream_client.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/waits.h"

namespace spate::testing {
namespace {

std::unique_ptr<grpc::ClientContext> Deadline(absl::Duration timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return context;
}

}  // namespace

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

TestConnection::TestConnection(const std::string& address,
                               std::string client_id,
                               TestCredentials credentials)
    : channel_(grpc::CreateChannel(address,
                                   credentials.channel != nullptr
                                       ? credentials.channel
                                       : grpc::InsecureChannelCredentials())),
      stub_(Streaming::NewStub(channel_)),
      client_id_(std::move(client_id)),
      conn_id_(absl::StrCat(client_id_, "-", absl::ToUnixNanos(absl::Now()))),
      authorization_(std::move(credentials.authorization)) {}

std::unique_ptr<grpc::ClientContext> TestConnection::Context(
    absl::Duration timeout) const {
  std::unique_ptr<grpc::ClientContext> context = Deadline(timeout);
  if (!authorization_.empty()) {
    context->AddMetadata("authorization", authorization_);
  }
  return context;
}

absl::StatusOr<ConnectResponse> TestConnection::Connect() {
  ConnectRequest request;
  request.set_client_id(client_id_);
  request.set_conn_id(conn_id_);
  ConnectResponse response;
  auto context = Context(absl::Seconds(10));
  grpc::Status status = stub_->Connect(context.get(), request, &response);
  if (!status.ok()) return FromGrpc(status);
  return response;
}

absl::Status TestConnection::Ping() {
  PingRequest request;
  request.set_client_id(client_id_);
  request.set_conn_id(conn_id_);
  PingResponse response;
  auto context = Context(absl::Seconds(10));
  return FromGrpc(stub_->Ping(context.get(), request, &response));
}

PubMsg TestConnection::Msg(const std::string& channel,
                           const std::string& data) const {
  PubMsg msg;
  msg.set_client_id(client_id_);
  msg.set_conn_id(conn_id_);
  msg.set_subject(channel);
  msg.set_data(data);
  return msg;
}

SubscriptionRequest TestConnection::SubRequest(
    const std::string& channel) const {
  SubscriptionRequest request;
  request.set_client_id(client_id_);
  request.set_conn_id(conn_id_);
  request.set_subject(channel);
  request.set_max_in_flight(1024);
  request.set_ack_wait_in_secs(30);
  return request;
}

absl::StatusOr<uint64_t> TestConnection::PublishReconnecting(
    const std::string& channel, const std::string& data,
    absl::Duration timeout) {
  return Retry(
      [&]() -> absl::StatusOr<uint64_t> {
        absl::StatusOr<uint64_t> sequence = Publish(channel, data);
        if (absl::IsNotFound(sequence.status())) {
          Connect().IgnoreError();  // the retry tells
          return absl::UnavailableError("connected again");
        }
        return sequence;
      },
      timeout);
}

absl::StatusOr<PubAck> TestConnection::PublishRaw(const PubMsg& msg) {
  PubAck ack;
  auto context = Context(absl::Seconds(30));
  grpc::Status status = stub_->Publish(context.get(), msg, &ack);
  if (!status.ok()) return FromGrpc(status);
  return ack;
}

absl::StatusOr<uint64_t> TestConnection::Publish(const std::string& channel,
                                                 const std::string& data,
                                                 const std::string& guid) {
  PubMsg msg = Msg(channel, data);
  msg.set_guid(guid.empty() ? absl::StrCat(conn_id_, "-", ++guid_counter_)
                            : guid);
  absl::StatusOr<PubAck> ack = PublishRaw(msg);
  if (!ack.ok()) return ack.status();
  return ack->sequence();
}

absl::StatusOr<std::vector<PubAck>> TestConnection::PublishStream(
    const std::vector<PubMsg>& msgs, size_t msgs_per_frame) {
  auto context = Context(absl::Seconds(60));
  auto stream = stub_->PublishStream(context.get());
  std::vector<PubAck> acks;
  std::thread reader([&] {
    PubAckBatch batch;
    while (stream->Read(&batch)) {
      for (const PubAck& ack : batch.acks()) acks.push_back(ack);
    }
  });
  PubBatch batch;
  for (size_t i = 0; i < msgs.size(); ++i) {
    *batch.add_msgs() = msgs[i];
    if (batch.msgs_size() >= static_cast<int>(msgs_per_frame) ||
        i + 1 == msgs.size()) {
      if (!stream->Write(batch)) break;
      batch.Clear();
    }
  }
  stream->WritesDone();
  reader.join();
  grpc::Status status = stream->Finish();
  if (!status.ok()) return FromGrpc(status);
  return acks;
}

absl::Status TestConnection::Unsubscribe(const std::string& channel,
                                         const std::string& subscription_id,
                                         bool close_only) {
  UnsubscribeRequest request;
  request.set_client_id(client_id_);
  request.set_conn_id(conn_id_);
  request.set_subject(channel);
  request.set_subscription_id(subscription_id);
  request.set_close_only(close_only);
  UnsubscribeResponse response;
  auto context = Context(absl::Seconds(10));
  return FromGrpc(stub_->Unsubscribe(context.get(), request, &response));
}

absl::Status TestConnection::Close() {
  CloseRequest request;
  request.set_client_id(client_id_);
  request.set_conn_id(conn_id_);
  CloseResponse response;
  auto context = Context(absl::Seconds(10));
  return FromGrpc(stub_->Close(context.get(), request, &response));
}

TestSubscriber::TestSubscriber(Streaming::Stub* stub,
                               const SubscriptionRequest& request,
                               const std::string& authorization) {
  context_.set_deadline(absl::ToChronoTime(absl::Now() + absl::Minutes(5)));
  if (!authorization.empty()) {
    context_.AddMetadata("authorization", authorization);
  }
  stream_ = stub->Subscribe(&context_);
  SubscribeFrame frame;
  *frame.mutable_request() = request;
  stream_->Write(frame);
  reader_ = std::thread([this] { ReadLoop(); });
}

TestSubscriber::~TestSubscriber() {
  Cancel();
  reader_.join();
}

void TestSubscriber::ReadLoop() {
  Delivery delivery;
  while (stream_->Read(&delivery)) {
    absl::MutexLock lock(&mu_);
    if (delivery.has_response()) response_ = delivery.response();
    for (const MsgProto& msg : delivery.msgs()) messages_.push_back(msg);
    delivery.Clear();
  }
  absl::Status status = FromGrpc(stream_->Finish());
  absl::MutexLock lock(&mu_);
  end_ = status;
}

absl::StatusOr<SubscriptionResponse> TestSubscriber::WaitStarted(
    absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return response_.has_value() || end_.has_value();
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&ready), timeout)) {
    return absl::DeadlineExceededError("no subscription response");
  }
  if (response_) return *response_;
  return end_->ok() ? absl::UnknownError("stream ended without response")
                    : *end_;
}

std::optional<MsgProto> TestSubscriber::Next(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return !messages_.empty() || end_.has_value();
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (messages_.empty()) return std::nullopt;
  MsgProto msg = std::move(messages_.front());
  messages_.pop_front();
  return msg;
}

std::vector<MsgProto> TestSubscriber::NextN(size_t count,
                                            absl::Duration timeout) {
  std::vector<MsgProto> out;
  const absl::Time deadline = absl::Now() + timeout;
  while (out.size() < count) {
    std::optional<MsgProto> msg = Next(deadline - absl::Now());
    if (!msg) break;
    out.push_back(std::move(*msg));
  }
  return out;
}

bool TestSubscriber::Ack(uint64_t sequence) {
  SubscribeFrame frame;
  frame.mutable_acks()->add_acks()->set_sequence(sequence);
  absl::MutexLock lock(&write_mu_);
  return !writes_done_ && stream_->Write(frame);
}

bool TestSubscriber::AckAll(const std::vector<MsgProto>& msgs) {
  SubscribeFrame frame;
  for (const MsgProto& msg : msgs) {
    frame.mutable_acks()->add_acks()->set_sequence(msg.sequence());
  }
  absl::MutexLock lock(&write_mu_);
  return !writes_done_ && stream_->Write(frame);
}

absl::Status TestSubscriber::CloseSend(absl::Duration timeout) {
  {
    absl::MutexLock lock(&write_mu_);
    if (!writes_done_) stream_->WritesDone();
    writes_done_ = true;
  }
  return WaitEnd(timeout);
}

void TestSubscriber::Cancel() { context_.TryCancel(); }

absl::Status TestSubscriber::WaitEnd(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]()
                   ABSL_SHARED_LOCKS_REQUIRED(mu_) { return end_.has_value(); };
  if (!mu_.AwaitWithTimeout(absl::Condition(&ready), timeout)) {
    return absl::DeadlineExceededError("stream did not end");
  }
  return *end_;
}

bool TestSubscriber::ended() {
  absl::MutexLock lock(&mu_);
  return end_.has_value();
}

}  // namespace spate::testing
