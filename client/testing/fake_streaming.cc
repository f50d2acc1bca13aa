#include "client/testing/fake_streaming.h"

#include <dirent.h>

#include <fstream>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"

namespace spate::client::testing {

void FakeStreaming::set_connect_status(grpc::Status status) {
  absl::MutexLock lock(&mu_);
  connect_status_ = std::move(status);
}

void FakeStreaming::set_connect_response(ConnectResponse response) {
  absl::MutexLock lock(&mu_);
  connect_response_ = std::move(response);
  connect_response_set_ = true;
}

void FakeStreaming::set_ping_status(grpc::Status status) {
  absl::MutexLock lock(&mu_);
  ping_status_ = std::move(status);
}

void FakeStreaming::set_publish_status(grpc::Status status) {
  absl::MutexLock lock(&mu_);
  publish_status_ = std::move(status);
}

void FakeStreaming::set_ack_error(std::string subject, grpc::StatusCode code,
                                  std::string message) {
  absl::MutexLock lock(&mu_);
  ack_errors_[std::move(subject)] = AckError{code, std::move(message)};
}

void FakeStreaming::set_hold_acks(bool hold) {
  absl::MutexLock lock(&mu_);
  hold_acks_ = hold;
}

void FakeStreaming::set_pause_reads(bool pause) {
  absl::MutexLock lock(&mu_);
  pause_reads_ = pause;
}

void FakeStreaming::set_subscribe_status(grpc::Status status) {
  absl::MutexLock lock(&mu_);
  subscribe_status_ = std::move(status);
}

void FakeStreaming::set_cancel_stream_on_unsubscribe(bool cancel) {
  absl::MutexLock lock(&mu_);
  cancel_stream_on_unsubscribe_ = cancel;
}

void FakeStreaming::set_ignore_half_close(bool ignore) {
  absl::MutexLock lock(&mu_);
  ignore_half_close_ = ignore;
}

void FakeStreaming::Deliver(int stream_index, std::vector<MsgProto> msgs) {
  absl::MutexLock lock(&mu_);
  CHECK_LT(stream_index, static_cast<int>(subscribe_streams_.size()));
  Delivery delivery;
  for (MsgProto& msg : msgs) *delivery.add_msgs() = std::move(msg);
  subscribe_streams_[stream_index]->outgoing.push_back(std::move(delivery));
}

void FakeStreaming::CancelPublishStreams() {
  absl::MutexLock lock(&mu_);
  for (grpc::ServerContext* context : publish_contexts_) context->TryCancel();
}

void FakeStreaming::CancelSubscribeStreams() {
  absl::MutexLock lock(&mu_);
  for (const auto& stream : subscribe_streams_) {
    if (stream->context != nullptr) stream->context->TryCancel();
  }
}

std::vector<ConnectRequest> FakeStreaming::connect_requests() const {
  absl::MutexLock lock(&mu_);
  return connect_requests_;
}

int FakeStreaming::ping_count() const {
  absl::MutexLock lock(&mu_);
  return ping_count_;
}

std::vector<PubMsg> FakeStreaming::sync_published() const {
  absl::MutexLock lock(&mu_);
  return sync_published_;
}

std::vector<int> FakeStreaming::pub_batch_sizes() const {
  absl::MutexLock lock(&mu_);
  return pub_batch_sizes_;
}

std::vector<PubMsg> FakeStreaming::stream_published() const {
  absl::MutexLock lock(&mu_);
  return stream_published_;
}

int FakeStreaming::max_unacked() const {
  absl::MutexLock lock(&mu_);
  return max_unacked_;
}

std::vector<SubscriptionRequest> FakeStreaming::subscribe_requests() const {
  absl::MutexLock lock(&mu_);
  return subscribe_requests_;
}

std::vector<std::vector<uint64_t>> FakeStreaming::ack_frames(
    int stream_index) const {
  absl::MutexLock lock(&mu_);
  CHECK_LT(stream_index, static_cast<int>(subscribe_streams_.size()));
  return subscribe_streams_[stream_index]->ack_frames;
}

bool FakeStreaming::subscribe_stream_half_closed(int stream_index) const {
  absl::MutexLock lock(&mu_);
  CHECK_LT(stream_index, static_cast<int>(subscribe_streams_.size()));
  return subscribe_streams_[stream_index]->half_closed;
}

int FakeStreaming::open_streams() const {
  absl::MutexLock lock(&mu_);
  return open_streams_;
}

std::vector<UnsubscribeRequest> FakeStreaming::unsubscribes() const {
  absl::MutexLock lock(&mu_);
  return unsubscribes_;
}

std::vector<CloseRequest> FakeStreaming::closes() const {
  absl::MutexLock lock(&mu_);
  return closes_;
}

grpc::Status FakeStreaming::Connect(grpc::ServerContext* context,
                                    const ConnectRequest* request,
                                    ConnectResponse* response) {
  absl::MutexLock lock(&mu_);
  connect_requests_.push_back(*request);
  if (!connect_status_.ok()) return connect_status_;
  if (connect_response_set_) {
    *response = connect_response_;
  } else {
    response->set_ping_interval_ms(60000);
    response->set_ping_max_out(3);
    response->set_max_payload_bytes(1 << 20);
    response->set_cluster_name("fake");
    response->set_node_id(1);
  }
  return grpc::Status::OK;
}

grpc::Status FakeStreaming::Ping(grpc::ServerContext* context,
                                 const PingRequest* request,
                                 PingResponse* response) {
  absl::MutexLock lock(&mu_);
  ++ping_count_;
  return ping_status_;
}

grpc::Status FakeStreaming::Publish(grpc::ServerContext* context,
                                    const PubMsg* request, PubAck* response) {
  absl::MutexLock lock(&mu_);
  sync_published_.push_back(*request);
  if (!publish_status_.ok()) return publish_status_;
  response->set_guid(request->guid());
  response->set_sequence(++last_sequence_[request->subject()]);
  return grpc::Status::OK;
}

PubAck FakeStreaming::AckFor(const PubMsg& msg) {
  PubAck ack;
  ack.set_guid(msg.guid());
  auto error = ack_errors_.find(msg.subject());
  if (error != ack_errors_.end()) {
    ack.set_error(error->second.message);
    ack.set_error_code(static_cast<int32_t>(error->second.code));
  } else {
    ack.set_sequence(++last_sequence_[msg.subject()]);
  }
  return ack;
}

grpc::Status FakeStreaming::PublishStream(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<PubAckBatch, PubBatch>* stream) {
  std::deque<PubAck> to_send;  // Guarded by mu_.
  bool reader_done = false;    // Guarded by mu_.
  {
    absl::MutexLock lock(&mu_);
    publish_contexts_.push_back(context);
    ++open_streams_;
  }
  std::thread writer([&] {
    while (true) {
      PubAckBatch batch;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [&]() {
          return (!to_send.empty() && !hold_acks_) || reader_done;
        };
        mu_.Await(absl::Condition(&ready));
        if (to_send.empty() || hold_acks_) break;  // reader_done
        for (PubAck& ack : to_send) *batch.add_acks() = std::move(ack);
        unacked_ -= batch.acks_size();
        to_send.clear();
      }
      if (!stream->Write(batch)) break;
    }
  });
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto reading = [this]() { return !pause_reads_; };
      while (!mu_.AwaitWithTimeout(absl::Condition(&reading),
                                   absl::Milliseconds(5)) &&
             !context->IsCancelled()) {
      }
    }
    PubBatch batch;
    if (!stream->Read(&batch)) break;
    absl::MutexLock lock(&mu_);
    pub_batch_sizes_.push_back(batch.msgs_size());
    for (const PubMsg& msg : batch.msgs()) {
      stream_published_.push_back(msg);
      to_send.push_back(AckFor(msg));
      ++unacked_;
      max_unacked_ = std::max(max_unacked_, unacked_);
    }
  }
  {
    absl::MutexLock lock(&mu_);
    reader_done = true;
    unacked_ -= static_cast<int>(to_send.size());
    publish_contexts_.erase(
        std::find(publish_contexts_.begin(), publish_contexts_.end(), context));
  }
  writer.join();
  absl::MutexLock lock(&mu_);
  --open_streams_;
  return grpc::Status::OK;
}

