
#include "server/node.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iterator>
#include <optional>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "base/check.h"
#include "base/log.h"
#include "server/channel_limits.h"
#include "storage/keys.h"
#include "storage/log_store.h"
#include "storage/rocks_kv.h"

namespace spate::server {
namespace {

// Requests queued for the loop; beyond it callers get UNAVAILABLE at once.
constexpr size_t kInboxTasksMax = 65536;
// Ready rounds per loop iteration (a single voter commits in round two).
constexpr int kReadyRoundsMax = 8;

}  // namespace

absl::Status Node::OutcomeStatus(const ApplyOutcome& outcome) {
  if (!outcome.status.ok()) return outcome.status;
  if (outcome.meta != nullptr) return outcome.meta->status;
  if (outcome.channel != nullptr) return outcome.channel->status;
  return absl::OkStatus();
}

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
  for (const MirrorConfig& mirror : config_.mirrors()) {
    mirror_names_.insert(mirror.channel());
  }
  fsm_options_.dedup_window_ms = config_.store().dedup_window_ms();
  fsm_options_.dedup_entries_max = config_.store().dedup_entries_max();
  {
    absl::MutexLock lock(&gate_waker_->mu);
    gate_waker_->node = this;
  }
  host_options_.config = &config_;
  host_options_.metrics = &metrics_;
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
  absl::StatusOr<std::unique_ptr<Node>> node =
      OpenStore(config, clock, /*damage=*/"");
  if (node.ok() || node.status().code() != absl::StatusCode::kDataLoss ||
      config.node().peers_size() == 0) {
    return node;
  }
  // Serving from a store that lost acknowledged entries or votes breaks
  // raft's quorum intersection (docs/reliability.md, findings 1 and 4).
  // Keep the damaged files for inspection; rebuild from the peers.
  const std::string dir = config.node().data_dir();
  const std::string aside =
      absl::StrCat(dir, ".damaged-", absl::ToUnixSeconds(absl::Now()));
  std::error_code error;
  std::filesystem::rename(dir, aside, error);
  if (error) {
    return absl::DataLossError(absl::StrCat(
        node.status().message(), "; cannot move the damaged store aside to ",
        aside, ": ", error.message()));
  }
  LOG(ERROR) << "store damaged, moved to " << aside
             << "; rebuilding from the peers (not voting until caught up): "
             << node.status();
  return OpenStore(config, clock, std::string(node.status().message()));
}

absl::StatusOr<std::unique_ptr<Node>> Node::OpenStore(
    const ServerConfig& config, const Clock* clock, const std::string& damage) {
  std::unique_ptr<Node> node(new Node(config, clock));
  absl::StatusOr<std::unique_ptr<storage::RocksKv>> kv = storage::RocksKv::Open(
      config.node().data_dir(), storage::RocksKvOptions());
  if (!kv.ok()) return kv.status();
  node->kv_ = *std::move(kv);
  if (!damage.empty()) {
    // Durable before any replica exists: a crash during the rebuild must
    // not leave an empty store that votes.
    storage::WriteBatch batch;
    batch.Put(storage::Space::kState, storage::RebuildingKey(), damage);
    if (absl::Status s = node->kv_->Write(batch, /*sync=*/true); !s.ok()) {
      return s;
    }
  }
  node->store_ = std::make_unique<storage::ChannelStore>(node->kv_.get());
  absl::StatusOr<ClientLinkOptions> link = ClientLinkOptionsFor(config);
  if (!link.ok()) return link.status();
  node->fetcher_ = std::make_unique<SnapshotFetcher>(
      node->kv_.get(), config.node().cluster_name(), *std::move(link));
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
  // Channel followers learn commits with the next append or heartbeat: a
  // publish then costs two raft messages per follower instead of four.
  // The metadata group keeps telling followers at once, since reads there
  // (CheckClientFresh) wait for the follower to apply the commit.
  options.lazy_commit_broadcast = group != kMetaGroup;
  options.seed = config_.node().id();
  options.applied = applied;
  options.rebuilding = rebuilding_ && (meta_group_ == nullptr ||
                                       meta_group_->replica()->rebuilding());
  const int64_t withheld_ns = votes_withheld_until_ns_ - clock_->NowNs();
  if (withheld_ns > 0) {
    const int64_t tick_ns = int64_t{config_.raft().tick_ms()} * 1000000;
    options.votes_withheld_ticks =
        static_cast<int>((withheld_ns + tick_ns - 1) / tick_ns);
  }
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
  if (absl::StatusOr<std::string> marker =
          kv_->Get(storage::Space::kState, storage::RebuildingKey());
      marker.ok()) {
    rebuilding_ = true;
    LOG(WARNING) << "rebuilding a damaged store (" << *marker
                 << "): replicas vote once caught up from a leader";
  } else if (marker.status().code() != absl::StatusCode::kNotFound) {
    return marker.status();
  }
  absl::StatusOr<std::unique_ptr<MetaFsm>> meta = MetaFsm::Load(store_.get());
  if (!meta.ok()) return meta.status();
  meta_ = *std::move(meta);
  if (meta_->applied_index() == 0 && meta_->channels().empty() &&
      cluster_nodes_.size() > 1) {
    // Nothing applied: a new node, or one whose disk was wiped and that may
    // have voted in the current term before (see votes_withheld_until_ns_).
    votes_withheld_until_ns_ =
        clock_->NowNs() + int64_t{2} * config_.raft().election_ticks() *
                              config_.raft().tick_ms() * 1000000;
  }
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
    std::lock_guard<std::mutex> lock(inbox_mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  inbox_cv_.notify_all();
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
  for (FetchWaiter& waiter : fetch_waiters_) waiter.done(status);
  fetch_waiters_.clear();
  for (auto& [cluster, batch] : gateway_publishes_) {
    for (size_t i = 0; i < batch.dones.size(); ++i) {
      batch.dones[i](ErrorAck(batch.msgs[i].guid(), status));
    }
  }
  gateway_publishes_.clear();
  for (auto& [subject, gate] : publish_gates_) {
    for (GatedPublish& publish : gate.waiting) {
      publish.done(ErrorAck(publish.msg.guid(), status));
    }
  }
  publish_gates_.clear();
  absl::MutexLock lock(&gate_waker_->mu);
  gate_waker_->node = nullptr;
}

bool Node::Post(absl::AnyInvocable<void()> task) {
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    if (stopping_ || inbox_.size() >= kInboxTasksMax) return false;
    inbox_.push_back(std::move(task));
  }
  inbox_cv_.notify_one();
  return true;
}

