// SnapshotFetcher: the follower side of a channel snapshot. Before raft may
// install a snapshot of a channel, the messages its state refers to
// (first_sequence..last_sequence) must be in this node's store. The fetcher
// streams them from the node that made the snapshot and writes them, on a
// thread of its own, then reports; the node then steps the snapshot message
// into raft. Writing messages early is harmless: a message at a given
// sequence is the same on every replica, and install deletes whatever lies
// outside the snapshot's range.
// Threading: Start/Stop are thread-safe; `done` runs on the fetch thread.
#ifndef SPATE_SERVER_SNAPSHOT_FETCHER_H_
#define SPATE_SERVER_SNAPSHOT_FETCHER_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "proto/snapshot.pb.h"
#include "server/tls.h"
#include "storage/kv.h"

namespace spate::server {

class SnapshotFetcher {
 public:
  // `link`: how to dial the source's client listener (server/tls.h).
  SnapshotFetcher(storage::Kv* kv, std::string cluster_name,
                  ClientLinkOptions link = ClientLinkOptions())
      : kv_(kv),
        cluster_name_(std::move(cluster_name)),
        link_(std::move(link)) {}
  ~SnapshotFetcher() { Stop(); }

  // Starts fetching `image`'s messages from `source_address` unless a fetch
  // for this channel is running (false). `done` gets OK once every message
  // is written.
  bool Start(uint64_t channel_id, const std::string& source_address,
             const ChannelSnapshot& image,
             absl::AnyInvocable<void(absl::Status)> done);
  // Cancels running fetches and joins their threads.
  void Stop();
  bool Running(uint64_t channel_id) const;

 private:
  absl::Status Fetch(grpc::ClientContext* context,
                     const std::string& source_address,
                     const ChannelSnapshot& image);

  storage::Kv* const kv_;
  const std::string cluster_name_;
  const ClientLinkOptions link_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, std::shared_ptr<grpc::ClientContext>> running_
      ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace spate::server

#endif  // SPATE_SERVER_SNAPSHOT_FETCHER_H_
