// Session: one accepted Connect — the options, the gRPC channel and stub to
// the server that accepted it, the client and connection ids, the server's
// ConnectResponse and the ping cadence derived from it. A Connection has one
// Session at a time and gets a new one each time it reconnects (same client
// id, new conn_id, possibly another server); SessionTracker
// (session_tracker.h) says which one is current. A Session never changes
// once made, so any thread may read it without locking; holders keep it
// alive with a shared_ptr (a stream may outlive the session it started on).
#ifndef SPATE_CLIENT_SESSION_H_
#define SPATE_CLIENT_SESSION_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/options.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "proto/streaming.grpc.pb.h"
#include "proto/streaming.pb.h"

namespace spate::client {

struct Session {
  // Used when neither the options nor the server name a ping interval or
  // ping_max_out.
  static constexpr absl::Duration kDefaultPingInterval = absl::Seconds(5);
  static constexpr int kDefaultPingMaxOut = 3;
  // Bytes of a conn_id.
  static constexpr int kConnIdBytes = 16;

  // Adds the options' credentials to a call to this session's server.
  void Authorize(grpc::ClientContext* context) const;

  ClientOptions options;
  // The "host:port" that accepted the Connect, and its index in
  // options.servers (reconnection tries the next ones first).
  std::string server;
  size_t server_index = 0;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<Streaming::Stub> stub;
  // 16 random bytes naming this connection in every request.
  std::string conn_id;
  ConnectResponse info;
  // options.ping_interval / ping_max_out, else the server's values.
  absl::Duration ping_interval;
  int ping_max_out = kDefaultPingMaxOut;

  const std::string& client_id() const { return options.client_id; }
};

// Sends one ConnectRequest{options.client_id, conn_id} to
// options.servers[server_index] with deadline `timeout` over a new gRPC
// channel of its own (a fresh channel does not inherit the reconnect
// backoff of one whose server died). The server's refusal comes back with
// its code, the message prefixed with the address.
// A gRPC channel to `server` with the TLS of `options` (plaintext without
// tls_ca_file and tls_cert_file) and the client's reconnect backoff; an
// error when a TLS file cannot be read.
absl::StatusOr<std::shared_ptr<grpc::Channel>> NewChannel(
    const ClientOptions& options, const std::string& server);

// Adds the credentials of `options` (token, or user and password) to a
// call's metadata.
void AuthorizeCall(const ClientOptions& options, grpc::ClientContext* context);

absl::StatusOr<std::shared_ptr<const Session>> OpenSession(
    const ClientOptions& options, size_t server_index,
    const std::string& conn_id, absl::Duration timeout);

}  // namespace spate::client

#endif  // SPATE_CLIENT_SESSION_H_
