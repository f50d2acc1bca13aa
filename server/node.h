// Node: one Spate server process's engine. It owns the RocksDB store, the
// metadata group (clients, channel directory) and a ChannelHost per
// channel, and drives all of them from ONE event loop thread:
//
//   loop:  run inbox tasks (client requests posted by gRPC threads)
//          → propose batched commands → tick raft (every tick_ms)
//          → collect every group's Ready: ONE WriteBatch, ONE fsync
//            (group commit) → send → apply committed entries (one
//            unsynced batch) → complete waiters → Advance
//          → deliver to subscribers → sleep until the next task/timer.
//
// Durability (DESIGN.md §6): an entry is acknowledged (PubAck) only after
// it is committed, i.e. fsynced in the raft log of a majority (here the
// single voter). Applied state is written unsynced together with the
// applied index; on restart raft re-applies committed entries past it.
//
// Clusters: raft messages leave through the Transport after the group
// commit; inbound batches are stepped on the loop. A request this node
// cannot serve (it does not lead the group) is forwarded to the leader it
// knows (Forwarder), or waits (bounded) until some leader is known.
//
// Threading: the public request methods are thread-safe; they post to the
// loop's bounded inbox and their callbacks run later on the loop thread
// (or at once on the caller's thread with UNAVAILABLE when the inbox is
// full or the node stopped). Everything else is loop-thread only. There
// is one lock: the inbox mutex, never held while running tasks.
//
// The implementation is split by concern: node.cc (recovery, the loop,
// group commit and apply), node_requests.cc (client requests),
// node_routing.cc (leaders, forwarding, channel creation),
// node_membership.cc (node table, replica placement, reconciliation,
// leader balancing), node_snapshots.cc (snapshots, compaction, local
// replicas created or deleted) and node_status.cc (ClusterStatus).
#ifndef SPATE_SERVER_NODE_H_
#define SPATE_SERVER_NODE_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/admin.pb.h"
#include "proto/command.pb.h"
#include "proto/config.pb.h"
#include "proto/gateway.pb.h"
#include "proto/streaming.pb.h"
#include "server/channel_host.h"
#include "server/clock.h"
#include "server/forwarder.h"
#include "server/gateway_client.h"
#include "server/meta_fsm.h"
#include "server/metrics.h"
#include "server/monitor_snapshot.h"
#include "server/raft_group.h"
#include "server/snapshot_fetcher.h"
#include "server/snapshot_transfers.h"
#include "server/subscriber_stream.h"
#include "server/transport.h"
#include "storage/channel_store.h"
#include "storage/kv.h"

namespace spate::server {

using ConnectDone = absl::AnyInvocable<void(absl::StatusOr<ConnectResponse>)>;

class Node {
 public:
  // Opens (or creates) the node's store under config.node().data_dir() and
  // recovers every group. The config must be validated already.
  // In a cluster, a store found damaged (DataLoss: RocksDB corruption, a
  // sync watermark beyond the log, an inconsistent raft state) is moved
  // aside to `<data_dir>.damaged-<unix seconds>` and the node starts with a
  // new empty store that it marks "rebuilding" (storage::RebuildingKey)
  // before serving: its replicas neither vote nor campaign until each has
  // caught up from a leader of the existing group
  // (raft::ReplicaOptions::rebuilding). A single node cannot rebuild from
  // peers: it fails with the store's error.
  static absl::StatusOr<std::unique_ptr<Node>> Open(const ServerConfig& config,
                                                    const Clock* clock);
  ~Node();

  // Starts / stops the loop thread. Stop fails waiting requests and ends
  // streams with UNAVAILABLE, then flushes.
  void Start();
  void Stop();

  // A config reload (SIGHUP): channel limits come from `store` from now on
  // (limits and channel_overrides); channels this node leads switch within
  // a second, through their raft logs. Thread-safe.
  void ReloadLimits(const StoreConfig& store);

  // Graceful shutdown, step 1 (blocks the caller, not the loop): hands the
  // leadership of every group this node leads to a caught-up peer and
  // waits until it leads none, or `max_wait` passed. Clients of those
  // channels then carry on with the new leaders while this node stops.
  void HandOffLeadership(absl::Duration max_wait);

