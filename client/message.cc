#include "client/message.h"

namespace spate::client {

absl::Status Message::Ack() const {
  std::shared_ptr<AckSink> sink = sink_.lock();
  if (sink == nullptr) {
    return absl::FailedPreconditionError(
        "cannot ack: the subscription no longer exists");
  }
  return sink->Ack(proto_.sequence());
}

}  // namespace spate::client
