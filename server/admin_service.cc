#include "server/admin_service.h"

#include <utility>

#include "server/forwarder.h"
#include "server/grpc_status.h"

namespace spate::server {

grpc::ServerUnaryReactor* AdminService::ClusterStatus(
    grpc::CallbackServerContext* context, const ClusterStatusRequest* request,
    ClusterStatusResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  node_->ClusterStatus(
      [reactor, response](absl::StatusOr<ClusterStatusResponse> status) {
        if (status.ok()) *response = *std::move(status);
        reactor->Finish(ToGrpcStatus(status.status()));
      });
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::AddNode(
    grpc::CallbackServerContext* context, const AddNodeRequest* request,
    AddNodeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (request->node_id() < 1 || request->cluster_address().empty() ||
      request->client_address().empty()) {
    reactor->Finish(ToGrpcStatus(absl::InvalidArgumentError(
        "node_id (>= 1), cluster_address and client_address are required")));
    return reactor;
  }
  node_->AddNode(*request, IncomingHops(*context),
                 [reactor](absl::Status status) {
                   reactor->Finish(ToGrpcStatus(status));
                 });
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::RemoveNode(
    grpc::CallbackServerContext* context, const RemoveNodeRequest* request,
    RemoveNodeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (request->node_id() < 1) {
    reactor->Finish(
        ToGrpcStatus(absl::InvalidArgumentError("node_id must be >= 1")));
    return reactor;
  }
  node_->RemoveNode(*request, IncomingHops(*context),
                    [reactor](absl::Status status) {
                      reactor->Finish(ToGrpcStatus(status));
                    });
  return reactor;
}

}  // namespace spate::server
