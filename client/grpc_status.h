// Conversions from gRPC statuses and PubAck errors to absl::Status, the
// client library's only error type. Codes map one-to-one (gRPC and abseil
// share the canonical code space); messages are kept verbatim so the
// server's explanation reaches the caller. Pure functions, thread-safe.
#ifndef SPATE_CLIENT_GRPC_STATUS_H_
#define SPATE_CLIENT_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"
#include "proto/streaming.pb.h"

namespace spate::client {

// The absl code of a gRPC code; unknown values become kUnknown.
absl::StatusCode FromGrpcCode(grpc::StatusCode code);

// Same code, same message.
absl::Status FromGrpcStatus(const grpc::Status& status);

// OK for a PubAck without `error`; otherwise the status of `error_code`
// (kUnknown when the server left it 0 or out of range) with `error` as the
// message.
absl::Status FromPubAck(const PubAck& ack);

}  // namespace spate::client

#endif  // SPATE_CLIENT_GRPC_STATUS_H_
