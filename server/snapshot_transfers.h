// SnapshotTransfers: the leader-side registry of channel snapshots being
// fetched. Making a channel snapshot pins a consistent view of the store
// (storage::Kv::NewSnapshot) so a follower can fetch exactly the messages
// the snapshot's state refers to, even while the leader keeps trimming and
// appending. Views are bounded in number and expire.
// Threading: thread-safe (the loop adds, FetchMessages handlers read).
#ifndef SPATE_SERVER_SNAPSHOT_TRANSFERS_H_
#define SPATE_SERVER_SNAPSHOT_TRANSFERS_H_

#include <cstdint>
#include <memory>

#include "absl/container/btree_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "storage/kv.h"

namespace spate::server {

class SnapshotTransfers {
 public:
  SnapshotTransfers(size_t transfers_max, int64_t ttl_ns)
      : transfers_max_(transfers_max), ttl_ns_(ttl_ns) {}

  // Registers a pinned view of channel `channel_id`; returns its transfer
  // id. ResourceExhausted (retry later) when transfers_max are live.
  absl::StatusOr<uint64_t> Add(uint64_t channel_id,
                               std::unique_ptr<storage::Kv> view,
                               int64_t now_ns);
  // The view of a live transfer of that channel, or nullptr.
  std::shared_ptr<const storage::Kv> Find(uint64_t transfer_id,
                                          uint64_t channel_id) const;
  void Expire(int64_t now_ns);
  size_t size() const;

 private:
  struct Transfer {
    uint64_t channel_id;
    std::shared_ptr<const storage::Kv> view;
    int64_t expires_ns;
  };

  const size_t transfers_max_;
  const int64_t ttl_ns_;
  mutable absl::Mutex mu_;
  absl::btree_map<uint64_t, Transfer> transfers_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace spate::server

#endif  // SPATE_SERVER_SNAPSHOT_TRANSFERS_H_