  // Wires the cluster (before Start). Either may be null for a single node.
  void SetCluster(Transport* transport, Forwarder* forwarder);
  // Wires the links to other clusters (before Start; may stay null).
  void SetGateways(GatewayClient* gateways) { gateways_ = gateways; }
  // The links to other clusters (null when none are configured); its
  // Status() is thread-safe (monitoring).
  GatewayClient* gateways() const { return gateways_; }
  // Inbound raft batch from `from` (thread-safe; posted to the loop).
  void OnRaftMessages(raft::NodeId from, std::vector<raft::Message> messages);

  // ---- Client requests (thread-safe, validated by the caller) ----
  // `hops`: how many nodes already forwarded the request (0 from clients).
  void Connect(const ConnectRequest& request, int hops, ConnectDone done);
  void Ping(const PingRequest& request, int hops, StatusDone done);
  // `on_ack(i, ack)` runs once per message i (any thread, any order).
  // `leader_hint`: a client's publish (hops 0) that this node forwards is
  // answered with the leader's client address in PubAck.leader_address,
  // so the client can send the next ones there itself (used for unary
  // Publish; a stream keeps its one route, so its acks go without).
  void Publish(std::vector<PubMsg> msgs, int hops,
               std::function<void(size_t index, const PubAck& ack)> on_ack,
               bool leader_hint = false);
  void Subscribe(const SubscriptionRequest& request, int hops,
                 std::shared_ptr<SubscriberStream> stream);
  void SubscriptionAcks(uint64_t channel_id, std::string member_id,
                        std::vector<uint64_t> seqs);
  void SubscriptionEnded(uint64_t channel_id, std::string member_id);
  void Unsubscribe(const UnsubscribeRequest& request, int hops,
                   StatusDone done);
  void Close(const CloseRequest& request, int hops, StatusDone done);

  // Membership (Admin.AddNode / RemoveNode), answered by the metadata
  // leader once the change is recorded; reconciliation does the rest.
  void AddNode(const AddNodeRequest& request, int hops, StatusDone done);
  void RemoveNode(const RemoveNodeRequest& request, int hops, StatusDone done);

  // ---- Mirrors declared at runtime (Admin; thread-safe, validated) ----
  // Answered by the metadata leader (others: UNAVAILABLE naming it). Add
  // creates the mirror channel (OK, created = false, when the same mirror
  // exists); refused with nothing changed when the source cluster is not
  // among `gateways` or the channel exists as a regular channel or mirrors
  // another source. Remove deletes a mirror channel that the config file
  // does not declare.
  using AddMirrorDone =
      absl::AnyInvocable<void(absl::StatusOr<AddMirrorResponse>)>;
  void AddMirror(const AddMirrorRequest& request, int hops, AddMirrorDone done);
  void RemoveMirror(const RemoveMirrorRequest& request, int hops,
                    StatusDone done);
  // Every mirror in this node's directory, with this node's view of it.
  void ListMirrors(
      absl::AnyInvocable<void(absl::StatusOr<ListMirrorsResponse>)> done);

  // ---- Gateway requests from other clusters (thread-safe) ----
  using HelloDone =
      absl::AnyInvocable<void(absl::StatusOr<GatewayHelloResponse>)>;
  using FetchDone =
      absl::AnyInvocable<void(absl::StatusOr<GatewayFetchResponse>)>;
  // A page of the channels this cluster owns (not its mirrors).
  void GatewayDirectory(const GatewayHelloRequest& request, HelloDone done);
  // Stored messages of a local replica of `request.channel()`; waits up to
  // request.wait_ms (bounded) when none is stored from from_sequence yet.
  void GatewayFetch(const GatewayFetchRequest& request, FetchDone done);

  // A snapshot of this node's view of the cluster (Admin.ClusterStatus).
  void ClusterStatus(
      absl::AnyInvocable<void(absl::StatusOr<ClusterStatusResponse>)> done);

