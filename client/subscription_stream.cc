#include "client/subscription_stream.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "client/grpc_status.h"
#include "client/thread_name.h"

namespace spate::client {
namespace {

absl::Duration ResubscribeDelay(int attempt) {
  absl::Duration delay = SubscriptionStream::kResubscribeDelayMin;
  for (int i = 1;
       i < attempt && delay < SubscriptionStream::kResubscribeDelayMax; ++i) {
    delay *= 2;
  }
  return std::min(delay, SubscriptionStream::kResubscribeDelayMax);
}

}  // namespace

absl::StatusOr<std::shared_ptr<SubscriptionStream>> SubscriptionStream::Open(
    std::shared_ptr<SessionTracker> tracker, std::string subject,
    SubscribeOptions options, MessageHandler handler) {
  RETURN_IF_ERROR(options.Validate());
  if (subject.empty()) {
    return absl::InvalidArgumentError("subject must not be empty");
  }
  if (!handler) return absl::InvalidArgumentError("no message handler");
  std::shared_ptr<SubscriptionStream> stream(
      new SubscriptionStream(std::move(tracker), std::move(subject),
                             std::move(options), std::move(handler)));
  RETURN_IF_ERROR(stream->Start());
  return stream;
}

SubscriptionStream::SubscriptionStream(std::shared_ptr<SessionTracker> tracker,
                                       std::string subject,
                                       SubscribeOptions options,
                                       MessageHandler handler)
    : tracker_(std::move(tracker)),
      subject_(std::move(subject)),
      options_(std::move(options)),
      handler_(std::move(handler)),
      connect_timeout_(tracker_->session()->options.connect_timeout),
      reconnect_wait_(tracker_->session()->options.reconnect_wait),
      queue_max_(std::max<size_t>(2 * options_.max_in_flight, 64)) {}

SubscriptionStream::~SubscriptionStream() {
  bool open;
  {
    absl::MutexLock lock(&mu_);
    open = state_ == State::kOpen;
  }
  // Nobody is left to hear how the close went.
  if (open) End(EndMode::kClose).IgnoreError();
  for (std::thread* thread : {&reader_, &dispatcher_, &acker_}) {
    if (!thread->joinable()) continue;
    CHECK(thread->get_id() != std::this_thread::get_id())
        << "a subscription must not be destroyed from its own handlers";
    thread->join();
  }
}

bool SubscriptionStream::ended() const {
  absl::MutexLock lock(&mu_);
  return state_ == State::kEnded;
}

std::string SubscriptionStream::id() const {
  absl::MutexLock lock(&mu_);
  return response_.subscription_id();
}

uint64_t SubscriptionStream::start_sequence() const {
  absl::MutexLock lock(&mu_);
  return first_start_sequence_;
}

int64_t SubscriptionStream::resubscribes() const {
  absl::MutexLock lock(&mu_);
  return resubscribes_;
}

SubscriptionRequest SubscriptionStream::BuildRequest(const Session& session,
                                                     bool resume) const {
  SubscriptionRequest request;
  request.set_client_id(session.client_id());
  request.set_conn_id(session.conn_id);
  request.set_subject(subject_);
  request.set_q_group(options_.q_group);
  request.set_durable_name(options_.durable_name);
  request.set_max_in_flight(options_.max_in_flight);
  request.set_ack_wait_in_secs(
      static_cast<int32_t>(absl::ToInt64Seconds(options_.ack_wait)));
  if (resume && options_.durable_name.empty()) {
    // Without a durable the server forgot where this one was; continuing
    // after the last message handed out leaves no gap.
    request.set_start_position(::spate::SEQUENCE_START);
    request.set_start_sequence(resume_from_);
    return request;
  }
  const StartPosition& start = options_.start;
  switch (start.kind()) {
    case StartPosition::Kind::kNewOnly:
      request.set_start_position(::spate::NEW_ONLY);
      break;
    case StartPosition::Kind::kLastReceived:
      request.set_start_position(::spate::LAST_RECEIVED);
      break;
    case StartPosition::Kind::kSequence:
      request.set_start_position(::spate::SEQUENCE_START);
      request.set_start_sequence(start.sequence());
      break;
    case StartPosition::Kind::kTimeDelta:
      request.set_start_position(::spate::TIME_DELTA_START);
      request.set_start_time_delta_ns(
          absl::ToInt64Nanoseconds(start.time_delta()));
      break;
    case StartPosition::Kind::kFirst:
      request.set_start_position(::spate::FIRST);
      break;
  }
  return request;
}

void SubscriptionStream::OpenCall(std::shared_ptr<const Session> session,
                                  bool resume) {
  auto call = std::make_unique<Call>();
  call->session = std::move(session);
  call->session->Authorize(&call->context);
  call->rw = call->session->stub->Subscribe(&call->context);
  Call* const opened = call.get();
  SubscribeFrame frame;
  {
    absl::MutexLock lock(&mu_);
    *frame.mutable_request() = BuildRequest(*opened->session, resume);
    // The previous call is finished and no ack write is in flight on it.
    call_.swap(call);
    call_open_ = false;
    call_ended_ = false;
    call_writes_done_ = false;
    protocol_error_ = absl::OkStatus();
    if (requested_end_) opened->context.TryCancel();  // Ended meanwhile.
  }
  // A failed write shows as the call's end when the reader reads.
  opened->rw->Write(frame);
}

absl::Status SubscriptionStream::Start() {
  RETURN_IF_ERROR(tracker_->CheckUsable());
  OpenCall(tracker_->session(), /*resume=*/false);
  reader_ = std::thread([this] { ReadLoop(); });
  const absl::Time deadline = absl::Now() + connect_timeout_;
  bool opened = false;
  bool timed_out = false;
  {
    absl::MutexLock lock(&mu_);
    auto answered = [this]() {
      return call_open_ || call_ended_ || !protocol_error_.ok();
    };
    mu_.AwaitWithDeadline(absl::Condition(&answered), deadline);
    opened = call_open_;
    if (opened) {
      state_ = State::kOpen;
    } else {
      requested_end_ = true;
      stop_dispatch_ = true;
      stop_acks_ = true;
      timed_out = !call_ended_ && protocol_error_.ok();
      // A cancel before the reader's Finish() would replace the server's
      // status with CANCELLED, so only a call still running is cancelled.
      if (timed_out) call_->context.TryCancel();
    }
  }
  if (opened) {
    dispatcher_ = std::thread([this] { DispatchLoop(); });
    acker_ = std::thread([this] { AckLoop(); });
    return absl::OkStatus();
  }
  reader_.join();
  absl::MutexLock lock(&mu_);
  state_ = State::kEnded;
  const std::string& server = call_->session->server;
  if (!protocol_error_.ok()) return protocol_error_;
  if (timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat("subscribe to ", subject_, ": no response from ", server,
                     " within ", absl::FormatDuration(connect_timeout_)));
  }
  if (call_status_.ok()) {
    return absl::UnavailableError(
        absl::StrCat("subscribe to ", subject_, ": ", server,
                     " ended the stream without a response"));
  }
  return call_status_;
}

