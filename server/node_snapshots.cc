// Node, part: raft snapshots of the metadata and channel groups (made,
// fetched from the leader, installed), log compaction, and the local side
// of channel creation and deletion (a replica staged in the apply batch and
// opened once it is written). Loop thread only, like the rest of Node.
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/log.h"
#include "server/node.h"
#include "storage/log_store.h"

namespace spate::server {

// ---- Snapshots and compaction ----

absl::StatusOr<raft::SnapshotMetadata> Node::SnapshotMetadataAt(
    RaftGroup* group, raft::Index index) {
  absl::StatusOr<raft::Term> term = group->log()->TermAt(index);
  if (!term.ok()) return term.status();
  absl::StatusOr<raft::InitialState> initial = group->log()->LoadInitialState();
  if (!initial.ok()) return initial.status();
  raft::SnapshotMetadata metadata;
  metadata.set_index(index);
  metadata.set_term(*term);
  // The membership as of the applied index: conf changes take effect when
  // applied and are persisted then.
  *metadata.mutable_conf_state() = initial->conf_state;
  return metadata;
}

absl::StatusOr<raft::Snapshot> Node::MakeChannelSnapshot(uint64_t channel_id) {
  ChannelHost* host = FindChannel(channel_id);
  if (host == nullptr) return absl::UnavailableError("channel is gone");
  const ChannelFsm& fsm = host->fsm();
  // The store already holds everything applied (raft asks for snapshots
  // outside the apply step), so a view of it matches the image.
  absl::StatusOr<raft::SnapshotMetadata> metadata =
      SnapshotMetadataAt(host->group(), fsm.applied_index());
  if (!metadata.ok()) return metadata.status();
  absl::StatusOr<std::unique_ptr<storage::Kv>> view = kv_->NewSnapshot();
  if (!view.ok()) return view.status();
  absl::StatusOr<uint64_t> transfer =
      transfers_.Add(channel_id, *std::move(view), clock_->NowNs());
  if (!transfer.ok()) {
    return absl::UnavailableError(transfer.status().message());
  }
  GroupSnapshot image;
  *image.mutable_channel() = fsm.Image();
  image.mutable_channel()->set_source_node(self_);
  image.mutable_channel()->set_transfer_id(*transfer);
  raft::Snapshot snapshot;
  *snapshot.mutable_metadata() = *std::move(metadata);
  snapshot.set_data(image.SerializeAsString());
  LOG(INFO) << "snapshot made channel=" << fsm.name()
            << " index=" << snapshot.metadata().index()
            << " messages=" << fsm.record().msgs() << " transfer=" << *transfer;
  return snapshot;
}

absl::StatusOr<raft::Snapshot> Node::MakeMetaSnapshot() {
  absl::StatusOr<raft::SnapshotMetadata> metadata =
      SnapshotMetadataAt(meta_group_.get(), meta_->applied_index());
  if (!metadata.ok()) return metadata.status();
  GroupSnapshot image;
  *image.mutable_meta() = meta_->Image();
  raft::Snapshot snapshot;
  *snapshot.mutable_metadata() = *std::move(metadata);
  snapshot.set_data(image.SerializeAsString());
  return snapshot;
}

void Node::ReceiveChannelSnapshot(raft::NodeId from, raft::Message message) {
  const uint64_t channel_id = message.group();
  GroupSnapshot image;
  if (!image.ParseFromString(message.snapshot().data()) ||
      !image.has_channel() ||
      image.channel().record().channel_id() != channel_id) {
    LOG(WARNING) << "malformed channel snapshot dropped group=" << channel_id
                 << " from=" << from;
    return;
  }
  const raft::NodeId source = image.channel().source_node();
  std::string address;
  if (auto peer = peers_.find(source); peer != peers_.end()) {
    address = peer->second.client_address();
  }
  if (address.empty()) {
    LOG(WARNING) << "channel snapshot from a node with no known address"
                 << " group=" << channel_id << " source=" << source;
    return;
  }
  auto shared = std::make_shared<raft::Message>(std::move(message));
  const bool started = fetcher_->Start(
      channel_id, address, image.channel(),
      [this, channel_id, shared](absl::Status status) {
        // Fetch thread: hand the outcome to the loop.
        Post([this, channel_id, shared, status] {
          RaftGroup* group = FindGroup(channel_id);
          if (!status.ok() || group == nullptr) {
            LOG(WARNING) << "channel snapshot fetch failed group=" << channel_id
                         << " " << status;
            return;  // the leader sends another snapshot
          }
          absl::Status stepped = group->replica()->Step(*shared);
          if (!stepped.ok()) {
            LOG(WARNING) << "channel snapshot refused group=" << channel_id
                         << " " << stepped;
          }
        });
      });
  if (started) {
    LOG(INFO) << "fetching channel snapshot group=" << channel_id
              << " index=" << shared->snapshot().metadata().index()
              << " messages=" << image.channel().record().msgs()
              << " source=" << source;
  }
}

void Node::InstallSnapshot(RaftGroup* group, const raft::Snapshot& snapshot,
                           storage::WriteBatch* batch) {
  GroupSnapshot image;
  CHECK(image.ParseFromString(snapshot.data()))
      << "unparsable snapshot of group " << group->id();
  const raft::Index index = snapshot.metadata().index();
  if (group == meta_group_.get()) {
    CHECK(image.has_meta());
    meta_->Install(image.meta(), batch);
    after_apply_.push_back([this] { RefreshPeers(); });
    // Reconcile this node's channels with the installed directory.
    absl::flat_hash_set<uint64_t> listed;
    for (const auto& [name, entry] : meta_->channels()) {
      listed.insert(entry.channel_id());
      const bool replica =
          std::find(entry.replicas().begin(), entry.replicas().end(), self_) !=
          entry.replicas().end();
      if (replica && FindChannel(entry.channel_id()) == nullptr &&
          !pending_fsms_.contains(entry.channel_id())) {
        StageChannelCreate(entry, /*bootstrap=*/false, batch);
      }
    }
    for (const auto& [id, host] : channels_) {
      if (!listed.contains(id))
        StageChannelDelete(id, host->fsm().name(), batch);
    }
  } else {
    ChannelHost* host = FindChannel(group->id());
    CHECK(host != nullptr && image.has_channel());
    absl::Status status = host->InstallSnapshot(image.channel(), batch);
    // The messages were fetched before raft was allowed to install: a gap
    // now means the store lost data. Never serve a channel with holes.
    CHECK(status.ok()) << "installing the snapshot of channel "
                       << host->fsm().name() << ": " << status;
  }
  group->AppliedSnapshot(index);
  LOG(INFO) << "snapshot installed group=" << group->id() << " index=" << index;
}

void Node::CompactLogs() {
  const raft::Index keep =
      static_cast<raft::Index>(config_.raft().snapshot_entries());
  storage::WriteBatch batch;
  std::vector<RaftGroup*> compacted;
  auto consider = [&](RaftGroup* group) {
    const raft::Index applied = group->applied_index();
    const raft::Index first = group->log()->FirstIndex();
    if (applied < first + keep) return;
    // Keep the most recent half so briefly lagging followers need no
    // snapshot. The applied state up to `upto` was written before this
    // batch in the same write-ahead log, so it is never durable without it.
    const raft::Index upto = applied - keep / 2;
    absl::StatusOr<raft::SnapshotMetadata> metadata =
        SnapshotMetadataAt(group, upto);
    if (!metadata.ok()) {
      LOG(WARNING) << "cannot compact group=" << group->id() << " "
                   << metadata.status();
      return;
    }
    raft::Snapshot marker;
    *marker.mutable_metadata() = *std::move(metadata);
    absl::Status status = group->log()->StageCompaction(marker, &batch);
    if (!status.ok()) {
      LOG(WARNING) << "cannot compact group=" << group->id() << " " << status;
      return;
    }
    compacted.push_back(group);
  };
  consider(meta_group_.get());
  for (auto& [id, host] : channels_) consider(host->group());
  if (compacted.empty()) return;
  absl::Status status = kv_->Write(batch, /*sync=*/false);
  CHECK(status.ok()) << "log compaction write failed: " << status;
  for (RaftGroup* group : compacted) {
    group->log()->OnPersisted();
    LOG(DEBUG) << "log compacted group=" << group->id()
               << " first_index=" << group->log()->FirstIndex();
  }
}

void Node::StageChannelCreate(const ChannelDirectoryEntry& entry,
                              bool bootstrap, storage::WriteBatch* batch) {
  const auto& replicas = entry.replicas();
  if (std::find(replicas.begin(), replicas.end(), self_) == replicas.end()) {
    return;  // another node's channel
  }
  if (!bootstrap) PurgeLocalGroup(entry.channel_id(), batch);
  // This node holds a replica: its state machine and raft group start now,
  // with every replica as a voter.
  std::unique_ptr<ChannelFsm> fsm = ChannelFsm::Create(
      store_.get(), entry.channel_id(), entry.name(), entry.limits(),
      entry.created_ns(), fsm_options_, batch);
  if (bootstrap) {
    raft::ConfState conf;
    for (uint64_t node : replicas) conf.add_voters(node);
    storage::LogStore::Bootstrap(entry.channel_id(), conf, batch);
  }
  pending_fsms_[entry.channel_id()] = std::move(fsm);
  created_channels_.push_back(
      {entry.channel_id(),
       bootstrap && replicas[entry.channel_id() % replicas.size()] == self_});
}

void Node::PurgeLocalGroup(uint64_t channel_id, storage::WriteBatch* batch) {
  // Whatever an earlier membership of this node left behind: a replica
  // joins empty, or it would mix an old log with a new state machine.
  store_->DeleteChannel(channel_id, batch);
  absl::StatusOr<std::unique_ptr<storage::LogStore>> log =
      storage::LogStore::Open(kv_.get(), channel_id);
  if (log.ok()) (*log)->Destroy(batch);
}

void Node::StageChannelDelete(uint64_t channel_id, const std::string& name,
                              storage::WriteBatch* batch) {
  ChannelHost* host = FindChannel(channel_id);
  if (host == nullptr) return;
  host->Shutdown(
      absl::NotFoundError(absl::StrCat("channel '", name, "' was deleted")));
  store_->DeleteChannel(channel_id, batch);
  host->group()->log()->Destroy(batch);
  deleted_channels_.push_back(channel_id);
}

}  // namespace spate::server