  // What the HTTP monitoring endpoints show (server/monitor_snapshot.h),
  // built on the loop thread; `done` runs there (or at once with
  // UNAVAILABLE when the loop refuses the task).
  void GetMonitorSnapshot(
      const MonitorQuery& query,
      absl::AnyInvocable<void(absl::StatusOr<server::MonitorSnapshot>)> done);

  // A consistent copy of this node's store in the new directory `dir`
  // (Admin.Backup). Thread-safe; does not stop the loop.
  absl::Status Backup(const std::string& dir) const {
    return kv_->Checkpoint(dir);
  }

  // Runs `task` on the loop thread (tests, monitoring snapshots). False if
  // refused (inbox full or stopped).
  bool Post(absl::AnyInvocable<void()> task);

  // One loop iteration at time `now_ns` (the loop thread calls it; tests
  // may call it directly on a node that was not Start()ed).
  void RunOnce(int64_t now_ns);

  const ServerConfig& config() const { return config_; }
  // This node's Prometheus metrics (thread-safe).
  Metrics* metrics() { return &metrics_; }
  // Channel snapshots being fetched from this node (SnapshotService).
  const SnapshotTransfers* snapshot_transfers() const { return &transfers_; }

 private:
  static constexpr raft::GroupId kMetaGroup = 0;

  Node(const ServerConfig& config, const Clock* clock);

  // The status a proposal's waiter reports: the apply's own error first.
  static absl::Status OutcomeStatus(const ApplyOutcome& outcome);

  // Open without the damage handling; `damage` non-empty: the store is new
  // and replaces a damaged one (why, for the marker).
  static absl::StatusOr<std::unique_ptr<Node>> OpenStore(
      const ServerConfig& config, const Clock* clock,
      const std::string& damage);
  absl::Status Recover();
  // Once a second while rebuilding_: clears the marker once every local
  // replica caught up (no replica rebuilding any more).
  void MaybeFinishRebuild();
  absl::StatusOr<std::unique_ptr<RaftGroup>> OpenGroup(raft::GroupId group,
                                                       raft::Index applied);
  void Loop();
  void RunTasks();
  void Tick(int64_t now_ns);
  void ProcessReadies();
  void ApplyEntries(RaftGroup* group, const std::vector<raft::Entry>& entries,
                    storage::WriteBatch* batch);
  void ApplyMeta(const raft::Entry& entry, storage::WriteBatch* batch);
  void AfterApplyWritten();
  void PumpDeliveries(int64_t now_ns);
  void FlushProposals();
  int64_t NextWakeNs(int64_t now_ns) const;
  bool AnyReady() const;

  // ---- Routing (loop thread) ----
  // Where a request goes: this node (self id) or the leader to forward to;
  // waits until `deadline_ns` for a leader to be known.
  using RouteDone = absl::AnyInvocable<void(absl::StatusOr<raft::NodeId>)>;
  void RouteMeta(int hops, int64_t deadline_ns, RouteDone then);
  // On the loop thread, finds the metadata leader and runs `local(done)`
  // when this node leads, else `forward(leader, done)`; `done` gets the
  // routing error, or UNAVAILABLE when the inbox is full or the node stops.
  template <typename Done, typename Local, typename Forward>
  void AtMetaLeader(int hops, Done done, Local local, Forward forward) {
    auto shared = std::make_shared<Done>(std::move(done));
    auto route = [this, hops, shared, local = std::move(local),
                  forward = std::move(forward)]() mutable {
      RouteMeta(hops, Deadline(),
                [this, shared, local = std::move(local),
                 forward = std::move(forward)](
                    absl::StatusOr<raft::NodeId> leader) mutable {
                  if (!leader.ok()) {
                    (*shared)(leader.status());
                  } else if (*leader == self_) {
                    local(std::move(*shared));
                  } else {
                    forward(*leader, std::move(*shared));
                  }
                });
    };
    if (!Post(std::move(route))) {
      (*shared)(absl::UnavailableError("server is busy or stopping; retry"));
    }
  }
  // The channel's local host when this node serves it, or the node to
  // forward to. A missing channel is created (by the metadata leader).
  struct ChannelRoute {
    ChannelHost* host = nullptr;
    raft::NodeId forward_to = raft::kNoNode;
  };
  using ChannelRouteDone =
      absl::AnyInvocable<void(absl::StatusOr<ChannelRoute>)>;
  void RouteChannel(const std::string& name, bool create, int hops,
                    int64_t deadline_ns, ChannelRouteDone then);
  // Metadata leader only: creates `name` (or finds it created meanwhile),
  // as a mirror of `mirror` when it is not null.
  void CreateChannel(const std::string& name, StatusDone done,
                     const MirrorSource* mirror = nullptr);
  // CheckClient against this node's metadata replica, confirmed with the
  // metadata leader (read barrier) before refusing, since the replica may
  // lag behind a just-applied Connect.
  void CheckClientFresh(const std::string& client_id,
                        const std::string& conn_id, StatusDone then);
  int64_t Deadline() const;
  bool PeerUp(raft::NodeId node) const;

