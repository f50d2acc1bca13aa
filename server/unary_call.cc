#include "server/unary_call.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace spate::server {

std::shared_ptr<UnaryCall> UnaryCall::Start(grpc::ServerUnaryReactor* reactor,
                                            int64_t timeout_ms) {
  std::shared_ptr<UnaryCall> call(new UnaryCall(reactor, timeout_ms));
  if (timeout_ms > 0) {
    // A weak reference: the alarm does not keep the call alive; the node's
    // pending completion does until it runs.
    std::weak_ptr<UnaryCall> weak = call;
    call->alarm_.Set(
        absl::ToChronoTime(absl::Now() + absl::Milliseconds(timeout_ms)),
        [weak](bool fired) {
          if (!fired) return;  // cancelled: answered in time
          std::shared_ptr<UnaryCall> call = weak.lock();
          if (call == nullptr) return;
          call->Answer(grpc::Status(
              grpc::StatusCode::DEADLINE_EXCEEDED,
              absl::StrCat("the request took longer than the server's "
                           "request_timeout_ms (",
                           call->timeout_ms_,
                           " ms); it may still complete (a publish may be "
                           "stored: retry with the same guid)")));
        });
  }
  return call;
}

bool UnaryCall::Answer(const grpc::Status& status,
                       const std::function<void()>& fill) {
  {
    absl::MutexLock lock(&mu_);
    if (answered_) return false;
    answered_ = true;
    if (fill) fill();
  }
  if (timeout_ms_ > 0) alarm_.Cancel();
  reactor_->Finish(status);
  return true;
}

}  // namespace spate::server
