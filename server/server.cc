#include "server/server.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "server/protobuf_log.h"
#include "server/tls.h"

namespace spate::server {

absl::StatusOr<std::unique_ptr<Server>> Server::Start(
    const ServerConfig& config) {
  // Protobuf logs a line per malformed client message: bounded rate.
  InstallProtobufLogHandler();
  std::unique_ptr<Server> server(new Server());
  server->config_ = config;
  RETURN_IF_ERROR(ValidateTlsConfig(config.client_tls(), "client_tls"));
  RETURN_IF_ERROR(ValidateTlsConfig(config.cluster_tls(), "cluster_tls"));
  if (TlsEnabled(config.cluster_tls()) &&
      config.cluster_tls().ca_file().empty()) {
    return absl::InvalidArgumentError(
        "cluster_tls.ca_file: required (cluster links are mutual TLS)");
  }
  RETURN_IF_ERROR(ValidateTlsConfig(config.gateway_tls(), "gateway_tls"));
  if (TlsEnabled(config.gateway_tls()) &&
      config.gateway_tls().ca_file().empty()) {
    return absl::InvalidArgumentError(
        "gateway_tls.ca_file: required (gateway links are mutual TLS)");
  }
  // Gateway links are always mutual when TLS is on: the listener requires
  // a client certificate of gateway_tls.ca_file, and dialers present theirs.
  TlsConfig gateway_tls = config.gateway_tls();
  if (TlsEnabled(gateway_tls)) gateway_tls.set_require_client_cert(true);
  absl::StatusOr<std::unique_ptr<Authenticator>> auth =
      Authenticator::Create(config.auth());
  if (!auth.ok()) return auth.status();
  server->auth_ = *std::move(auth);
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> client_credentials =
      ServerCredentialsFor(config.client_tls());
  if (!client_credentials.ok()) return client_credentials.status();
  absl::StatusOr<ClientLinkOptions> link = ClientLinkOptionsFor(config);
  if (!link.ok()) return link.status();
  absl::StatusOr<std::unique_ptr<Node>> node =
      Node::Open(server->config_, &server->clock_);
  if (!node.ok()) return node.status();
  server->node_ = *std::move(node);
  const NodeConfig& node_config = server->config_.node();
  if (node_config.peers_size() > 0) {
    absl::flat_hash_map<raft::NodeId, std::string> client_addresses;
    GrpcTransportOptions transport;
    transport.cluster_name = node_config.cluster_name();
    transport.node_id = node_config.id();
    transport.listen_address = node_config.cluster_address();
    if (TlsEnabled(config.cluster_tls())) {
      // Cluster links are always mutual: both ends verify each other.
      TlsConfig tls = config.cluster_tls();
      tls.set_require_client_cert(true);
      absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> listener =
          ServerCredentialsFor(tls);
      if (!listener.ok()) return listener.status();
      absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> peer =
          ChannelCredentialsFor(tls);
      if (!peer.ok()) return peer.status();
      transport.listener_credentials = *std::move(listener);
      transport.peer_credentials = *std::move(peer);
      transport.tls_server_name_override = tls.server_name_override();
    }
    for (const PeerConfig& peer : node_config.peers()) {
      transport.peers[peer.id()] = peer.cluster_address();
      if (!peer.client_address().empty()) {
        client_addresses[peer.id()] = peer.client_address();
      }
    }
    Node* raw_node = server->node_.get();
    absl::StatusOr<std::unique_ptr<GrpcTransport>> started =
        GrpcTransport::Start(
            transport,
            [raw_node](raft::NodeId from, std::vector<raft::Message> messages) {
              raw_node->OnRaftMessages(from, std::move(messages));
            });
    if (!started.ok()) return started.status();
    server->transport_ = *std::move(started);
    server->forwarder_ =
        std::make_unique<Forwarder>(client_addresses, *std::move(link));
    server->node_->SetCluster(server->transport_.get(),
                              server->forwarder_.get());
  }
  if (server->config_.gateways_size() > 0) {
    GatewayClientOptions gateway;
    gateway.cluster_name = node_config.cluster_name();
    gateway.remotes.assign(server->config_.gateways().begin(),
                           server->config_.gateways().end());
    gateway.request_timeout_ms = server->config_.gateway().request_timeout_ms();
    gateway.directory_refresh_ms =
        server->config_.gateway().directory_refresh_ms();
    if (TlsEnabled(gateway_tls)) {
      absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
          ChannelCredentialsFor(gateway_tls);
      if (!credentials.ok()) return credentials.status();
      gateway.credentials = *std::move(credentials);
      gateway.tls_server_name_override = gateway_tls.server_name_override();
    }
    server->gateway_client_ = std::make_unique<GatewayClient>(gateway);
    server->node_->SetGateways(server->gateway_client_.get());
  }
  server->service_ = std::make_unique<StreamingService>(
      server->node_.get(), &server->config_, server->auth_.get());

  grpc::ServerBuilder builder;
  int port = 0;
  const std::string& address = server->config_.node().client_address();
  builder.AddListeningPort(address, *client_credentials, &port);
  builder.RegisterService(server->service_.get());
  server->endpoints_ = std::make_unique<MonitorEndpoints>(
      server->node_.get(), server->node_->metrics());
  server->admin_ = std::make_unique<AdminService>(
      server->node_.get(), server->endpoints_.get(), server->auth_.get());
  builder.RegisterService(server->admin_.get());
  server->snapshots_ = std::make_unique<SnapshotService>(
      server->node_->snapshot_transfers(), node_config.cluster_name(),
      server->auth_.get());
  builder.RegisterService(server->snapshots_.get());
  // A PubBatch holds at least one message of max_payload plus framing.
  builder.SetMaxReceiveMessageSize(static_cast<int>(
      server->config_.store().max_payload_bytes() + (4 << 20)));
  builder.SetMaxSendMessageSize(static_cast<int>(
      server->config_.subscriptions().max_pending_bytes() + (4 << 20)));
  server->node_->Start();
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || port == 0) {
    server->node_->Stop();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on client address ", address,
                     " (in use, or not a valid host:port)"));
  }
  const std::string host = address.substr(0, address.rfind(':'));
  server->client_address_ = absl::StrCat(host, ":", port);
  if (!node_config.gateway_address().empty()) {
    server->gateway_service_ =
        std::make_unique<GatewayService>(server->node_.get(), &server->config_);
    grpc::ServerBuilder gateway_builder;
    int gateway_port = 0;
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>>
        gateway_credentials = ServerCredentialsFor(gateway_tls);
    if (!gateway_credentials.ok()) {
      server->Stop();
      return gateway_credentials.status();
    }
    gateway_builder.AddListeningPort(node_config.gateway_address(),
                                     *gateway_credentials, &gateway_port);
    gateway_builder.RegisterService(server->gateway_service_.get());
    // Subscriptions relayed by other clusters (GatewayClient::Subscribe).
    // Gateway links are not authenticated as clients (docs/security.md;
    // gateway_tls authenticates the remote cluster's nodes): this service
    // gets an authenticator with authentication off.
    absl::StatusOr<std::unique_ptr<Authenticator>> gateway_auth =
        Authenticator::Create(AuthConfig());
    if (!gateway_auth.ok()) return gateway_auth.status();
    server->gateway_auth_ = *std::move(gateway_auth);
    server->gateway_streaming_ = std::make_unique<StreamingService>(
        server->node_.get(), &server->config_, server->gateway_auth_.get());
    gateway_builder.RegisterService(server->gateway_streaming_.get());
    gateway_builder.SetMaxReceiveMessageSize(static_cast<int>(
        server->config_.store().max_payload_bytes() + (4 << 20)));
    gateway_builder.SetMaxSendMessageSize(128 << 20);
    server->gateway_server_ = gateway_builder.BuildAndStart();
    if (server->gateway_server_ == nullptr || gateway_port == 0) {
      server->Stop();
      return absl::UnavailableError(absl::StrCat(
          "cannot listen on gateway address ", node_config.gateway_address(),
          " (in use, or not a valid host:port)"));
    }
    const std::string& gateway = node_config.gateway_address();
    server->gateway_address_ =
        absl::StrCat(gateway.substr(0, gateway.rfind(':')), ":", gateway_port);
    LOG(INFO) << "serving gateways address=" << server->gateway_address_
              << " cluster=" << node_config.cluster_name();
  }
  if (server->gateway_client_ != nullptr) server->gateway_client_->Start();
  if (!server->config_.monitor_address().empty()) {
    MonitorServerOptions monitor;
    monitor.address = server->config_.monitor_address();
    absl::StatusOr<std::unique_ptr<MonitorServer>> started =
        MonitorServer::Start(monitor, server->endpoints_.get());
    if (!started.ok()) {
      server->Stop();
      return started.status();
    }
    server->monitor_ = *std::move(started);
  }
  LOG(INFO) << "serving clients address=" << server->client_address_
            << " node=" << config.node().id()
            << " cluster=" << config.node().cluster_name();
  return server;
}

Server::~Server() { Stop(); }

void Server::Drain(absl::Duration max_wait) {
  if (stopped_ || transport_ == nullptr) return;
  node_->HandOffLeadership(max_wait);
}

void Server::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (gateway_client_ != nullptr) gateway_client_->Stop();
  if (monitor_ != nullptr) monitor_->Stop();
  // Stop the node first so every stream ends with UNAVAILABLE from its side
  // and every unary call is answered. gRPC then waits for idle client
  // connections until the deadline, which therefore stays short.
  // Start() may have failed before the node or the listener existed (a
  // corrupt store, an address in use): stop only what was made.
  if (node_ != nullptr) node_->Stop();
  if (grpc_server_ != nullptr) {
    grpc_server_->Shutdown(
        absl::ToChronoTime(absl::Now() + absl::Milliseconds(500)));
  }
  if (gateway_server_ != nullptr) {
    gateway_server_->Shutdown(
        absl::ToChronoTime(absl::Now() + absl::Milliseconds(500)));
  }
  if (transport_ != nullptr) transport_->Shutdown();
  LOG(INFO) << "server stopped node=" << config_.node().id();
}

}  // namespace spate::server