  // ---- Request handling (loop thread) ----
  void DoConnect(const ConnectRequest& request, ConnectDone done);
  void DoPublish(PubMsg msg, int hops, PublishDone done, bool leader_hint);
  // DoPublish past the checks and the channel's publish gate.
  void RoutePublish(PubMsg msg, int hops, PublishDone done, bool leader_hint);
  // RoutePublish's slow path: find (or create) the channel and its leader.
  void RouteChannelPublish(PubMsg msg, int hops, PublishDone done,
                           bool leader_hint);
  // Sends the publishes waiting at gates with nothing in flight, in order;
  // forgets idle gates.
  void ReleasePublishGates();
  void ForwardPublish(raft::NodeId to, int hops, PubMsg msg, PublishDone done);
  void FlushForwardedPublishes();
  void DoSubscribe(const SubscriptionRequest& request, int hops,
                   std::shared_ptr<SubscriberStream> stream);
  void DoUnsubscribe(const UnsubscribeRequest& request, int hops,
                     StatusDone done);
  void DoClose(const CloseRequest& request, StatusDone done);
  // Removes client `client_id` (connection `conn_id`): once applied, every
  // channel leader closes its members.
  void DropClient(const std::string& client_id, const std::string& conn_id,
                  ClientClose::Reason reason, StatusDone done);
  void StepInbound(raft::NodeId from, std::vector<raft::Message> messages);

  // ---- Gateways and mirrors (node_gateway.cc, loop thread) ----
  // A client's publish (hops 0) to a channel another cluster serves: queued
  // for that cluster's gateway (true), or false to serve it here.
  bool RouteToGateway(PubMsg* msg, PublishDone* done);
  void FlushGatewayPublishes();
  // Client publishes to a mirror are refused.
  bool IsMirror(const std::string& channel) const;
  absl::StatusOr<GatewayFetchResponse> ReadForGateway(
      const GatewayFetchRequest& request);
  void ServeFetchWaiters(int64_t now_ns);
  // Once a second: the metadata leader creates configured mirrors; leaders
  // of mirror channels start their feeds; the gateway client learns the
  // local directory.
  void ReconcileMirrors();
  // Fetches and proposes the next batches of every feed led here.
  void PumpMirrors(int64_t now_ns);
  struct MirrorFeed;
  void OnMirrorFetched(uint64_t channel_id, uint64_t generation, uint64_t base,
                       absl::StatusOr<GatewayFetchResponse> fetched);
  uint64_t MirrorBase(const MirrorFeed& feed, const ChannelHost& host) const;
  void ReportMirror(const MirrorFeed& feed, const ChannelHost& host);
  MirrorStatus FeedStatus(const MirrorFeed& feed,
                          const ChannelHost& host) const;
  // Runs `local` here when this node leads the metadata group (on the
  // loop), else fails `done` with UNAVAILABLE naming the leader.
  void AtMetaLeaderHere(int hops, StatusDone fail,
                        absl::AnyInvocable<void()> local);
  bool ConfiguredMirror(const std::string& channel) const;
  ClusterStatusResponse BuildClusterStatus();
  server::MonitorSnapshot BuildMonitorSnapshot(const MonitorQuery& query);
  // Health for /healthz: empty when healthy, else why not.
  std::string HealthProblem();
  // Subscriptions of a channel as monitoring lists them (one per attached
  // member, one per offline durable), only those of `client_id` if set.
  std::vector<SubscriptionView> SubscriptionViews(
      const ChannelHost& host, const std::string& client_id) const;

