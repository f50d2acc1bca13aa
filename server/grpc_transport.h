// GrpcTransport: the production Transport (server/transport.h). All raft
// traffic between two nodes travels over ONE gRPC stream per direction
// (proto/transport.proto, RaftTransport.Stream), in MessageBatch frames.
//
// Outbound, per peer:
//   Send (loop thread) ──► queue (bytes ≤ peer_queue_bytes_max)
//                            │ everything queued, up to frame_bytes_max
//                            ▼
//   StartWrite ──► link (ClientBidiReactor, one write at a time)
// Each peer has one sender thread (a cluster has a handful of peers, so a
// thread each is cheap and keeps the reconnect logic sequential) that dials
// and holds a callback-API stream. A Send that finds the link idle writes
// the frame itself (serialized on the loop thread: no thread hand-off on
// the latency path); while a frame is being written, later Sends coalesce
// into the queue and the write's completion (a gRPC thread) sends them as
// the next frame: the slower the peer, the bigger the frames.
//
// Link life cycle (sender thread):
//   dial ──server sends initial metadata──► up (PeerReachable) ──read or
//     │                                      write fails──► down
//     └──refused, or no connection (trailers-only status)──► down
//   down: drop what is queued (raft retransmits), wait the backoff
//   (reconnect_backoff_initial doubling to _max, ±20% jitter; reset after a
//   link that was up), dial again. Each dial uses a new channel and fails
//   at once when the TCP connection fails (no wait_for_ready), so redials
//   never depend on gRPC's own reconnect timers; the backoff is timed on
//   the monotonic clock, so a wall-clock step cannot stretch it (fault
//   finding 8, docs/reliability.md).
// The link keeps a read pending on the response stream, so a link that
// dies while idle is noticed at once; gRPC keepalive pings detect a peer
// that stopped answering (e.g. SIGSTOP) within keepalive_interval +
// keepalive_timeout.
//
// Inbound: a callback-API server validates the handshake metadata (cluster
// name, sender, addressee; see proto/transport.proto for the statuses),
// then validates every message (`to` = this node, `from` = the sender; the
// rest are dropped and counted) and hands each batch to the InboundHandler
// on a gRPC thread. A sender removed by SetPeers has its stream ended with
// FAILED_PRECONDITION at its next batch.
//
// Shutdown stops the sender threads (cancelling their streams: queued
// messages are dropped), stops deliveries to the handler and cancels the
// inbound streams; it takes milliseconds even when peers are unreachable.
//
// Threading: every public method is thread-safe. SetPeers and Shutdown may
// block briefly (they join sender threads) and must not be called from the
// InboundHandler.
#ifndef SPATE_SERVER_GRPC_TRANSPORT_H_
#define SPATE_SERVER_GRPC_TRANSPORT_H_

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/support/status.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/raft.pb.h"
#include "raft/types.h"
#include "server/transport.h"

namespace grpc {
class CallbackServerContext;
class Server;
}  // namespace grpc

namespace spate::transport {
class MessageBatch;
}  // namespace spate::transport

