// GatewayService: the receiving side of gateway links (proto/gateway.proto),
// served on the node's gateway_address to the other clusters. It checks
// that the caller names a configured remote cluster (call metadata
// "spate-cluster"; an unknown cluster is PERMISSION_DENIED, our own name a
// FAILED_PRECONDITION clash) and hands requests to the local Node exactly
// like a client's, so a remote publish is acked only after this cluster's
// channel group committed it.
//
// Remote clients: a client of cluster X publishing here is registered as
// client "gw_<X>_<its id>" (a Connect with a fixed connection id, repeated
// at least every half ping interval while it is active), so client checks,
// limits and expiry work as for local clients.
//
// The gateway listener also serves the Streaming service, for the
// subscriptions other clusters relay under their clients' ids here (see
// Attach in proto/gateway.proto). It has no cluster check of its own: it
// grants nothing the client listener does not (authentication, when it
// comes, must cover both).
//
// Threading: thread-safe (gRPC threads; node callbacks on the loop).
#ifndef SPATE_SERVER_GATEWAY_SERVICE_H_
#define SPATE_SERVER_GATEWAY_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "proto/config.pb.h"
#include "proto/gateway.grpc.pb.h"
#include "server/node.h"

namespace spate::server {

// The client id a remote cluster's client gets in this cluster.
std::string RemoteClientId(const std::string& cluster,
                           const std::string& client_id);

class GatewayService final : public Gateway::CallbackService {
 public:
  // `node` and `config` must outlive the service.
  GatewayService(Node* node, const ServerConfig* config);

  grpc::ServerUnaryReactor* Hello(grpc::CallbackServerContext* context,
                                  const GatewayHelloRequest* request,
                                  GatewayHelloResponse* response) override;
  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* context,
                                    const PubBatch* request,
                                    PubAckBatch* response) override;
  grpc::ServerUnaryReactor* Fetch(grpc::CallbackServerContext* context,
                                  const GatewayFetchRequest* request,
                                  GatewayFetchResponse* response) override;
  grpc::ServerUnaryReactor* Attach(grpc::CallbackServerContext* context,
                                   const GatewayAttachRequest* request,
                                   GatewayAttachResponse* response) override;

 private:
  // The caller's cluster name, or why it is refused.
  absl::StatusOr<std::string> Caller(
      const grpc::CallbackServerContext& context) const;
  // Registers (or refreshes) remote client `client_id`, then runs `then`.
  void Register(const std::string& client_id, StatusDone then);

  Node* node_;
  const ServerConfig* config_;
  absl::flat_hash_set<std::string> remotes_;
  absl::Mutex mu_;
  // Remote client id → when it was last (re)connected, ns.
  absl::flat_hash_map<std::string, int64_t> attached_ns_ ABSL_GUARDED_BY(mu_);
};

}  // namespace spate::server

#endif  // SPATE_SERVER_GATEWAY_SERVICE_H_