  // ---- Snapshots and compaction (loop thread) ----
  absl::StatusOr<raft::Snapshot> MakeChannelSnapshot(uint64_t channel_id);
  absl::StatusOr<raft::Snapshot> MakeMetaSnapshot();
  absl::StatusOr<raft::SnapshotMetadata> SnapshotMetadataAt(RaftGroup* group,
                                                            raft::Index index);
  // An incoming channel snapshot: fetch its messages, then step it.
  void ReceiveChannelSnapshot(raft::NodeId from, raft::Message message);
  // Installs a Ready's snapshot into the group's state machine.
  void InstallSnapshot(RaftGroup* group, const raft::Snapshot& snapshot,
                       storage::WriteBatch* batch);
  // Compacts the raft logs of groups that applied snapshot_entries beyond
  // their first index.
  void CompactLogs();
  // Creates this node's replica of a channel (directory entry applied by a
  // command or a metadata snapshot); campaigns first if designated.
  // `bootstrap`: the channel is new, its replicas start as its voters.
  // Otherwise this node joins an existing group empty and is caught up by
  // its leader (a replica moved here).
  void StageChannelCreate(const ChannelDirectoryEntry& entry, bool bootstrap,
                          storage::WriteBatch* batch);
  void StageChannelDelete(uint64_t channel_id, const std::string& name,
                          storage::WriteBatch* batch);
  // Stages the deletion of any local data of channel `channel_id` (its
  // messages, records and raft state), for a replica joining anew.
  void PurgeLocalGroup(uint64_t channel_id, storage::WriteBatch* batch);
  // Opens the raft groups of channels staged by StageChannelCreate/Join.
  void MaterializeCreatedChannels();

  // ---- Membership (loop thread) ----
  // Nodes that hold replicas and vote: ACTIVE ones in the metadata group's
  // node table (the configured members until it is recorded).
  std::vector<uint64_t> ActiveNodes() const;
  // Rebuilds peer addresses (config + node table) and hands them to the
  // transport and the forwarder.
  void RefreshPeers();
  // Once a second: local replicas follow the directory, group leaders move
  // memberships toward it, the metadata leader places replicas.
  void ReconcileMembership();
  void ReconcileLocalReplicas();
  // Leader of `group`: the next single-server change toward `desired`.
  void ReconcileGroupMembers(RaftGroup* group,
                             const std::vector<uint64_t>& desired);
  void ReconcileMetadataLeader();
  // Loop thread: starts a transfer for every group led here that has a
  // caught-up peer; returns how many such groups this node still leads.
  int TransferLeadershipAway();
  bool TransferGroupLeadership(RaftGroup* group);
  void ProposeChannelReplicas(const std::string& name,
                              std::vector<uint64_t> replicas);
  RaftGroup* FindGroup(raft::GroupId group);
  void SendOutbound(
      absl::btree_map<raft::NodeId, std::vector<raft::Message>> outbound);
  void ExpireClients(int64_t now_ns);
  void WakeGroupsOfLostPeers();
  // Hands leadership of a few channels to less loaded replicas when this
  // node leads more than its share (runs every two seconds).
  void BalanceLeaders();
  int64_t AliveWindowNs() const;
  // OK when the client is registered with that connection (conn_id empty
  // matches any); NOT_FOUND otherwise. Counts as client activity.
  absl::Status CheckClient(const std::string& client_id,
                           const std::string& conn_id);
  void ProposeMeta(const MetaCommand& command, ProposalDone done);
  void MaybeDeleteInactiveChannels(int64_t now_ns);
  ChannelHost* FindChannel(uint64_t channel_id);