grpc::Status FakeStreaming::Subscribe(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<Delivery, SubscribeFrame>* stream) {
  SubscribeFrame first;
  if (!stream->Read(&first)) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "no request");
  }
  if (!first.has_request()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "the first frame must be a SubscriptionRequest");
  }
  SubscribeStream* sub;
  int index;
  {
    absl::MutexLock lock(&mu_);
    subscribe_requests_.push_back(first.request());
    index = static_cast<int>(subscribe_streams_.size());
    subscribe_streams_.push_back(std::make_unique<SubscribeStream>());
    sub = subscribe_streams_.back().get();
    if (!subscribe_status_.ok()) {
      sub->client_done = true;
      return subscribe_status_;
    }
    sub->context = context;
    ++open_streams_;
  }
  Delivery response;
  response.mutable_response()->set_subscription_id(absl::StrCat("sub-", index));
  response.mutable_response()->set_start_sequence(1);
  stream->Write(response);
  std::thread writer([&] {
    while (true) {
      Delivery delivery;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [&]() {
          return !sub->outgoing.empty() || sub->client_done;
        };
        mu_.Await(absl::Condition(&ready));
        if (sub->outgoing.empty()) break;
        delivery = std::move(sub->outgoing.front());
        sub->outgoing.pop_front();
      }
      if (!stream->Write(delivery)) break;
    }
  });
  SubscribeFrame frame;
  while (stream->Read(&frame)) {
    if (!frame.has_acks()) continue;
    std::vector<uint64_t> sequences;
    for (const Ack& ack : frame.acks().acks()) {
      sequences.push_back(ack.sequence());
    }
    absl::MutexLock lock(&mu_);
    sub->ack_frames.push_back(std::move(sequences));
  }
  {
    absl::MutexLock lock(&mu_);
    sub->half_closed = !context->IsCancelled();
    auto release = [this]() { return !ignore_half_close_; };
    while (!mu_.AwaitWithTimeout(absl::Condition(&release),
                                 absl::Milliseconds(5)) &&
           !context->IsCancelled()) {
    }
    sub->client_done = true;
    sub->context = nullptr;
  }
  writer.join();
  absl::MutexLock lock(&mu_);
  --open_streams_;
  return grpc::Status::OK;
}

