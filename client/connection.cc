#include "client/connection.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "client/grpc_status.h"
#include "client/thread_name.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace spate::client {
namespace {

constexpr int kConnIdBytes = 16;

std::chrono::system_clock::time_point DeadlineAfter(absl::Duration timeout) {
  return absl::ToChronoTime(absl::Now() + timeout);
}

bool Unreachable(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable ||
         code == absl::StatusCode::kDeadlineExceeded;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Connection>> Connection::Connect(
    ClientOptions options) {
  RETURN_IF_ERROR(options.Validate());
  const std::string conn_id = RandomBytes(kConnIdBytes);
  absl::Status last_error;
  for (const std::string& server : options.servers) {
    grpc::ChannelArguments args;
    // Deliveries are batches; their size is the server's business.
    args.SetMaxReceiveMessageSize(-1);
    std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
        server, grpc::InsecureChannelCredentials(), args);
    std::unique_ptr<Streaming::Stub> stub = Streaming::NewStub(channel);
    ConnectRequest request;
    request.set_client_id(options.client_id);
    request.set_conn_id(conn_id);
    ConnectResponse response;
    grpc::ClientContext context;
    context.set_deadline(DeadlineAfter(options.connect_timeout));
    const absl::Status status =
        FromGrpcStatus(stub->Connect(&context, request, &response));
    if (status.ok()) {
      auto session = std::make_shared<Session>();
      session->options = std::move(options);
      session->server = server;
      session->channel = std::move(channel);
      session->stub = std::move(stub);
      session->conn_id = conn_id;
      session->info = std::move(response);
      const ClientOptions& opts = session->options;
      absl::Duration interval = opts.ping_interval;
      if (interval <= absl::ZeroDuration()) {
        interval = session->info.ping_interval_ms() > 0
                       ? absl::Milliseconds(session->info.ping_interval_ms())
                       : kDefaultPingInterval;
      }
      int max_out = opts.ping_max_out;
      if (max_out <= 0) {
        max_out = session->info.ping_max_out() > 0
                      ? session->info.ping_max_out()
                      : kDefaultPingMaxOut;
      }
      return std::unique_ptr<Connection>(
          new Connection(std::move(session), interval, max_out));
    }
    last_error = absl::Status(
        status.code(),
        absl::StrCat("connect to ", server, ": ", status.message()));
    if (!Unreachable(status.code())) return last_error;
    if (&server != &options.servers.back()) {
      LOG(INFO) << "connect failed, trying the next server: " << last_error;
    }
  }
  return last_error;
}

Connection::Connection(std::shared_ptr<const Session> session,
                       absl::Duration ping_interval, int ping_max_out)
    : session_(std::move(session)),
      ping_interval_(ping_interval),
      ping_max_out_(ping_max_out),
      publisher_(session_) {
  ping_thread_ = std::thread([this] { PingLoop(); });
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

absl::Status Connection::CheckOpen() const {
  absl::MutexLock lock(&mu_);
  switch (state_) {
    case State::kOpen:
      return absl::OkStatus();
    case State::kLost:
      return absl::FailedPreconditionError(
          absl::StrCat("connection to ", session_->server, " lost (",
                       lost_reason_.ToString(), "); connect again"));
    case State::kClosing:
    case State::kClosed:
      break;
  }
  return absl::FailedPreconditionError("connection closed");
}

PubMsg Connection::NewPubMsg(absl::string_view subject, absl::string_view data,
                             const Headers& headers) {
  PubMsg msg;
  msg.set_client_id(session_->client_id());
  msg.set_conn_id(session_->conn_id);
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
  RETURN_IF_ERROR(CheckOpen());
  const PubMsg msg = NewPubMsg(subject, data, headers);
  PubAck ack;
  grpc::ClientContext context;
  context.set_deadline(DeadlineAfter(session_->options.pub_ack_wait));
  RETURN_IF_ERROR(FromGrpcStatus(session_->stub->Publish(&context, msg, &ack)));
  RETURN_IF_ERROR(FromPubAck(ack));
  return ack.sequence();
}

absl::Status Connection::PublishAsync(absl::string_view subject,
                                      absl::string_view data,
                                      AckHandler handler,
                                      const Headers& headers) {
  RETURN_IF_ERROR(CheckOpen());
  return publisher_.Publish(NewPubMsg(subject, data, headers),
                            std::move(handler));
}

absl::Status Connection::Flush(absl::Duration timeout) {
  return publisher_.Flush(timeout);
}

absl::StatusOr<std::unique_ptr<Subscription>> Connection::Subscribe(
    std::string subject, SubscribeOptions options, MessageHandler handler) {
  RETURN_IF_ERROR(CheckOpen());
  ASSIGN_OR_RETURN(
      std::shared_ptr<SubscriptionStream> stream,
      SubscriptionStream::Open(session_, std::move(subject), std::move(options),
                               std::move(handler)));
  {
    absl::MutexLock lock(&mu_);
    if (state_ == State::kOpen) {
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
  // Closed or lost while subscribing: nothing will end this stream later.
  // Nobody is left to hear how the close went.
  stream->End(SubscriptionStream::EndMode::kClose).IgnoreError();
  return CheckOpen();
}

void Connection::PingLoop() {
  NameThisThread("spate-ping");
  int failures = 0;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto stopped = [this]() { return state_ != State::kOpen; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stopped), ping_interval_)) {
        return;
      }
    }
    PingRequest request;
    request.set_client_id(session_->client_id());
    request.set_conn_id(session_->conn_id);
    PingResponse response;
    grpc::ClientContext context;
    // A ping unanswered for an interval (at least connect_timeout, so that
    // short test intervals do not fail on a busy machine) counts as missed.
    context.set_deadline(DeadlineAfter(
        std::max(ping_interval_, session_->options.connect_timeout)));
    const absl::Status status =
        FromGrpcStatus(session_->stub->Ping(&context, request, &response));
    if (status.ok()) {
      failures = 0;
      continue;
    }
    if (status.code() == absl::StatusCode::kNotFound) {
      // The server replaced or expired this connection: pinging on is
      // pointless.
      Lose(status);
      return;
    }
    if (++failures >= ping_max_out_) {
      Lose(absl::UnavailableError(absl::StrCat(
          failures,
          " pings in a row failed, the last with: ", status.ToString())));
      return;
    }
  }
}