  const ServerConfig config_;
  const Clock* clock_;
  // Declared before every channel host: they keep pointers into it.
  Metrics metrics_;
  const raft::NodeId self_;
  // Every node of the cluster, ascending (this one and the peers).
  std::vector<raft::NodeId> cluster_nodes_;
  // Addresses of the other nodes: configured peers, then the node table.
  absl::btree_map<raft::NodeId, PeerConfig> peers_;
  // Every address ever learned (config, node table), kept after a node is
  // forgotten while groups may still need to reach it.
  absl::flat_hash_map<raft::NodeId, PeerConfig> known_addresses_;
  // Channels whose ChannelReplicas proposal is in flight.
  absl::flat_hash_set<std::string> replica_updates_in_flight_;
  bool recording_nodes_ = false;
  int64_t next_reconcile_ns_ = 0;
  // Limits from the last config reload (none: config_.store()).
  std::optional<StoreConfig> reloaded_store_;
  const StoreConfig& LiveStore() const {
    return reloaded_store_.has_value() ? *reloaded_store_ : config_.store();
  }
  // Leader: brings each channel's limits to LiveStore() after a reload.
  void ApplyReloadedLimits();
  Transport* transport_ = nullptr;
  Forwarder* forwarder_ = nullptr;
  // Publishes to forward, by (node, hops), sent once per loop iteration.
  struct ForwardBatch {
    std::vector<PubMsg> msgs;
    std::vector<PublishDone> dones;
  };
  absl::btree_map<std::pair<raft::NodeId, int>, ForwardBatch>
      forward_publishes_;
  // A client's publishes to one channel leave this node in the order they
  // arrived. One that cannot go straight to a leader this node knows (the
  // channel is not known here yet, so it travels through the metadata
  // leader; this node holds no replica and guesses the leader; or no leader
  // is known and it waits) is "in flight" until its ack comes back; while
  // any is, later publishes to that channel wait at the gate, and go
  // together, in order, once none is. Without it the first publishes to a
  // new channel, on their detour through the metadata leader, were
  // overtaken by the next ones sent straight to the channel's leader.
  struct GatedPublish {
    PubMsg msg;
    int hops = 0;
    PublishDone done;
    bool leader_hint = false;
  };
  struct PublishGate {
    // Decremented on gRPC threads by forwarded acks.
    std::shared_ptr<std::atomic<int64_t>> in_flight =
        std::make_shared<std::atomic<int64_t>>(0);
    std::deque<GatedPublish> waiting;
  };
  // Lets a forwarded ack, on a gRPC thread, wake the loop to release a
  // gate; Stop detaches it, so a late callback never touches a gone node.
  struct GateWaker {
    absl::Mutex mu;
    Node* node ABSL_GUARDED_BY(mu) = nullptr;
    void Wake() {
      absl::MutexLock lock(&mu);
      if (node != nullptr) node->Post([] {});
    }
  };
  std::shared_ptr<GateWaker> gate_waker_ = std::make_shared<GateWaker>();
  // Publishes one gate holds at most; more are refused (retryable).
  static constexpr size_t kGatedPublishesMax = 100000;
  absl::flat_hash_map<std::string, PublishGate> publish_gates_;
  GatewayClient* gateways_ = nullptr;
  // Client publishes to other clusters, by cluster, sent once per loop
  // iteration.
  absl::btree_map<std::string, ForwardBatch> gateway_publishes_;
  // Configured mirror channel names.
  absl::flat_hash_set<std::string> mirror_names_;
  // Gateway fetches waiting for messages.
  struct FetchWaiter {
    GatewayFetchRequest request;
    int64_t deadline_ns;
    FetchDone done;
  };
  std::vector<FetchWaiter> fetch_waiters_;
  // The feed of each mirror channel this node leads.
  struct MirrorFeed {
    uint64_t generation = 0;
    std::string channel;
    std::string source_cluster;
    std::string source_channel;
    bool fetching = false;
    int64_t fetch_deadline_ns = 0;
    // MirrorAppend proposals in flight, and the last sequence they carry.
    int proposals = 0;
    uint64_t proposed_last = 0;
    // A proposal failed: wait for the others, then restart from the FSM.
    bool resync = false;
    int64_t retry_ns = 0;
    int failures = 0;
    uint64_t source_last = 0;
    int64_t messages_applied = 0;
    int64_t bytes_applied = 0;
    std::string error;
  };
  absl::flat_hash_map<uint64_t, MirrorFeed> mirror_feeds_;
  uint64_t next_feed_generation_ = 1;
  absl::flat_hash_set<std::string> mirror_conflicts_logged_;
  std::unique_ptr<storage::Kv> kv_;
  std::unique_ptr<storage::ChannelStore> store_;
  std::unique_ptr<MetaFsm> meta_;
  std::unique_ptr<RaftGroup> meta_group_;
  absl::btree_map<uint64_t, std::unique_ptr<ChannelHost>> channels_;
  ChannelHostOptions host_options_;
  ChannelFsmOptions fsm_options_;

