#include "server/meta_fsm.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/check.h"

namespace spate::server {

absl::StatusOr<std::unique_ptr<MetaFsm>> MetaFsm::Load(
    const storage::ChannelStore* store) {
  std::unique_ptr<MetaFsm> fsm(new MetaFsm(store));
  absl::StatusOr<MetaRecord> meta = store->GetMeta();
  if (meta.ok()) {
    fsm->meta_ = *std::move(meta);
  } else if (absl::IsNotFound(meta.status())) {
    fsm->meta_.set_next_channel_id(1);  // a new node
  } else {
    return meta.status();
  }
  absl::StatusOr<std::vector<ClientRecord>> clients = store->ListClients();
  if (!clients.ok()) return clients.status();
  for (ClientRecord& client : *clients) {
    std::string id = client.client_id();
    fsm->clients_.emplace(std::move(id), std::move(client));
  }
  absl::StatusOr<std::vector<NodeRecord>> nodes = store->ListNodes();
  if (!nodes.ok()) return nodes.status();
  for (NodeRecord& node : *nodes) {
    const uint64_t id = node.node_id();
    fsm->nodes_.emplace(id, std::move(node));
  }
  absl::StatusOr<std::vector<ChannelDirectoryEntry>> channels =
      store->ListDirectory();
  if (!channels.ok()) return channels.status();
  for (ChannelDirectoryEntry& entry : *channels) {
    CHECK_LT(entry.channel_id(), fsm->meta_.next_channel_id());
    std::string name = entry.name();
    fsm->channels_.emplace(std::move(name), std::move(entry));
  }
  return fsm;
}

MetaApplyResult MetaFsm::Apply(uint64_t index, const MetaCommand& command,
                               storage::WriteBatch* batch) {
  CHECK_GT(index, meta_.applied_index());
  MetaApplyResult result;
  switch (command.kind_case()) {
    case MetaCommand::kConnect: {
      const ClientConnect& connect = command.connect();
      auto it = clients_.find(connect.client_id());
      if (it != clients_.end()) {
        result.replaced_conn_id = it->second.conn_id();
      }
      ClientRecord record;
      record.set_client_id(connect.client_id());
      record.set_conn_id(connect.conn_id());
      record.set_connected_ns(connect.time_ns());
      store_->PutClient(record, batch);
      clients_[connect.client_id()] = std::move(record);
      break;
    }
    case MetaCommand::kClose: {
      const ClientClose& close = command.close();
      auto it = clients_.find(close.client_id());
      if (it == clients_.end() || (!close.conn_id().empty() &&
                                   it->second.conn_id() != close.conn_id())) {
        result.status = absl::NotFoundError(
            absl::StrCat("unknown client '", close.client_id(), "'"));
        break;
      }
      store_->DeleteClient(close.client_id(), batch);
      clients_.erase(it);
      break;
    }
    case MetaCommand::kCreateChannel: {
      const ChannelCreate& create = command.create_channel();
      auto it = channels_.find(create.name());
      if (it != channels_.end()) {
        result.channel_id = it->second.channel_id();
        break;
      }
      ChannelDirectoryEntry entry;
      entry.set_name(create.name());
      entry.set_channel_id(meta_.next_channel_id());
      *entry.mutable_limits() = create.limits();
      entry.set_created_ns(create.time_ns());
      *entry.mutable_replicas() = create.replicas();
      if (create.has_mirror()) *entry.mutable_mirror() = create.mirror();
      meta_.set_next_channel_id(meta_.next_channel_id() + 1);
      store_->PutDirectoryEntry(entry, batch);
      result.channel_id = entry.channel_id();
      result.created = true;
      channels_.emplace(create.name(), std::move(entry));
      break;
    }
    case MetaCommand::kDeleteChannel: {
      const ChannelDelete& del = command.delete_channel();
      auto it = channels_.find(del.name());
      if (it == channels_.end() ||
          it->second.channel_id() != del.channel_id()) {
        result.status = absl::NotFoundError(
            absl::StrCat("unknown channel '", del.name(), "'"));
        break;
      }
      store_->DeleteDirectoryEntry(del.name(), batch);
      result.channel_id = del.channel_id();
      channels_.erase(it);
      break;
    }
    case MetaCommand::kUpsertNode: {
      for (const NodeRecord& node : command.upsert_node().nodes()) {
        store_->PutNode(node, batch);
        nodes_[node.node_id()] = node;
      }
      break;
    }
    case MetaCommand::kDeleteNode: {
      store_->DeleteNode(command.delete_node().node_id(), batch);
      nodes_.erase(command.delete_node().node_id());
      break;
    }
    case MetaCommand::kChannelReplicas: {
      const ChannelReplicas& update = command.channel_replicas();
      auto it = channels_.find(update.name());
      if (it == channels_.end() ||
          it->second.channel_id() != update.channel_id() ||
          update.replicas().empty()) {
        result.status = absl::NotFoundError(
            absl::StrCat("unknown channel '", update.name(), "'"));
        break;
      }
      ChannelDirectoryEntry& entry = it->second;
      result.replicas_changed =
          !std::equal(entry.replicas().begin(), entry.replicas().end(),
                      update.replicas().begin(), update.replicas().end());
      *entry.mutable_replicas() = update.replicas();
      store_->PutDirectoryEntry(entry, batch);
      result.channel_id = entry.channel_id();
      break;
    }
    case MetaCommand::KIND_NOT_SET:
      result.status = absl::InvalidArgumentError("empty metadata command");
      break;
  }
  meta_.set_applied_index(index);
  WriteMeta(batch);
  return result;
}

MetaSnapshot MetaFsm::Image() const {
  MetaSnapshot image;
  *image.mutable_meta() = meta_;
  for (const auto& [id, client] : clients_) *image.add_clients() = client;
  for (const auto& [name, entry] : channels_) *image.add_channels() = entry;
  for (const auto& [id, node] : nodes_) *image.add_nodes() = node;
  return image;
}

void MetaFsm::Install(const MetaSnapshot& image, storage::WriteBatch* batch) {
  for (const auto& [id, client] : clients_) store_->DeleteClient(id, batch);
  for (const auto& [name, entry] : channels_) {
    store_->DeleteDirectoryEntry(name, batch);
  }
  for (const auto& [id, node] : nodes_) store_->DeleteNode(id, batch);
  clients_.clear();
  channels_.clear();
  nodes_.clear();
  meta_ = image.meta();
  for (const NodeRecord& node : image.nodes()) {
    store_->PutNode(node, batch);
    nodes_[node.node_id()] = node;
  }
  for (const ClientRecord& client : image.clients()) {
    store_->PutClient(client, batch);
    clients_[client.client_id()] = client;
  }
  for (const ChannelDirectoryEntry& entry : image.channels()) {
    store_->PutDirectoryEntry(entry, batch);
    channels_[entry.name()] = entry;
  }
  WriteMeta(batch);
}

void MetaFsm::ApplyEmpty(uint64_t index, storage::WriteBatch* batch) {
  CHECK_GT(index, meta_.applied_index());
  meta_.set_applied_index(index);
  WriteMeta(batch);
}

const ClientRecord* MetaFsm::FindClient(absl::string_view client_id) const {
  auto it = clients_.find(client_id);
  return it == clients_.end() ? nullptr : &it->second;
}

const ChannelDirectoryEntry* MetaFsm::FindChannel(
    absl::string_view name) const {
  auto it = channels_.find(name);
  return it == channels_.end() ? nullptr : &it->second;
}

void MetaFsm::WriteMeta(storage::WriteBatch* batch) const {
  store_->PutMeta(meta_, batch);
}

}  // namespace spate::server
