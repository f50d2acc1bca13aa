#include "server/node.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "base/check.h"
#include "base/log.h"
#include "server/channel_limits.h"
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
    : config_(config), clock_(clock) {
  tick_ns_ = int64_t{config_.raft().tick_ms()} * 1000000;
  fsm_options_.dedup_window_ms = config_.store().dedup_window_ms();
  fsm_options_.dedup_entries_max = config_.store().dedup_entries_max();
  host_options_.config = &config_;
  host_options_.connection_alive = [this](const std::string& client_id,
                                          const std::string& conn_id) {
    const ClientRecord* client = meta_->FindClient(client_id);
    return client != nullptr && client->conn_id() == conn_id;
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
  absl::StatusOr<std::unique_ptr<RaftGroup>> opened =
      RaftGroup::Open(kv_.get(), options);
  if (!opened.ok()) {
    return absl::Status(
        opened.status().code(),
        absl::StrCat("group ", group, ": ", opened.status().message()));
  }
  // A single-node cluster elects itself right away.
  if (config_.node().peers_size() == 0) {
    (*opened)->replica()->Campaign().IgnoreError();  // already leader is fine
  }
  return opened;
}

absl::Status Node::Recover() {
  absl::StatusOr<std::unique_ptr<MetaFsm>> meta = MetaFsm::Load(store_.get());
  if (!meta.ok()) return meta.status();
  meta_ = *std::move(meta);
  if (meta_->applied_index() == 0 && meta_->channels().empty()) {
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
      conf.add_voters(config_.node().id());
      storage::LogStore::Bootstrap(kMetaGroup, conf, &batch);
      if (absl::Status s = kv_->Write(batch, /*sync=*/true); !s.ok()) return s;
    }
  }
  absl::StatusOr<std::unique_ptr<RaftGroup>> group =
      OpenGroup(kMetaGroup, meta_->applied_index());
  if (!group.ok()) return group.status();
  meta_group_ = *std::move(group);

  for (const auto& [name, entry] : meta_->channels()) {
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
  loop_thread_ = std::thread([this] { Loop(); });
}

void Node::Stop() {
  {
    absl::MutexLock lock(&inbox_mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (loop_thread_.joinable()) loop_thread_.join();
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
  meta_group_->replica()->Tick();
  meta_group_->ExpireServingWaiters(now_ns);
  for (auto& [id, host] : channels_) {
    host->group()->replica()->Tick();
    host->OnTick(now_ns);
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
  int64_t wake = std::min(next_tick_ns_, next_expiry_check_ns_);
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

    // Group commit: every group's entries and hard state, one fsync.
    if (!batch.empty()) {
      absl::Status status =
          kv_->Write(batch, sync && config_.store().sync_writes());
      // The node cannot promise anything without its log: stop loudly.
      CHECK(status.ok()) << "raft log write failed: " << status;
    }
    for (auto& [group, ready] : readies) group->log()->OnPersisted();
    for (auto& [group, ready] : readies) {
      // Single-node clusters have no peers to send to; the cluster
      // transport plugs in here.
      if (!ready.messages.empty()) {
        LOG(DEBUG) << "dropping raft messages without transport group="
                   << group->id() << " count=" << ready.messages.size();
      }
    }
    storage::WriteBatch apply_batch;
    for (auto& [group, ready] : readies) {
      if (ready.soft_state) group->OnSoftState(*ready.soft_state);
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
        if (conf.ok()) group->log()->StageConfState(*conf, batch);
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
    const ChannelCreate& create = command.create_channel();
    std::unique_ptr<ChannelFsm> fsm = ChannelFsm::Create(
        store_.get(), result.channel_id, create.name(), create.limits(),
        create.time_ns(), fsm_options_, batch);
    raft::ConfState conf;
    conf.add_voters(config_.node().id());
    storage::LogStore::Bootstrap(result.channel_id, conf, batch);
    pending_fsms_[result.channel_id] = std::move(fsm);
    created_channels_.push_back(result.channel_id);
  }
  if (command.has_delete_channel() && result.status.ok()) {
    const uint64_t id = result.channel_id;
    if (ChannelHost* host = FindChannel(id)) {
      host->Shutdown(absl::NotFoundError(absl::StrCat(
          "channel '", command.delete_channel().name(), "' was deleted")));
      store_->DeleteChannel(id, batch);
      host->group()->log()->Destroy(batch);
      deleted_channels_.push_back(id);
    }
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
  std::vector<uint64_t> created;
  created.swap(created_channels_);
  for (uint64_t id : created) {
    std::unique_ptr<ChannelFsm> fsm = std::move(pending_fsms_.at(id));
    pending_fsms_.erase(id);
    const std::string name = fsm->name();
    absl::StatusOr<std::unique_ptr<RaftGroup>> group = OpenGroup(id, 0);
    CHECK(group.ok()) << "cannot open the group of new channel " << name << ": "
                      << group.status();
    channels_[id] = std::make_unique<ChannelHost>(
        std::move(fsm), *std::move(group), host_options_, clock_);
    LOG(INFO) << "channel created channel=" << name << " channel_id=" << id;
    auto waiting = creating_.extract(name);
    if (!waiting.empty()) {
      for (auto& waiter : waiting.mapped()) waiter(absl::OkStatus());
    }
  }
}

ChannelHost* Node::FindChannel(uint64_t channel_id) {
  auto it = channels_.find(channel_id);
  return it == channels_.end() ? nullptr : it->second.get();
}

void Node::ProposeMeta(const MetaCommand& command, ProposalDone done) {
  meta_group_->Propose(command.SerializeAsString(), std::move(done));
}

// ---- Requests ----

void Node::Connect(const ConnectRequest& request, ConnectDone done) {
  auto shared = std::make_shared<ConnectDone>(std::move(done));
  if (!Post([this, request, shared] {
        DoConnect(request, std::move(*shared));
      })) {
    (*shared)(absl::UnavailableError("server is busy or stopping; retry"));
  }
}

void Node::Ping(const PingRequest& request, StatusDone done) {
  auto shared = std::make_shared<StatusDone>(std::move(done));
  if (!Post([this, request, shared] {
        (*shared)(CheckClient(request.client_id(), request.conn_id()));
      })) {
    (*shared)(absl::UnavailableError("server is busy or stopping; retry"));
  }
}

void Node::Publish(const PubMsg& msg, PublishDone done) {
  auto shared = std::make_shared<PublishDone>(std::move(done));
  if (!Post([this, msg, shared] { DoPublish(msg, std::move(*shared), 0); })) {
    (*shared)(ErrorAck(msg.guid(), absl::UnavailableError(
                                       "server is busy or stopping; retry")));
  }
}

void Node::PublishBatch(std::vector<PubMsg> msgs,
                        std::shared_ptr<PubAckSink> sink) {
  auto shared = std::make_shared<std::vector<PubMsg>>(std::move(msgs));
  if (!Post([this, shared, sink] {
        for (const PubMsg& msg : *shared) {
          DoPublish(
              msg, [sink](const PubAck& ack) { sink->Ack(ack); }, 0);
        }
      })) {
    for (const PubMsg& msg : *shared) {
      sink->Ack(ErrorAck(msg.guid(), absl::UnavailableError(
                                         "server is busy or stopping; retry")));
    }
  }
}

void Node::Subscribe(const SubscriptionRequest& request,
                     std::shared_ptr<SubscriberStream> stream) {
  if (!Post([this, request, stream] { DoSubscribe(request, stream, 0); })) {
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

void Node::Unsubscribe(const UnsubscribeRequest& request, StatusDone done) {
  auto shared = std::make_shared<StatusDone>(std::move(done));
  if (!Post([this, request, shared] {
        DoUnsubscribe(request, std::move(*shared));
      })) {
    (*shared)(absl::UnavailableError("server is busy or stopping; retry"));
  }
}

void Node::Close(const CloseRequest& request, StatusDone done) {
  auto shared = std::make_shared<StatusDone>(std::move(done));
  if (!Post(
          [this, request, shared] { DoClose(request, std::move(*shared)); })) {
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
  if (!meta_group_->serving()) {
    meta_group_->WhenServing(
        clock_->NowNs() + host_options_.serving_wait_ns,
        [this, request, done = std::move(done)](absl::Status status) mutable {
          if (!status.ok()) {
            done(status);
            return;
          }
          DoConnect(request, std::move(done));
        });
    return;
  }
  ConnectResponse response;
  response.set_ping_interval_ms(config_.clients().ping_interval_ms());
  response.set_ping_max_out(config_.clients().ping_max_out());
  response.set_max_payload_bytes(config_.store().max_payload_bytes());
  response.set_cluster_name(config_.node().cluster_name());
  response.set_node_id(config_.node().id());

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

void Node::WithChannel(
    const std::string& name,
    absl::AnyInvocable<void(absl::StatusOr<ChannelHost*>)> then) {
  if (const ChannelDirectoryEntry* entry = meta_->FindChannel(name)) {
    if (ChannelHost* host = FindChannel(entry->channel_id())) {
      then(host);
      return;
    }
  }
  auto shared =
      std::make_shared<absl::AnyInvocable<void(absl::StatusOr<ChannelHost*>)>>(
          std::move(then));
  auto& waiters = creating_[name];
  waiters.push_back([this, name, shared](absl::Status status) {
    if (!status.ok()) {
      (*shared)(status);
      return;
    }
    const ChannelDirectoryEntry* entry = meta_->FindChannel(name);
    ChannelHost* host = entry ? FindChannel(entry->channel_id()) : nullptr;
    if (host == nullptr) {
      (*shared)(absl::UnavailableError(
          absl::StrCat("channel '", name, "' is not available; retry")));
      return;
    }
    (*shared)(host);
  });
  if (waiters.size() > 1) return;  // creation already proposed

  auto fail_waiters = [this, name](const absl::Status& status) {
    auto waiting = creating_.extract(name);
    if (waiting.empty()) return;
    for (auto& waiter : waiting.mapped()) waiter(status);
  };
  const int64_t pending = static_cast<int64_t>(creating_.size()) - 1;
  if (static_cast<int64_t>(meta_->channels().size()) + pending >=
      config_.store().max_channels()) {
    fail_waiters(absl::ResourceExhaustedError(
        absl::StrCat("cannot create channel '", name, "': max_channels (",
                     config_.store().max_channels(), ") reached")));
    return;
  }
  MetaCommand command;
  ChannelCreate* create = command.mutable_create_channel();
  create->set_name(name);
  *create->mutable_limits() = ResolveChannelLimits(name, config_.store());
  create->set_time_ns(clock_->NowNs());
  // Created channels wake their waiters in AfterApplyWritten; a failure
  // (or an already existing channel) wakes them here.
  ProposeMeta(command, [this, name, fail_waiters](const ApplyOutcome& outcome) {
    absl::Status status = OutcomeStatus(outcome);
    if (!status.ok()) {
      fail_waiters(status);
    } else if (!outcome.meta->created) {
      fail_waiters(absl::OkStatus());
    }
  });
}

void Node::DoPublish(const PubMsg& msg, PublishDone done, int attempts) {
  if (absl::Status status = CheckClient(msg.client_id(), msg.conn_id());
      !status.ok()) {
    done(ErrorAck(msg.guid(), status));
    return;
  }
  // Fast path: the channel exists here.
  if (const ChannelDirectoryEntry* entry = meta_->FindChannel(msg.subject())) {
    if (ChannelHost* host = FindChannel(entry->channel_id())) {
      host->Publish(msg, std::move(done));
      return;
    }
  }
  if (attempts >= kChannelAttemptsMax) {
    done(ErrorAck(msg.guid(), absl::UnavailableError("channel unavailable")));
    return;
  }
  WithChannel(msg.subject(), [this, msg, attempts, done = std::move(done)](
                                 absl::StatusOr<ChannelHost*> host) mutable {
    if (!host.ok()) {
      done(ErrorAck(msg.guid(), host.status()));
      return;
    }
    DoPublish(msg, std::move(done), attempts + 1);
  });
}

void Node::DoSubscribe(const SubscriptionRequest& request,
                       std::shared_ptr<SubscriberStream> stream, int attempts) {
  if (absl::Status status = CheckClient(request.client_id(), request.conn_id());
      !status.ok()) {
    stream->End(status);
    return;
  }
  WithChannel(request.subject(),
              [request, stream](absl::StatusOr<ChannelHost*> host) {
                if (!host.ok()) {
                  stream->End(host.status());
                  return;
                }
                (*host)->Subscribe(request, stream);
              });
  (void)attempts;
}

void Node::DoUnsubscribe(const UnsubscribeRequest& request, StatusDone done) {
  if (absl::Status status = CheckClient(request.client_id(), request.conn_id());
      !status.ok()) {
    done(status);
    return;
  }
  const ChannelDirectoryEntry* entry = meta_->FindChannel(request.subject());
  ChannelHost* host = entry ? FindChannel(entry->channel_id()) : nullptr;
  if (host == nullptr) {
    done(absl::NotFoundError(
        absl::StrCat("unknown channel '", request.subject(), "'")));
    return;
  }
  host->Unsubscribe(request, std::move(done));
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
