// ReadOnly: the leader's queue of ReadIndex requests (Raft thesis §6.4,
// etcd's readOnly in ReadOnlySafe mode). A request records the commit index
// when it arrived; it is answered once a quorum acknowledged a heartbeat
// sent after it, which proves this replica was still the leader then.
//
// Each request gets an id from a counter; heartbeats carry the newest id as
// their context (8 bytes, big-endian), so hosts need not make their read
// contexts unique. An ack for id N confirms every request with id <= N.
// Threading: owned by a Replica; event loop only.
#ifndef SPATE_RAFT_READ_ONLY_H_
#define SPATE_RAFT_READ_ONLY_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/strings/string_view.h"
#include "raft/types.h"

namespace spate::raft {

class ReadOnly {
 public:
  struct Request {
    uint64_t id;
    Index index;  // the commit index when the request arrived
    NodeId from;  // who asked (this replica's own id for local reads)
    std::string context;
    absl::btree_set<NodeId> acks;
  };

  // Registers a request; returns its id (the heartbeat context to send).
  uint64_t Add(Index index, NodeId from, std::string context);
  // Records that `from` acknowledged heartbeat `id`; returns the acks of
  // that request, or nullptr if no pending request has this id.
  const absl::btree_set<NodeId>* RecvAck(uint64_t id, NodeId from);
  // Removes and returns every request with id <= `id`, oldest first.
  std::vector<Request> Release(uint64_t id);
  // Drops everything (leadership lost: the requests can no longer be
  // answered by this replica; hosts retry).
  void Clear() { pending_.clear(); }

  bool empty() const { return pending_.empty(); }
  size_t size() const { return pending_.size(); }
  // Id of the newest pending request (requires !empty()).
  uint64_t last_id() const { return pending_.back().id; }

  static std::string EncodeId(uint64_t id);
  // nullopt if `context` is not an encoded id.
  static std::optional<uint64_t> DecodeId(absl::string_view context);

 private:
  // Ordered by id.
  std::deque<Request> pending_;
  uint64_t next_id_ = 1;
};

}  // namespace spate::raft

#endif  // SPATE_RAFT_READ_ONLY_H_
