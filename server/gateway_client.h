// GatewayClient: this node's side of the links to remote clusters
// (DESIGN.md §7, proto/gateway.proto). For each configured remote cluster
// it keeps one gRPC channel per gateway address and uses one at a time,
// moving to the next address when a call fails (any node of the remote
// cluster can serve); gRPC reconnects the channels with backoff.
//
// Directories: a background thread says Hello to every remote cluster each
// directory_refresh_ms and pages in the channels it owns. A gateway that
// answers with another cluster name than configured, or refuses this
// cluster, marks the link REFUSED (nothing is routed over it) with a clear
// error in the status. RouteFor() decides where a channel is served:
// a channel owned only remotely goes to its owner; a name owned both here
// and remotely (created concurrently) is a conflict, resolved the same way
// in every cluster — the lexicographically smallest cluster name owns it for
// routing — and reported (log once, GatewayStatus).
//
// Remote calls (Publish, Fetch) carry this cluster's name in the call
// metadata ("spate-cluster") and a deadline (request_timeout_ms), so a
// partitioned link fails them with UNAVAILABLE in bounded time and never
// blocks local traffic.
//
// Remote subscriptions: the client is first registered in the owner
// cluster (Gateway.Attach, repeated by the refresh thread while any of its
// remote subscriptions is open, so the owner does not expire it), then the
// subscription is relayed to the owner's Streaming service (served on its
// gateway listener) under the client's id there: its state (durable
// position, queue group, pending acks) lives in the owner's channel group,
// deliveries and acks cross the gateway, and when the owner's leader
// changes the stream ends UNAVAILABLE and the client resubscribes.
//
// Credentials: every channel is built with `options.credentials` (insecure
// when null): the server builds them from gateway_tls (server/tls.h), so
// with TLS on a link presents this node's certificate and verifies the
// remote gateway's.
//
// Threading: thread-safe; completions run on gRPC threads.
#ifndef SPATE_SERVER_GATEWAY_CLIENT_H_
#define SPATE_SERVER_GATEWAY_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "proto/admin.pb.h"
#include "proto/config.pb.h"
#include "proto/gateway.grpc.pb.h"
#include "proto/streaming.grpc.pb.h"
#include "server/subscriber_stream.h"

namespace spate::server {

inline constexpr char kGatewayClusterMetadataKey[] = "spate-cluster";

struct GatewayClientOptions {
  // This cluster's name.
  std::string cluster_name;
  std::vector<RemoteClusterConfig> remotes;
  int64_t request_timeout_ms = 5000;
  int64_t directory_refresh_ms = 1000;
  // Channel credentials for gateway links; null: insecure.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // Name verified in remote gateways' certificates instead of the dialed
  // host (TlsConfig.server_name_override); empty: the host.
  std::string tls_server_name_override;
};

class GatewayClient {
 public:
  explicit GatewayClient(GatewayClientOptions options);
  ~GatewayClient();  // Stop()s

  // Starts / stops the directory refresh thread.
  void Start();
  void Stop();

  bool Knows(const std::string& cluster) const;

  // The cluster that serves `channel` for this cluster's clients, or the
  // empty string when this cluster does. `local` / `local_mirror`: the
  // channel exists in this cluster's directory (as a mirror).
  std::string RouteFor(const std::string& channel, bool local,
                       bool local_mirror);

  // The channels this cluster owns (not its mirrors), reported by the node
  // about once a second, for conflict detection.
  void SetLocalChannels(std::vector<std::string> names);

  // Publishes `msgs` in `cluster` (one PubAck per message, in order; every
  // message gets an error ack when the link fails).
  void Publish(const std::string& cluster, std::vector<PubMsg> msgs,
               absl::AnyInvocable<void(std::vector<PubAck>)> done);
  // Relays a local client's subscription to `cluster`.
  void Subscribe(const std::string& cluster, SubscriptionRequest request,
                 std::shared_ptr<SubscriberStream> stream);
  void Unsubscribe(const std::string& cluster, UnsubscribeRequest request,
                   absl::AnyInvocable<void(absl::Status)> done);
  // A mirror's fetch from `cluster`; the deadline covers request.wait_ms.
  void Fetch(
      const std::string& cluster, const GatewayFetchRequest& request,
      absl::AnyInvocable<void(absl::StatusOr<GatewayFetchResponse>)> done);

  // Records a mirror's progress for the status (any thread).
  void ReportMirror(const MirrorStatus& mirror);
  // This node stopped feeding `channel` (no longer its leader).
  void ForgetMirror(const std::string& channel);
  // A consistent snapshot of every link and mirror (thread-safe).
  GatewayStatus Status() const;

  // Says Hello to every remote cluster once and refreshes its directory
  // (the refresh thread calls it; tests may too).
  void RefreshAll();

 private:
  struct Link {
    RemoteClusterConfig config;
    std::vector<std::shared_ptr<Gateway::Stub>> stubs;
    // The same channels' Streaming service (remote subscriptions).
    std::vector<std::shared_ptr<Streaming::Stub>> streaming;
    size_t current = 0;
    std::string state = "CONNECTING";
    std::string error;
    std::string address;
    int64_t bytes_sent = 0;
    int64_t bytes_received = 0;
    int64_t requests = 0;
    int64_t failures = 0;
    int64_t last_hello_ns = 0;
    int64_t up_since_ns = 0;
    int64_t reconnects = 0;
    bool was_up = false;
    // Channels the remote cluster owns → its last sequence.
    absl::btree_map<std::string, uint64_t> directory;
  };

  // Under mu_: the stub to use for `cluster` (nullptr if unknown/refused).
  std::shared_ptr<Gateway::Stub> StubLocked(const std::string& cluster,
                                            std::string* address)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A call to `cluster` failed with `status`: next address next time.
  void CallFailed(const std::string& cluster, const grpc::Status& status);
  void Refresh(const std::string& cluster);
  // Registers `client_id` in `cluster`; `done` gets its id and connection
  // id there, and the stub to relay with.
  using AttachDone = absl::AnyInvocable<void(
      absl::StatusOr<GatewayAttachResponse>, std::shared_ptr<Streaming::Stub>)>;
  void Attach(const std::string& cluster, const std::string& client_id,
              AttachDone done);
  // Keeps every client with open remote subscriptions registered.
  void KeepAttached();
  void UpdateConflictsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Run();

  const GatewayClientOptions options_;
  mutable absl::Mutex mu_;
  absl::btree_map<std::string, Link> links_ ABSL_GUARDED_BY(mu_);
  absl::btree_set<std::string> local_channels_ ABSL_GUARDED_BY(mu_);
  // Conflicting names → every cluster owning them (this one included).
  absl::btree_map<std::string, std::vector<std::string>> conflicts_
      ABSL_GUARDED_BY(mu_);
  absl::btree_map<std::string, MirrorStatus> mirrors_ ABSL_GUARDED_BY(mu_);
  // (cluster, client id) → open remote subscriptions.
  absl::btree_map<std::pair<std::string, std::string>, int> attached_
      ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// The gRPC status of a remote call as an absl::Status; timeouts and
// transport failures become UNAVAILABLE (retryable) naming the cluster.
absl::Status GatewayCallStatus(const std::string& cluster,
                               const grpc::Status& status);

}  // namespace spate::server

#endif  // SPATE_SERVER_GATEWAY_CLIENT_H_