void Node::Loop() {
  while (true) {
    const int64_t now = clock_->NowNs();
    RunOnce(now);
    if (AnyReady()) continue;
    const int64_t wake = NextWakeNs(clock_->NowNs());
    // Never more than a second at once (a bound on any mistake in the
    // timers), on the monotonic clock (see inbox_mu_).
    const int64_t sleep_ns =
        std::clamp<int64_t>(wake - clock_->NowNs(), 0, 1000000000);
    std::unique_lock<std::mutex> lock(inbox_mu_);
    if (stopping_) break;
    inbox_cv_.wait_until(
        lock,
        std::chrono::steady_clock::now() + std::chrono::nanoseconds(sleep_ns),
        [this] { return !inbox_.empty() || stopping_; });
    if (stopping_) break;
  }
}

void Node::RunTasks() {
  std::vector<absl::AnyInvocable<void()>> tasks;
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    tasks.swap(inbox_);
  }
  for (auto& task : tasks) task();
}

void Node::RunOnce(int64_t now_ns) {
  RunTasks();
  ReleasePublishGates();
  FlushForwardedPublishes();
  FlushGatewayPublishes();
  if (now_ns >= next_tick_ns_) {
    Tick(now_ns);
    next_tick_ns_ = now_ns + tick_ns_;
  }
  FlushProposals();
  ProcessReadies();
  PumpDeliveries(now_ns);
  ServeFetchWaiters(now_ns);
  PumpMirrors(now_ns);
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
    MaybeFinishRebuild();
    ReconcileMirrors();
    ApplyReloadedLimits();
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
  // timer or task. Whether they are is read live, not from the last tick:
  // a group woken (by a peer's message or a proposal) since then must be
  // ticked on time, or a woken leader sends no heartbeats while it sleeps
  // and its followers start an election.
  int64_t wake = std::min(next_expiry_check_ns_, next_compaction_ns_);
  bool all_quiesced = all_quiesced_ && meta_group_->quiesced();
  for (const auto& [id, host] : channels_) {
    wake = std::min(wake, host->NextDeadline());
    all_quiesced = all_quiesced && host->group()->quiesced();
  }
  if (!all_quiesced) wake = std::min(wake, next_tick_ns_);
  for (const FetchWaiter& waiter : fetch_waiters_) {
    wake = std::min(wake, waiter.deadline_ns);
  }
  for (const auto& [id, feed] : mirror_feeds_) {
    // An idle feed fetches at its retry time; a fetching one is woken by
    // the answer (a posted task) or gives up at its deadline.
    if (feed.fetching) {
      wake = std::min(wake, feed.fetch_deadline_ns);
    } else if (feed.proposals == 0) {
      wake = std::min(wake, feed.retry_ns);
    }
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
      const bool synced = sync && config_.store().sync_writes();
      const auto start = std::chrono::steady_clock::now();
      absl::Status status = kv_->Write(batch, synced);
      // The node cannot promise anything without its log: stop loudly.
      CHECK(status.ok()) << "raft log write failed: " << status;
      int64_t entries = 0;
      for (const auto& [group, ready] : readies)
        entries += ready.entries.size();
      metrics_.GroupCommit(entries,
                           std::chrono::duration<double>(
                               std::chrono::steady_clock::now() - start)
                               .count(),
                           synced);
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
      if (ready.soft_state) {
        // One election per episode: candidacy, or leadership won without
        // a visible candidacy (a single voter wins at once).
        const raft::Role role = ready.soft_state->role;
        if ((role == raft::Role::kCandidate || role == raft::Role::kLeader) &&
            group->known_role() != raft::Role::kCandidate &&
            group->known_role() != role) {
          metrics_.ElectionStarted();
        }
        if (ready.soft_state->leader != raft::kNoNode &&
            ready.soft_state->leader != group->known_leader()) {
          metrics_.LeaderChanged();
        }
        group->OnSoftState(*ready.soft_state);
      }
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

void Node::ReloadLimits(const StoreConfig& store) {
  if (!Post([this, store] {
        reloaded_store_ = store;
        ApplyReloadedLimits();
      })) {
    LOG(WARNING) << "config reload: node busy or stopping; limits not applied";
  }
}

void Node::ApplyReloadedLimits() {
  if (!reloaded_store_.has_value()) return;
  for (auto& [id, host] : channels_) {
    host->SetLimits(ResolveChannelLimits(host->fsm().name(), *reloaded_store_));
  }
}

}  // namespace spate::server
