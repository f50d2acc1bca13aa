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

absl::StatusOr<std::shared_ptr<SubscriptionStream>> SubscriptionStream::Open(
    std::shared_ptr<const Session> session, std::string subject,
    SubscribeOptions options, MessageHandler handler) {
  RETURN_IF_ERROR(options.Validate());
  if (subject.empty()) {
    return absl::InvalidArgumentError("subject must not be empty");
  }
  if (!handler) return absl::InvalidArgumentError("no message handler");
  std::shared_ptr<SubscriptionStream> stream(
      new SubscriptionStream(std::move(session), std::move(subject),
                             std::move(options), std::move(handler)));
  RETURN_IF_ERROR(stream->Start());
  return stream;
}

SubscriptionStream::SubscriptionStream(std::shared_ptr<const Session> session,
                                       std::string subject,
                                       SubscribeOptions options,
                                       MessageHandler handler)
    : session_(std::move(session)),
      subject_(std::move(subject)),
      options_(std::move(options)),
      handler_(std::move(handler)),
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

SubscriptionRequest SubscriptionStream::BuildRequest() const {
  SubscriptionRequest request;
  request.set_client_id(session_->client_id());
  request.set_conn_id(session_->conn_id);
  request.set_subject(subject_);
  request.set_q_group(options_.q_group);
  request.set_durable_name(options_.durable_name);
  request.set_max_in_flight(options_.max_in_flight);
  request.set_ack_wait_in_secs(
      static_cast<int32_t>(absl::ToInt64Seconds(options_.ack_wait)));
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

absl::Status SubscriptionStream::Start() {
  rw_ = session_->stub->Subscribe(&context_);
  SubscribeFrame frame;
  *frame.mutable_request() = BuildRequest();
  if (!rw_->Write(frame)) {
    // The call failed before the request went out; Finish says why.
    const absl::Status status = FromGrpcStatus(rw_->Finish());
    absl::MutexLock lock(&mu_);
    state_ = State::kEnded;
    read_done_ = true;
    return status.ok() ? absl::UnavailableError(absl::StrCat(
                             "subscribe to ", subject_, ": stream to ",
                             session_->server, " closed"))
                       : status;
  }
  reader_ = std::thread([this] { ReadLoop(); });
  const absl::Time deadline = absl::Now() + session_->options.connect_timeout;
  bool opened = false;
  bool timed_out = false;
  {
    absl::MutexLock lock(&mu_);
    auto answered = [this]() {
      return got_response_ || read_done_ || !protocol_error_.ok();
    };
    mu_.AwaitWithDeadline(absl::Condition(&answered), deadline);
    opened = got_response_;
    if (opened) {
      state_ = State::kOpen;
      // No ack writer for a stream that already ended (the reader may be
      // in Finish()).
      acker_exited_ = read_done_;
    } else {
      requested_end_ = true;
      stop_dispatch_ = true;
      timed_out = !read_done_ && protocol_error_.ok();
    }
  }
  if (opened) {
    dispatcher_ = std::thread([this] { DispatchLoop(); });
    absl::MutexLock lock(&mu_);
    if (!acker_exited_) acker_ = std::thread([this] { AckLoop(); });
    return absl::OkStatus();
  }
  // A cancel before the reader's Finish() would replace the server's status
  // with CANCELLED, so only a stream still running gets cancelled.
  if (timed_out) context_.TryCancel();
  reader_.join();
  absl::MutexLock lock(&mu_);
  state_ = State::kEnded;
  if (!protocol_error_.ok()) return protocol_error_;
  if (timed_out) {
    return absl::DeadlineExceededError(absl::StrCat(
        "subscribe to ", subject_, ": no response from ", session_->server,
        " within ", absl::FormatDuration(session_->options.connect_timeout)));
  }
  if (stream_status_.ok()) {
    return absl::UnavailableError(
        absl::StrCat("subscribe to ", subject_,
                     ": the server ended the stream without a response"));
  }
  return stream_status_;
}

void SubscriptionStream::ReadLoop() {
  NameThisThread("spate-sub-read");
  Delivery delivery;
  bool first = true;
  while (rw_->Read(&delivery)) {
    absl::MutexLock lock(&mu_);
    if (first) {
      first = false;
      if (!delivery.has_response()) {
        protocol_error_ = absl::InternalError(
            absl::StrCat("subscribe to ", subject_,
                         ": the server's first frame has no response"));
        context_.TryCancel();
        continue;
      }
      response_ = delivery.response();
      got_response_ = true;
    }
    if (!got_response_) continue;
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
    read_done_ = true;
    stop_acks_ = true;
    // Finish() must not race a Write on the same call.
    mu_.Await(absl::Condition(&acker_exited_));
  }
  const absl::Status end = FromGrpcStatus(rw_->Finish());
  absl::Status reason;
  bool lost;
  {
    absl::MutexLock lock(&mu_);
    stream_status_ = end;
    lost = got_response_ && !requested_end_;
    // Messages that can no longer be acked are not handed out.
    if (lost) stop_dispatch_ = true;
    reason = end.ok() ? absl::UnavailableError(absl::StrCat(
                            "the server ended the subscription to ", subject_))
                      : end;
  }
  if (lost) {
    LOG(WARNING) << "subscription lost subject=" << subject_
                 << " reason=" << reason;
    if (options_.lost_handler) options_.lost_handler(reason);
  }
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
    }
    const uint64_t sequence = proto.sequence();
    handler_(Message(std::move(proto), weak_from_this()));
    if (!options_.manual_acks) EnqueueAck(sequence);
  }
}

