#include "client/connection.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "client/grpc_status.h"
#include "client/thread_name.h"
#include "grpcpp/channel.h"

namespace spate::client {
namespace {

// Close through another node when the session's node is unreachable: each
// call's own limit, and the pause after every node refused once.
constexpr absl::Duration kCloseRetryCallTimeout = absl::Seconds(1);
constexpr absl::Duration kCloseRetryPause = absl::Milliseconds(100);

bool Unreachable(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status);
}

std::chrono::system_clock::time_point DeadlineAfter(absl::Duration timeout) {
  return absl::ToChronoTime(absl::Now() + timeout);
}

bool Unreachable(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable ||
         code == absl::StatusCode::kDeadlineExceeded;
}

// A Connect refusal that retrying cannot change.
bool Permanent(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kUnimplemented:
      return true;
    default:
      return false;
  }
}

absl::Status Ping(const Session& session) {
  PingRequest request;
  request.set_client_id(session.client_id());
  request.set_conn_id(session.conn_id);
  PingResponse response;
  grpc::ClientContext context;
  session.Authorize(&context);
  // A ping unanswered for an interval (at least connect_timeout, so that
  // short test intervals do not fail on a busy machine) counts as missed.
  context.set_deadline(DeadlineAfter(
      std::max(session.ping_interval, session.options.connect_timeout)));
  return FromGrpcStatus(session.stub->Ping(&context, request, &response));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Connection>> Connection::Connect(
    ClientOptions options) {
  RETURN_IF_ERROR(options.Validate());
  const std::string conn_id = RandomBytes(Session::kConnIdBytes);
  absl::Status last_error;
  for (size_t i = 0; i < options.servers.size(); ++i) {
    absl::StatusOr<std::shared_ptr<const Session>> session =
        OpenSession(options, i, conn_id, options.connect_timeout);
    if (session.ok()) {
      return std::unique_ptr<Connection>(new Connection(*std::move(session)));
    }
    last_error = session.status();
    if (!Unreachable(last_error.code())) return last_error;
    if (i + 1 < options.servers.size()) {
      LOG(INFO) << "connect failed, trying the next server: " << last_error;
    }
  }
  return last_error;
}

Connection::Connection(std::shared_ptr<const Session> session)
    : tracker_(std::make_shared<SessionTracker>(session)),
      client_id_(session->client_id()),
      publisher_(tracker_),
      publish_to_leader_(session->options.publish_to_leader),
      leader_routes_(session->options) {
  ping_thread_ = std::thread([this] { SuperviseLoop(); });
}

Connection::~Connection() {
  // The status was the caller's to check; destruction only cleans up.
  Close().IgnoreError();
  if (ping_thread_.joinable()) {
    CHECK(ping_thread_.get_id() != std::this_thread::get_id())
        << "a Connection must not be destroyed by its ConnectionLostHandler";
    ping_thread_.join();
  }
}

PubMsg Connection::NewPubMsg(absl::string_view subject, absl::string_view data,
                             const Headers& headers) {
  PubMsg msg;
  msg.set_client_id(client_id_);
  msg.set_guid(guids_.Next());
  msg.set_subject(std::string(subject));
  msg.set_data(std::string(data));
  for (const auto& [key, value] : headers)
    (*msg.mutable_headers())[key] = value;
  return msg;
}

absl::StatusOr<uint64_t> Connection::Publish(absl::string_view subject,
                                             absl::string_view data,
                                             const Headers& headers) {
  RETURN_IF_ERROR(tracker_->CheckUsable());
  PubMsg msg = NewPubMsg(subject, data, headers);
  const absl::Duration wait = tracker_->session()->options.pub_ack_wait;
  const absl::Time deadline = absl::Now() + wait;
  std::shared_ptr<const Session> session = tracker_->session();
  absl::Status last;
  for (int attempt = 1;; ++attempt) {
    msg.set_conn_id(session->conn_id);
    std::shared_ptr<Streaming::Stub> leader =
        publish_to_leader_ ? leader_routes_.Ready(msg.subject()) : nullptr;
    if (leader != nullptr) {
      PubAck ack;
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(deadline));
      session->Authorize(&context);
      absl::Status status =
          FromGrpcStatus(leader->Publish(&context, msg, &ack));
      if (status.ok()) status = FromPubAck(ack);
      if (status.ok()) {
        leader_routes_.CountRouted();
        // The leader moved: that node forwarded it and names the new one.
        leader_routes_.Learn(msg.subject(), ack.leader_address());
        return ack.sequence();
      }
      // Whatever failed there, the connected server decides, as if there
      // had been no route (a resend has the same guid: no duplicate).
      leader_routes_.Forget(msg.subject());
    }
    PubAck ack;
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(deadline));
    session->Authorize(&context);
    absl::Status status =
        FromGrpcStatus(session->stub->Publish(&context, msg, &ack));
    if (status.ok()) status = FromPubAck(ack);
    if (status.ok()) {
      if (publish_to_leader_) {
        leader_routes_.Learn(msg.subject(), ack.leader_address());
      }
      return ack.sequence();
    }
    auto out_of_time = [&]() {
      return absl::DeadlineExceededError(absl::StrCat(
          "publish to ", subject, ": no ack within ",
          absl::FormatDuration(wait), " (", attempt,
          " attempts, the last refused with: ", last.ToString(), ")"));
    };
    if (absl::IsDeadlineExceeded(status) && !last.ok()) return out_of_time();
    // UNAVAILABLE: no leader yet, or the server went away. NOT_FOUND: the
    // server no longer knows this connection (it may be reconnecting).
    if (!absl::IsUnavailable(status) && !absl::IsNotFound(status)) {
      return status;
    }
    last = status;
    absl::StatusOr<std::shared_ptr<const Session>> verdict =
        tracker_->AwaitCheck(tracker_->RequestCheck(), deadline);
    if (absl::IsDeadlineExceeded(verdict.status()) ||
        (verdict.ok() && absl::Now() >= deadline)) {
      return out_of_time();
    }
    if (!verdict.ok()) return verdict.status();
    if (*verdict == session) {
      // The connection is fine: the server itself refused.
      if (absl::IsNotFound(status)) return status;
      const absl::Duration delay =
          std::min(kReconnectDelayMin * (1 << std::min(attempt - 1, 4)),
                   kReconnectDelayMax);
      if (!tracker_->SleepUnlessClosed(
              std::min(absl::Now() + delay, deadline))) {
        return tracker_->CheckUsable();
      }
    }
    session = *std::move(verdict);
  }
}