void SubscriptionStream::ReadLoop() {
  NameThisThread("spate-sub-read");
  while (Resubscribe(ReadCall())) {
  }
  absl::MutexLock lock(&mu_);
  reader_exited_ = true;
}

absl::Status SubscriptionStream::ReadCall() {
  Call* call;
  {
    absl::MutexLock lock(&mu_);
    call = call_.get();
  }
  Delivery delivery;
  bool first = true;
  while (call->rw->Read(&delivery)) {
    absl::MutexLock lock(&mu_);
    if (first) {
      first = false;
      if (!delivery.has_response()) {
        protocol_error_ = absl::InternalError(
            absl::StrCat("subscribe to ", subject_,
                         ": the server's first frame has no response"));
        call->context.TryCancel();
        continue;
      }
      response_ = delivery.response();
      if (state_ == State::kOpening) {
        first_start_sequence_ = response_.start_sequence();
      } else {
        ++resubscribes_;
        LOG(INFO) << "resubscribed subject=" << subject_
                  << " server=" << call->session->server
                  << " start_sequence=" << response_.start_sequence();
      }
      resume_from_ = std::max(resume_from_, response_.start_sequence());
      call_open_ = true;
    }
    if (!call_open_) continue;
    for (MsgProto& msg : *delivery.mutable_msgs()) {
      auto has_room = [this]() {
        return queue_.size() < queue_max_ || stop_dispatch_;
      };
      mu_.Await(absl::Condition(&has_room));
      if (stop_dispatch_) break;  // Unacked: the server redelivers it.
      queue_.push_back(std::move(msg));
    }
  }
  {
    absl::MutexLock lock(&mu_);
    call_ended_ = true;
    // Finish() must not race a Write on the same call.
    auto idle = [this]() { return !ack_writing_; };
    mu_.Await(absl::Condition(&idle));
  }
  const absl::Status status = FromGrpcStatus(call->rw->Finish());
  absl::MutexLock lock(&mu_);
  call_status_ = status;
  return status;
}