grpc::Status FakeStreaming::Unsubscribe(grpc::ServerContext* context,
                                        const UnsubscribeRequest* request,
                                        UnsubscribeResponse* response) {
  absl::MutexLock lock(&mu_);
  unsubscribes_.push_back(*request);
  if (cancel_stream_on_unsubscribe_) {
    // Subscription ids are "sub-<index>" (see Subscribe).
    for (size_t i = 0; i < subscribe_streams_.size(); ++i) {
      if (request->subscription_id() == absl::StrCat("sub-", i) &&
          subscribe_streams_[i]->context != nullptr) {
        subscribe_streams_[i]->context->TryCancel();
      }
    }
  }
  return grpc::Status::OK;
}

grpc::Status FakeStreaming::Close(grpc::ServerContext* context,
                                  const CloseRequest* request,
                                  CloseResponse* response) {
  absl::MutexLock lock(&mu_);
  closes_.push_back(*request);
  return grpc::Status::OK;
}

FakeServer::FakeServer() {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
  CHECK(server_ != nullptr && port > 0) << "fake server did not start";
  address_ = absl::StrCat("127.0.0.1:", port);
}

FakeServer::~FakeServer() {
  server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Milliseconds(200)));
  server_->Wait();
}

bool Eventually(const std::function<bool()>& condition,
                absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

int CountClientThreads() {
  int count = 0;
  DIR* tasks = opendir("/proc/self/task");
  CHECK(tasks != nullptr);
  while (struct dirent* entry = readdir(tasks)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream comm(
        absl::StrCat("/proc/self/task/", entry->d_name, "/comm"));
    std::string name;
    std::getline(comm, name);
    if (absl::StartsWith(name, "spate-")) ++count;
  }
  closedir(tasks);
  return count;
}

}  // namespace spate::client::testing
