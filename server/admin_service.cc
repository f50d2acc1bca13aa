#include "server/admin_service.h"

#include <filesystem>
#include <map>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "server/forwarder.h"
#include "server/grpc_status.h"
#include "server/validation.h"

namespace spate::server {

bool AdminService::Allowed(grpc::CallbackServerContext* context,
                           grpc::ServerUnaryReactor* reactor) const {
  absl::StatusOr<const Principal*> principal = auth_->Authenticate(*context);
  absl::Status status =
      principal.ok() ? (*principal)->CheckAdmin() : principal.status();
  if (status.ok()) return true;
  reactor->Finish(ToGrpcStatus(status));
  return false;
}

grpc::ServerUnaryReactor* AdminService::ClusterStatus(
    grpc::CallbackServerContext* context, const ClusterStatusRequest* request,
    ClusterStatusResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!Allowed(context, reactor)) return reactor;
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
  if (!Allowed(context, reactor)) return reactor;
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
  if (!Allowed(context, reactor)) return reactor;
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

grpc::ServerUnaryReactor* AdminService::AddMirror(
    grpc::CallbackServerContext* context, const AddMirrorRequest* request,
    AddMirrorResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!Allowed(context, reactor)) return reactor;
  absl::Status valid = ValidateChannelName(request->channel());
  if (valid.ok() && !request->source_channel().empty()) {
    valid = ValidateChannelName(request->source_channel());
  }
  if (valid.ok() && request->source_cluster().empty()) {
    valid = absl::InvalidArgumentError("source_cluster is required");
  }
  if (!valid.ok()) {
    reactor->Finish(ToGrpcStatus(valid));
    return reactor;
  }
  node_->AddMirror(
      *request, IncomingHops(*context),
      [reactor, response](absl::StatusOr<AddMirrorResponse> added) {
        if (added.ok()) *response = *std::move(added);
        reactor->Finish(ToGrpcStatus(added.status()));
      });
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::RemoveMirror(
    grpc::CallbackServerContext* context, const RemoveMirrorRequest* request,
    RemoveMirrorResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!Allowed(context, reactor)) return reactor;
  if (absl::Status valid = ValidateChannelName(request->channel());
      !valid.ok()) {
    reactor->Finish(ToGrpcStatus(valid));
    return reactor;
  }
  node_->RemoveMirror(*request, IncomingHops(*context),
                      [reactor](absl::Status status) {
                        reactor->Finish(ToGrpcStatus(status));
                      });
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::ListMirrors(
    grpc::CallbackServerContext* context, const ListMirrorsRequest* request,
    ListMirrorsResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!Allowed(context, reactor)) return reactor;
  node_->ListMirrors(
      [reactor, response](absl::StatusOr<ListMirrorsResponse> listed) {
        if (listed.ok()) *response = *std::move(listed);
        reactor->Finish(ToGrpcStatus(listed.status()));
      });
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::Monitor(
    grpc::CallbackServerContext* context, const MonitorRequest* request,
    MonitorReply* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!Allowed(context, reactor)) return reactor;
  const std::map<std::string, std::string> params(request->params().begin(),
                                                  request->params().end());
  MonitorAnswer answer = endpoints_->Handle(request->path(), params);
  response->set_http_status(answer.status);
  response->set_content_type(answer.content_type);
  response->set_body(std::move(answer.body));
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::Backup(
    grpc::CallbackServerContext* context, const BackupRequest* request,
    BackupResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!Allowed(context, reactor)) return reactor;
  const std::string dir = request->dir();
  if (dir.empty() || dir[0] != '/') {
    reactor->Finish(ToGrpcStatus(absl::InvalidArgumentError(
        "backup dir must be an absolute path on the server's host")));
    return reactor;
  }
  std::error_code error;
  if (std::filesystem::exists(dir, error)) {
    reactor->Finish(ToGrpcStatus(absl::AlreadyExistsError(
        absl::StrCat("backup dir ", dir, " already exists"))));
    return reactor;
  }
  // A checkpoint flushes memtables and links or copies files: seconds on a
  // big store, so not on a gRPC thread.
  std::thread([this, reactor, response, dir] {
    LOG(INFO) << "backup started dir=" << dir;
    absl::Status status = node_->Backup(dir);
    if (status.ok()) {
      int32_t files = 0;
      int64_t bytes = 0;
      std::error_code ignored;  // sizes are informative only
      for (const auto& entry :
           std::filesystem::directory_iterator(dir, ignored)) {
        ++files;
        if (entry.is_regular_file(ignored)) {
          bytes += static_cast<int64_t>(entry.file_size(ignored));
        }
      }
      response->set_dir(dir);
      response->set_files(files);
      response->set_bytes(bytes);
      LOG(INFO) << "backup done dir=" << dir << " files=" << files
                << " bytes=" << bytes;
    } else {
      LOG(ERROR) << "backup failed dir=" << dir << ": " << status;
    }
    reactor->Finish(ToGrpcStatus(status));
  }).detach();
  return reactor;
}

}  // namespace spate::server