bool SubscriptionStream::Resubscribe(absl::Status status) {
  std::shared_ptr<const Session> call_session;
  bool had_response;
  {
    absl::MutexLock lock(&mu_);
    // Start decides the fate of the first call.
    auto decided = [this]() {
      return state_ != State::kOpening || requested_end_;
    };
    mu_.Await(absl::Condition(&decided));
    if (requested_end_ || lost_) return false;
    // Read but not handed out: they come again on the next call.
    queue_.clear();
    call_session = call_->session;
    had_response = call_open_;
    if (had_response) attempts_ = 0;
  }
  if (reconnect_wait_ <= absl::ZeroDuration()) {
    RunLostHandler(status);
    return false;
  }
  if (had_response) {
    LOG(WARNING) << "subscription stream ended subject=" << subject_
                 << " server=" << call_session->server << " status=" << status
                 << "; checking the connection to resubscribe";
  }
  const uint64_t ticket = tracker_->RequestCheck();
  absl::StatusOr<std::shared_ptr<const Session>> verdict =
      tracker_->AwaitCheck(ticket, absl::InfiniteFuture(), &abandon_);
  // Lost or closed: the connection reports it; ended: nobody asks.
  if (!verdict.ok()) return false;
  const bool moved = *verdict != call_session;
  bool retry = absl::IsUnavailable(status) || moved;
  if (!had_response) {
    // Refused resubscribes: the server may not have closed the old member
    // yet, or the channel has no leader yet.
    retry = retry || absl::IsAlreadyExists(status) ||
            absl::IsDeadlineExceeded(status);
  }
  if (!retry) {
    RunLostHandler(status);
    return false;
  }
  if (!had_response) {
    const absl::Time now = absl::Now();
    if (attempts_ == 0) give_up_ = now + reconnect_wait_;
    if (now >= give_up_) {
      RunLostHandler(absl::Status(
          status.code(),
          absl::StrCat("resubscribing to ", subject_, " failed for ",
                       absl::FormatDuration(reconnect_wait_),
                       ", the last attempt with: ", status.message())));
      return false;
    }
    if (!BackOff(ResubscribeDelay(++attempts_))) return false;
  }
  // The connection may have moved on during the backoff.
  OpenCall(tracker_->session(), /*resume=*/true);
  return true;
}

bool SubscriptionStream::BackOff(absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  auto ended = [this]() { return requested_end_; };
  return !mu_.AwaitWithTimeout(absl::Condition(&ended), delay);
}

