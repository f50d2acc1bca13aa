#include "server/admin_service.h"

#include <utility>

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

}  // namespace spate::server
