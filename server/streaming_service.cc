#include "server/streaming_service.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/log.h"
#include "server/forwarder.h"
#include "server/validation.h"

namespace spate::server {
namespace {

// Messages of one PublishStream handed to the node and not yet acked;
// beyond it new messages are refused with RESOURCE_EXHAUSTED acks (the
// client library's window keeps well-behaved clients far below).
constexpr int64_t kPublishInFlightMax = 1 << 17;
constexpr int kAcksPerFrameMax = 1 << 16;

// ---- PublishStream ----

class PublishReactor;

// Shared by the reactor (gRPC threads) and the node (loop thread).
class PublishState {
 public:
  explicit PublishState(PublishReactor* reactor) : reactor_(reactor) {}
  // A message's ack, from the node (any thread).
  void Ack(const PubAck& ack);
  // Reactor side.
  void Queued(int64_t count);
  void RejectNow(const PubAck& ack);
  void ReadsDone();
  void Cancelled();
  void WriteDone(bool ok);
  void ReactorGone();
  int64_t in_flight() {
    absl::MutexLock lock(&mu_);
    return in_flight_;
  }

 private:
  // Under mu_: decides what to do; the caller acts after unlocking.
  enum class Act { kNone, kWrite, kFinish };
  Act NextLocked();
  void Do(Act act);

  absl::Mutex mu_;
  PublishReactor* reactor_ ABSL_GUARDED_BY(mu_);
  PubAckBatch pending_ ABSL_GUARDED_BY(mu_);
  PubAckBatch writing_;  // owned by the outstanding write
  bool write_outstanding_ ABSL_GUARDED_BY(mu_) = false;
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status finish_status_ ABSL_GUARDED_BY(mu_);
};

class PublishReactor : public grpc::ServerBidiReactor<PubBatch, PubAckBatch> {
 public:
  // `principal` may publish where its permissions say; `limits` counts
  // this stream (acquired by the caller) until OnDone.
  PublishReactor(Node* node, const ServerConfig* config, int hops,
                 const Principal* principal, StreamLimits* limits)
      : node_(node),
        config_(config),
        hops_(hops),
        principal_(principal),
        limits_(limits),
        state_(std::make_shared<PublishState>(this)) {
    StartRead(&batch_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      state_->ReadsDone();
      return;
    }
    std::vector<PubMsg> valid;
    valid.reserve(batch_.msgs_size());
    const int64_t room = kPublishInFlightMax - state_->in_flight();
    for (PubMsg& msg : *batch_.mutable_msgs()) {
      absl::Status status = ValidatePubMsg(msg, config_->store());
      if (status.ok()) status = principal_->CheckPublish(msg.subject());
      if (status.ok() && static_cast<int64_t>(valid.size()) >= room) {
        status = absl::ResourceExhaustedError(
            "too many unacknowledged publishes on this stream");
      }
      if (!status.ok()) {
        PubAck ack;
        ack.set_guid(msg.guid());
        ack.set_error(std::string(status.message()));
        ack.set_error_code(static_cast<int>(status.code()));
        state_->RejectNow(ack);
        continue;
      }
      valid.push_back(std::move(msg));
    }
    batch_.Clear();
    if (!valid.empty()) {
      state_->Queued(static_cast<int64_t>(valid.size()));
      std::shared_ptr<PublishState> state = state_;
      node_->Publish(std::move(valid), hops_,
                     [state](size_t, const PubAck& ack) { state->Ack(ack); });
    }
    StartRead(&batch_);
  }

  void OnWriteDone(bool ok) override { state_->WriteDone(ok); }
  void OnCancel() override { state_->Cancelled(); }
  void OnDone() override {
    state_->ReactorGone();
    limits_->ReleaseStream();
    delete this;
  }