void SubscriptionStream::RunLostHandler(const absl::Status& reason) {
  {
    absl::MutexLock lock(&mu_);
    lost_ = true;
    // Messages that can no longer be acked are not handed out.
    stop_dispatch_ = true;
    stop_acks_ = true;
  }
  LOG(WARNING) << "subscription lost subject=" << subject_
               << " reason=" << reason;
  if (options_.lost_handler) options_.lost_handler(reason);
}

void SubscriptionStream::DispatchLoop() {
  NameThisThread("spate-sub-msgs");
  while (true) {
    MsgProto proto;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() { return !queue_.empty() || stop_dispatch_; };
      mu_.Await(absl::Condition(&ready));
      if (stop_dispatch_) return;
      proto = std::move(queue_.front());
      queue_.pop_front();
      resume_from_ = std::max(resume_from_, proto.sequence() + 1);
    }
    const uint64_t sequence = proto.sequence();
    handler_(Message(std::move(proto), weak_from_this()));
    if (!options_.manual_acks) EnqueueAck(sequence);
  }
}

bool SubscriptionStream::WritableLocked() const {
  return call_ != nullptr && call_open_ && !call_ended_ && !call_writes_done_;
}

void SubscriptionStream::AckLoop() {
  NameThisThread("spate-sub-acks");
  while (true) {
    SubscribeFrame frame;
    bool writes_done = false;
    Call* call;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() {
        return stop_acks_ ||
               (WritableLocked() && (!acks_.empty() || half_close_));
      };
      mu_.Await(absl::Condition(&ready));
      if (stop_acks_) break;
      call = call_.get();
      if (!acks_.empty()) {
        const size_t count = std::min<size_t>(acks_.size(), kAcksPerFrameMax);
        AckBatch* batch = frame.mutable_acks();
        for (size_t i = 0; i < count; ++i) {
          batch->add_acks()->set_sequence(acks_[i]);
        }
        acks_.erase(acks_.begin(), acks_.begin() + count);
      } else {
        // Closing: every queued ack went out ahead of the half-close.
        writes_done = true;
        call_writes_done_ = true;
      }
      ack_writing_ = true;
    }
    const bool written =
        writes_done ? call->rw->WritesDone() : call->rw->Write(frame);
    absl::MutexLock lock(&mu_);
    ack_writing_ = false;
    // The call ended (the reader sees it); those messages get redelivered.
    if (!written) call_writes_done_ = true;
  }
}

void SubscriptionStream::EnqueueAck(uint64_t sequence) {
  absl::MutexLock lock(&mu_);
  if (stop_acks_ || lost_) return;
  acks_.push_back(sequence);
}

absl::Status SubscriptionStream::Ack(uint64_t sequence) {
  if (!options_.manual_acks) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the subscription to ", subject_,
        " acks automatically; set SubscribeOptions::manual_acks to ack"));
  }
  absl::MutexLock lock(&mu_);
  if (stop_acks_ || lost_) {
    return absl::FailedPreconditionError(
        absl::StrCat("the subscription to ", subject_,
                     " has ended; ack of sequence ", sequence, " not sent"));
  }
  acks_.push_back(sequence);
  return absl::OkStatus();
}

