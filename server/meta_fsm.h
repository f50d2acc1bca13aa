// MetaFsm: the deterministic state machine of the metadata group (group 0):
// connected clients and the channel directory (name → channel id and its
// resolved limits). Every node applies the same MetaCommands in log order.
// Liveness of clients (last ping) is volatile and kept by the node, not
// here: after a restart or failover every client gets a fresh grace period.
//
// Persistence: like ChannelFsm, Apply stages its changes and the applied
// index into the caller's WriteBatch.
// Threading: owned by the node's event loop; not thread-safe.
#ifndef SPATE_SERVER_META_FSM_H_
#define SPATE_SERVER_META_FSM_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/btree_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/command.pb.h"
#include "proto/records.pb.h"
#include "proto/snapshot.pb.h"
#include "storage/channel_store.h"
#include "storage/kv.h"

namespace spate::server {

struct MetaApplyResult {
  absl::Status status;
  // ClientConnect: the connection it replaced (empty if none).
  std::string replaced_conn_id;
  // ChannelCreate: the channel's id, and whether this command created it
  // (false: it existed already).
  uint64_t channel_id = 0;
  bool created = false;
  // ChannelReplicas: the replica set changed.
  bool replicas_changed = false;
};

class MetaFsm {
 public:
  static absl::StatusOr<std::unique_ptr<MetaFsm>> Load(
      const storage::ChannelStore* store);

  MetaApplyResult Apply(uint64_t index, const MetaCommand& command,
                        storage::WriteBatch* batch);

  // The whole metadata state for a raft snapshot, and its install (which
  // replaces clients and directory; the node reconciles its channels).
  MetaSnapshot Image() const;
  void Install(const MetaSnapshot& image, storage::WriteBatch* batch);
  void ApplyEmpty(uint64_t index, storage::WriteBatch* batch);

  uint64_t applied_index() const { return meta_.applied_index(); }
  const ClientRecord* FindClient(absl::string_view client_id) const;
  const ChannelDirectoryEntry* FindChannel(absl::string_view name) const;
  const absl::btree_map<std::string, ClientRecord>& clients() const {
    return clients_;
  }
  const absl::btree_map<std::string, ChannelDirectoryEntry>& channels() const {
    return channels_;
  }
  // The cluster's nodes (empty until the first metadata leader recorded
  // the initial members).
  const absl::btree_map<uint64_t, NodeRecord>& nodes() const { return nodes_; }

 private:
  explicit MetaFsm(const storage::ChannelStore* store) : store_(store) {}
  void WriteMeta(storage::WriteBatch* batch) const;

  const storage::ChannelStore* store_;
  MetaRecord meta_;
  absl::btree_map<std::string, ClientRecord> clients_;
  absl::btree_map<std::string, ChannelDirectoryEntry> channels_;
  absl::btree_map<uint64_t, NodeRecord> nodes_;
};

}  // namespace spate::server

#endif  // SPATE_SERVER_META_FSM_H_
