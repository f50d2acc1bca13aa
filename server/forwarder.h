// Forwarder: sends client requests this node cannot serve to the node that
// can — the leader of the metadata group (Connect, Ping, Close, new
// channels) or of a channel (publishes, subscriptions, unsubscribes) — over
// the same public client API, so the receiving node treats them exactly
// like its own clients' requests. A hop count travels in the call metadata
// ("spate-hops"); a node never forwards a request that already made
// kForwardHopsMax hops (it answers UNAVAILABLE, and the client retries).
//
// Subscriptions are relayed: a Subscribe stream to the leader carries the
// request and the client's acks up, and the leader's deliveries down to the
// local SubscriberStream (SubscribeRelay in forwarder.cc). When the leader
// changes, the relay ends with UNAVAILABLE and the client resubscribes.
//
// Threading: thread-safe; completions run on gRPC client threads.
#ifndef SPATE_SERVER_FORWARDER_H_
#define SPATE_SERVER_FORWARDER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "proto/streaming.grpc.pb.h"
#include "raft/types.h"
#include "server/subscriber_stream.h"
#include "server/tls.h"

namespace spate::server {

inline constexpr char kHopsMetadataKey[] = "spate-hops";
inline constexpr int kForwardHopsMax = 2;

// The hop count of an incoming call (0 for a client's own call).
int IncomingHops(const grpc::ServerContextBase& context);

// Relays `request` over `stub` (any node's Streaming service, e.g. another
// cluster's gateway listener) with hop count `hops`; `stream` gets the
// response, the deliveries and the end status, its acks go up.
void RelaySubscription(Streaming::Stub* stub, int hops,
                       const SubscriptionRequest& request,
                       std::shared_ptr<SubscriberStream> stream);

class Forwarder {
 public:
  // `client_addresses`: node id → host:port of its client listener;
  // `link`: how to dial them (TLS, the cluster token; server/tls.h).
  explicit Forwarder(
      absl::flat_hash_map<raft::NodeId, std::string> client_addresses,
      ClientLinkOptions link = ClientLinkOptions());

  bool Knows(raft::NodeId node) const;
  // The client address of `node`; empty when unknown.
  std::string AddressOf(raft::NodeId node) const;
  void SetAddresses(
      absl::flat_hash_map<raft::NodeId, std::string> client_addresses);

  // `hops`: hops the request already made (the forwarded call carries
  // hops + 1). Every completion runs exactly once.
  void Connect(raft::NodeId to, int hops, const ConnectRequest& request,
               absl::AnyInvocable<void(absl::StatusOr<ConnectResponse>)> done);
  void Ping(raft::NodeId to, int hops, const PingRequest& request,
            absl::AnyInvocable<void(absl::Status)> done);
  void Close(raft::NodeId to, int hops, const CloseRequest& request,
             absl::AnyInvocable<void(absl::Status)> done);
  void Unsubscribe(raft::NodeId to, int hops, const UnsubscribeRequest& request,
                   absl::AnyInvocable<void(absl::Status)> done);
  // One PubAck per message, in order (errors included per message).
  void PublishBatch(raft::NodeId to, int hops, std::vector<PubMsg> msgs,
                    absl::AnyInvocable<void(std::vector<PubAck>)> done);
  // Relays a subscription to `to`; `stream` gets the response, deliveries
  // and the end status.
  void Subscribe(raft::NodeId to, int hops, const SubscriptionRequest& request,
                 std::shared_ptr<SubscriberStream> stream);

 private:
  // nullptr when the node's address is unknown.
  Streaming::Stub* StubFor(raft::NodeId node);

  const ClientLinkOptions link_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<raft::NodeId, std::string> addresses_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<raft::NodeId, std::unique_ptr<Streaming::Stub>> stubs_
      ABSL_GUARDED_BY(mu_);
  // Stubs of nodes whose address changed (kept: calls may still use them).
  std::vector<std::unique_ptr<Streaming::Stub>> retired_ ABSL_GUARDED_BY(mu_);
};

}  // namespace spate::server

#endif  // SPATE_SERVER_FORWARDER_H_