absl::Status SubscriptionStream::End(EndMode mode) {
  const std::thread::id self = std::this_thread::get_id();
  const bool own_thread = self == dispatcher_.get_id() ||
                          self == reader_.get_id() || self == acker_.get_id();
  bool call_was_open;
  {
    absl::MutexLock lock(&mu_);
    if (state_ != State::kOpen) {
      // Another End runs or ran. Its caller may be joining this very
      // thread, so a handler must not wait for it.
      if (own_thread) return absl::OkStatus();
      auto ended = [this]() { return state_ == State::kEnded; };
      mu_.Await(absl::Condition(&ended));
      return end_result_;
    }
    state_ = State::kEnding;
    stop_dispatch_ = true;
    // The server may end the call as soon as it has the Unsubscribe RPC;
    // that end was asked for, not a loss.
    requested_end_ = true;
    // Lost, or between calls: the server closed the member already.
    call_was_open = call_open_ && !call_ended_;
  }
  abandon_.store(true);
  tracker_->WakeWaiters();
  JoinUnlessSelf(&dispatcher_);
  absl::Status result;
  if (mode == EndMode::kUnsubscribe) {
    // The subscription and its pending set go: queued acks do not matter.
    result = UnsubscribeRpc();
    EndCall();
  } else {
    // The half-close follows the queued acks on the same call, so the
    // server applies them before it closes the subscription. (An
    // Unsubscribe RPC with close_only travels on another HTTP/2 stream and
    // can overtake them: the last acked messages would be redelivered.)
    const bool confirmed = EndCall();
    absl::MutexLock lock(&mu_);
    if (call_was_open) {
      result =
          confirmed
              ? call_status_
              : absl::DeadlineExceededError(absl::StrCat(
                    "closing the subscription to ", subject_,
                    ": the server did not end the stream within ",
                    absl::FormatDuration(connect_timeout_), "; cancelled it"));
    }
  }
  absl::MutexLock lock(&mu_);
  end_result_ = result;
  state_ = State::kEnded;
  return result;
}

void SubscriptionStream::Interrupt() {
  absl::MutexLock lock(&mu_);
  if (requested_end_ || lost_ || call_ == nullptr) return;
  call_->context.TryCancel();
}

void SubscriptionStream::Cancel() {
  {
    absl::MutexLock lock(&mu_);
    requested_end_ = true;
    stop_dispatch_ = true;
    stop_acks_ = true;
    if (call_ != nullptr) call_->context.TryCancel();
  }
  abandon_.store(true);
  tracker_->WakeWaiters();
}

bool SubscriptionStream::EndCall() {
  const absl::Time deadline = absl::Now() + connect_timeout_;
  bool ended;
  {
    absl::MutexLock lock(&mu_);
    requested_end_ = true;
    stop_dispatch_ = true;
    // The ack writer writes what is queued and half-closes an open call;
    // then the server ends it and the reader exits. A resubscribe still
    // waiting for its response has nothing to close: it is cancelled.
    half_close_ = true;
    if (call_ != nullptr && !call_open_ && !call_ended_) {
      call_->context.TryCancel();
    }
    // The lost handler (on the reader, after its last call) may end the
    // subscription: the reader is as good as gone then.
    const bool on_reader = std::this_thread::get_id() == reader_.get_id();
    auto exited = [this, on_reader]() { return reader_exited_ || on_reader; };
    ended = mu_.AwaitWithDeadline(absl::Condition(&exited), deadline);
    if (!ended) {
      // A server that does not end the call in time gets it cancelled;
      // the reader then returns at once.
      call_->context.TryCancel();
      mu_.Await(absl::Condition(&exited));
    }
    stop_acks_ = true;
  }
  JoinUnlessSelf(&acker_);
  JoinUnlessSelf(&reader_);
  JoinUnlessSelf(&dispatcher_);
  return ended;
}

absl::Status SubscriptionStream::UnsubscribeRpc() {
  const std::shared_ptr<const Session> session = tracker_->session();
  UnsubscribeRequest request;
  request.set_client_id(session->client_id());
  request.set_conn_id(session->conn_id);
  request.set_subject(subject_);
  request.set_subscription_id(id());
  request.set_durable_name(options_.durable_name);
  // close_only is not used: Close() ends the stream instead (see End).
  request.set_close_only(false);
  UnsubscribeResponse response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + connect_timeout_));
  session->Authorize(&context);
  return FromGrpcStatus(
      session->stub->Unsubscribe(&context, request, &response));
}

void SubscriptionStream::JoinUnlessSelf(std::thread* thread) {
  if (thread->joinable() && thread->get_id() != std::this_thread::get_id()) {
    thread->join();
  }
}

}  // namespace spate::client
