// Transport: how a node's event loop exchanges raft::Messages with the other
// nodes of its cluster. It is one of the four seams of the deterministic
// simulator (STYLE.md): production uses GrpcTransport (one gRPC stream per
// direction per node pair, server/grpc_transport.h); the simulator plugs in
// its own network with drops, delays and partitions.
//
// Batching contract (DESIGN.md §5): the loop calls Send once per peer per
// iteration with everything it has for that peer (appends, heartbeats of
// all groups, votes, responses); the transport coalesces whatever is still
// queued for the peer into the next frame. Delivery is best effort, in
// order per (sender, receiver) while a connection lasts: raft retransmits
// whatever is dropped, so no call here ever waits for the network.
//
// Threading: every method is thread-safe. Send is meant for the loop thread
// and never blocks; the InboundHandler runs on transport threads.
#ifndef SPATE_SERVER_TRANSPORT_H_
#define SPATE_SERVER_TRANSPORT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "proto/raft.pb.h"
#include "raft/types.h"

namespace spate::server {

// Called on transport threads for each inbound batch (already validated:
// right cluster, known peer, every message addressed to this node and sent
// by `from`). Batches of one peer arrive one at a time, in order; batches
// of different peers may arrive concurrently. Must not block and must not
// call back into the transport's Shutdown (the node posts the batch to its
// loop's bounded inbox).
using InboundHandler =
    std::function<void(raft::NodeId from, std::vector<raft::Message> messages)>;

// Counters of one peer. Drop counters are in messages; `*_sent` count what
// was handed to the network, `*_received` what was handed to the handler.
struct PeerStats {
  // The outbound link is up now (see Transport::PeerReachable).
  bool reachable = false;
  // Outbound links established since start.
  uint64_t connects = 0;
  // Why the last outbound link failed or was refused (empty if none did).
  std::string last_error;

  uint64_t batches_sent = 0;  // frames
  uint64_t messages_sent = 0;
  uint64_t bytes_sent = 0;
  // Bytes waiting for the next frame right now.
  uint64_t queued_bytes = 0;

  // Send refused: the peer's queue would exceed its byte bound.
  uint64_t dropped_queue_full = 0;
  // Send refused: no link to the peer.
  uint64_t dropped_unreachable = 0;
  // A single message larger than a frame may be (never deliverable).
  uint64_t dropped_oversize = 0;
  // Queued or in flight when the link broke or the transport shut down.
  uint64_t dropped_disconnected = 0;

  uint64_t batches_received = 0;
  uint64_t messages_received = 0;
  uint64_t bytes_received = 0;
  // Inbound messages dropped because `to` was not this node or `from` was
  // not the stream's sender.
  uint64_t rejected_bad_to = 0;
  uint64_t rejected_bad_from = 0;
};

struct TransportStats {
  // Every configured peer and every node a stream was accepted from.
  absl::btree_map<raft::NodeId, PeerStats> peers;
  // Messages passed to Send for a node that is not a peer (or after
  // shutdown).
  uint64_t dropped_unknown_peer = 0;
  // Inbound streams refused (wrong cluster, unknown sender, misaddressed).
  uint64_t streams_refused = 0;
};

// Node id → host:port of each peer's cluster listener.
using PeerAddresses = absl::btree_map<raft::NodeId, std::string>;

class Transport {
 public:
  virtual ~Transport() = default;

  // Loop thread. Never blocks: queues the batch for `to` (coalescing with
  // anything still queued for it). Bounded per peer (bytes); when full, or
  // the peer is unreachable, the batch is dropped (raft retransmits) and
  // counted. Returns false if anything was dropped.
  virtual bool Send(raft::NodeId to, std::vector<raft::Message> messages) = 0;

  // False while the link to `peer` is down (or `peer` is unknown). The node
  // reports such peers to raft (ReportUnreachable) and uses this for node
  // liveness and for waking quiesced groups.
  virtual bool PeerReachable(raft::NodeId peer) const = 0;

  // Replaces the set of peers (cluster membership changed): new ones are
  // dialled, removed ones disconnected and refused.
  virtual absl::Status SetPeers(const PeerAddresses& peers) = 0;

  // Counters for monitoring: batches/messages/bytes sent and received per
  // peer, drops by reason.
  virtual TransportStats Stats() const = 0;
};

}  // namespace spate::server

#endif  // SPATE_SERVER_TRANSPORT_H_