void Connection::Lose(const absl::Status& reason) {
  std::vector<std::shared_ptr<SubscriptionStream>> subscriptions;
  {
    absl::MutexLock lock(&mu_);
    if (state_ != State::kOpen) return;
    state_ = State::kLost;
    lost_reason_ = reason;
    subscriptions = subscriptions_;
  }
  LOG(WARNING) << "connection lost server=" << session_->server
               << " client_id=" << session_->client_id() << " " << reason;
  publisher_.Cancel(absl::UnavailableError(
      absl::StrCat("connection lost: ", reason.ToString())));
  for (const std::shared_ptr<SubscriptionStream>& sub : subscriptions) {
    sub->Cancel();
  }
  if (session_->options.connection_lost_handler) {
    session_->options.connection_lost_handler(reason);
  }
}

absl::Status Connection::Close() {
  std::vector<std::shared_ptr<SubscriptionStream>> subscriptions;
  bool was_lost;
  {
    absl::MutexLock lock(&mu_);
    if (state_ == State::kClosing || state_ == State::kClosed) {
      // The lost handler calling Close while another Close joins the ping
      // thread must not wait for that Close.
      if (std::this_thread::get_id() == ping_thread_.get_id()) {
        return absl::OkStatus();
      }
      auto closed = [this]() { return state_ == State::kClosed; };
      mu_.Await(absl::Condition(&closed));
      return close_result_;
    }
    was_lost = state_ == State::kLost;
    state_ = State::kClosing;
    subscriptions.swap(subscriptions_);
  }
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
  const absl::Status result = was_lost ? absl::OkStatus() : CloseRpc();
  absl::MutexLock lock(&mu_);
  state_ = State::kClosed;
  close_result_ = result;
  return result;
}

absl::Status Connection::CloseRpc() {
  CloseRequest request;
  request.set_client_id(session_->client_id());
  request.set_conn_id(session_->conn_id);
  CloseResponse response;
  grpc::ClientContext context;
  context.set_deadline(DeadlineAfter(session_->options.connect_timeout));
  return FromGrpcStatus(session_->stub->Close(&context, request, &response));
}

}  // namespace spate::client
