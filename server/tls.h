// TLS credentials from configuration: turns a TlsConfig (proto/config.proto)
// into the gRPC credentials of a listener or of a channel dialing one. Used
// for the client listener, the cluster listener and raft links, the
// node-to-node channels to client listeners (forwarding, snapshot
// transfers), and by gateways for their own listener and links.
//
//   ServerCredentialsFor(tls): TLS off (no cert_file) → insecure; on → SSL
//     with the certificate and key; with require_client_cert, clients must
//     present a certificate that chains to ca_file (mTLS).
//   ChannelCredentialsFor(tls): TLS off → insecure; on → SSL verifying the
//     server against ca_file (system roots when empty) and presenting
//     cert_file/key_file as the client certificate when set.
//
// Files are read once per call; errors (missing file, key without cert)
// are InvalidArgument naming the field and file, for start-up messages.
//
// Threading: pure functions (they read files), any thread.
#ifndef SPATE_SERVER_TLS_H_
#define SPATE_SERVER_TLS_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/config.pb.h"

namespace spate::server {

// Whether `tls` turns TLS on.
bool TlsEnabled(const TlsConfig& tls);

// Checks that the files named in `tls` exist and are readable and that the
// combination makes sense; `field` names the config field in errors
// ("client_tls").
absl::Status ValidateTlsConfig(const TlsConfig& tls, const std::string& field);

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFor(
    const TlsConfig& tls);

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(
    const TlsConfig& tls);

// Channel arguments a channel built with ChannelCredentialsFor(tls) needs
// (the server name override, if any), added to `args`.
void AddTlsChannelArguments(const TlsConfig& tls, grpc::ChannelArguments* args);

// How a node dials another node's client listener (request forwarding,
// snapshot transfers): TLS as client_tls says (the node presents its
// client_tls certificate and verifies the peer against client_tls.ca_file),
// the cluster token as its credentials (server/auth.h: node traffic), and
// bounded message sizes. Default-constructed: plaintext, no credentials.
struct ClientLinkOptions {
  std::shared_ptr<grpc::ChannelCredentials> credentials;  // null: plaintext
  std::string server_name_override;
  // Value of the `authorization` metadata of every call; empty: none.
  std::string authorization;
  // Largest message received or sent on the link; -1: unlimited.
  int max_message_bytes = -1;

  std::shared_ptr<grpc::Channel> Dial(const std::string& address) const;
  // Adds the call's credentials.
  void Prepare(grpc::ClientContext* context) const;
};

// From the node's configuration (client_tls, auth.cluster_token, message
// size limits).
absl::StatusOr<ClientLinkOptions> ClientLinkOptionsFor(
    const ServerConfig& config);

}  // namespace spate::server

#endif  // SPATE_SERVER_TLS_H_
