// Connection: one client's connection to a Spate cluster — the entry point
// of the C++ client library (DESIGN.md §3–4, modelled on stan.go's Conn).
//
//   auto conn = Connection::Connect(options);            // ConnectRequest
//   conn->Publish("orders", "data");                     // unary, sequence
//   conn->PublishAsync("orders", "data", on_ack);        // windowed stream
//   auto sub = conn->Subscribe("orders", {}, on_message);
//   sub->Close();  conn->Close();
//
// Reconnection. The connection survives the loss of the server it talks
// to without any user code. It counts as broken when the server no longer
// knows it (a ping answers NOT_FOUND), when ping_max_out periodic pings in
// a row fail, or when a stream ends unexpectedly and the ping sent at once
// fails with the server unreachable (the gRPC channel not READY; a server
// that answers with an error, say while its metadata group elects a
// leader, is pinged again every kRecheckDelay instead). Then, for up to
// reconnect_wait, the ping thread tries the
// configured servers round-robin, starting after the one that failed
// (after each full round, and after ALREADY_EXISTS, it backs off 50 ms
// doubling to 1 s). It keeps the client id and uses a new conn_id: the
// server replaces the old connection once that one stopped pinging (until
// then it answers ALREADY_EXISTS, which is retried). Once connected again:
//   - async publishes that were pending are resent in publish order with
//     their guids (the server deduplicates them, so each handler gets the
//     sequence of the one stored message); see publisher.h;
//   - every subscription is re-established behind its handle: durables
//     resume at their first unacked message, plain subscriptions after
//     the last message handed to the handler; see subscription_stream.h;
//   - a synchronous Publish waiting meanwhile retries with the same guid
//     (it retries UNAVAILABLE within pub_ack_wait in any case).
// A stream that ends while the ping succeeds (a channel's leader moved) is
// reopened on the same connection. Only if reconnecting fails within
// reconnect_wait (or the server refuses for good, e.g. INVALID_ARGUMENT)
// is the connection lost: the ConnectionLostHandler runs once.
// reconnect_wait == 0 disables all this: the first failure is final.
//
//   kConnected --broken--> kReconnecting --connected again--> kConnected
//       |                       |
//       |                       +--reconnect_wait passed / refused--> kLost
//       +--broken, reconnect_wait == 0 ----------------------------> kLost
//   any --Close()--> kClosed
// (the states of SessionTracker, session_tracker.h). While reconnecting,
// Publish waits (within pub_ack_wait), PublishAsync queues, and Subscribe
// waits up to connect_timeout (then UNAVAILABLE); once lost or closed they
// fail with FailedPrecondition naming why; connect again for a new
// Connection. Close() (or the destructor) ends subscriptions' streams
// (durables keep their state), fails unacknowledged async publishes with
// Cancelled, sends the Close RPC and joins every thread.
//
// Threads of one connection (all named, so `top -H` shows them):
//   "spate-ping"       pings every ping interval and whenever a stream
//                      asks for a check; reconnects; runs the
//                      ConnectionLostHandler and ReconnectedHandler;
//   "spate-pub-write", "spate-pub-read"   the async publish stream, opened
//                      by the first PublishAsync (publisher.h);
//   "spate-sub-read", "spate-sub-msgs", "spate-sub-acks"   per
//                      subscription (subscription_stream.h).
// Every method is thread-safe. Handlers run on those threads, never while a
// library lock is held that the same call path needs.
// Lock order: Connection::mu_ → SubscriptionStream::mu_; the publisher's
// locks (publisher.h) are never held together with Connection::mu_;
// SessionTracker's mutex is innermost.
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
#include "client/leader_routes.h"
#include "client/options.h"
#include "client/publisher.h"
#include "client/session.h"
#include "client/session_tracker.h"
#include "client/subscription.h"
#include "client/subscription_stream.h"
#include "proto/streaming.pb.h"

namespace spate::client {

class Connection {
 public:
  // Backoff between reconnection rounds.
  static constexpr absl::Duration kReconnectDelayMin = absl::Milliseconds(50);
  static constexpr absl::Duration kReconnectDelayMax = absl::Seconds(1);
  // A check ping the server answered with an error (its transport up) is
  // sent again after this long.
  static constexpr absl::Duration kRecheckDelay = absl::Milliseconds(100);

  // Tries options.servers in order. A server that cannot be reached
  // (Unavailable, DeadlineExceeded) passes to the next; any other answer
  // (ALREADY_EXISTS for a live duplicate client id, INVALID_ARGUMENT, ...)
  // is the cluster's verdict and is returned at once, with the server's
  // code and message. (Reconnection applies once connected.)
  static absl::StatusOr<std::unique_ptr<Connection>> Connect(
      ClientOptions options);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  // Close()s if still open. Must not run on a client thread (a handler).
  ~Connection();

  // Publishes one message and waits for its commit (deadline pub_ack_wait).
  // UNAVAILABLE answers and broken connections are retried with the same
  // guid until then. With options.publish_to_leader it goes straight to
  // the channel's leader once a server named it (leader_routes.h), else
  // (and after any failure there) to the connected server.
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
  // connect_timeout, plus up to as much for a reconnection in progress);
  // the server's refusal comes back as its status. The first subscribe is
  // not retried: UNAVAILABLE (no leader yet) is the caller's to retry.
  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(
      std::string subject, SubscribeOptions options, MessageHandler handler);

  // Ends the connection (see the lifecycle above). Idempotent; returns the
  // Close RPC's status (OK when there was no live connection to close).
  absl::Status Close();

  const std::string& client_id() const { return client_id_; }
  // The "host:port" of the current (or last) connection.
  std::string server() const { return tracker_->session()->server; }
  ConnectResponse server_info() const { return tracker_->session()->info; }
  absl::Duration ping_interval() const {
    return tracker_->session()->ping_interval;
  }
  // Successful reconnections so far.
  int64_t reconnects() const { return tracker_->reconnects(); }
  // Async publishes sent again (after a stream broke or an UNAVAILABLE).
  int64_t resent_publishes() const { return publisher_.resent_count(); }
  // Synchronous publishes answered by the channel's leader directly.
  int64_t leader_publishes() const { return leader_routes_.routed(); }

 private:
  explicit Connection(std::shared_ptr<const Session> session);

  PubMsg NewPubMsg(absl::string_view subject, absl::string_view data,
                   const Headers& headers);
  // The subscriptions not ended yet.
  std::vector<std::shared_ptr<SubscriptionStream>> LiveSubscriptions();
  void SuperviseLoop();
  // Tries to connect again; OK once connected, Cancelled if closed
  // meanwhile, otherwise why the connection is lost.
  absl::Status Reconnect(const absl::Status& reason);
  // Marks the connection lost, cancels its streams, runs the handler.
  void Lose(const absl::Status& reason);

  const std::shared_ptr<SessionTracker> tracker_;
  const std::string client_id_;
  GuidGenerator guids_;
  AsyncPublisher publisher_;
  const bool publish_to_leader_;
  LeaderRoutes leader_routes_;

  mutable absl::Mutex mu_;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status close_result_ ABSL_GUARDED_BY(mu_);
  // Live subscriptions, interrupted on reconnects and ended on Close or
  // loss; ended ones are pruned on the next Subscribe.
  std::vector<std::shared_ptr<SubscriptionStream>> subscriptions_
      ABSL_GUARDED_BY(mu_);
  std::thread ping_thread_;
};

}  // namespace spate::client

#endif  // SPATE_CLIENT_CONNECTION_H_
