// SnapshotService: serves SnapshotSource.FetchMessages (proto/
// snapshot.proto) — the messages of a channel snapshot this node made,
// read from the pinned view in SnapshotTransfers, streamed in chunks.
// Node traffic only: with authentication on, the caller must present the
// cluster token (server/auth.h).
// Threading: gRPC callback reactors; reads only.
#ifndef SPATE_SERVER_SNAPSHOT_SERVICE_H_
#define SPATE_SERVER_SNAPSHOT_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <string>

#include "proto/snapshot.grpc.pb.h"
#include "server/auth.h"
#include "server/snapshot_transfers.h"

namespace spate::server {

class SnapshotService final : public SnapshotSource::CallbackService {
 public:
  SnapshotService(const SnapshotTransfers* transfers, std::string cluster_name,
                  const Authenticator* auth)
      : transfers_(transfers),
        cluster_name_(std::move(cluster_name)),
        auth_(auth) {}

  grpc::ServerWriteReactor<FetchMessagesChunk>* FetchMessages(
      grpc::CallbackServerContext* context,
      const FetchMessagesRequest* request) override;

 private:
  const SnapshotTransfers* transfers_;
  const std::string cluster_name_;
  const Authenticator* auth_;
};

}  // namespace spate::server

#endif  // SPATE_SERVER_SNAPSHOT_SERVICE_H_
