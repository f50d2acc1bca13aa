// LeaderRoutes: where each channel's leader takes client calls, as servers
// named it (PubAck.leader_address, set when a server forwarded a publish to
// that leader), with one gRPC channel per such server. Connection::Publish
// asks it for a route and sends a synchronous publish straight to the
// leader, saving the connected server's forwarding hop (a gRPC call and its
// thread hand-offs on the latency path).
//
// Only a hint, never a correctness matter: a route is offered only while
// its gRPC channel is READY (an address that cannot be reached from here is
// therefore never used, and asking starts the connection so that a later
// publish finds it ready); the caller forgets a route on any failure there
// and falls back to its connected server; a leader that moved answers
// anyway (it forwards, naming the new leader). Bounded: at most
// kSubjectsMax routes and kServersMax servers; when full it starts over.
//
// Threading: thread-safe; one mutex, never held during an RPC.
#ifndef SPATE_CLIENT_LEADER_ROUTES_H_
#define SPATE_CLIENT_LEADER_ROUTES_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "client/options.h"
#include "grpcpp/channel.h"
#include "proto/streaming.grpc.pb.h"

namespace spate::client {

class LeaderRoutes {
 public:
  static constexpr size_t kSubjectsMax = 4096;
  static constexpr size_t kServersMax = 64;

  // `options`: TLS and backoff of the channels (NewChannel, session.h).
  explicit LeaderRoutes(ClientOptions options);

  // The stub of `subject`'s leader when one is known and its channel is
  // READY; nullptr otherwise.
  std::shared_ptr<Streaming::Stub> Ready(const std::string& subject);
  // Records `address` as `subject`'s leader (an empty address: nothing).
  void Learn(const std::string& subject, const std::string& address);
  // Drops `subject`'s route (it failed).
  void Forget(const std::string& subject);

  // Publishes answered through a route (for tests and tuning).
  int64_t routed() const { return routed_.load(); }
  void CountRouted() { ++routed_; }

 private:
  struct Server {
    std::shared_ptr<grpc::Channel> channel;
    std::shared_ptr<Streaming::Stub> stub;
  };

  const ClientOptions options_;
  absl::Mutex mu_;
  // subject → leader address.
  absl::flat_hash_map<std::string, std::string> leaders_ ABSL_GUARDED_BY(mu_);
  // address → its channel.
  absl::flat_hash_map<std::string, Server> servers_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> routed_{0};
};

}  // namespace spate::client

#endif  // SPATE_CLIENT_LEADER_ROUTES_H_