absl::Status Connection::PublishAsync(absl::string_view subject,
                                      absl::string_view data,
                                      AckHandler handler,
                                      const Headers& headers) {
  RETURN_IF_ERROR(tracker_->CheckUsable());
  return publisher_.Publish(NewPubMsg(subject, data, headers),
                            std::move(handler));
}

absl::Status Connection::Flush(absl::Duration timeout) {
  return publisher_.Flush(timeout);
}

absl::StatusOr<std::unique_ptr<Subscription>> Connection::Subscribe(
    std::string subject, SubscribeOptions options, MessageHandler handler) {
  RETURN_IF_ERROR(tracker_->CheckUsable());
  if (tracker_->state() == SessionTracker::State::kReconnecting) {
    // A subscribe on the session being replaced would only fail.
    const std::shared_ptr<const Session> session = tracker_->session();
    absl::StatusOr<std::shared_ptr<const Session>> verdict =
        tracker_->AwaitCheck(tracker_->RequestCheck(),
                             absl::Now() + session->options.connect_timeout);
    if (absl::IsDeadlineExceeded(verdict.status())) {
      return absl::UnavailableError(
          absl::StrCat("subscribe to ", subject, ": still reconnecting after ",
                       absl::FormatDuration(session->options.connect_timeout)));
    }
    RETURN_IF_ERROR(verdict.status());
  }
  // The node may have died, or the channel's leader be moving: like a
  // resubscribe, have the connection checked (and moved to another node if
  // this one is gone) and try again, for at most reconnect_wait.
  const absl::Time deadline =
      absl::Now() + tracker_->session()->options.reconnect_wait;
  absl::Duration backoff = absl::Milliseconds(50);
  absl::StatusOr<std::shared_ptr<SubscriptionStream>> opened;
  while (true) {
    opened = SubscriptionStream::Open(tracker_, subject, options, handler);
    if (opened.ok() || !absl::IsUnavailable(opened.status()) ||
        absl::Now() >= deadline) {
      break;
    }
    absl::StatusOr<std::shared_ptr<const Session>> verdict =
        tracker_->AwaitCheck(tracker_->RequestCheck(), deadline);
    if (!verdict.ok()) {
      if (absl::IsDeadlineExceeded(verdict.status())) break;
      return verdict.status();
    }
    absl::SleepFor(std::min(backoff, deadline - absl::Now()));
    backoff = std::min(2 * backoff, absl::Milliseconds(500));
  }
  if (!opened.ok()) return opened.status();
  std::shared_ptr<SubscriptionStream> stream = *std::move(opened);
  {
    absl::MutexLock lock(&mu_);
    if (!closing_) {
      subscriptions_.erase(
          std::remove_if(subscriptions_.begin(), subscriptions_.end(),
                         [](const std::shared_ptr<SubscriptionStream>& sub) {
                           return sub->ended();
                         }),
          subscriptions_.end());
      subscriptions_.push_back(stream);
      return std::make_unique<Subscription>(std::move(stream));
    }
  }
  // Closed while subscribing: nothing will end this stream later.
  // Nobody is left to hear how the close went.
  stream->End(SubscriptionStream::EndMode::kClose).IgnoreError();
  return absl::FailedPreconditionError("connection closed");
}

