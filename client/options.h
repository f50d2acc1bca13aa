// Options, handler types and start positions of the Spate C++ client
// (DESIGN.md §3–4). Names and defaults follow NATS Streaming's Go client
// (stan.go): ConnectWait 2 s, PubAckWait 30 s, MaxPubAcksInflight 16384,
// MaxInflight 1024, AckWait 30 s. Plain values: copy them freely; the
// handlers they carry run on client threads (see connection.h).
#ifndef SPATE_CLIENT_OPTIONS_H_
#define SPATE_CLIENT_OPTIONS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace spate::client {

class Message;

// Message headers as published; delivered unchanged to subscribers.
using Headers = std::map<std::string, std::string>;

// Runs once when the connection is lost for good: it broke (the server no
// longer knows it, ping_max_out pings in a row failed, or a stream ended
// and the ping that followed failed) and reconnecting did not succeed
// within reconnect_wait. Runs on the ping thread; it may call
// Connection::Close() but must not destroy the Connection.
using ConnectionLostHandler = std::function<void(const absl::Status& reason)>;

// Runs after each successful reconnection, with the server that accepted
// it, on the ping thread, before the streams are re-established. It must
// be quick and must not call Close().
using ReconnectedHandler = std::function<void(const std::string& server)>;

// Completion of one PublishAsync: the channel sequence, or why the message
// was not stored (the PubAck's error, DeadlineExceeded after pub_ack_wait,
// Unavailable when the stream broke, Cancelled when the connection closed).
// Handlers run one at a time, in completion order, on a client thread; they
// must be quick. They may publish again (no acks are processed while a
// handler runs, so with a full window that fails after pub_ack_wait) but
// must not call Flush() or Connection::Close().
using AckHandler = std::function<void(const std::string& guid,
                                      const absl::StatusOr<uint64_t>& result)>;

// Receives the messages of one subscription, serially, in delivery order, on
// that subscription's dispatch thread.
using MessageHandler = std::function<void(const Message& message)>;

// Runs once when a subscription ends for good without the client asking:
// its stream ended with a status that resubscribing cannot fix (e.g.
// INVALID_ARGUMENT, RESOURCE_EXHAUSTED for a slow consumer), or
// resubscribing kept failing for reconnect_wait. Not run when the whole
// connection is lost (the ConnectionLostHandler is). Runs on the
// subscription's reader thread, with the last status.
using SubscriptionLostHandler = std::function<void(const absl::Status& reason)>;

struct ClientOptions {
  // "host:port" addresses, tried in order until one accepts the connect;
  // reconnection tries them round-robin, starting after the one that
  // failed.
  std::vector<std::string> servers;
  // [A-Za-z0-9_-]+, at most 128 characters (the server checks it too).
  std::string client_id;
  // Deadline of Connect and of the other control requests (Subscribe's
  // response, Unsubscribe, Close).
  absl::Duration connect_timeout = absl::Seconds(2);
  // Deadline of a synchronous Publish, of an async publish's ack, and the
  // longest PublishAsync blocks on a full window.
  absl::Duration pub_ack_wait = absl::Seconds(30);
  // Most async publishes unacknowledged at once; PublishAsync blocks beyond.
  int max_pub_acks_in_flight = 16384;
  // Synchronous Publish goes straight to the channel's leader once a
  // server named it (PubAck.leader_address) and a connection to it is
  // ready, instead of through the connected server, which forwards it
  // (one hop and its thread hand-offs less). Any failure there falls back
  // to the connected server. Off: every call goes to the connected server
  // (e.g. when the advertised node addresses are not reachable from here).
  bool publish_to_leader = true;
  // Ping handling. Zero means: use the server's values from the
  // ConnectResponse (ping_interval_ms, ping_max_out); the server drops a
  // client that pings less often than it asked.
  absl::Duration ping_interval = absl::ZeroDuration();
  int ping_max_out = 0;
  // How long the client tries to reconnect (and to re-establish a
  // subscription) on its own before reporting the loss; zero disables
  // reconnection (the first failure is final). See connection.h.
  absl::Duration reconnect_wait = absl::Seconds(30);
  // Credentials, sent on every call when the servers require
  // authentication (docs/security.md): a token, or a user and password.
  // Empty: none (or the TLS client certificate's name, see tls_cert_file).
  std::string token;
  std::string user;
  std::string password;
  // TLS: with tls_ca_file set, the client dials TLS and verifies the
  // servers against that CA bundle (PEM); tls_cert_file and tls_key_file add
  // a client certificate (mTLS). tls_server_name_override: the name to
  // verify instead of the dialed host. Empty tls_ca_file and no cert:
  // plaintext.
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_server_name_override;
  ConnectionLostHandler connection_lost_handler;
  ReconnectedHandler reconnected_handler;

  absl::Status Validate() const;
};

// Where a new subscription starts (proto StartPosition).
class StartPosition {
 public:
  enum class Kind { kNewOnly, kLastReceived, kSequence, kTimeDelta, kFirst };

  // Only messages published after the subscription is created (default).
  static StartPosition NewOnly() { return StartPosition(Kind::kNewOnly); }
  // The last stored message, then new ones.
  static StartPosition LastReceived() {
    return StartPosition(Kind::kLastReceived);
  }
  // From `sequence` on (clamped by the server to the stored range).
  static StartPosition AtSequence(uint64_t sequence) {
    StartPosition start(Kind::kSequence);
    start.sequence_ = sequence;
    return start;
  }
  // Messages stored no earlier than now - `delta`.
  static StartPosition AtTimeDelta(absl::Duration delta) {
    StartPosition start(Kind::kTimeDelta);
    start.time_delta_ = delta;
    return start;
  }
  // From the first stored message.
  static StartPosition First() { return StartPosition(Kind::kFirst); }

  Kind kind() const { return kind_; }
  uint64_t sequence() const { return sequence_; }
  absl::Duration time_delta() const { return time_delta_; }

 private:
  explicit StartPosition(Kind kind) : kind_(kind) {}

  Kind kind_;
  uint64_t sequence_ = 0;
  absl::Duration time_delta_ = absl::ZeroDuration();
};

struct SubscribeOptions {
  // Queue group: members of (channel, q_group) share the messages.
  std::string q_group;
  // Durable name: the subscription survives closes and client restarts.
  std::string durable_name;
  // Most unacknowledged messages the server delivers; >= 1.
  int max_in_flight = 1024;
  // Redelivery after this long without an ack; whole seconds, >= 1 s.
  absl::Duration ack_wait = absl::Seconds(30);
  // False: each message is acked after the handler returns. True: the
  // application acks with Message::Ack() or Subscription::Ack().
  bool manual_acks = false;
  StartPosition start = StartPosition::NewOnly();
  SubscriptionLostHandler lost_handler;

  absl::Status Validate() const;
};

}  // namespace spate::client

#endif  // SPATE_CLIENT_OPTIONS_H_