void SubscriptionStream::AckLoop() {
  NameThisThread("spate-sub-acks");
  bool half_close = false;
  while (true) {
    SubscribeFrame frame;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() { return !acks_.empty() || stop_acks_; };
      mu_.Await(absl::Condition(&ready));
      if (acks_.empty()) {
        half_close = half_close_ && !read_done_;
        break;
      }
      const size_t count = std::min<size_t>(acks_.size(), kAcksPerFrameMax);
      AckBatch* batch = frame.mutable_acks();
      for (size_t i = 0; i < count; ++i) {
        batch->add_acks()->set_sequence(acks_[i]);
      }
      acks_.erase(acks_.begin(), acks_.begin() + count);
      ack_writing_ = true;
    }
    const bool written = rw_->Write(frame);
    absl::MutexLock lock(&mu_);
    ack_writing_ = false;
    if (!written) {  // The stream ended; those messages get redelivered.
      acks_.clear();
      stop_acks_ = true;
    }
  }
  if (half_close) rw_->WritesDone();
  absl::MutexLock lock(&mu_);
  acker_exited_ = true;
}

void SubscriptionStream::EnqueueAck(uint64_t sequence) {
  absl::MutexLock lock(&mu_);
  if (stop_acks_ || read_done_) return;
  acks_.push_back(sequence);
}

absl::Status SubscriptionStream::Ack(uint64_t sequence) {
  if (!options_.manual_acks) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the subscription to ", subject_,
        " acks automatically; set SubscribeOptions::manual_acks to ack"));
  }
  absl::MutexLock lock(&mu_);
  if (stop_acks_ || read_done_) {
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
  bool already_ended;
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
    // The server may end the stream as soon as it has the Unsubscribe RPC;
    // that end was asked for, not a loss.
    requested_end_ = true;
    // Lost or cancelled before: the server closed it already.
    already_ended = read_done_;
  }
  JoinUnlessSelf(&dispatcher_);
  absl::Status result;
  if (mode == EndMode::kUnsubscribe) {
    // The subscription and its pending set go: queued acks do not matter.
    result = UnsubscribeRpc();
    EndStream();
  } else {
    // The half-close follows the queued acks on the same stream, so the
    // server applies them before it closes the subscription. (An
    // Unsubscribe RPC with close_only travels on another HTTP/2 stream and
    // can overtake them: the last acked messages would be redelivered.)
    const bool confirmed = EndStream();
    absl::MutexLock lock(&mu_);
    if (!already_ended) {
      result =
          confirmed
              ? stream_status_
              : absl::DeadlineExceededError(absl::StrCat(
                    "closing the subscription to ", subject_,
                    ": the server did not end the stream within ",
                    absl::FormatDuration(session_->options.connect_timeout),
                    "; cancelled it"));
    }
  }
  absl::MutexLock lock(&mu_);
  end_result_ = result;
  state_ = State::kEnded;
  return result;
}

void SubscriptionStream::Cancel() {
  {
    absl::MutexLock lock(&mu_);
    requested_end_ = true;
    stop_dispatch_ = true;
    stop_acks_ = true;
  }
  context_.TryCancel();
}

bool SubscriptionStream::EndStream() {
  const absl::Time deadline = absl::Now() + session_->options.connect_timeout;
  bool ended;
  {
    absl::MutexLock lock(&mu_);
    requested_end_ = true;
    stop_dispatch_ = true;
    stop_acks_ = true;
    half_close_ = true;
    // The ack writer writes what is queued, half-closes, and exits; then
    // the server ends the stream. A server that does neither in time gets
    // the stream cancelled.
    auto done = [this]() { return acker_exited_ && read_done_; };
    ended = mu_.AwaitWithDeadline(absl::Condition(&done), deadline);
  }
  if (!ended) context_.TryCancel();
  JoinUnlessSelf(&acker_);
  JoinUnlessSelf(&reader_);
  JoinUnlessSelf(&dispatcher_);
  return ended;
}

absl::Status SubscriptionStream::UnsubscribeRpc() {
  UnsubscribeRequest request;
  request.set_client_id(session_->client_id());
  request.set_conn_id(session_->conn_id);
  request.set_subject(subject_);
  request.set_subscription_id(response_.subscription_id());
  request.set_durable_name(options_.durable_name);
  // close_only is not used: Close() ends the stream instead (see End).
  request.set_close_only(false);
  UnsubscribeResponse response;
  grpc::ClientContext context;
  context.set_deadline(
      absl::ToChronoTime(absl::Now() + session_->options.connect_timeout));
  return FromGrpcStatus(
      session_->stub->Unsubscribe(&context, request, &response));
}

void SubscriptionStream::JoinUnlessSelf(std::thread* thread) {
  if (thread->joinable() && thread->get_id() != std::this_thread::get_id()) {
    thread->join();
  }
}

}  // namespace spate::client
