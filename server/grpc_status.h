// The node's two status conversions between absl::Status and grpc::Status.
// Both libraries use the canonical code numbering, so codes map one to one
// and messages are kept.
#ifndef SPATE_SERVER_GRPC_STATUS_H_
#define SPATE_SERVER_GRPC_STATUS_H_

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"

namespace spate::server {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace spate::server

#endif  // SPATE_SERVER_GRPC_STATUS_H_
