#include "client/leader_routes.h"

#include <utility>

#include "client/session.h"

namespace spate::client {

LeaderRoutes::LeaderRoutes(ClientOptions options)
    : options_(std::move(options)) {}

std::shared_ptr<Streaming::Stub> LeaderRoutes::Ready(
    const std::string& subject) {
  std::shared_ptr<grpc::Channel> channel;
  std::shared_ptr<Streaming::Stub> stub;
  {
    absl::MutexLock lock(&mu_);
    auto leader = leaders_.find(subject);
    if (leader == leaders_.end()) return nullptr;
    auto server = servers_.find(leader->second);
    if (server == servers_.end()) return nullptr;
    channel = server->second.channel;
    stub = server->second.stub;
  }
  // Asking also starts connecting an idle channel (outside the lock: it
  // may take gRPC's locks).
  if (channel->GetState(/*try_to_connect=*/true) != GRPC_CHANNEL_READY) {
    return nullptr;
  }
  return stub;
}

void LeaderRoutes::Learn(const std::string& subject,
                         const std::string& address) {
  if (address.empty()) return;
  std::shared_ptr<grpc::Channel> dialed;
  {
    absl::MutexLock lock(&mu_);
    auto leader = leaders_.find(subject);
    if (leader != leaders_.end() && leader->second == address) return;
    if (!servers_.contains(address)) {
      // Dialing only makes the channel object; it connects on first use.
      absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
          NewChannel(options_, address);
      if (!channel.ok()) return;  // e.g. an unreadable TLS file: no route
      if (servers_.size() >= kServersMax) {
        servers_.clear();
        leaders_.clear();
      }
      dialed = *channel;
      servers_[address] = Server{dialed, Streaming::NewStub(dialed)};
    }
    if (leaders_.size() >= kSubjectsMax) leaders_.clear();
    leaders_[subject] = address;
  }
  // Connect now, so that the next publish may find it ready.
  if (dialed != nullptr) dialed->GetState(/*try_to_connect=*/true);
}

void LeaderRoutes::Forget(const std::string& subject) {
  absl::MutexLock lock(&mu_);
  leaders_.erase(subject);
}

}  // namespace spate::client