namespace spate::server {

// Node id → "host:port" of its cluster listener.

struct GrpcTransportOptions {
  // Streams from nodes of another cluster are refused.
  std::string cluster_name;
  // This node (>= 1).
  raft::NodeId node_id = raft::kNoNode;
  // host:port to listen on; port 0 picks a free port (see bound_address()).
  std::string listen_address;
  // The other nodes (never this one). Changed at run time with SetPeers.
  PeerAddresses peers;
  // Bytes queued for one peer beyond which Send drops.
  uint64_t peer_queue_bytes_max = uint64_t{64} << 20;
  // Largest frame (gRPC message) sent or accepted; must be the same on
  // every node. A single raft::Message larger than this is dropped.
  int frame_bytes_max = 64 << 20;
  // Delay before redialing a peer: doubles from initial to max, jittered.
  absl::Duration reconnect_backoff_initial = absl::Milliseconds(50);
  absl::Duration reconnect_backoff_max = absl::Seconds(2);
  // HTTP/2 keepalive: a ping every interval; no answer within the timeout
  // closes the connection (and so the link).
  absl::Duration keepalive_interval = absl::Seconds(1);
  absl::Duration keepalive_timeout = absl::Seconds(3);
  // Security of the link (server/tls.h builds both from cluster_tls): null
  // means plaintext. With TLS the listener requires and verifies client
  // certificates, so a peer without a certificate from the cluster's CA
  // never gets a stream (the handshake fails before any RPC).
  std::shared_ptr<grpc::ServerCredentials> listener_credentials;
  std::shared_ptr<grpc::ChannelCredentials> peer_credentials;
  // Name verified in peers' certificates instead of the dialed host.
  std::string tls_server_name_override;
};

// OK, or INVALID_ARGUMENT naming the bad field.
absl::Status ValidateGrpcTransportOptions(const GrpcTransportOptions& options);

class GrpcTransport final : public Transport {
 public:
  // Listens on options.listen_address and starts dialing every peer.
  // `handler` receives inbound batches (see InboundHandler).
  static absl::StatusOr<std::unique_ptr<GrpcTransport>> Start(
      const GrpcTransportOptions& options, InboundHandler handler);
  ~GrpcTransport() override;  // Shutdown()

  GrpcTransport(const GrpcTransport&) = delete;
  GrpcTransport& operator=(const GrpcTransport&) = delete;

  bool Send(raft::NodeId to, std::vector<raft::Message> messages) override;
  bool PeerReachable(raft::NodeId peer) const override;
  TransportStats Stats() const override;

  // Replaces the peer set (membership change): new peers are dialed,
  // removed ones are disconnected (their queued messages dropped) and their
  // inbound streams refused from then on, peers whose address changed are
  // redialed. INVALID_ARGUMENT for a bad set (this node, id 0, empty
  // address); FAILED_PRECONDITION after Shutdown.
  absl::Status SetPeers(const PeerAddresses& peers) override;

  // Idempotent; see the file comment. Afterwards Send drops everything and
  // the handler is never called again.
  void Shutdown();

  // "host:port" actually listened on (the chosen port when it was 0).
  const std::string& bound_address() const { return bound_address_; }

 private:
  class Peer;
  class Service;
  class InboundStream;
  struct InboundCounters;

  GrpcTransport(const GrpcTransportOptions& options, InboundHandler handler);

  absl::Status Listen();
  // Checks an inbound stream's handshake metadata; on success sets the
  // sender and its counters. Refusals are counted and logged.
  grpc::Status Admit(const grpc::CallbackServerContext& context,
                     raft::NodeId* from,
                     std::shared_ptr<InboundCounters>* counters);
  // Validates one inbound frame and hands its messages to the handler (the
  // frame is left empty). Not OK when the stream must end (the sender is
  // no longer a peer, or the transport is shutting down).
  grpc::Status Deliver(raft::NodeId from, InboundCounters* counters,
                       transport::MessageBatch* frame);
  bool IsPeer(raft::NodeId node) const;

  const GrpcTransportOptions options_;
  const InboundHandler handler_;
  std::string bound_address_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;

  mutable absl::Mutex peers_mu_;
  absl::flat_hash_map<raft::NodeId, std::shared_ptr<Peer>> peers_
      ABSL_GUARDED_BY(peers_mu_);
  bool stopped_ ABSL_GUARDED_BY(peers_mu_) = false;
  std::atomic<uint64_t> dropped_unknown_peer_{0};

  mutable absl::Mutex inbound_mu_;
  // Inbound counters by sender; streams hold their own reference.
  absl::flat_hash_map<raft::NodeId, std::shared_ptr<InboundCounters>> inbound_
      ABSL_GUARDED_BY(inbound_mu_);
  std::atomic<uint64_t> streams_refused_{0};

  // Held shared while the handler runs; Shutdown takes it exclusively, so
  // once it returns no handler call is running or will start.
  absl::Mutex handler_mu_;
  bool handler_stopped_ ABSL_GUARDED_BY(handler_mu_) = false;
};

}  // namespace spate::server

#endif  // SPATE_SERVER_GRPC_TRANSPORT_H_
