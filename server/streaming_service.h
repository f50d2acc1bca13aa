// StreamingService: the client gRPC API (proto/streaming.proto) on gRPC's
// callback API. It validates every request at the edge (server/
// validation.h) and hands it to the Node; replies arrive on the node's
// loop thread and are written asynchronously, so no gRPC thread ever waits
// for a commit.
//
// Streams: PublishStream and Subscribe each keep a small state object
// shared with the node (the node may call it after the reactor is gone).
// Writes are one outstanding frame at a time; whatever accumulates while a
// frame is in flight goes into the next frame (natural batching). No lock
// is held while calling into gRPC (StartWrite/StartRead/Finish), because
// reactions may run inline.
//
// Security (docs/security.md): every RPC authenticates first
// (server/auth.h: UNAUTHENTICATED), then publishes and subscriptions are
// authorized per channel (PERMISSION_DENIED, nothing changes); streams are
// bounded per node and subscriptions per client id (server/stream_limits.h).
// Unary calls are answered DEADLINE_EXCEEDED after request_timeout_ms
// (config.proto) when the node has not answered (server/unary_call.h).
#ifndef SPATE_SERVER_STREAMING_SERVICE_H_
#define SPATE_SERVER_STREAMING_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <memory>

#include "absl/status/status.h"
#include "proto/config.pb.h"
#include "proto/streaming.grpc.pb.h"
#include "server/auth.h"
#include "server/grpc_status.h"
#include "server/node.h"
#include "server/stream_limits.h"
#include "server/unary_call.h"

namespace spate::server {

class StreamingService final : public Streaming::CallbackService {
 public:
  // `node`, `config` and `auth` must outlive the service.
  StreamingService(Node* node, const ServerConfig* config,
                   const Authenticator* auth);

  grpc::ServerUnaryReactor* Connect(grpc::CallbackServerContext* context,
                                    const ConnectRequest* request,
                                    ConnectResponse* response) override;
  grpc::ServerUnaryReactor* Ping(grpc::CallbackServerContext* context,
                                 const PingRequest* request,
                                 PingResponse* response) override;
  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* context,
                                    const PubMsg* request,
                                    PubAck* response) override;
  grpc::ServerUnaryReactor* PublishBatch(grpc::CallbackServerContext* context,
                                         const PubBatch* request,
                                         PubAckBatch* response) override;
  grpc::ServerBidiReactor<PubBatch, PubAckBatch>* PublishStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerBidiReactor<SubscribeFrame, Delivery>* Subscribe(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* Unsubscribe(grpc::CallbackServerContext* context,
                                        const UnsubscribeRequest* request,
                                        UnsubscribeResponse* response) override;
  grpc::ServerUnaryReactor* Close(grpc::CallbackServerContext* context,
                                  const CloseRequest* request,
                                  CloseResponse* response) override;

 private:
  // Answers `reactor` with DEADLINE_EXCEEDED after the configured
  // request_timeout_ms unless the node answers first (server/unary_call.h).
  std::shared_ptr<UnaryCall> StartCall(grpc::ServerUnaryReactor* reactor) const;

  Node* node_;
  const ServerConfig* config_;
  const Authenticator* auth_;
  StreamLimits limits_;
};

}  // namespace spate::server

#endif  // SPATE_SERVER_STREAMING_SERVICE_H_
