// UnaryCall: the answer of one unary client RPC (Connect, Ping, Publish,
// PublishBatch, Unsubscribe, Close) given exactly once — by the node's
// completion or, if that takes longer than the server's request timeout
// (ServerConfig.request_timeout_ms), by a gRPC alarm with DEADLINE_EXCEEDED.
// A client without a deadline of its own therefore never waits longer
// than the timeout (a publish waiting for a commit that cannot happen, a
// forwarded call to a stalled node); the node's work is not undone — a
// publish answered DEADLINE_EXCEEDED may still be stored, as after a lost
// ack, and a retry with the same guid is deduplicated.
//
// The response message belongs to gRPC until OnDone: only the thread that
// claims the answer writes it, before Finish, so a late completion never
// touches it.
//
// Threading: thread-safe; Answer may race with the alarm on any thread.
#ifndef SPATE_SERVER_UNARY_CALL_H_
#define SPATE_SERVER_UNARY_CALL_H_

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace spate::server {

class UnaryCall : public std::enable_shared_from_this<UnaryCall> {
 public:
  // Answers `reactor` with DEADLINE_EXCEEDED after `timeout_ms` unless
  // answered first; `timeout_ms` <= 0: no server-side limit.
  static std::shared_ptr<UnaryCall> Start(grpc::ServerUnaryReactor* reactor,
                                          int64_t timeout_ms);

  // Answers with `status` after `fill` (may be empty) wrote the response,
  // unless the call was answered already (then neither runs). Returns
  // whether this call answered.
  bool Answer(const grpc::Status& status,
              const std::function<void()>& fill = nullptr);

  UnaryCall(const UnaryCall&) = delete;
  UnaryCall& operator=(const UnaryCall&) = delete;

 private:
  UnaryCall(grpc::ServerUnaryReactor* reactor, int64_t timeout_ms)
      : reactor_(reactor), timeout_ms_(timeout_ms) {}

  grpc::ServerUnaryReactor* const reactor_;
  const int64_t timeout_ms_;
  absl::Mutex mu_;
  bool answered_ ABSL_GUARDED_BY(mu_) = false;
  // Fires the timeout; cancelled (callback with ok=false) when answered.
  grpc::Alarm alarm_;
};

}  // namespace spate::server

#endif  // SPATE_SERVER_UNARY_CALL_H_
