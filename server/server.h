// Server: a running Spate node — the Node engine, its gRPC listener for
// clients and, in a cluster, the raft transport to the other nodes and the
// forwarder of requests to leaders, and the HTTP monitoring listener
// (when monitor_address is set). Start binds the client address (port 0
// picks a free port; the bound address is reported) and starts the node's
// loop; Stop ends streams and stops the node, then the listeners.
// Threading: Start/Stop from one thread; gRPC runs its own threads.
#ifndef SPATE_SERVER_SERVER_H_
#define SPATE_SERVER_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/config.pb.h"
#include "server/admin_service.h"
#include "server/auth.h"
#include "server/clock.h"
#include "server/forwarder.h"
#include "server/gateway_client.h"
#include "server/gateway_service.h"
#include "server/grpc_transport.h"
#include "server/monitor_server.h"
#include "server/node.h"
#include "server/snapshot_service.h"
#include "server/streaming_service.h"

namespace spate::server {

class Server {
 public:
  // Opens the node's store (recovering its state) and starts serving.
  // `config` must be valid (ValidateConfig).
  static absl::StatusOr<std::unique_ptr<Server>> Start(
      const ServerConfig& config);
  ~Server();

  // Before Stop on a graceful shutdown (SIGTERM): hands this node's
  // leaderships to its peers, waiting at most `max_wait`. A no-op for a
  // single node.
  void Drain(absl::Duration max_wait);
  // A config reload: new channel limits (store.limits, channel_overrides).
  void ReloadLimits(const StoreConfig& store) { node_->ReloadLimits(store); }
  // Stops accepting, ends streams with UNAVAILABLE, stops the node.
  void Stop();

  // The address clients can dial, with the port actually bound.
  const std::string& client_address() const { return client_address_; }
  // The gateway address with the port actually bound (empty: none).
  const std::string& gateway_address() const { return gateway_address_; }
  // The monitoring HTTP address with its bound port; empty when off.
  std::string monitor_address() const {
    return monitor_ == nullptr ? "" : monitor_->address();
  }
  Node* node() { return node_.get(); }

 private:
  Server() = default;

  ServerConfig config_;
  SystemClock clock_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<Authenticator> gateway_auth_;  // authentication off
  std::unique_ptr<Node> node_;
  std::unique_ptr<Forwarder> forwarder_;
  std::unique_ptr<GrpcTransport> transport_;
  std::unique_ptr<StreamingService> service_;
  std::unique_ptr<AdminService> admin_;
  std::unique_ptr<SnapshotService> snapshots_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::unique_ptr<GatewayClient> gateway_client_;
  std::unique_ptr<GatewayService> gateway_service_;
  std::unique_ptr<StreamingService> gateway_streaming_;
  std::unique_ptr<grpc::Server> gateway_server_;
  std::unique_ptr<MonitorEndpoints> endpoints_;
  std::unique_ptr<MonitorServer> monitor_;
  std::string client_address_;
  std::string gateway_address_;
  bool stopped_ = false;
};

}  // namespace spate::server

#endif  // SPATE_SERVER_SERVER_H_
