#include "server/gateway_service.h"

#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/log.h"
#include "server/gateway_client.h"
#include "server/grpc_status.h"
#include "server/validation.h"

namespace spate::server {

std::string RemoteClientId(const std::string& cluster,
                           const std::string& client_id) {
  return absl::StrCat("gw_", cluster, "_", client_id);
}

namespace {

std::string RemoteConnId(const std::string& remote_client_id) {
  return absl::StrCat("gateway:", remote_client_id);
}

}  // namespace

GatewayService::GatewayService(Node* node, const ServerConfig* config)
    : node_(node), config_(config) {
  for (const RemoteClusterConfig& remote : config->gateways()) {
    remotes_.insert(remote.name());
  }
}

absl::StatusOr<std::string> GatewayService::Caller(
    const grpc::CallbackServerContext& context) const {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(kGatewayClusterMetadataKey);
  if (it == metadata.end()) {
    return absl::InvalidArgumentError(
        "gateway call without the caller's cluster name");
  }
  std::string cluster(it->second.data(), it->second.size());
  if (cluster == config_->node().cluster_name()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cluster name clash: the caller is also named '", cluster,
                     "'; every linked cluster needs a unique name"));
  }
  if (!remotes_.contains(cluster)) {
    return absl::PermissionDeniedError(
        absl::StrCat("cluster '", cluster, "' is not among cluster '",
                     config_->node().cluster_name(), "''s gateways"));
  }
  return cluster;
}

grpc::ServerUnaryReactor* GatewayService::Hello(
    grpc::CallbackServerContext* context, const GatewayHelloRequest* request,
    GatewayHelloResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<std::string> caller = Caller(*context);
  if (caller.ok() && request->cluster_name() != *caller) {
    caller = absl::InvalidArgumentError("cluster names disagree");
  }
  if (!caller.ok()) {
    LOG(WARNING) << "gateway hello refused: " << caller.status();
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  node_->GatewayDirectory(
      *request, [reactor, response](absl::StatusOr<GatewayHelloResponse> r) {
        if (!r.ok()) {
          reactor->Finish(ToGrpcStatus(r.status()));
          return;
        }
        *response = *std::move(r);
        reactor->Finish(grpc::Status::OK);
      });
  return reactor;
}

void GatewayService::Register(const std::string& client_id, StatusDone then) {
  const int64_t now_ns = absl::GetCurrentTimeNanos();
  const int64_t fresh_ns = config_->clients().ping_interval_ms() * 500000;
  {
    absl::MutexLock lock(&mu_);
    auto it = attached_ns_.find(client_id);
    if (it != attached_ns_.end() && now_ns - it->second < fresh_ns) {
      then(absl::OkStatus());
      return;
    }
  }
  ConnectRequest connect;
  connect.set_client_id(client_id);
  // Fixed per remote client: a repeated Connect is idempotent and counts
  // as a ping.
  connect.set_conn_id(RemoteConnId(client_id));
  auto shared = std::make_shared<StatusDone>(std::move(then));
  node_->Connect(connect, /*hops=*/0,
                 [this, client_id, now_ns,
                  shared](absl::StatusOr<ConnectResponse> response) {
                   if (response.ok()) {
                     absl::MutexLock lock(&mu_);
                     attached_ns_[client_id] = now_ns;
                   }
                   (*shared)(response.status());
                 });
}

grpc::ServerUnaryReactor* GatewayService::Publish(
    grpc::CallbackServerContext* context, const PubBatch* request,
    PubAckBatch* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<std::string> caller = Caller(*context);
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  if (request->msgs_size() == 0) {
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  struct Collector {
    absl::Mutex mu;
    int remaining;
  };
  auto collector = std::make_shared<Collector>();
  collector->remaining = request->msgs_size();
  for (int i = 0; i < request->msgs_size(); ++i) response->add_acks();
  auto record = [reactor, response, collector](size_t index,
                                               const PubAck& ack) {
    bool last;
    {
      absl::MutexLock lock(&collector->mu);
      *response->mutable_acks(static_cast<int>(index)) = ack;
      last = --collector->remaining == 0;
    }
    if (last) reactor->Finish(grpc::Status::OK);
  };
  // Messages by remote client, each group published once its client is
  // registered here.
  struct Group {
    std::vector<PubMsg> msgs;
    std::vector<size_t> positions;
  };
  absl::flat_hash_map<std::string, Group> groups;
  for (int i = 0; i < request->msgs_size(); ++i) {
    PubMsg msg = request->msgs(i);
    msg.set_client_id(RemoteClientId(*caller, msg.client_id()));
    msg.clear_conn_id();
    absl::Status status = ValidatePubMsg(msg, config_->store());
    if (!status.ok()) {
      record(static_cast<size_t>(i), ErrorAck(msg.guid(), status));
      continue;
    }
    Group& group = groups[msg.client_id()];
    group.positions.push_back(static_cast<size_t>(i));
    group.msgs.push_back(std::move(msg));
  }
  for (auto& [client_id, group] : groups) {
    auto shared = std::make_shared<Group>(std::move(group));
    Register(client_id, [this, shared, record](absl::Status status) {
      if (!status.ok()) {
        for (size_t i = 0; i < shared->msgs.size(); ++i) {
          record(shared->positions[i],
                 ErrorAck(shared->msgs[i].guid(), status));
        }
        return;
      }
      std::vector<size_t> positions = shared->positions;
      // hops = 1: it may still be forwarded to this cluster's leader, but
      // never routed over a gateway again (no loops between clusters).
      node_->Publish(std::move(shared->msgs), /*hops=*/1,
                     [record, positions](size_t index, const PubAck& ack) {
                       record(positions[index], ack);
                     });
    });
  }
  return reactor;
}

grpc::ServerUnaryReactor* GatewayService::Attach(
    grpc::CallbackServerContext* context, const GatewayAttachRequest* request,
    GatewayAttachResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<std::string> caller = Caller(*context);
  if (caller.ok()) {
    if (absl::Status valid = ValidateClientId(request->client_id());
        !valid.ok()) {
      caller = valid;
    }
  }
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  const std::string client_id = RemoteClientId(*caller, request->client_id());
  if (absl::Status valid = ValidateClientId(client_id); !valid.ok()) {
    reactor->Finish(ToGrpcStatus(valid));
    return reactor;
  }
  Register(client_id, [reactor, response, client_id](absl::Status status) {
    if (status.ok()) {
      response->set_client_id(client_id);
      response->set_conn_id(RemoteConnId(client_id));
    }
    reactor->Finish(ToGrpcStatus(status));
  });
  return reactor;
}

grpc::ServerUnaryReactor* GatewayService::Fetch(
    grpc::CallbackServerContext* context, const GatewayFetchRequest* request,
    GatewayFetchResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<std::string> caller = Caller(*context);
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  node_->GatewayFetch(
      *request, [reactor, response](absl::StatusOr<GatewayFetchResponse> r) {
        if (!r.ok()) {
          reactor->Finish(ToGrpcStatus(r.status()));
          return;
        }
        *response = *std::move(r);
        reactor->Finish(grpc::Status::OK);
      });
  return reactor;
}

}  // namespace spate::server
