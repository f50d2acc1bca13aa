#include "client/session.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "client/grpc_status.h"
#include "grpc/grpc.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace spate::client {
namespace {

// gRPC's own reconnect backoff starts at 1 s and grows to 120 s; a client
// that reconnects on its own keeps it short so that a restarted server is
// found within a few hundred milliseconds. (GRPC_ARG_MIN_RECONNECT_BACKOFF_MS
// stays at its default: it is also the TCP connect timeout, and a short one
// fails connects on a loaded machine.)
constexpr int kReconnectBackoffInitialMs = 100;
constexpr int kReconnectBackoffMaxMs = 1000;

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// Plaintext, or TLS when the options name a CA or a client certificate.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> Credentials(
    const ClientOptions& options) {
  if (options.tls_ca_file.empty() && options.tls_cert_file.empty()) {
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions ssl;
  if (!options.tls_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadFile(options.tls_ca_file);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
  }
  if (!options.tls_cert_file.empty()) {
    absl::StatusOr<std::string> cert = ReadFile(options.tls_cert_file);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadFile(options.tls_key_file);
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::Channel>> NewChannel(
    const ClientOptions& options, const std::string& server) {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      Credentials(options);
  if (!credentials.ok()) return credentials.status();
  grpc::ChannelArguments args;
  if (!options.tls_server_name_override.empty()) {
    args.SetSslTargetNameOverride(options.tls_server_name_override);
  }
  // Deliveries are batches; their size is the server's business.
  args.SetMaxReceiveMessageSize(-1);
  // Subchannels are shared process-wide by default, backoff state included.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              kReconnectBackoffInitialMs);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, kReconnectBackoffMaxMs);
  return grpc::CreateCustomChannel(server, *credentials, args);
}

void Session::Authorize(grpc::ClientContext* context) const {
  AuthorizeCall(options, context);
}

void AuthorizeCall(const ClientOptions& options, grpc::ClientContext* context) {
  if (!options.token.empty()) {
    context->AddMetadata("authorization",
                         absl::StrCat("Bearer ", options.token));
  } else if (!options.user.empty()) {
    context->AddMetadata(
        "authorization",
        absl::StrCat("Basic ", absl::Base64Escape(absl::StrCat(
                                   options.user, ":", options.password))));
  }
}

absl::StatusOr<std::shared_ptr<const Session>> OpenSession(
    const ClientOptions& options, size_t server_index,
    const std::string& conn_id, absl::Duration timeout) {
  const std::string& server = options.servers.at(server_index);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> dialed =
      NewChannel(options, server);
  if (!dialed.ok()) return dialed.status();
  std::shared_ptr<grpc::Channel> channel = *std::move(dialed);
  std::unique_ptr<Streaming::Stub> stub = Streaming::NewStub(channel);
  ConnectRequest request;
  request.set_client_id(options.client_id);
  request.set_conn_id(conn_id);
  ConnectResponse response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  AuthorizeCall(options, &context);
  const absl::Status status =
      FromGrpcStatus(stub->Connect(&context, request, &response));
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat("connect to ", server, ": ",
                                                    status.message()));
  }
  auto session = std::make_shared<Session>();
  session->options = options;
  session->server = server;
  session->server_index = server_index;
  session->channel = std::move(channel);
  session->stub = std::move(stub);
  session->conn_id = conn_id;
  session->info = std::move(response);
  session->ping_interval = options.ping_interval;
  if (session->ping_interval <= absl::ZeroDuration()) {
    session->ping_interval =
        session->info.ping_interval_ms() > 0
            ? absl::Milliseconds(session->info.ping_interval_ms())
            : Session::kDefaultPingInterval;
  }
  session->ping_max_out = options.ping_max_out;
  if (session->ping_max_out <= 0) {
    session->ping_max_out = session->info.ping_max_out() > 0
                                ? session->info.ping_max_out()
                                : Session::kDefaultPingMaxOut;
  }
  return std::shared_ptr<const Session>(std::move(session));
}

}  // namespace spate::client