  // Channels created or deleted by applied meta entries, acted on once the
  // apply batch is written.
  struct CreatedChannel {
    uint64_t channel_id;
    bool designated_leader;  // this node campaigns first
  };
  std::vector<CreatedChannel> created_channels_;
  std::vector<uint64_t> deleted_channels_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<ChannelFsm>> pending_fsms_;
  // Continuations to run once the apply batch is written and new channels'
  // hosts exist.
  std::vector<absl::AnyInvocable<void()>> after_apply_;
  // Channels whose deletion for inactivity was proposed.
  absl::flat_hash_set<uint64_t> deleting_;
  // Requests waiting for a channel being created, by name.
  absl::flat_hash_map<std::string,
                      std::vector<absl::AnyInvocable<void(absl::Status)>>>
      creating_;
  // Last sign of life of each client (volatile; fresh grace after restart).
  absl::flat_hash_map<std::string, int64_t> client_seen_ns_;
  absl::flat_hash_set<std::string> clients_dropping_;
  // Connections closed, expired or replaced by applied metadata commands;
  // channel leaders close their members after the apply batch is written.
  struct GoneConnection {
    std::string client_id;
    std::string conn_id;
    absl::Status status;
  };
  std::vector<GoneConnection> gone_connections_;

  // The metadata group was bootstrapped by this run (a new cluster).
  bool fresh_cluster_ = false;
  // A node that starts with no applied state may be one whose data
  // directory was wiped after it voted: until this time (2 election
  // timeouts after the start) its replicas neither vote nor campaign
  // (raft::ReplicaOptions::votes_withheld_ticks). 0: not withheld.
  int64_t votes_withheld_until_ns_ = 0;
  // The store is being rebuilt after damage (see Open); mirrors the durable
  // marker. Groups opened while the metadata replica still rebuilds start
  // rebuilding too: they are the channels this node held before.
  bool rebuilding_ = false;
  SnapshotTransfers transfers_;
  std::unique_ptr<SnapshotFetcher> fetcher_;
  int64_t next_compaction_ns_ = 0;
  int64_t next_balance_ns_ = 0;
  // Every group was quiesced at the last tick: the loop may sleep longer.
  bool all_quiesced_ = false;
  // Transport reachability of each peer at the last tick.
  absl::flat_hash_map<raft::NodeId, bool> peer_up_;
  int64_t next_tick_ns_ = 0;
  int64_t next_expiry_check_ns_ = 0;
  int64_t tick_ns_ = 0;

  // A std::mutex and condition variable rather than absl::Mutex: the loop
  // sleeps with a timeout, and absl's timed waits (20220623) sleep until an
  // absolute wall-clock time, which a wall-clock step stretches by the
  // step; std::condition_variable waits on the monotonic clock.
  std::mutex inbox_mu_;
  // Signalled by Post and Stop.
  std::condition_variable inbox_cv_;
  // Both guarded by inbox_mu_.
  std::vector<absl::AnyInvocable<void()>> inbox_;
  bool stopping_ = false;
  std::thread loop_thread_;
  bool started_ = false;
};

}  // namespace spate::server

#endif  // SPATE_SERVER_NODE_H_