 private:
  Node* node_;
  const ServerConfig* config_;
  const int hops_;
  const Principal* const principal_;
  StreamLimits* const limits_;
  std::shared_ptr<PublishState> state_;
  PubBatch batch_;
};

void PublishState::Ack(const PubAck& ack) {
  Act act;
  {
    absl::MutexLock lock(&mu_);
    --in_flight_;
    if (finished_ || broken_) return;
    *pending_.add_acks() = ack;
    act = NextLocked();
  }
  Do(act);
}

void PublishState::RejectNow(const PubAck& ack) {
  Act act;
  {
    absl::MutexLock lock(&mu_);
    if (finished_ || broken_) return;
    *pending_.add_acks() = ack;
    act = NextLocked();
  }
  Do(act);
}

void PublishState::Queued(int64_t count) {
  absl::MutexLock lock(&mu_);
  in_flight_ += count;
}

void PublishState::ReadsDone() {
  Act act;
  {
    absl::MutexLock lock(&mu_);
    reads_done_ = true;
    act = NextLocked();
  }
  Do(act);
}

void PublishState::Cancelled() {
  Act act;
  {
    absl::MutexLock lock(&mu_);
    broken_ = true;
    finish_status_ = grpc::Status::CANCELLED;
    act = NextLocked();
  }
  Do(act);
}

void PublishState::WriteDone(bool ok) {
  Act act;
  {
    absl::MutexLock lock(&mu_);
    write_outstanding_ = false;
    if (!ok) broken_ = true;
    act = NextLocked();
  }
  Do(act);
}

void PublishState::ReactorGone() {
  absl::MutexLock lock(&mu_);
  reactor_ = nullptr;
  finished_ = true;
}

PublishState::Act PublishState::NextLocked() {
  if (finished_ || write_outstanding_ || reactor_ == nullptr) return Act::kNone;
  if (!broken_ && pending_.acks_size() > 0) {
    write_outstanding_ = true;  // keeps the reactor alive until WriteDone
    writing_.Clear();
    writing_.Swap(&pending_);
    return Act::kWrite;
  }
  if (broken_ || (reads_done_ && in_flight_ == 0)) {
    finished_ = true;
    return Act::kFinish;
  }
  return Act::kNone;
}

void PublishState::Do(Act act) {
  // Only the thread that claimed the write or the finish gets here with a
  // non-kNone act, so the reactor is alive (OnDone needs Finish first).
  PublishReactor* reactor;
  grpc::Status status;
  {
    absl::MutexLock lock(&mu_);
    reactor = reactor_;
    status = finish_status_;
  }
  if (reactor == nullptr) return;
  if (act == Act::kWrite) reactor->StartWrite(&writing_);
  if (act == Act::kFinish) reactor->Finish(status);
}

// ---- Subscribe ----

class SubscribeReactor;

class SubscribeState : public SubscriberStream {
 public:
  SubscribeState(SubscribeReactor* reactor, int64_t max_pending_bytes)
      : reactor_(reactor), max_pending_bytes_(max_pending_bytes) {}

  // Node or relay side.
  bool Started(const SubscriptionResponse& response,
               std::shared_ptr<SubscriptionUpstream> upstream) override;
  bool Deliver(std::vector<MsgProto>* msgs) override;
  int64_t FreeBytes() override;
  void End(const absl::Status& status) override;

  // Reactor side.
  void Acks(std::vector<uint64_t> seqs);
  // The client half-closed: a started subscription is closed by the node,
  // which then ends the stream; otherwise the stream ends now.
  void HalfClosed();
  // The client went away (half-close, cancel, failed write): tells the node
  // once, and ends the stream with `status`.
  void ClientGone(const absl::Status& status);
  void WriteDone(bool ok);
  void ReactorGone();

 private:
  enum class Act { kNone, kWrite, kFinish };
  Act NextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Do(Act act);

