// Connection: one client's connection to a Spate cluster — the entry point
// of the C++ client library (DESIGN.md §3–4, modelled on stan.go's Conn).
//
//   auto conn = Connection::Connect(options);            // ConnectRequest
//   conn->Publish("orders", "data");                     // unary, sequence
//   conn->PublishAsync("orders", "data", on_ack);        // windowed stream
//   auto sub = conn->Subscribe("orders", {}, on_message);
//   sub->Close();  conn->Close();
//
// Threads of one connection (all named, so `top -H` shows them):
//   "spate-ping"       pings every ping interval; detects a lost connection
//                      and runs the ConnectionLostHandler once;
//   "spate-pub-write", "spate-pub-read"   the async publish stream, opened
//                      by the first PublishAsync (publisher.h);
//   "spate-sub-read", "spate-sub-msgs", "spate-sub-acks"   per
//                      subscription (subscription_stream.h).
// Every method is thread-safe. Handlers run on those threads, never while a
// library lock is held that the same call path needs.
// Lock order: Connection::mu_ → SubscriptionStream::mu_; the publisher's
// locks (publisher.h) are never held together with Connection::mu_.
//
// Lifecycle: kOpen → (kLost) → kClosing → kClosed. Once lost or closed,
// calls fail with FailedPrecondition naming why; connect again for a new
// Connection. Close() (or the destructor) ends subscriptions' streams
// (durables keep their state), fails unacknowledged async publishes with
// Cancelled, sends the Close RPC and joins every thread.
#ifndef SPATE_CLIENT_CONNECTION_H_
#define SPATE_CLIENT_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/ids.h"
#include "client/options.h"
#include "client/publisher.h"
#include "client/session.h"
#include "client/subscription.h"
#include "client/subscription_stream.h"
#include "proto/streaming.pb.h"

namespace spate::client {

class Connection {
 public:
  // Used when neither the options nor the server name a ping interval or
  // ping_max_out.
  static constexpr absl::Duration kDefaultPingInterval = absl::Seconds(5);
  static constexpr int kDefaultPingMaxOut = 3;

  // Tries options.servers in order. A server that cannot be reached
  // (Unavailable, DeadlineExceeded) passes to the next; any other answer
  // (ALREADY_EXISTS for a live duplicate client id, INVALID_ARGUMENT, ...)
  // is the cluster's verdict and is returned at once, with the server's
  // code and message.
  static absl::StatusOr<std::unique_ptr<Connection>> Connect(
      ClientOptions options);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  // Close()s if still open. Must not run on a client thread (a handler).
  ~Connection();

  // Publishes one message and waits for its commit (deadline pub_ack_wait).
  absl::StatusOr<uint64_t> Publish(absl::string_view subject,
                                   absl::string_view data,
                                   const Headers& headers = {});

  // Queues one message on the publish stream; `handler` (may be empty)
  // gets its sequence or error later. Blocks while max_pub_acks_in_flight
  // publishes are unacknowledged, up to pub_ack_wait (DeadlineExceeded).
  absl::Status PublishAsync(absl::string_view subject, absl::string_view data,
                            AckHandler handler, const Headers& headers = {});

  // Waits until every PublishAsync so far completed (its handler returned).
  absl::Status Flush(absl::Duration timeout);

  // Subscribes and waits for the server's SubscriptionResponse (deadline
  // connect_timeout); the server's refusal comes back as its status.
  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(
      std::string subject, SubscribeOptions options, MessageHandler handler);

  // Ends the connection (see the lifecycle above). Idempotent; returns the
  // Close RPC's status (OK after a lost connection: nothing to close).
  absl::Status Close();

  const std::string& client_id() const { return session_->client_id(); }
  // The "host:port" that accepted the connect.
  const std::string& server() const { return session_->server; }
  const ConnectResponse& server_info() const { return session_->info; }
  absl::Duration ping_interval() const { return ping_interval_; }

 private:
  enum class State { kOpen, kLost, kClosing, kClosed };

  Connection(std::shared_ptr<const Session> session,
             absl::Duration ping_interval, int ping_max_out);

  absl::Status CheckOpen() const;
  PubMsg NewPubMsg(absl::string_view subject, absl::string_view data,
                   const Headers& headers);
  void PingLoop();
  // Marks the connection lost, cancels its streams, runs the handler.
  void Lose(const absl::Status& reason);
  absl::Status CloseRpc();

  const std::shared_ptr<const Session> session_;
  const absl::Duration ping_interval_;
  const int ping_max_out_;
  GuidGenerator guids_;
  AsyncPublisher publisher_;

  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kOpen;
  absl::Status lost_reason_ ABSL_GUARDED_BY(mu_);
  absl::Status close_result_ ABSL_GUARDED_BY(mu_);
  // Live subscriptions, ended on Close or loss; ended ones are pruned on
  // the next Subscribe.
  std::vector<std::shared_ptr<SubscriptionStream>> subscriptions_
      ABSL_GUARDED_BY(mu_);
  std::thread ping_thread_;
};

}  // namespace spate::client

#endif  // SPATE_CLIENT_CONNECTION_H_