std::vector<std::shared_ptr<SubscriptionStream>>
Connection::LiveSubscriptions() {
  absl::MutexLock lock(&mu_);
  return subscriptions_;
}

void Connection::SuperviseLoop() {
  NameThisThread("spate-ping");
  int failures = 0;
  // The newest ticket a ping answered for, passed or not.
  uint64_t seen = 0;
  absl::Time next_ping = absl::Now() + tracker_->session()->ping_interval;
  // A check that failed while the transport was up is pinged again soon.
  absl::Time recheck = absl::InfiniteFuture();
  while (true) {
    const std::shared_ptr<const Session> session = tracker_->session();
    // A stream asking for a check cuts the wait short.
    const uint64_t ticket =
        tracker_->AwaitRequest(std::min(next_ping, recheck), seen);
    const SessionTracker::State state = tracker_->state();
    if (state == SessionTracker::State::kLost ||
        state == SessionTracker::State::kClosed) {
      return;
    }
    const absl::Time now = absl::Now();
    const bool periodic = now >= next_ping;
    if (!periodic && ticket == 0) {
      recheck = absl::InfiniteFuture();  // The checks were answered.
      continue;
    }
    if (periodic) next_ping = now + session->ping_interval;
    recheck = absl::InfiniteFuture();
    seen = std::max(seen, ticket);
    const absl::Status status = Ping(*session);
    if (status.ok()) {
      failures = 0;
      if (ticket != 0) tracker_->CheckPassed(ticket);
      continue;
    }
    absl::Status reason;
    if (absl::IsNotFound(status)) {
      // The server replaced or expired this connection.
      reason = status;
    } else if (ticket != 0 &&
               session->channel->GetState(false) != GRPC_CHANNEL_READY) {
      // A stream ended and the server cannot be reached either.
      reason = absl::UnavailableError(absl::StrCat(
          "a stream ended and the ping that followed failed with: ",
          status.ToString()));
    } else if (periodic && ++failures >= session->ping_max_out) {
      reason = absl::UnavailableError(absl::StrCat(
          failures,
          " pings in a row failed, the last with: ", status.ToString()));
    } else {
      // The server answered but could not confirm (e.g. the metadata
      // group is electing a leader): not a broken connection yet.
      if (ticket != 0) recheck = absl::Now() + kRecheckDelay;
      continue;
    }
    failures = 0;
    const absl::Status reconnected = Reconnect(reason);
    if (!reconnected.ok()) {
      if (!absl::IsCancelled(reconnected)) Lose(reconnected);
      return;
    }
    next_ping = absl::Now() + tracker_->session()->ping_interval;
  }
}

absl::Status Connection::Reconnect(const absl::Status& reason) {
  const std::shared_ptr<const Session> failed = tracker_->session();
  const ClientOptions& options = failed->options;
  if (options.reconnect_wait <= absl::ZeroDuration()) return reason;
  if (!tracker_->BeginReconnect()) return absl::CancelledError("closed");
  LOG(WARNING) << "connection to " << failed->server
               << " broken client_id=" << client_id_ << " reason=" << reason
               << "; reconnecting for up to "
               << absl::FormatDuration(options.reconnect_wait);
  // Their owners wait for the new session (the tracker says reconnecting).
  publisher_.Interrupt();
  for (const std::shared_ptr<SubscriptionStream>& sub : LiveSubscriptions()) {
    sub->Interrupt();
  }
  const std::string conn_id = RandomBytes(Session::kConnIdBytes);
  const absl::Time deadline = absl::Now() + options.reconnect_wait;
  const size_t servers = options.servers.size();
  absl::Duration backoff = kReconnectDelayMin;
  absl::Status last = reason;
  for (size_t attempt = 0;; ++attempt) {
    const absl::Duration remaining = deadline - absl::Now();
    if (remaining <= absl::ZeroDuration()) break;
    const size_t index = (failed->server_index + 1 + attempt) % servers;
    absl::StatusOr<std::shared_ptr<const Session>> session = OpenSession(
        options, index, conn_id, std::min(options.connect_timeout, remaining));
    if (session.ok()) {
      const std::string server = (*session)->server;
      if (!tracker_->Reconnected(*std::move(session))) {
        return absl::CancelledError("closed");
      }
      LOG(INFO) << "reconnected server=" << server
                << " client_id=" << client_id_ << " attempts=" << attempt + 1;
      if (options.reconnected_handler) options.reconnected_handler(server);
      publisher_.Resume();
      return absl::OkStatus();
    }
    last = session.status();
    if (Permanent(last.code())) break;
    // After a full round, or while the server still sees the old
    // connection alive (ALREADY_EXISTS), wait a little.
    if ((attempt + 1) % servers == 0 || absl::IsAlreadyExists(last)) {
      if (!tracker_->SleepUnlessClosed(
              std::min(absl::Now() + backoff, deadline))) {
        return absl::CancelledError("closed");
      }
      backoff = std::min(backoff * 2, kReconnectDelayMax);
    }
  }
  return absl::Status(
      last.code(),
      absl::StrCat("connection to ", failed->server, " broke (",
                   reason.ToString(), ") and reconnecting failed within ",
                   absl::FormatDuration(options.reconnect_wait),
                   ", the last attempt with: ", last.message()));
}

