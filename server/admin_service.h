// AdminService: the operator API (proto/admin.proto) on the client port —
// cluster status, and adding/removing nodes (answered by the metadata
// leader; other nodes say which node that is).
// Threading: gRPC callback handlers; answers come from the node's loop.
#ifndef SPATE_SERVER_ADMIN_SERVICE_H_
#define SPATE_SERVER_ADMIN_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "proto/admin.grpc.pb.h"
#include "server/node.h"

namespace spate::server {

class AdminService final : public Admin::CallbackService {
 public:
  explicit AdminService(Node* node) : node_(node) {}

  grpc::ServerUnaryReactor* ClusterStatus(
      grpc::CallbackServerContext* context, const ClusterStatusRequest* request,
      ClusterStatusResponse* response) override;
  grpc::ServerUnaryReactor* AddNode(grpc::CallbackServerContext* context,
                                    const AddNodeRequest* request,
                                    AddNodeResponse* response) override;
  grpc::ServerUnaryReactor* RemoveNode(grpc::CallbackServerContext* context,
                                       const RemoveNodeRequest* request,
                                       RemoveNodeResponse* response) override;

 private:
  Node* node_;
};

}  // namespace spate::server

#endif  // SPATE_SERVER_ADMIN_SERVICE_H_
