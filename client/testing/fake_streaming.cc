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

// One Subscribe call. Its state lives in the FakeStreaming's
// SubscribeStream entry (so that tests can inspect it after the call);
// every reaction runs under the fake's mutex.
class SubscribeReactor
    : public grpc::ServerBidiReactor<SubscribeFrame, Delivery> {
 public:
  SubscribeReactor(FakeStreaming* fake, grpc::CallbackServerContext* context)
      : fake_(fake), context_(context) {
    StartRead(&frame_);
  }

  grpc::CallbackServerContext* context() { return context_; }
  Delivery* write_buffer() { return &writing_; }

  void OnReadDone(bool ok) override {
    absl::MutexLock lock(&fake_->mu_);
    if (sub_ == nullptr) {
      FirstFrame(ok);
      return;
    }
    if (ok) {
      if (frame_.has_acks()) {
        std::vector<uint64_t> sequences;
        for (const Ack& ack : frame_.acks().acks()) {
          sequences.push_back(ack.sequence());
        }
        sub_->ack_frames.push_back(std::move(sequences));
      }
      StartRead(&frame_);
      return;
    }
    if (sub_->finished) return;  // We ended it; the read just stopped.
    sub_->half_closed = !context_->IsCancelled();
    if (fake_->ignore_half_close_ && sub_->half_closed) {
      sub_->awaiting_release = true;
      return;
    }
    fake_->FinishLocked(sub_, grpc::Status::OK);
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&fake_->mu_);
    sub_->writing = false;
    if (sub_->finish_pending) {
      sub_->finish_pending = false;
      Finish(sub_->finish_status);
      return;
    }
    if (!ok) {
      fake_->FinishLocked(
          sub_, grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    fake_->StartNextWriteLocked(sub_);
  }

  void OnCancel() override {
    absl::MutexLock lock(&fake_->mu_);
    const grpc::Status cancelled(grpc::StatusCode::CANCELLED, "cancelled");
    if (sub_ != nullptr) {
      fake_->FinishLocked(sub_, cancelled);
    } else if (!early_finished_) {
      early_finished_ = true;
      Finish(cancelled);
    }
  }

  void OnDone() override {
    {
      absl::MutexLock lock(&fake_->mu_);
      if (sub_ != nullptr) sub_->reactor = nullptr;
      if (counted_) --fake_->open_streams_;
    }
    delete this;
  }

 private:
  void FirstFrame(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(fake_->mu_) {
    if (!ok || !frame_.has_request()) {
      early_finished_ = true;
      Finish(ok ? grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                               "the first frame must be a SubscriptionRequest")
                : grpc::Status(grpc::StatusCode::CANCELLED, "no request"));
      return;
    }
    const int index = static_cast<int>(fake_->subscribe_streams_.size());
    fake_->subscribe_requests_.push_back(frame_.request());
    fake_->subscribe_streams_.push_back(
        std::make_unique<FakeStreaming::SubscribeStream>());
    sub_ = fake_->subscribe_streams_.back().get();
    sub_->reactor = this;
    if (!fake_->subscribe_status_.ok()) {
      fake_->FinishLocked(sub_, fake_->subscribe_status_);
      return;
    }
    counted_ = true;
    ++fake_->open_streams_;
    Delivery response;
    response.mutable_response()->set_subscription_id(
        absl::StrCat("sub-", index));
    response.mutable_response()->set_start_sequence(1);
    sub_->outgoing.push_front(std::move(response));
    fake_->StartNextWriteLocked(sub_);
    StartRead(&frame_);
  }

  FakeStreaming* const fake_;
  grpc::CallbackServerContext* const context_;
  SubscribeFrame frame_;
  Delivery writing_;
  // Guarded by the fake's mutex.
  FakeStreaming::SubscribeStream* sub_ = nullptr;
  bool early_finished_ = false;
  bool counted_ = false;
};

void FakeStreaming::set_connect_status(grpc::Status status) {
  absl::MutexLock lock(&mu_);
  connect_status_ = std::move(status);
}

void FakeStreaming::FailNextConnects(int count, grpc::Status status) {
  absl::MutexLock lock(&mu_);
  connect_failures_ = count;
  connect_failure_status_ = std::move(status);
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

void FakeStreaming::ClearAckErrors() {
  absl::MutexLock lock(&mu_);
  ack_errors_.clear();
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
  if (ignore) return;
  for (const auto& sub : subscribe_streams_) {
    if (sub->awaiting_release) {
      sub->awaiting_release = false;
      FinishLocked(sub.get(), grpc::Status::OK);
    }
  }
}

void FakeStreaming::Deliver(int stream_index, std::vector<MsgProto> msgs) {
  absl::MutexLock lock(&mu_);
  CHECK_LT(stream_index, static_cast<int>(subscribe_streams_.size()));
  Delivery delivery;
  for (MsgProto& msg : msgs) *delivery.add_msgs() = std::move(msg);
  SubscribeStream* sub = subscribe_streams_[stream_index].get();
  sub->outgoing.push_back(std::move(delivery));
  StartNextWriteLocked(sub);
}

void FakeStreaming::StartNextWriteLocked(SubscribeStream* sub) {
  if (sub->reactor == nullptr || sub->writing || sub->finished ||
      sub->outgoing.empty()) {
    return;
  }
  *sub->reactor->write_buffer() = std::move(sub->outgoing.front());
  sub->outgoing.pop_front();
  sub->writing = true;
  sub->reactor->StartWrite(sub->reactor->write_buffer());
}

void FakeStreaming::FinishLocked(SubscribeStream* sub, grpc::Status status) {
  if (sub->reactor == nullptr || sub->finished) return;
  sub->finished = true;
  if (sub->writing) {
    sub->finish_pending = true;
    sub->finish_status = std::move(status);
    return;
  }
  sub->reactor->Finish(std::move(status));
}

void FakeStreaming::CancelPublishStreams() {
  absl::MutexLock lock(&mu_);
  for (grpc::ServerContext* context : publish_contexts_) context->TryCancel();
}

void FakeStreaming::CancelSubscribeStreams() {
  absl::MutexLock lock(&mu_);
  for (const auto& sub : subscribe_streams_) {
    if (sub->reactor != nullptr && !sub->finished) {
      sub->reactor->context()->TryCancel();
    }
  }
}

void FakeStreaming::EndSubscribeStreams(grpc::Status status) {
  absl::MutexLock lock(&mu_);
  for (const auto& sub : subscribe_streams_) FinishLocked(sub.get(), status);
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

int FakeStreaming::subscribe_stream_count() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(subscribe_streams_.size());
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
  if (connect_failures_ > 0) {
    --connect_failures_;
    return connect_failure_status_;
  }
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
  response->set_sequence(SequenceFor(*request));
  return grpc::Status::OK;
}

uint64_t FakeStreaming::SequenceFor(const PubMsg& msg) {
  auto [it, inserted] = sequence_by_guid_.emplace(msg.guid(), 0);
  if (inserted || msg.guid().empty()) {
    it->second = ++last_sequence_[msg.subject()];
  }
  return it->second;
}

PubAck FakeStreaming::AckFor(const PubMsg& msg) {
  PubAck ack;
  ack.set_guid(msg.guid());
  auto error = ack_errors_.find(msg.subject());
  if (error != ack_errors_.end()) {
    ack.set_error(error->second.message);
    ack.set_error_code(static_cast<int32_t>(error->second.code));
  } else {
    ack.set_sequence(SequenceFor(msg));
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

grpc::ServerBidiReactor<SubscribeFrame, Delivery>* FakeStreaming::Subscribe(
    grpc::CallbackServerContext* context) {
  return new SubscribeReactor(this, context);
}

grpc::Status FakeStreaming::Unsubscribe(grpc::ServerContext* context,
                                        const UnsubscribeRequest* request,
                                        UnsubscribeResponse* response) {
  absl::MutexLock lock(&mu_);
  unsubscribes_.push_back(*request);
  if (cancel_stream_on_unsubscribe_) {
    // Subscription ids are "sub-<index>" (see Subscribe).
    for (size_t i = 0; i < subscribe_streams_.size(); ++i) {
      SubscribeStream* sub = subscribe_streams_[i].get();
      if (request->subscription_id() == absl::StrCat("sub-", i) &&
          sub->reactor != nullptr && !sub->finished) {
        sub->reactor->context()->TryCancel();
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