void Connection::Lose(const absl::Status& reason) {
  tracker_->Lose(reason);
  const std::shared_ptr<const Session> session = tracker_->session();
  LOG(WARNING) << "connection lost server=" << session->server
               << " client_id=" << client_id_ << " " << reason;
  publisher_.Cancel(absl::UnavailableError(
      absl::StrCat("connection lost: ", reason.ToString())));
  for (const std::shared_ptr<SubscriptionStream>& sub : LiveSubscriptions()) {
    sub->Cancel();
  }
  if (session->options.connection_lost_handler) {
    session->options.connection_lost_handler(reason);
  }
}

absl::Status Connection::Close() {
  std::vector<std::shared_ptr<SubscriptionStream>> subscriptions;
  {
    absl::MutexLock lock(&mu_);
    if (closing_) {
      // The lost handler calling Close while another Close joins the ping
      // thread must not wait for that Close.
      if (std::this_thread::get_id() == ping_thread_.get_id()) {
        return absl::OkStatus();
      }
      auto closed = [this]() { return closed_; };
      mu_.Await(absl::Condition(&closed));
      return close_result_;
    }
    closing_ = true;
    subscriptions.swap(subscriptions_);
  }
  const std::shared_ptr<const Session> before = tracker_->session();
  const SessionTracker::State state = tracker_->Close();
  // The lost handler may call Close on the ping thread; the destructor
  // joins it then.
  if (ping_thread_.joinable() &&
      ping_thread_.get_id() != std::this_thread::get_id()) {
    ping_thread_.join();
  }
  // Each stream's end closes its subscription on the server (durables keep
  // their state) after its queued acks.
  for (const std::shared_ptr<SubscriptionStream>& sub : subscriptions) {
    // Close RPC follows; a subscription that did not confirm its close in
    // time was cancelled, which closes it on the server as well.
    sub->End(SubscriptionStream::EndMode::kClose).IgnoreError();
  }
  publisher_.Shutdown(absl::CancelledError(
      "connection closed before the publish was acknowledged"));
  // Only a live connection is told goodbye: one that was connected, or
  // one a reconnect established while we were closing.
  const std::shared_ptr<const Session> session = tracker_->session();
  absl::Status result;
  if (state == SessionTracker::State::kConnected || session != before) {
    CloseRequest request;
    request.set_client_id(client_id_);
    request.set_conn_id(session->conn_id);
    CloseResponse response;
    grpc::ClientContext context;
    context.set_deadline(DeadlineAfter(session->options.connect_timeout));
    session->Authorize(&context);
    result = FromGrpcStatus(session->stub->Close(&context, request, &response));
    // The node that accepted the session may have died unnoticed; the
    // client's record lives in the metadata group, so any other node can
    // end it (while the metadata group elects a new leader, nodes answer
    // UNAVAILABLE: keep trying them until the connect timeout).
    const std::vector<std::string>& servers = session->options.servers;
    const absl::Time give_up = absl::Now() + session->options.connect_timeout;
    for (size_t attempt = 1;
         servers.size() > 1 && Unreachable(result) && absl::Now() < give_up;
         ++attempt) {
      const size_t index = (session->server_index + attempt) % servers.size();
      if (index == session->server_index) {
        absl::SleepFor(kCloseRetryPause);  // every other node said no
        continue;
      }
      const std::string& server = servers[index];
      absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
          NewChannel(session->options, server);
      if (!channel.ok()) continue;
      std::unique_ptr<Streaming::Stub> stub = Streaming::NewStub(*channel);
      grpc::ClientContext retry_context;
      retry_context.set_deadline(DeadlineAfter(
          std::min(kCloseRetryCallTimeout,
                   std::max(give_up - absl::Now(), absl::Milliseconds(1)))));
      session->Authorize(&retry_context);
      result = FromGrpcStatus(stub->Close(&retry_context, request, &response));
    }
  }
  absl::MutexLock lock(&mu_);
  closed_ = true;
  close_result_ = result;
  return result;
}

}  // namespace spate::client
