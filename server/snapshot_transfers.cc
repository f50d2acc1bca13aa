#include "server/snapshot_transfers.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace spate::server {

absl::StatusOr<uint64_t> SnapshotTransfers::Add(
    uint64_t channel_id, std::unique_ptr<storage::Kv> view, int64_t now_ns) {
  Expire(now_ns);
  absl::MutexLock lock(&mu_);
  if (transfers_.size() >= transfers_max_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        transfers_max_, " snapshot transfers in progress; retry later"));
  }
  const uint64_t id = next_id_++;
  transfers_[id] = Transfer{channel_id, std::move(view), now_ns + ttl_ns_};
  return id;
}

std::shared_ptr<const storage::Kv> SnapshotTransfers::Find(
    uint64_t transfer_id, uint64_t channel_id) const {
  absl::MutexLock lock(&mu_);
  auto it = transfers_.find(transfer_id);
  if (it == transfers_.end() || it->second.channel_id != channel_id) {
    return nullptr;
  }
  return it->second.view;
}

void SnapshotTransfers::Expire(int64_t now_ns) {
  absl::MutexLock lock(&mu_);
  for (auto it = transfers_.begin(); it != transfers_.end();) {
    it = it->second.expires_ns <= now_ns ? transfers_.erase(it) : ++it;
  }
}

size_t SnapshotTransfers::size() const {
  absl::MutexLock lock(&mu_);
  return transfers_.size();
}

}  // namespace spate::server
