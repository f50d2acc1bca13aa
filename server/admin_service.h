// AdminService: the operator API (proto/admin.proto) on the client port —
// cluster status, adding/removing nodes and declaring mirrors (answered by
// the metadata leader; other nodes say which node that is), the monitoring
// endpoints for the
// CLI, and backups of this node's store. Every RPC needs the `admin`
// permission when authentication is on (server/auth.h).
// Threading: gRPC callback handlers; answers come from the node's loop.
// Monitor waits (bounded) for a snapshot on the handler thread; Backup
// runs the checkpoint on a thread of its own.
#ifndef SPATE_SERVER_ADMIN_SERVICE_H_
#define SPATE_SERVER_ADMIN_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "proto/admin.grpc.pb.h"
#include "server/auth.h"
#include "server/monitor_endpoints.h"
#include "server/node.h"

namespace spate::server {

class AdminService final : public Admin::CallbackService {
 public:
  // `node`, `endpoints` and `auth` must outlive the service.
  AdminService(Node* node, MonitorEndpoints* endpoints,
               const Authenticator* auth)
      : node_(node), endpoints_(endpoints), auth_(auth) {}

  grpc::ServerUnaryReactor* ClusterStatus(
      grpc::CallbackServerContext* context, const ClusterStatusRequest* request,
      ClusterStatusResponse* response) override;
  grpc::ServerUnaryReactor* AddNode(grpc::CallbackServerContext* context,
                                    const AddNodeRequest* request,
                                    AddNodeResponse* response) override;
  grpc::ServerUnaryReactor* RemoveNode(grpc::CallbackServerContext* context,
                                       const RemoveNodeRequest* request,
                                       RemoveNodeResponse* response) override;
  grpc::ServerUnaryReactor* Monitor(grpc::CallbackServerContext* context,
                                    const MonitorRequest* request,
                                    MonitorReply* response) override;
  grpc::ServerUnaryReactor* Backup(grpc::CallbackServerContext* context,
                                   const BackupRequest* request,
                                   BackupResponse* response) override;
  grpc::ServerUnaryReactor* AddMirror(grpc::CallbackServerContext* context,
                                      const AddMirrorRequest* request,
                                      AddMirrorResponse* response) override;
  grpc::ServerUnaryReactor* RemoveMirror(
      grpc::CallbackServerContext* context, const RemoveMirrorRequest* request,
      RemoveMirrorResponse* response) override;
  grpc::ServerUnaryReactor* ListMirrors(grpc::CallbackServerContext* context,
                                        const ListMirrorsRequest* request,
                                        ListMirrorsResponse* response) override;

 private:
  // OK when the caller may use Admin RPCs; otherwise the reactor finished.
  bool Allowed(grpc::CallbackServerContext* context,
               grpc::ServerUnaryReactor* reactor) const;

  Node* node_;
  MonitorEndpoints* endpoints_;
  const Authenticator* auth_;
};

}  // namespace spate::server

#endif  // SPATE_SERVER_ADMIN_SERVICE_H_