  absl::Mutex mu_;
  SubscribeReactor* reactor_ ABSL_GUARDED_BY(mu_);
  const int64_t max_pending_bytes_;
  Delivery pending_ ABSL_GUARDED_BY(mu_);
  int64_t pending_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  Delivery writing_;  // owned by the outstanding write
  int64_t writing_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool write_outstanding_ ABSL_GUARDED_BY(mu_) = false;
  // Set once started; receives acks and the client's end.
  std::shared_ptr<SubscriptionUpstream> upstream_ ABSL_GUARDED_BY(mu_);
  // The upstream was told the client half-closed or left (told once).
  bool upstream_told_ ABSL_GUARDED_BY(mu_) = false;
  // The client cancelled or its stream broke: nothing reaches it any more.
  // (A half-closed client still reads until the server ends the stream.)
  bool client_gone_ ABSL_GUARDED_BY(mu_) = false;
  // End requested: flush what is pending (unless broken), then Finish.
  bool ending_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status finish_status_ ABSL_GUARDED_BY(mu_);
};

class SubscribeReactor
    : public grpc::ServerBidiReactor<SubscribeFrame, Delivery> {
 public:
  // As PublishReactor; the subscription also counts against its client
  // id's limit from its request until OnDone.
  SubscribeReactor(Node* node, const ServerConfig* config, int hops,
                   const Principal* principal, StreamLimits* limits)
      : node_(node),
        config_(config),
        hops_(hops),
        principal_(principal),
        limits_(limits),
        state_(std::make_shared<SubscribeState>(
            this, config->subscriptions().max_pending_bytes())) {
    StartRead(&frame_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // Half-close: the node closes the subscription and ends the stream
      // once that is committed (at once if nothing was started).
      state_->HalfClosed();
      return;
    }
    if (!have_request_) {
      if (!frame_.has_request()) {
        state_->End(absl::InvalidArgumentError(
            "the first frame of Subscribe must be the SubscriptionRequest"));
        return;
      }
      absl::Status status = ValidateSubscriptionRequest(
          frame_.request(), config_->subscriptions());
      if (status.ok()) {
        status = principal_->CheckSubscribe(frame_.request().subject());
      }
      if (status.ok()) {
        status = limits_->AcquireSubscription(frame_.request().client_id());
      }
      if (!status.ok()) {
        state_->End(status);
        return;
      }
      counted_client_id_ = frame_.request().client_id();
      have_request_ = true;
      node_->Subscribe(frame_.request(), hops_, state_);
    } else if (frame_.has_acks()) {
      if (frame_.acks().acks_size() > kAcksPerFrameMax) {
        state_->End(absl::InvalidArgumentError(
            absl::StrCat("more than ", kAcksPerFrameMax, " acks in a frame")));
        return;
      }
      std::vector<uint64_t> seqs;
      seqs.reserve(frame_.acks().acks_size());
      for (const Ack& ack : frame_.acks().acks())
        seqs.push_back(ack.sequence());
      if (!seqs.empty()) state_->Acks(std::move(seqs));
    } else {
      state_->End(absl::InvalidArgumentError(
          "after the first frame, Subscribe frames must carry acks"));
      return;
    }
    frame_.Clear();
    StartRead(&frame_);
  }

  void OnWriteDone(bool ok) override { state_->WriteDone(ok); }
  void OnCancel() override {
    state_->ClientGone(absl::CancelledError("cancelled"));
  }
  void OnDone() override {
    state_->ReactorGone();
    if (have_request_) limits_->ReleaseSubscription(counted_client_id_);
    limits_->ReleaseStream();
    delete this;
  }

 private:
  Node* node_;
  const ServerConfig* config_;
  const int hops_;
  const Principal* const principal_;
  StreamLimits* const limits_;
  std::shared_ptr<SubscribeState> state_;
  SubscribeFrame frame_;
  bool have_request_ = false;
  std::string counted_client_id_;
};

bool SubscribeState::Started(const SubscriptionResponse& response,
                             std::shared_ptr<SubscriptionUpstream> upstream) {
  Act act;
  {
    absl::MutexLock lock(&mu_);
    if (ending_ || finished_ || client_gone_) return false;
    upstream_ = std::move(upstream);
    *pending_.mutable_response() = response;
    act = NextLocked();
  }
  Do(act);
  return true;
}

bool SubscribeState::Deliver(std::vector<MsgProto>* msgs) {
  Act act;
  bool accepted;
  {
    absl::MutexLock lock(&mu_);
    if (ending_ || finished_ || client_gone_) return false;
    int64_t bytes = 0;
    for (const MsgProto& msg : *msgs) {
      bytes += static_cast<int64_t>(msg.ByteSizeLong());
    }
    accepted = pending_bytes_ + writing_bytes_ + bytes <= max_pending_bytes_;
    if (accepted) {
      for (MsgProto& msg : *msgs) *pending_.add_msgs() = std::move(msg);
      pending_bytes_ += bytes;
    } else {
      ending_ = true;
      broken_ = true;  // drop the backlog, end now
      finish_status_ = ToGrpcStatus(absl::ResourceExhaustedError(absl::StrCat(
          "slow consumer: more than ", max_pending_bytes_,
          " bytes of messages not read by the client; a durable keeps its "
          "position")));
    }
    act = NextLocked();
  }
  Do(act);
  return accepted;
}

int64_t SubscribeState::FreeBytes() {
  absl::MutexLock lock(&mu_);
  if (ending_ || finished_ || client_gone_) return 0;
  return std::max<int64_t>(
      0, max_pending_bytes_ - pending_bytes_ - writing_bytes_);
}

void SubscribeState::End(const absl::Status& status) {
  Act act;
  {
    absl::MutexLock lock(&mu_);
    if (ending_ || finished_) return;
    ending_ = true;
    finish_status_ = ToGrpcStatus(status);
    act = NextLocked();
  }
  Do(act);
}

void SubscribeState::Acks(std::vector<uint64_t> seqs) {
  std::shared_ptr<SubscriptionUpstream> upstream;
  {
    absl::MutexLock lock(&mu_);
    if (upstream_told_) return;
    upstream = upstream_;
  }
  if (upstream != nullptr) upstream->Acks(std::move(seqs));
}

void SubscribeState::HalfClosed() {
  std::shared_ptr<SubscriptionUpstream> upstream;
  {
    absl::MutexLock lock(&mu_);
    if (upstream_ != nullptr && !upstream_told_ && !ending_) {
      upstream_told_ = true;
      upstream = upstream_;
    }
  }
  if (upstream != nullptr) {
    // Every ack frame was handed over before this (reads are serial); the
    // upstream closes after them and then ends the stream.
    upstream->HalfClosed();
  } else {
    End(absl::OkStatus());
  }
}

void SubscribeState::ClientGone(const absl::Status& status) {
  Act act;
  std::shared_ptr<SubscriptionUpstream> upstream;
  {
    absl::MutexLock lock(&mu_);
    client_gone_ = true;
    if (!upstream_told_) {
      upstream_told_ = true;
      upstream = upstream_;
    }
    if (!ending_) {
      ending_ = true;
      finish_status_ = ToGrpcStatus(status);
    }
    broken_ = true;  // nobody reads what we would still write
    act = NextLocked();
  }
  if (upstream != nullptr) upstream->Gone();
  Do(act);
}

void SubscribeState::WriteDone(bool ok) {
  if (!ok) ClientGone(absl::UnavailableError("write to the client failed"));
  Act act;
  {
    absl::MutexLock lock(&mu_);
    write_outstanding_ = false;
    writing_bytes_ = 0;
    act = NextLocked();
  }
  Do(act);
}

void SubscribeState::ReactorGone() {
  absl::MutexLock lock(&mu_);
  reactor_ = nullptr;
  finished_ = true;
}

SubscribeState::Act SubscribeState::NextLocked() {
  if (finished_ || write_outstanding_ || reactor_ == nullptr) return Act::kNone;
  const bool has_frame = pending_.has_response() || pending_.msgs_size() > 0;
  if (!broken_ && has_frame) {
    write_outstanding_ = true;  // keeps the reactor alive until WriteDone
    writing_.Clear();
    writing_.Swap(&pending_);
    writing_bytes_ = pending_bytes_;
    pending_bytes_ = 0;
    return Act::kWrite;
  }
  if (ending_) {
    finished_ = true;
    return Act::kFinish;
  }
  return Act::kNone;
}

void SubscribeState::Do(Act act) {
  // Only the thread that claimed the write or the finish acts, so the
  // reactor is alive (OnDone needs Finish and every write done first).
  SubscribeReactor* reactor;
  grpc::Status status;
  {
    absl::MutexLock lock(&mu_);
    reactor = reactor_;
    status = finish_status_;
  }
  if (reactor == nullptr) return;
  if (act == Act::kWrite) reactor->StartWrite(&writing_);
  if (act == Act::kFinish) reactor->Finish(status);
}

template <typename Response>
grpc::ServerUnaryReactor* Refuse(grpc::CallbackServerContext* context,
                                 const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// A stream refused before it started (authentication, stream limits).
template <typename Request, typename Response>
class RefusedStream : public grpc::ServerBidiReactor<Request, Response> {
 public:
  explicit RefusedStream(const absl::Status& status) {
    this->Finish(ToGrpcStatus(status));
  }
  void OnDone() override { delete this; }
};

}  // namespace

StreamingService::StreamingService(Node* node, const ServerConfig* config,
                                   const Authenticator* auth)
    : node_(node),
      config_(config),
      auth_(auth),
      limits_(config->clients().max_streams(),
              config->subscriptions().max_subscriptions_per_client()) {}

std::shared_ptr<UnaryCall> StreamingService::StartCall(
    grpc::ServerUnaryReactor* reactor) const {
  return UnaryCall::Start(reactor, config_->request_timeout_ms());
}

grpc::ServerUnaryReactor* StreamingService::Connect(
    grpc::CallbackServerContext* context, const ConnectRequest* request,
    ConnectResponse* response) {
  absl::StatusOr<const Principal*> principal = auth_->Authenticate(*context);
  if (!principal.ok())
    return Refuse<ConnectResponse>(context, principal.status());
  absl::Status status = ValidateClientId(request->client_id());
  if (status.ok()) status = ValidateConnId(request->conn_id());
  if (!status.ok()) return Refuse<ConnectResponse>(context, status);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::shared_ptr<UnaryCall> call = StartCall(reactor);
  node_->Connect(*request, IncomingHops(*context),
                 [call, response](absl::StatusOr<ConnectResponse> result) {
                   call->Answer(ToGrpcStatus(result.status()), [&] {
                     if (result.ok()) *response = *std::move(result);
                   });
                 });
  return reactor;
}

grpc::ServerUnaryReactor* StreamingService::Ping(
    grpc::CallbackServerContext* context, const PingRequest* request,
    PingResponse* response) {
  absl::StatusOr<const Principal*> principal = auth_->Authenticate(*context);
  if (!principal.ok()) return Refuse<PingResponse>(context, principal.status());
  absl::Status status = ValidateClientId(request->client_id());
  if (status.ok()) status = ValidateConnId(request->conn_id());
  if (!status.ok()) return Refuse<PingResponse>(context, status);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::shared_ptr<UnaryCall> call = StartCall(reactor);
  node_->Ping(*request, IncomingHops(*context), [call](absl::Status result) {
    call->Answer(ToGrpcStatus(result));
  });
  return reactor;
}

grpc::ServerUnaryReactor* StreamingService::Publish(
    grpc::CallbackServerContext* context, const PubMsg* request,
    PubAck* response) {
  absl::StatusOr<const Principal*> principal = auth_->Authenticate(*context);
  if (!principal.ok()) return Refuse<PubAck>(context, principal.status());
  absl::Status status = ValidatePubMsg(*request, config_->store());
  if (status.ok()) status = (*principal)->CheckPublish(request->subject());
  if (!status.ok()) return Refuse<PubAck>(context, status);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::shared_ptr<UnaryCall> call = StartCall(reactor);
  node_->Publish(
      {*request}, IncomingHops(*context),
      [call, response](size_t, const PubAck& ack) {
        if (!ack.error().empty()) {
          call->Answer(grpc::Status(
              static_cast<grpc::StatusCode>(ack.error_code()), ack.error()));
          return;
        }
        call->Answer(grpc::Status::OK, [&] { *response = ack; });
      },
      /*leader_hint=*/true);
  return reactor;
}

grpc::ServerUnaryReactor* StreamingService::PublishBatch(
    grpc::CallbackServerContext* context, const PubBatch* request,
    PubAckBatch* response) {
  absl::StatusOr<const Principal*> principal = auth_->Authenticate(*context);
  if (!principal.ok()) return Refuse<PubAckBatch>(context, principal.status());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (request->msgs_size() == 0) {
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  // One ack per message, in request order; invalid messages are answered
  // at once, the rest when committed. The acks are collected apart from
  // the response, which only the call's answer may write (a timed-out
  // call's response is gRPC's again).
  struct Collector {
    absl::Mutex mu;
    int remaining;
    std::vector<PubAck> acks;
  };
  auto collector = std::make_shared<Collector>();
  collector->remaining = request->msgs_size();
  collector->acks.resize(static_cast<size_t>(request->msgs_size()));
  std::shared_ptr<UnaryCall> call = StartCall(reactor);
  auto record = [call, response, collector](size_t index, const PubAck& ack) {
    bool last;
    {
      absl::MutexLock lock(&collector->mu);
      collector->acks[index] = ack;
      last = --collector->remaining == 0;
    }
    if (!last) return;
    call->Answer(grpc::Status::OK, [&] {
      absl::MutexLock lock(&collector->mu);
      for (PubAck& done : collector->acks) {
        *response->add_acks() = std::move(done);
      }
    });
  };
  std::vector<PubMsg> valid;
  std::vector<size_t> positions;
  for (int i = 0; i < request->msgs_size(); ++i) {
    const PubMsg& msg = request->msgs(i);
    absl::Status status = ValidatePubMsg(msg, config_->store());
    if (status.ok()) status = (*principal)->CheckPublish(msg.subject());
    if (!status.ok()) {
      PubAck ack;
      ack.set_guid(msg.guid());
      ack.set_error(std::string(status.message()));
      ack.set_error_code(static_cast<int>(status.code()));
      record(static_cast<size_t>(i), ack);
      continue;
    }
    valid.push_back(msg);
    positions.push_back(static_cast<size_t>(i));
  }
  if (!valid.empty()) {
    node_->Publish(std::move(valid), IncomingHops(*context),
                   [record, positions](size_t index, const PubAck& ack) {
                     record(positions[index], ack);
                   });
  }
  return reactor;
}

grpc::ServerBidiReactor<PubBatch, PubAckBatch>* StreamingService::PublishStream(
    grpc::CallbackServerContext* context) {
  absl::StatusOr<const Principal*> principal = auth_->Authenticate(*context);
  absl::Status status =
      principal.ok() ? limits_.AcquireStream() : principal.status();
  if (!status.ok()) return new RefusedStream<PubBatch, PubAckBatch>(status);
  return new PublishReactor(node_, config_, IncomingHops(*context), *principal,
                            &limits_);
}

grpc::ServerBidiReactor<SubscribeFrame, Delivery>* StreamingService::Subscribe(
    grpc::CallbackServerContext* context) {
  absl::StatusOr<const Principal*> principal = auth_->Authenticate(*context);
  absl::Status status =
      principal.ok() ? limits_.AcquireStream() : principal.status();
  if (!status.ok()) return new RefusedStream<SubscribeFrame, Delivery>(status);
  return new SubscribeReactor(node_, config_, IncomingHops(*context),
                              *principal, &limits_);
}

grpc::ServerUnaryReactor* StreamingService::Unsubscribe(
    grpc::CallbackServerContext* context, const UnsubscribeRequest* request,
    UnsubscribeResponse* response) {
  absl::StatusOr<const Principal*> principal = auth_->Authenticate(*context);
  if (!principal.ok()) {
    return Refuse<UnsubscribeResponse>(context, principal.status());
  }
  absl::Status status = ValidateUnsubscribeRequest(*request);
  // Unsubscribing deletes a durable's state: it takes the permission to
  // subscribe to the channel.
  if (status.ok()) status = (*principal)->CheckSubscribe(request->subject());
  if (!status.ok()) return Refuse<UnsubscribeResponse>(context, status);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::shared_ptr<UnaryCall> call = StartCall(reactor);
  node_->Unsubscribe(
      *request, IncomingHops(*context),
      [call](absl::Status result) { call->Answer(ToGrpcStatus(result)); });
  return reactor;
}

grpc::ServerUnaryReactor* StreamingService::Close(
    grpc::CallbackServerContext* context, const CloseRequest* request,
    CloseResponse* response) {
  absl::StatusOr<const Principal*> principal = auth_->Authenticate(*context);
  if (!principal.ok())
    return Refuse<CloseResponse>(context, principal.status());
  absl::Status status = ValidateClientId(request->client_id());
  if (status.ok()) status = ValidateConnId(request->conn_id());
  if (!status.ok()) return Refuse<CloseResponse>(context, status);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::shared_ptr<UnaryCall> call = StartCall(reactor);
  node_->Close(*request, IncomingHops(*context), [call](absl::Status result) {
    call->Answer(ToGrpcStatus(result));
  });
  return reactor;
}

}  // namespace spate::server
