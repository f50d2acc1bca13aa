#include "server/node.h"

#include <algorithm>
#include <iterator>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "base/check.h"
#include "base/log.h"
#include "server/channel_limits.h"
#include "server/placement.h"
#include "storage/log_store.h"
#include "storage/rocks_kv.h"

namespace spate::server {
namespace {

// Requests queued for the loop; beyond it callers get UNAVAILABLE at once.
constexpr size_t kInboxTasksMax = 65536;
// Ready rounds per loop iteration (a single voter commits in round two).
constexpr int kReadyRoundsMax = 8;
// Retries of a request whose channel was deleted while it waited.
constexpr int kChannelAttemptsMax = 3;
constexpr raft::GroupId kMetaGroup = 0;

PubAck ErrorAck(const std::string& guid, const absl::Status& status) {
  PubAck ack;
  ack.set_guid(guid);
  ack.set_error(std::string(status.message()));
  ack.set_error_code(static_cast<int>(status.code()));
  return ack;
}

absl::Status OutcomeStatus(const ApplyOutcome& outcome) {
  if (!outcome.status.ok()) return outcome.status;
  if (outcome.meta != nullptr) return outcome.meta->status;
  if (outcome.channel != nullptr) return outcome.channel->status;
  return absl::OkStatus();
}

}  // namespace

Node::Node(const ServerConfig& config, const Clock* clock)
    : config_(config),
      clock_(clock),
      self_(config.node().id()),
      transfers_(/*transfers_max=*/16,
                 /*ttl_ns=*/int64_t{10} * 60 * 1000000000) {
  cluster_nodes_.push_back(self_);
  for (const PeerConfig& peer : config_.node().peers()) {
    cluster_nodes_.push_back(peer.id());
    peers_[peer.id()] = peer;
  }
  std::sort(cluster_nodes_.begin(), cluster_nodes_.end());
  tick_ns_ = int64_t{config_.raft().tick_ms()} * 1000000;
  fsm_options_.dedup_window_ms = config_.store().dedup_window_ms();
  fsm_options_.dedup_entries_max = config_.store().dedup_entries_max();
  host_options_.config = &config_;
  host_options_.connection_alive = [this](const std::string& client_id,
                                          const std::string& conn_id) {
    const ClientRecord* client = meta_->FindClient(client_id);
    return client != nullptr && client->conn_id() == conn_id;
  };
  host_options_.post_acks = [this](uint64_t channel_id, std::string member_id,
                                   std::vector<uint64_t> seqs) {
    SubscriptionAcks(channel_id, std::move(member_id), std::move(seqs));
  };
  host_options_.post_stream_end = [this](uint64_t channel_id,
                                         std::string member_id) {
    SubscriptionEnded(channel_id, std::move(member_id));
  };
  host_options_.member_id_prefix = absl::StrFormat(
      "%d-%x", config_.node().id(),
      static_cast<uint64_t>(absl::GetCurrentTimeNanos()) & 0xffffffffffULL);
}

Node::~Node() { Stop(); }

absl::StatusOr<std::unique_ptr<Node>> Node::Open(const ServerConfig& config,
                                                 const Clock* clock) {
  std::unique_ptr<Node> node(new Node(config, clock));
  absl::StatusOr<std::unique_ptr<storage::RocksKv>> kv = storage::RocksKv::Open(
      config.node().data_dir(), storage::RocksKvOptions());
  if (!kv.ok()) return kv.status();
  node->kv_ = *std::move(kv);
  node->store_ = std::make_unique<storage::ChannelStore>(node->kv_.get());
  node->fetcher_ = std::make_unique<SnapshotFetcher>(
      node->kv_.get(), config.node().cluster_name());
  if (absl::Status s = node->Recover(); !s.ok()) return s;
  return node;
}

absl::StatusOr<std::unique_ptr<RaftGroup>> Node::OpenGroup(
    raft::GroupId group, raft::Index applied) {
  raft::ReplicaOptions options;
  options.id = config_.node().id();
  options.group = group;
  options.election_ticks = config_.raft().election_ticks();
  options.heartbeat_ticks = config_.raft().heartbeat_ticks();
  options.inflight_msgs_max = config_.raft().inflight_msgs_max();
  options.append_bytes_max = config_.raft().append_bytes_max();
  options.seed = config_.node().id();
  options.applied = applied;
  SnapshotMaker maker;
  if (group == kMetaGroup) {
    maker = [this] { return MakeMetaSnapshot(); };
  } else {
    maker = [this, group] { return MakeChannelSnapshot(group); };
  }
  absl::StatusOr<std::unique_ptr<RaftGroup>> opened =
      RaftGroup::Open(kv_.get(), options, std::move(maker));
  if (!opened.ok()) {
    return absl::Status(
        opened.status().code(),
        absl::StrCat("group ", group, ": ", opened.status().message()));
  }
  // A single-node cluster elects itself right away; in a cluster the
  // election timeout (or a designated first leader) decides.
  if (cluster_nodes_.size() == 1) {
    (*opened)->replica()->Campaign().IgnoreError();  // already leader is fine
  }
  return opened;
}

absl::Status Node::Recover() {
  absl::StatusOr<std::unique_ptr<MetaFsm>> meta = MetaFsm::Load(store_.get());
  if (!meta.ok()) return meta.status();
  meta_ = *std::move(meta);
  if (meta_->applied_index() == 0 && meta_->channels().empty() &&
      !config_.node().join()) {
    // A new node (or one that never applied anything): make sure the
    // metadata group exists with this node as its voter.
    absl::StatusOr<std::unique_ptr<storage::LogStore>> probe =
        storage::LogStore::Open(kv_.get(), kMetaGroup);
    if (!probe.ok()) return probe.status();
    absl::StatusOr<raft::InitialState> initial = (*probe)->LoadInitialState();
    if (!initial.ok()) return initial.status();
    if (initial->conf_state.voters_size() == 0) {
      storage::WriteBatch batch;
      raft::ConfState conf;
      for (raft::NodeId node : cluster_nodes_) conf.add_voters(node);
      storage::LogStore::Bootstrap(kMetaGroup, conf, &batch);
      fresh_cluster_ = true;
      if (absl::Status s = kv_->Write(batch, /*sync=*/true); !s.ok()) return s;
    }
  }
  absl::StatusOr<std::unique_ptr<RaftGroup>> group =
      OpenGroup(kMetaGroup, meta_->applied_index());
  if (!group.ok()) return group.status();
  meta_group_ = *std::move(group);
  // A brand-new cluster: the lowest node id asks for votes at once instead
  // of waiting out an election timeout.
  if (fresh_cluster_ && cluster_nodes_.size() > 1 &&
      cluster_nodes_.front() == self_) {
    meta_group_->replica()->Campaign().IgnoreError();  // best effort
  }

  storage::WriteBatch leftovers;
  for (const auto& [name, entry] : meta_->channels()) {
    if (std::find(entry.replicas().begin(), entry.replicas().end(), self_) ==
            entry.replicas().end() &&
        entry.replicas_size() > 0) {
      // Another node's channel; drop what an earlier membership left here.
      if (store_->GetChannel(entry.channel_id()).ok()) {
        PurgeLocalGroup(entry.channel_id(), &leftovers);
      }
      continue;
    }
    absl::StatusOr<std::unique_ptr<ChannelFsm>> fsm =
        ChannelFsm::Load(store_.get(), entry.channel_id(), fsm_options_);
    if (!fsm.ok()) {
      return absl::Status(
          fsm.status().code(),
          absl::StrCat("channel '", name, "': ", fsm.status().message()));
    }
    absl::StatusOr<std::unique_ptr<RaftGroup>> channel_group =
        OpenGroup(entry.channel_id(), (*fsm)->applied_index());
    if (!channel_group.ok()) return channel_group.status();
    channels_[entry.channel_id()] = std::make_unique<ChannelHost>(
        *std::move(fsm), *std::move(channel_group), host_options_, clock_);
  }
  if (!leftovers.empty()) {
    if (absl::Status s = kv_->Write(leftovers, /*sync=*/true); !s.ok()) {
      return s;
    }
  }
  // No client has pinged this process yet: each may be replaced by a new
  // connection at once (it is not known to be alive), and is dropped if it
  // does not ping within the remaining grace period.
  const int64_t seen = clock_->NowNs() - AliveWindowNs();
  for (const auto& [client_id, record] : meta_->clients()) {
    client_seen_ns_[client_id] = seen;
  }
  LOG(INFO) << "node recovered node=" << config_.node().id()
            << " channels=" << channels_.size()
            << " clients=" << meta_->clients().size()
            << " data_dir=" << config_.node().data_dir();
  return absl::OkStatus();
}

// ---- Loop ----

void Node::Start() {
  CHECK(!started_);
  started_ = true;
  RefreshPeers();
  loop_thread_ = std::thread([this] { Loop(); });
}

void Node::Stop() {
  {
    absl::MutexLock lock(&inbox_mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (loop_thread_.joinable()) loop_thread_.join();
  if (fetcher_ != nullptr) fetcher_->Stop();
  // The loop is gone: this thread owns the node now.
  RunTasks();
  const absl::Status status = absl::UnavailableError("server is shutting down");
  for (auto& [id, host] : channels_) host->Shutdown(status);
  if (meta_group_ != nullptr) meta_group_->FailAll(status);
  for (auto& [name, waiters] : creating_) {
    for (auto& waiter : waiters) waiter(status);
  }
  creating_.clear();
}

bool Node::Post(absl::AnyInvocable<void()> task) {
  absl::MutexLock lock(&inbox_mu_);
  if (stopping_ || inbox_.size() >= kInboxTasksMax) return false;
  inbox_.push_back(std::move(task));
  return true;
}

void Node::Loop() {
  while (true) {
    const int64_t now = clock_->NowNs();
    RunOnce(now);
    if (AnyReady()) continue;
    const int64_t wake = NextWakeNs(clock_->NowNs());
    absl::MutexLock lock(&inbox_mu_);
    if (stopping_) break;
    auto has_work = [this]() ABSL_SHARED_LOCKS_REQUIRED(inbox_mu_) {
      return !inbox_.empty() || stopping_;
    };
    inbox_mu_.AwaitWithTimeout(
        absl::Condition(&has_work),
        absl::Nanoseconds(std::max<int64_t>(wake - clock_->NowNs(), 0)));
    if (stopping_) break;
  }
}

void Node::RunTasks() {
  std::vector<absl::AnyInvocable<void()>> tasks;
  {
    absl::MutexLock lock(&inbox_mu_);
    tasks.swap(inbox_);
  }
  for (auto& task : tasks) task();
}

void Node::RunOnce(int64_t now_ns) {
  RunTasks();
  FlushForwardedPublishes();
  if (now_ns >= next_tick_ns_) {
    Tick(now_ns);
    next_tick_ns_ = now_ns + tick_ns_;
  }
  FlushProposals();
  ProcessReadies();
  PumpDeliveries(now_ns);
  // Progress (acks, lease extensions) from the pump is persisted with the
  // next iteration's group commit.
  FlushProposals();
}

void Node::Tick(int64_t now_ns) {
  const int quiesce_after = config_.raft().election_ticks();
  meta_group_->Tick(quiesce_after);
  meta_group_->ExpireServingWaiters(now_ns);
  bool all_quiesced = meta_group_->quiesced();
  for (auto& [id, host] : channels_) {
    host->group()->Tick(quiesce_after);
    host->OnTick(now_ns);
    all_quiesced &= host->group()->quiesced();
  }
  WakeGroupsOfLostPeers();
  all_quiesced_ = all_quiesced;
  if (now_ns >= next_compaction_ns_) {
    next_compaction_ns_ = now_ns + 1000000000;  // once a second
    CompactLogs();
    transfers_.Expire(now_ns);
  }
  if (now_ns >= next_reconcile_ns_) {
    next_reconcile_ns_ = now_ns + 1000000000;  // once a second
    ReconcileMembership();
  }
  if (now_ns >= next_balance_ns_) {
    next_balance_ns_ = now_ns + 2000000000;  // every two seconds
    BalanceLeaders();
  }
  if (now_ns >= next_expiry_check_ns_) {
    next_expiry_check_ns_ =
        now_ns + config_.clients().ping_interval_ms() * 1000000 / 2;
    ExpireClients(now_ns);
    MaybeDeleteInactiveChannels(now_ns);
  }
}

void Node::FlushProposals() {
  for (auto& [id, host] : channels_) host->FlushProposals();
}

void Node::PumpDeliveries(int64_t now_ns) {
  for (auto& [id, host] : channels_) host->Pump(now_ns);
}

bool Node::AnyReady() const {
  if (meta_group_->replica()->HasReady()) return true;
  for (const auto& [id, host] : channels_) {
    if (const_cast<ChannelHost&>(*host).group()->replica()->HasReady()) {
      return true;
    }
  }
  return false;
}

int64_t Node::NextWakeNs(int64_t now_ns) const {
  // With every group quiesced no raft tick is needed: sleep until the next
  // timer or task (whatever wakes a group arrives as a task, and the loop
  // then ticks at once since the tick is overdue).
  int64_t wake = std::min(next_expiry_check_ns_, next_compaction_ns_);
  if (!all_quiesced_) wake = std::min(wake, next_tick_ns_);
  for (const auto& [id, host] : channels_) {
    wake = std::min(wake, host->NextDeadline());
  }
  return std::max(wake, now_ns);
}

void Node::ProcessReadies() {
  for (int round = 0; round < kReadyRoundsMax; ++round) {
    std::vector<std::pair<RaftGroup*, raft::Ready>> readies;
    storage::WriteBatch batch;
    bool sync = false;
    auto collect = [&](RaftGroup* group) {
      if (!group->replica()->HasReady()) return;
      raft::Ready ready = group->replica()->TakeReady();
      CHECK_OK(group->log()->Stage(ready.hard_state, ready.entries,
                                   ready.snapshot, &batch));
      sync |= ready.must_sync;
      readies.emplace_back(group, std::move(ready));
    };
    collect(meta_group_.get());
    for (auto& [id, host] : channels_) collect(host->group());
    if (readies.empty()) return;

    // A leader's appends and heartbeats may leave before its own write
    // (Raft thesis §10.2.1): followers persist in parallel, and the leader
    // counts its own copy only after Advance. Everything else (votes,
    // acknowledgements) waits for the write below.
    absl::btree_map<raft::NodeId, std::vector<raft::Message>> early;
    for (auto& [group, ready] : readies) {
      if (!group->leader()) continue;
      std::vector<raft::Message> later;
      for (raft::Message& message : ready.messages) {
        if (message.type() == raft::MSG_APPEND ||
            message.type() == raft::MSG_HEARTBEAT) {
          const raft::NodeId to = message.to();
          early[to].push_back(std::move(message));
        } else {
          later.push_back(std::move(message));
        }
      }
      ready.messages.swap(later);
    }
    if (!early.empty()) SendOutbound(std::move(early));

    // Group commit: every group's entries and hard state, one fsync.
    if (!batch.empty()) {
      absl::Status status =
          kv_->Write(batch, sync && config_.store().sync_writes());
      // The node cannot promise anything without its log: stop loudly.
      CHECK(status.ok()) << "raft log write failed: " << status;
    }
    for (auto& [group, ready] : readies) group->log()->OnPersisted();
    // Persisted: now the messages that depend on it may leave, one batch
    // per peer for all groups.
    absl::btree_map<raft::NodeId, std::vector<raft::Message>> outbound;
    for (auto& [group, ready] : readies) {
      for (raft::Message& message : ready.messages) {
        const raft::NodeId to = message.to();
        outbound[to].push_back(std::move(message));
      }
      ready.messages.clear();
    }
    SendOutbound(std::move(outbound));
    storage::WriteBatch apply_batch;
    for (auto& [group, ready] : readies) {
      if (ready.soft_state) group->OnSoftState(*ready.soft_state);
      if (!ready.read_states.empty()) group->OnReadStates(ready.read_states);
      if (ready.snapshot) InstallSnapshot(group, *ready.snapshot, &apply_batch);
      if (deleted_channels_.end() != std::find(deleted_channels_.begin(),
                                               deleted_channels_.end(),
                                               group->id())) {
        continue;
      }
      ApplyEntries(group, ready.committed_entries, &apply_batch);
    }
    if (!apply_batch.empty()) {
      absl::Status status = kv_->Write(apply_batch, /*sync=*/false);
      CHECK(status.ok()) << "state write failed: " << status;
    }
    AfterApplyWritten();
    for (auto& [group, ready] : readies) group->replica()->Advance(ready);
    for (auto& [id, host] : channels_) host->UpdateLeadership();
  }
}

void Node::ApplyEntries(RaftGroup* group,
                        const std::vector<raft::Entry>& entries,
                        storage::WriteBatch* batch) {
  ChannelHost* host =
      group == meta_group_.get() ? nullptr : FindChannel(group->id());
  for (const raft::Entry& entry : entries) {
    if (host == nullptr && group != meta_group_.get()) return;  // deleted
    if (entry.type() == raft::ENTRY_CONF_CHANGE) {
      raft::ConfChange change;
      if (change.ParseFromString(entry.data())) {
        absl::StatusOr<raft::ConfState> conf =
            group->replica()->ApplyConfChange(change);
        if (conf.ok()) {
          group->log()->StageConfState(*conf, batch);
          after_apply_.push_back([this] { RefreshPeers(); });
        }
      }
      raft::Entry empty;
      empty.set_index(entry.index());
      empty.set_term(entry.term());
      if (host != nullptr) {
        host->Apply(empty, batch);
      } else {
        meta_->ApplyEmpty(entry.index(), batch);
      }
      group->Applied(entry.index(), entry.term(), ApplyOutcome{});
      continue;
    }
    if (host != nullptr) {
      ChannelApplyResult result = host->Apply(entry, batch);
      group->Applied(entry.index(), entry.term(),
                     ApplyOutcome{absl::OkStatus(), &result, nullptr});
    } else {
      ApplyMeta(entry, batch);
    }
  }
}

void Node::ApplyMeta(const raft::Entry& entry, storage::WriteBatch* batch) {
  MetaCommand command;
  if (entry.data().empty() || !command.ParseFromString(entry.data())) {
    if (!entry.data().empty()) {
      LOG(ERROR) << "unparsable metadata command skipped index="
                 << entry.index();
    }
    meta_->ApplyEmpty(entry.index(), batch);
    meta_group_->Applied(entry.index(), entry.term(), ApplyOutcome{});
    return;
  }
  MetaApplyResult result = meta_->Apply(entry.index(), command, batch);
  // Every channel leader closes the members of a connection that is gone.
  if (command.has_connect() && !result.replaced_conn_id.empty() &&
      result.replaced_conn_id != command.connect().conn_id()) {
    gone_connections_.push_back(
        {command.connect().client_id(), result.replaced_conn_id,
         absl::NotFoundError("client was replaced by a newer connection")});
  }
  if (command.has_close() && result.status.ok()) {
    gone_connections_.push_back(
        {command.close().client_id(), command.close().conn_id(),
         command.close().reason() == ClientClose::EXPIRED
             ? absl::UnavailableError("client stopped pinging and was dropped")
             : absl::CancelledError("client closed the connection")});
  }
  if (command.has_create_channel() && result.created) {
    StageChannelCreate(*meta_->FindChannel(command.create_channel().name()),
                       /*bootstrap=*/true, batch);
  }
  if (command.has_delete_channel() && result.status.ok()) {
    StageChannelDelete(result.channel_id, command.delete_channel().name(),
                       batch);
  }
  if (command.has_upsert_node() || command.has_delete_node()) {
    after_apply_.push_back([this] { RefreshPeers(); });
  }
  meta_group_->Applied(entry.index(), entry.term(),
                       ApplyOutcome{absl::OkStatus(), nullptr, &result});
}

void Node::AfterApplyWritten() {
  for (auto& [id, host] : channels_) host->AfterApplyWritten();
  std::vector<GoneConnection> gone;
  gone.swap(gone_connections_);
  for (const GoneConnection& connection : gone) {
    for (auto& [id, host] : channels_) {
      if (host->leading()) {
        host->CloseClientMembers(connection.client_id, connection.conn_id,
                                 connection.status);
      }
    }
  }
  for (uint64_t id : deleted_channels_) {
    channels_.erase(id);
    LOG(INFO) << "channel deleted channel_id=" << id;
  }
  deleted_channels_.clear();
  MaterializeCreatedChannels();
  std::vector<absl::AnyInvocable<void()>> tasks;
  tasks.swap(after_apply_);
  for (auto& task : tasks) task();
}

void Node::MaterializeCreatedChannels() {
  std::vector<CreatedChannel> created;
  created.swap(created_channels_);
  for (const auto& [id, designated_leader] : created) {
    std::unique_ptr<ChannelFsm> fsm = std::move(pending_fsms_.at(id));
    pending_fsms_.erase(id);
    const std::string name = fsm->name();
    absl::StatusOr<std::unique_ptr<RaftGroup>> group = OpenGroup(id, 0);
    CHECK(group.ok()) << "cannot open the group of new channel " << name << ": "
                      << group.status();
    if (designated_leader) {
      // Leaders of new channels spread round-robin over their replicas.
      (*group)->replica()->Campaign().IgnoreError();  // best effort
    }
    channels_[id] = std::make_unique<ChannelHost>(
        std::move(fsm), *std::move(group), host_options_, clock_);
    LOG(INFO) << "channel created channel=" << name << " channel_id=" << id;
  }
}

ChannelHost* Node::FindChannel(uint64_t channel_id) {
  auto it = channels_.find(channel_id);
  return it == channels_.end() ? nullptr : it->second.get();
}

void Node::ProposeMeta(const MetaCommand& command, ProposalDone done) {
  meta_group_->Propose(command.SerializeAsString(), std::move(done));
}

// ---- Cluster ----

void Node::SetCluster(Transport* transport, Forwarder* forwarder) {
  CHECK(!started_);
  transport_ = transport;
  forwarder_ = forwarder;
}

void Node::OnRaftMessages(raft::NodeId from,
                          std::vector<raft::Message> messages) {
  auto shared =
      std::make_shared<std::vector<raft::Message>>(std::move(messages));
  // Refused when overloaded or stopping: raft retransmits.
  Post([this, from, shared] { StepInbound(from, std::move(*shared)); });
}

RaftGroup* Node::FindGroup(raft::GroupId group) {
  if (group == kMetaGroup) return meta_group_.get();
  ChannelHost* host = FindChannel(group);
  return host == nullptr ? nullptr : host->group();
}

void Node::StepInbound(raft::NodeId from, std::vector<raft::Message> messages) {
  for (const raft::Message& message : messages) {
    RaftGroup* group = FindGroup(message.group());
    if (group == nullptr) {
      // A channel this node has not created yet (its metadata replica
      // lags) or has deleted: the sender retries.
      LOG(DEBUG) << "raft message for unknown group=" << message.group()
                 << " from=" << from;
      continue;
    }
    if (message.type() == raft::MSG_SNAPSHOT && message.group() != kMetaGroup) {
      ReceiveChannelSnapshot(from, message);
      continue;
    }
    absl::Status status = group->replica()->Step(message);
    if (!status.ok()) {
      LOG(DEBUG) << "raft message refused group=" << message.group()
                 << " from=" << from << " " << status;
    }
  }
}

void Node::SendOutbound(
    absl::btree_map<raft::NodeId, std::vector<raft::Message>> outbound) {
  for (auto& [to, messages] : outbound) {
    // Remember what to report if the transport drops the batch.
    std::vector<std::pair<raft::GroupId, bool>> groups;
    for (const raft::Message& message : messages) {
      groups.emplace_back(message.group(),
                          message.type() == raft::MSG_SNAPSHOT);
    }
    const bool sent =
        transport_ != nullptr && transport_->Send(to, std::move(messages));
    for (const auto& [id, snapshot] : groups) {
      RaftGroup* group = FindGroup(id);
      if (group == nullptr) continue;
      if (!sent) group->replica()->ReportUnreachable(to);
      // Raft waits for every snapshot to be reported. Once handed to the
      // transport it is "sent": the follower fetches the messages and
      // installs it, or the leader's probing finds it did not.
      if (snapshot) group->replica()->ReportSnapshot(to, sent);
    }
  }
}

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

// ---- Membership ----

std::vector<uint64_t> Node::ActiveNodes() const {
  if (meta_->nodes().empty()) {
    return std::vector<uint64_t>(cluster_nodes_.begin(), cluster_nodes_.end());
  }
  std::vector<uint64_t> active;
  for (const auto& [id, node] : meta_->nodes()) {
    if (node.state() == NodeRecord::ACTIVE) active.push_back(id);
  }
  return active;
}

void Node::RefreshPeers() {
  for (const PeerConfig& peer : config_.node().peers()) {
    known_addresses_[peer.id()] = peer;
  }
  for (const auto& [id, node] : meta_->nodes()) {
    PeerConfig& peer = known_addresses_[id];
    peer.set_id(id);
    peer.set_cluster_address(node.cluster_address());
    peer.set_client_address(node.client_address());
  }
  // Peers: the node table (or the configured peers before it exists), and
  // every member of a local group's current membership — a node being
  // moved out keeps its links until no group of ours counts on it.
  absl::flat_hash_set<raft::NodeId> wanted;
  if (meta_->nodes().empty()) {
    for (const PeerConfig& peer : config_.node().peers())
      wanted.insert(peer.id());
  } else {
    for (const auto& [id, node] : meta_->nodes()) wanted.insert(id);
  }
  auto add_members = [&](RaftGroup* group) {
    const raft::ConfState conf = group->replica()->Status().conf_state;
    for (uint64_t id : conf.voters()) wanted.insert(id);
    for (uint64_t id : conf.learners()) wanted.insert(id);
  };
  add_members(meta_group_.get());
  for (auto& [id, host] : channels_) add_members(host->group());
  wanted.erase(self_);
  peers_.clear();
  for (raft::NodeId id : wanted) {
    auto known = known_addresses_.find(id);
    if (known != known_addresses_.end()) peers_[id] = known->second;
  }
  cluster_nodes_.assign(1, self_);
  PeerAddresses cluster;
  absl::flat_hash_map<raft::NodeId, std::string> clients;
  for (const auto& [id, peer] : peers_) {
    cluster_nodes_.push_back(id);
    cluster[id] = peer.cluster_address();
    if (!peer.client_address().empty()) clients[id] = peer.client_address();
  }
  std::sort(cluster_nodes_.begin(), cluster_nodes_.end());
  if (transport_ != nullptr) {
    absl::Status status = transport_->SetPeers(cluster);
    if (!status.ok()) LOG(WARNING) << "transport peers not updated: " << status;
  }
  if (forwarder_ != nullptr) forwarder_->SetAddresses(std::move(clients));
}

void Node::ReconcileMembership() {
  ReconcileLocalReplicas();
  for (auto& [id, host] : channels_) {
    if (!host->group()->serving()) continue;
    const ChannelDirectoryEntry* entry = meta_->FindChannel(host->fsm().name());
    if (entry == nullptr || entry->replicas().empty()) continue;
    ReconcileGroupMembers(host->group(),
                          std::vector<uint64_t>(entry->replicas().begin(),
                                                entry->replicas().end()));
  }
  if (meta_group_->serving()) ReconcileMetadataLeader();
}

void Node::ReconcileLocalReplicas() {
  storage::WriteBatch batch;
  for (const auto& [name, entry] : meta_->channels()) {
    const auto& replicas = entry.replicas();
    if (std::find(replicas.begin(), replicas.end(), self_) == replicas.end() ||
        FindChannel(entry.channel_id()) != nullptr ||
        pending_fsms_.contains(entry.channel_id())) {
      continue;
    }
    // A replica moved here: join the group empty; its leader adds this
    // node as a learner and catches it up.
    LOG(INFO) << "joining channel as a new replica channel=" << name;
    StageChannelCreate(entry, /*bootstrap=*/false, &batch);
  }
  for (auto& [id, host] : channels_) {
    const ChannelDirectoryEntry* entry = meta_->FindChannel(host->fsm().name());
    if (entry == nullptr) continue;  // deleted through its own command
    const auto& replicas = entry->replicas();
    if (std::find(replicas.begin(), replicas.end(), self_) != replicas.end()) {
      continue;
    }
    // Moved away: drop the local copy once the group removed this node.
    const raft::ConfState conf = host->group()->replica()->Status().conf_state;
    const bool member =
        std::find(conf.voters().begin(), conf.voters().end(), self_) !=
            conf.voters().end() ||
        std::find(conf.learners().begin(), conf.learners().end(), self_) !=
            conf.learners().end();
    if (member || (conf.voters().empty() && conf.learners().empty())) continue;
    LOG(INFO) << "dropping replica moved to other nodes channel="
              << host->fsm().name();
    StageChannelDelete(id, host->fsm().name(), &batch);
  }
  if (batch.empty()) return;
  absl::Status status = kv_->Write(batch, /*sync=*/true);
  CHECK(status.ok()) << "replica change write failed: " << status;
  for (uint64_t id : deleted_channels_) channels_.erase(id);
  deleted_channels_.clear();
  MaterializeCreatedChannels();
}

void Node::ReconcileGroupMembers(RaftGroup* group,
                                 const std::vector<uint64_t>& desired) {
  raft::Replica* replica = group->replica();
  const raft::ReplicaStatus status = replica->Status();
  if (status.role != raft::Role::kLeader ||
      replica->pending_conf_index() > status.applied) {
    return;  // not leading, or a change is still on its way
  }
  auto caught_up = [&](raft::NodeId node) {
    for (const raft::PeerStatus& peer : status.peers) {
      if (peer.id == node) return peer.match >= status.commit;
    }
    return false;
  };
  raft::NodeId transfer_to = raft::kNoNode;
  std::optional<raft::ConfChange> change = NextConfChange(
      desired, status.conf_state, self_, caught_up, &transfer_to);
  if (change.has_value()) {
    absl::StatusOr<raft::Index> index = replica->ProposeConfChange(*change);
    LOG(INFO) << "membership change group=" << group->id() << " "
              << raft::ConfChange::Type_Name(change->type())
              << " node=" << change->node_id() << " "
              << (index.ok() ? "proposed" : index.status().ToString());
  } else if (transfer_to != raft::kNoNode) {
    // This leader is being moved out: hand over first.
    absl::Status status = replica->TransferLeadership(transfer_to);
    LOG(INFO) << "leaving group=" << group->id()
              << ": transferring leadership to=" << transfer_to << " "
              << status;
  }
}

void Node::ProposeChannelReplicas(const std::string& name,
                                  std::vector<uint64_t> replicas) {
  const ChannelDirectoryEntry* entry = meta_->FindChannel(name);
  if (entry == nullptr || !replica_updates_in_flight_.insert(name).second) {
    return;
  }
  MetaCommand command;
  ChannelReplicas* update = command.mutable_channel_replicas();
  update->set_name(name);
  update->set_channel_id(entry->channel_id());
  for (uint64_t node : replicas) update->add_replicas(node);
  LOG(INFO) << "moving channel replicas channel=" << name
            << " to=" << update->ShortDebugString();
  ProposeMeta(command, [this, name](const ApplyOutcome&) {
    replica_updates_in_flight_.erase(name);
  });
}

void Node::ReconcileMetadataLeader() {
  if (meta_->nodes().empty()) {
    // A new cluster: record its configured members, all in one command.
    if (recording_nodes_) return;
    recording_nodes_ = true;
    MetaCommand command;
    for (raft::NodeId id : cluster_nodes_) {
      NodeRecord* node = command.mutable_upsert_node()->add_nodes();
      node->set_node_id(id);
      if (id == self_) {
        node->set_cluster_address(config_.node().cluster_address());
        node->set_client_address(config_.node().client_address());
      } else if (auto peer = peers_.find(id); peer != peers_.end()) {
        node->set_cluster_address(peer->second.cluster_address());
        node->set_client_address(peer->second.client_address());
      }
    }
    ProposeMeta(command,
                [this](const ApplyOutcome&) { recording_nodes_ = false; });
    return;
  }
  const std::vector<uint64_t> active = ActiveNodes();
  absl::flat_hash_set<uint64_t> holding;  // nodes holding replicas
  for (const auto& [name, entry] : meta_->channels()) {
    for (uint64_t node : entry.replicas()) holding.insert(node);
  }
  // Metadata membership: active nodes, plus leaving ones until their
  // replicas moved away.
  std::vector<uint64_t> desired = active;
  for (const auto& [id, node] : meta_->nodes()) {
    if (node.state() == NodeRecord::LEAVING && holding.contains(id)) {
      desired.push_back(id);
    }
  }
  std::sort(desired.begin(), desired.end());
  ReconcileGroupMembers(meta_group_.get(), desired);

  std::vector<ReplicaMove> moves =
      PlanEvacuation(active, meta_->channels(), /*max_moves=*/8);
  for (ReplicaMove& move : moves) {
    ProposeChannelReplicas(move.channel, std::move(move.replicas));
  }
  if (moves.empty() && replica_updates_in_flight_.empty()) {
    if (std::optional<ReplicaMove> move =
            PlanRebalance(active, meta_->channels())) {
      ProposeChannelReplicas(move->channel, std::move(move->replicas));
    }
  }
  // Forget nodes that left completely.
  const raft::ConfState conf = meta_group_->replica()->Status().conf_state;
  for (const auto& [id, node] : meta_->nodes()) {
    const bool member =
        std::find(conf.voters().begin(), conf.voters().end(), id) !=
            conf.voters().end() ||
        std::find(conf.learners().begin(), conf.learners().end(), id) !=
            conf.learners().end();
    if (node.state() == NodeRecord::LEAVING && !holding.contains(id) &&
        !member) {
      MetaCommand command;
      command.mutable_delete_node()->set_node_id(id);
      LOG(INFO) << "node left the cluster node=" << id;
      ProposeMeta(command, [](const ApplyOutcome&) {});
    }
  }
}

void Node::AddNode(const AddNodeRequest& request, int hops, StatusDone done) {
  auto shared = std::make_shared<StatusDone>(std::move(done));
  if (!Post([this, request, hops, shared] {
        RouteMeta(
            hops, Deadline(),
            [this, request, hops, shared](absl::StatusOr<raft::NodeId> leader) {
              if (!leader.ok()) {
                (*shared)(leader.status());
                return;
              }
              if (*leader != self_) {
                (*shared)(absl::UnavailableError(absl::StrCat(
                    "node ", *leader, " leads the metadata group: ask it")));
                return;
              }
              if (meta_->nodes().empty()) {
                (*shared)(absl::UnavailableError(
                    "the cluster's members are being recorded; retry"));
                return;
              }
              if (meta_->nodes().contains(request.node_id()) &&
                  meta_->nodes().at(request.node_id()).state() ==
                      NodeRecord::ACTIVE) {
                (*shared)(absl::OkStatus());  // already a member
                return;
              }
              MetaCommand command;
              NodeRecord* node = command.mutable_upsert_node()->add_nodes();
              node->set_node_id(request.node_id());
              node->set_cluster_address(request.cluster_address());
              node->set_client_address(request.client_address());
              ProposeMeta(command, [shared](const ApplyOutcome& outcome) {
                (*shared)(OutcomeStatus(outcome));
              });
            });
      })) {
    (*shared)(absl::UnavailableError("server is busy or stopping; retry"));
  }
}

void Node::RemoveNode(const RemoveNodeRequest& request, int hops,
                      StatusDone done) {
  auto shared = std::make_shared<StatusDone>(std::move(done));
  if (!Post([this, request, hops, shared] {
        RouteMeta(
            hops, Deadline(),
            [this, request, shared](absl::StatusOr<raft::NodeId> leader) {
              if (!leader.ok()) {
                (*shared)(leader.status());
                return;
              }
              if (*leader != self_) {
                (*shared)(absl::UnavailableError(absl::StrCat(
                    "node ", *leader, " leads the metadata group: ask it")));
                return;
              }
              auto it = meta_->nodes().find(request.node_id());
              if (it == meta_->nodes().end()) {
                (*shared)(absl::NotFoundError(absl::StrCat(
                    "no node ", request.node_id(), " in the cluster")));
                return;
              }
              if (it->second.state() == NodeRecord::ACTIVE &&
                  ActiveNodes().size() <= 1) {
                (*shared)(absl::FailedPreconditionError(
                    "cannot remove the last active node"));
                return;
              }
              MetaCommand command;
              NodeRecord* leaving = command.mutable_upsert_node()->add_nodes();
              *leaving = it->second;
              leaving->set_state(NodeRecord::LEAVING);
              ProposeMeta(command, [shared](const ApplyOutcome& outcome) {
                (*shared)(OutcomeStatus(outcome));
              });
            });
      })) {
    (*shared)(absl::UnavailableError("server is busy or stopping; retry"));
  }
}

// ---- Status ----

namespace {

void FillGroupStatus(const raft::Replica& replica, GroupStatus* out) {
  const raft::ReplicaStatus status = replica.Status();
  out->set_group_id(status.group);
  out->set_role(absl::AsciiStrToLower(raft::RoleName(status.role)));
  out->set_leader_id(status.leader);
  out->set_term(status.term);
  out->set_commit_index(status.commit);
  out->set_applied_index(status.applied);
  out->set_first_index(status.first_index);
  out->set_last_index(status.last_index);
  out->set_quiesced(status.quiesced);
  out->set_halted(status.halted);
  *out->mutable_voters() = status.conf_state.voters();
  *out->mutable_learners() = status.conf_state.learners();
  for (const raft::PeerStatus& peer : status.peers) {
    PeerProgress* progress = out->add_peers();
    progress->set_node_id(peer.id);
    progress->set_match_index(peer.match);
    progress->set_next_index(peer.next);
    progress->set_state(
        absl::AsciiStrToLower(raft::ProgressStateName(peer.state)));
    progress->set_recently_active(peer.recent_active);
  }
}

}  // namespace

ClusterStatusResponse Node::BuildClusterStatus() {
  ClusterStatusResponse response;
  response.set_cluster_name(config_.node().cluster_name());
  response.set_node_id(self_);
  response.set_channels(static_cast<int>(meta_->channels().size()));
  response.set_clients(static_cast<int>(meta_->clients().size()));
  NodeStatus* me = response.add_nodes();
  me->set_node_id(self_);
  me->set_client_address(config_.node().client_address());
  me->set_cluster_address(config_.node().cluster_address());
  me->set_reachable(true);
  for (const auto& [id, peer] : peers_) {
    NodeStatus* node = response.add_nodes();
    node->set_node_id(id);
    node->set_client_address(peer.client_address());
    node->set_cluster_address(peer.cluster_address());
    node->set_reachable(transport_ != nullptr && transport_->PeerReachable(id));
  }
  for (NodeStatus& node : *response.mutable_nodes()) {
    auto record = meta_->nodes().find(node.node_id());
    node.set_state(record == meta_->nodes().end() ||
                           record->second.state() == NodeRecord::ACTIVE
                       ? "active"
                       : "leaving");
  }
  FillGroupStatus(*meta_group_->replica(), response.add_groups());
  for (auto& [id, host] : channels_) {
    GroupStatus* group = response.add_groups();
    FillGroupStatus(*host->group()->replica(), group);
    const ChannelFsm& fsm = host->fsm();
    group->set_channel(fsm.name());
    group->set_first_sequence(fsm.first_sequence());
    group->set_last_sequence(fsm.last_sequence());
    group->set_msgs(fsm.record().msgs());
    group->set_bytes(fsm.record().bytes());
    group->set_subscriptions(static_cast<int>(fsm.subscriptions().size()));
  }
  return response;
}

void Node::ClusterStatus(
    absl::AnyInvocable<void(absl::StatusOr<ClusterStatusResponse>)> done) {
  auto shared = std::make_shared<decltype(done)>(std::move(done));
  if (!Post([this, shared] { (*shared)(BuildClusterStatus()); })) {
    (*shared)(absl::UnavailableError("server is busy or stopping; retry"));
  }
}

void Node::BalanceLeaders() {
  if (cluster_nodes_.size() < 2) return;
  // Leaders per node among the channels this node replicates (in a 3-node
  // cluster: all of them), counting only nodes that are up.
  absl::flat_hash_map<raft::NodeId, int> leads;
  int up_nodes = 0;
  for (raft::NodeId node : ActiveNodes()) {
    if (node == self_ || PeerUp(node)) {
      leads[node] = 0;
      ++up_nodes;
    }
  }
  int channels = 0;
  for (auto& [id, host] : channels_) {
    ++channels;
    auto it = leads.find(host->group()->leader_id());
    if (it != leads.end()) ++it->second;
  }
  const int fair = (channels + up_nodes - 1) / std::max(up_nodes, 1);
  int mine = leads[self_];
  // A few transfers per round: every node converges without a stampede.
  constexpr int kTransfersPerRound = 4;
  int transfers = 0;
  for (auto& [id, host] : channels_) {
    if (mine <= fair || transfers >= kTransfersPerRound) break;
    RaftGroup* group = host->group();
    if (!group->serving()) continue;
    raft::NodeId target = raft::kNoNode;
    const raft::ReplicaStatus status = group->replica()->Status();
    // Leave groups whose membership is being moved alone.
    const ChannelDirectoryEntry* entry = meta_->FindChannel(host->fsm().name());
    if (entry == nullptr || status.conf_state.learners_size() > 0 ||
        !std::equal(entry->replicas().begin(), entry->replicas().end(),
                    status.conf_state.voters().begin(),
                    status.conf_state.voters().end())) {
      continue;
    }
    for (raft::NodeId node : status.conf_state.voters()) {
      auto it = leads.find(node);
      if (node == self_ || it == leads.end() || it->second + 1 > fair) continue;
      if (target == raft::kNoNode || it->second < leads[target]) target = node;
    }
    if (target == raft::kNoNode) continue;
    if (!group->replica()->TransferLeadership(target).ok()) continue;
    LOG(INFO) << "transferring leadership to balance channel="
              << host->fsm().name() << " to=" << target << " leads=" << mine
              << " fair=" << fair;
    --mine;
    ++leads[target];
    ++transfers;
  }
}

void Node::WakeGroupsOfLostPeers() {
  if (transport_ == nullptr) return;
  for (const auto& [peer, address] : peers_) {
    const bool up = transport_->PeerReachable(peer);
    bool& was_up = peer_up_[peer];
    if (was_up && !up) {
      // Quiesced followers hear nothing from a leader by design: a lost
      // link to the leader's node is their only cue to elect another.
      LOG(INFO) << "peer unreachable, waking its groups peer=" << peer;
      meta_group_->WakeIfLedBy(peer);
      for (auto& [id, host] : channels_) host->group()->WakeIfLedBy(peer);
    }
    was_up = up;
  }
}

// ---- Routing ----

bool Node::PeerUp(raft::NodeId node) const {
  // A leader whose node this transport cannot reach is probably gone: the
  // client should retry (by then a new leader is known) rather than wait
  // for a connection error.
  return transport_ == nullptr || transport_->PeerReachable(node);
}

int64_t Node::Deadline() const {
  return clock_->NowNs() + host_options_.serving_wait_ns;
}

void Node::RouteMeta(int hops, int64_t deadline_ns, RouteDone then) {
  if (meta_group_->serving()) {
    then(self_);
    return;
  }
  const raft::NodeId leader = meta_group_->leader_id();
  if (leader != raft::kNoNode && leader != self_) {
    if (hops >= kForwardHopsMax || forwarder_ == nullptr || !PeerUp(leader)) {
      then(absl::UnavailableError(absl::StrCat(
          "node ", self_, " does not lead the metadata group (node ", leader,
          " does); retry")));
      return;
    }
    then(leader);
    return;
  }
  auto shared = std::make_shared<RouteDone>(std::move(then));
  meta_group_->WhenRoutable(
      deadline_ns, [this, hops, deadline_ns, shared](absl::Status status) {
        if (!status.ok()) {
          (*shared)(status);
          return;
        }
        RouteMeta(hops, deadline_ns, std::move(*shared));
      });
}

void Node::RouteChannel(const std::string& name, bool create, int hops,
                        int64_t deadline_ns, ChannelRouteDone then) {
  auto retry = [this, name, create, hops, deadline_ns](ChannelRouteDone then) {
    auto shared = std::make_shared<ChannelRouteDone>(std::move(then));
    return
        [this, name, create, hops, deadline_ns, shared](absl::Status status) {
          if (!status.ok()) {
            (*shared)(status);
            return;
          }
          RouteChannel(name, create, hops, deadline_ns, std::move(*shared));
        };
  };
  const ChannelDirectoryEntry* entry = meta_->FindChannel(name);
  if (entry == nullptr) {
    if (!create) {
      then(absl::NotFoundError(absl::StrCat("unknown channel '", name, "'")));
      return;
    }
    if (meta_group_->serving()) {
      CreateChannel(name, retry(std::move(then)));
      return;
    }
    // The metadata leader creates it (and routes the request on).
    auto shared = std::make_shared<ChannelRouteDone>(std::move(then));
    RouteMeta(hops, deadline_ns,
              [this, name, create, hops, deadline_ns,
               shared](absl::StatusOr<raft::NodeId> leader) {
                if (!leader.ok()) {
                  (*shared)(leader.status());
                } else if (*leader == self_) {
                  RouteChannel(name, create, hops, deadline_ns,
                               std::move(*shared));
                } else {
                  (*shared)(ChannelRoute{nullptr, *leader});
                }
              });
    return;
  }
  auto forward = [&](raft::NodeId to) {
    if (to == self_ || hops >= kForwardHopsMax || forwarder_ == nullptr ||
        !PeerUp(to)) {
      then(absl::UnavailableError(
          absl::StrCat("node ", self_, " does not lead channel '", name,
                       "' (node ", to, " does); retry")));
    } else {
      then(ChannelRoute{nullptr, to});
    }
  };
  ChannelHost* host = FindChannel(entry->channel_id());
  if (host == nullptr) {
    // Not a replica here: its designated leader is the best guess.
    const auto& replicas = entry->replicas();
    if (replicas.empty()) {
      then(absl::UnavailableError("channel has no replicas"));
      return;
    }
    forward(replicas[entry->channel_id() % replicas.size()]);
    return;
  }
  if (host->group()->serving()) {
    then(ChannelRoute{host, raft::kNoNode});
    return;
  }
  const raft::NodeId leader = host->group()->leader_id();
  if (leader != raft::kNoNode && leader != self_) {
    forward(leader);
    return;
  }
  host->group()->WhenRoutable(deadline_ns, retry(std::move(then)));
}

void Node::CreateChannel(const std::string& name, StatusDone done) {
  auto& waiters = creating_[name];
  waiters.push_back(std::move(done));
  if (waiters.size() > 1) return;  // creation already proposed

  auto finish = [this, name](const absl::Status& status) {
    auto waiting = creating_.extract(name);
    if (waiting.empty()) return;
    for (auto& waiter : waiting.mapped()) waiter(status);
  };
  const int64_t pending = static_cast<int64_t>(creating_.size()) - 1;
  if (static_cast<int64_t>(meta_->channels().size()) + pending >=
      config_.store().max_channels()) {
    finish(absl::ResourceExhaustedError(
        absl::StrCat("cannot create channel '", name, "': max_channels (",
                     config_.store().max_channels(), ") reached")));
    return;
  }
  MetaCommand command;
  ChannelCreate* create = command.mutable_create_channel();
  create->set_name(name);
  *create->mutable_limits() = ResolveChannelLimits(name, config_.store());
  create->set_time_ns(clock_->NowNs());
  for (uint64_t node : PlaceNewChannel(ActiveNodes(), meta_->channels())) {
    create->add_replicas(node);
  }
  // The waiters re-route once the channel's host exists (it is created
  // after the apply batch is written).
  ProposeMeta(command, [this, finish](const ApplyOutcome& outcome) {
    after_apply_.push_back(
        [finish, status = OutcomeStatus(outcome)] { finish(status); });
  });
}

void Node::CheckClientFresh(const std::string& client_id,
                            const std::string& conn_id, StatusDone then) {
  absl::Status status = CheckClient(client_id, conn_id);
  if (status.ok() || meta_group_->serving()) {
    then(status);
    return;
  }
  auto shared = std::make_shared<StatusDone>(std::move(then));
  meta_group_->ReadBarrier(
      Deadline(), [this, client_id, conn_id, shared](absl::Status barrier) {
        (*shared)(barrier.ok() ? CheckClient(client_id, conn_id) : barrier);
      });
}

// ---- Requests ----

void Node::Connect(const ConnectRequest& request, int hops, ConnectDone done) {
  auto shared = std::make_shared<ConnectDone>(std::move(done));
  if (!Post([this, request, hops, shared] {
        RouteMeta(
            hops, Deadline(),
            [this, request, hops, shared](absl::StatusOr<raft::NodeId> leader) {
              if (!leader.ok()) {
                (*shared)(leader.status());
              } else if (*leader == self_) {
                DoConnect(request, std::move(*shared));
              } else {
                forwarder_->Connect(*leader, hops, request, std::move(*shared));
              }
            });
      })) {
    (*shared)(absl::UnavailableError("server is busy or stopping; retry"));
  }
}

void Node::Ping(const PingRequest& request, int hops, StatusDone done) {
  auto shared = std::make_shared<StatusDone>(std::move(done));
  if (!Post([this, request, hops, shared] {
        // Liveness is tracked by the metadata leader.
        RouteMeta(
            hops, Deadline(),
            [this, request, hops, shared](absl::StatusOr<raft::NodeId> leader) {
              if (!leader.ok()) {
                (*shared)(leader.status());
              } else if (*leader == self_) {
                (*shared)(CheckClient(request.client_id(), request.conn_id()));
              } else {
                forwarder_->Ping(*leader, hops, request, std::move(*shared));
              }
            });
      })) {
    (*shared)(absl::UnavailableError("server is busy or stopping; retry"));
  }
}

void Node::Publish(
    std::vector<PubMsg> msgs, int hops,
    std::function<void(size_t index, const PubAck& ack)> on_ack) {
  auto shared = std::make_shared<std::vector<PubMsg>>(std::move(msgs));
  if (!Post([this, shared, hops, on_ack] {
        for (size_t i = 0; i < shared->size(); ++i) {
          DoPublish(std::move((*shared)[i]), hops,
                    [on_ack, i](const PubAck& ack) { on_ack(i, ack); });
        }
      })) {
    for (size_t i = 0; i < shared->size(); ++i) {
      on_ack(i, ErrorAck((*shared)[i].guid(),
                         absl::UnavailableError(
                             "server is busy or stopping; retry")));
    }
  }
}

void Node::Subscribe(const SubscriptionRequest& request, int hops,
                     std::shared_ptr<SubscriberStream> stream) {
  if (!Post([this, request, hops, stream] {
        DoSubscribe(request, hops, stream);
      })) {
    stream->End(absl::UnavailableError("server is busy or stopping; retry"));
  }
}

void Node::SubscriptionAcks(uint64_t channel_id, std::string member_id,
                            std::vector<uint64_t> seqs) {
  // Refused only when stopping or overloaded: the acks are then lost and
  // the messages redelivered, which at-least-once allows.
  Post([this, channel_id, member_id = std::move(member_id),
        seqs = std::move(seqs)] {
    if (ChannelHost* host = FindChannel(channel_id))
      host->Acks(member_id, seqs);
  });
}

void Node::SubscriptionEnded(uint64_t channel_id, std::string member_id) {
  Post([this, channel_id, member_id = std::move(member_id)] {
    if (ChannelHost* host = FindChannel(channel_id)) {
      host->StreamEnded(member_id);
    }
  });
}

void Node::Unsubscribe(const UnsubscribeRequest& request, int hops,
                       StatusDone done) {
  auto shared = std::make_shared<StatusDone>(std::move(done));
  if (!Post([this, request, hops, shared] {
        DoUnsubscribe(request, hops, std::move(*shared));
      })) {
    (*shared)(absl::UnavailableError("server is busy or stopping; retry"));
  }
}

void Node::Close(const CloseRequest& request, int hops, StatusDone done) {
  auto shared = std::make_shared<StatusDone>(std::move(done));
  if (!Post([this, request, hops, shared] {
        RouteMeta(
            hops, Deadline(),
            [this, request, hops, shared](absl::StatusOr<raft::NodeId> leader) {
              if (!leader.ok()) {
                (*shared)(leader.status());
              } else if (*leader == self_) {
                DoClose(request, std::move(*shared));
              } else {
                forwarder_->Close(*leader, hops, request, std::move(*shared));
              }
            });
      })) {
    (*shared)(absl::UnavailableError("server is busy or stopping; retry"));
  }
}

int64_t Node::AliveWindowNs() const {
  // A client is alive when it pinged within one and a half intervals.
  return config_.clients().ping_interval_ms() * 1500000;
}

absl::Status Node::CheckClient(const std::string& client_id,
                               const std::string& conn_id) {
  const ClientRecord* client = meta_->FindClient(client_id);
  if (client == nullptr || clients_dropping_.contains(client_id)) {
    return absl::NotFoundError(absl::StrCat(
        "unknown client id '", client_id,
        "': connect first (or it was dropped after missed pings)"));
  }
  if (!conn_id.empty() && client->conn_id() != conn_id) {
    return absl::NotFoundError(absl::StrCat(
        "client '", client_id, "' was replaced by a newer connection"));
  }
  client_seen_ns_[client_id] = clock_->NowNs();
  return absl::OkStatus();
}

void Node::DoConnect(const ConnectRequest& request, ConnectDone done) {
  ConnectResponse response;
  response.set_ping_interval_ms(config_.clients().ping_interval_ms());
  response.set_ping_max_out(config_.clients().ping_max_out());
  response.set_max_payload_bytes(config_.store().max_payload_bytes());
  response.set_cluster_name(config_.node().cluster_name());
  response.set_node_id(self_);

  const std::string& client_id = request.client_id();
  const ClientRecord* existing = meta_->FindClient(client_id);
  if (existing != nullptr && clients_dropping_.contains(client_id)) {
    done(absl::UnavailableError(
        absl::StrCat("client '", client_id, "' is being closed; retry")));
    return;
  }
  if (existing != nullptr && existing->conn_id() == request.conn_id()) {
    client_seen_ns_[client_id] = clock_->NowNs();
    done(response);  // the same connection again: idempotent
    return;
  }
  if (existing != nullptr) {
    auto seen = client_seen_ns_.find(client_id);
    if (seen != client_seen_ns_.end() &&
        clock_->NowNs() - seen->second < AliveWindowNs()) {
      done(absl::AlreadyExistsError(absl::StrCat(
          "client id '", client_id, "' is already connected and alive")));
      return;
    }
  } else if (static_cast<int64_t>(meta_->clients().size()) >=
             config_.clients().max_clients()) {
    done(absl::ResourceExhaustedError(absl::StrCat(
        "max_clients (", config_.clients().max_clients(), ") reached")));
    return;
  }
  MetaCommand command;
  ClientConnect* connect = command.mutable_connect();
  connect->set_client_id(client_id);
  connect->set_conn_id(request.conn_id());
  connect->set_time_ns(clock_->NowNs());
  ProposeMeta(command, [this, client_id, response, done = std::move(done)](
                           const ApplyOutcome& outcome) mutable {
    absl::Status status = OutcomeStatus(outcome);
    if (!status.ok()) {
      done(status);
      return;
    }
    client_seen_ns_[client_id] = clock_->NowNs();
    if (!outcome.meta->replaced_conn_id.empty()) {
      LOG(INFO) << "client replaced client=" << client_id;
    }
    done(response);
  });
}

void Node::DoPublish(PubMsg msg, int hops, PublishDone done) {
  // Fast path: a channel this node serves and a client it knows.
  if (const ChannelDirectoryEntry* entry = meta_->FindChannel(msg.subject())) {
    ChannelHost* host = FindChannel(entry->channel_id());
    if (host != nullptr && host->group()->serving() &&
        CheckClient(msg.client_id(), msg.conn_id()).ok()) {
      host->Publish(msg, std::move(done));
      return;
    }
  }
  auto shared_msg = std::make_shared<PubMsg>(std::move(msg));
  auto shared_done = std::make_shared<PublishDone>(std::move(done));
  RouteChannel(
      shared_msg->subject(), /*create=*/true, hops, Deadline(),
      [this, hops, shared_msg,
       shared_done](absl::StatusOr<ChannelRoute> route) {
        if (!route.ok()) {
          (*shared_done)(ErrorAck(shared_msg->guid(), route.status()));
          return;
        }
        if (route->forward_to != raft::kNoNode) {
          ForwardPublish(route->forward_to, hops, std::move(*shared_msg),
                         std::move(*shared_done));
          return;
        }
        ChannelHost* host = route->host;
        const uint64_t channel_id = host->fsm().channel_id();
        CheckClientFresh(
            shared_msg->client_id(), shared_msg->conn_id(),
            [this, channel_id, shared_msg, shared_done](absl::Status status) {
              ChannelHost* host = FindChannel(channel_id);
              if (status.ok() && host == nullptr) {
                status = absl::UnavailableError("channel was deleted; retry");
              }
              if (!status.ok()) {
                (*shared_done)(ErrorAck(shared_msg->guid(), status));
                return;
              }
              host->Publish(*shared_msg, std::move(*shared_done));
            });
      });
}

void Node::ForwardPublish(raft::NodeId to, int hops, PubMsg msg,
                          PublishDone done) {
  ForwardBatch& batch = forward_publishes_[{to, hops}];
  batch.msgs.push_back(std::move(msg));
  batch.dones.push_back(std::move(done));
}

void Node::FlushForwardedPublishes() {
  if (forward_publishes_.empty()) return;
  absl::btree_map<std::pair<raft::NodeId, int>, ForwardBatch> batches;
  batches.swap(forward_publishes_);
  for (auto& [key, batch] : batches) {
    auto dones =
        std::make_shared<std::vector<PublishDone>>(std::move(batch.dones));
    forwarder_->PublishBatch(key.first, key.second, std::move(batch.msgs),
                             [dones](std::vector<PubAck> acks) {
                               for (size_t i = 0; i < acks.size(); ++i) {
                                 (*dones)[i](acks[i]);
                               }
                             });
  }
}

void Node::DoSubscribe(const SubscriptionRequest& request, int hops,
                       std::shared_ptr<SubscriberStream> stream) {
  RouteChannel(
      request.subject(), /*create=*/true, hops, Deadline(),
      [this, request, hops, stream](absl::StatusOr<ChannelRoute> route) {
        if (!route.ok()) {
          stream->End(route.status());
          return;
        }
        if (route->forward_to != raft::kNoNode) {
          forwarder_->Subscribe(route->forward_to, hops, request, stream);
          return;
        }
        const uint64_t channel_id = route->host->fsm().channel_id();
        CheckClientFresh(
            request.client_id(), request.conn_id(),
            [this, channel_id, request, stream](absl::Status status) {
              ChannelHost* host = FindChannel(channel_id);
              if (status.ok() && host == nullptr) {
                status = absl::UnavailableError("channel was deleted; retry");
              }
              if (!status.ok()) {
                stream->End(status);
                return;
              }
              host->Subscribe(request, stream);
            });
      });
}

void Node::DoUnsubscribe(const UnsubscribeRequest& request, int hops,
                         StatusDone done) {
  auto shared = std::make_shared<StatusDone>(std::move(done));
  RouteChannel(
      request.subject(), /*create=*/false, hops, Deadline(),
      [this, request, hops, shared](absl::StatusOr<ChannelRoute> route) {
        if (!route.ok()) {
          (*shared)(route.status());
          return;
        }
        if (route->forward_to != raft::kNoNode) {
          forwarder_->Unsubscribe(route->forward_to, hops, request,
                                  std::move(*shared));
          return;
        }
        const uint64_t channel_id = route->host->fsm().channel_id();
        CheckClientFresh(
            request.client_id(), request.conn_id(),
            [this, channel_id, request, shared](absl::Status status) {
              ChannelHost* host = FindChannel(channel_id);
              if (status.ok() && host == nullptr) {
                status = absl::NotFoundError("channel was deleted");
              }
              if (!status.ok()) {
                (*shared)(status);
                return;
              }
              host->Unsubscribe(request, std::move(*shared));
            });
      });
}

void Node::DoClose(const CloseRequest& request, StatusDone done) {
  if (absl::Status status = CheckClient(request.client_id(), request.conn_id());
      !status.ok()) {
    done(status);
    return;
  }
  const ClientRecord* client = meta_->FindClient(request.client_id());
  DropClient(request.client_id(), client->conn_id(), ClientClose::CLOSED,
             std::move(done));
}

void Node::DropClient(const std::string& client_id, const std::string& conn_id,
                      ClientClose::Reason reason, StatusDone done) {
  if (!clients_dropping_.insert(client_id).second) {
    done(absl::UnavailableError(
        absl::StrCat("client '", client_id, "' is already being closed")));
    return;
  }
  // Its members are closed by every channel leader once this applies.
  MetaCommand command;
  command.mutable_close()->set_client_id(client_id);
  command.mutable_close()->set_conn_id(conn_id);
  command.mutable_close()->set_reason(reason);
  ProposeMeta(command, [this, client_id, done = std::move(done)](
                           const ApplyOutcome& outcome) mutable {
    clients_dropping_.erase(client_id);
    absl::Status status = OutcomeStatus(outcome);
    if (status.ok() && meta_->FindClient(client_id) == nullptr) {
      client_seen_ns_.erase(client_id);
    }
    done(status);
  });
}

void Node::ExpireClients(int64_t now_ns) {
  if (!meta_group_->serving()) return;
  const int64_t limit_ns = config_.clients().ping_interval_ms() * 1000000 *
                           config_.clients().ping_max_out();
  std::vector<std::pair<std::string, std::string>> expired;
  for (const auto& [client_id, seen] : client_seen_ns_) {
    if (now_ns - seen <= limit_ns || clients_dropping_.contains(client_id)) {
      continue;
    }
    if (const ClientRecord* client = meta_->FindClient(client_id)) {
      expired.emplace_back(client_id, client->conn_id());
    }
  }
  for (const auto& [client_id, conn_id] : expired) {
    LOG(INFO) << "client expired after missed pings client=" << client_id;
    DropClient(client_id, conn_id, ClientClose::EXPIRED, [](absl::Status) {});
  }
}

void Node::MaybeDeleteInactiveChannels(int64_t now_ns) {
  if (!meta_group_->serving()) return;
  for (auto& [id, host] : channels_) {
    const ChannelFsm& fsm = host->fsm();
    const int64_t max_inactivity_ms = fsm.record().limits().max_inactivity_ms();
    if (max_inactivity_ms <= 0 || !host->leading() ||
        !fsm.subscriptions().empty() || host->attached_streams() > 0 ||
        deleting_.contains(id)) {
      continue;
    }
    const int64_t last =
        std::max(host->last_activity_ns(), fsm.record().last_timestamp_ns());
    if (now_ns - last < max_inactivity_ms * 1000000) continue;
    LOG(INFO) << "deleting inactive channel channel=" << fsm.name();
    MetaCommand command;
    command.mutable_delete_channel()->set_name(fsm.name());
    command.mutable_delete_channel()->set_channel_id(id);
    deleting_.insert(id);
    ProposeMeta(command,
                [this, id](const ApplyOutcome&) { deleting_.erase(id); });
  }
}

}  // namespace spate::server
