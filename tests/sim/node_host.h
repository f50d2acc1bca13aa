// NodeHost: one simulated node hosting its replica of the group, playing the
// host role exactly as raft/replica.h and raft/ready.h prescribe:
//
//   TakeReady --(disk latency)--> persist on the SimDisk, fsynced when
//   must_sync --> send the messages --> apply committed entries (conf
//   changes through ApplyConfChange; membership and applied index written
//   together) --> Advance --> compact the log when it grew long enough.
//
// The disk write takes a random virtual latency during which the replica
// keeps receiving ticks and messages, as in a real event loop. Crash()
// destroys the replica, cancels everything it had scheduled and loses what
// the disk had not synced; Start() rebuilds the replica from the durable
// disk (ReplicaOptions.applied = the durable applied index).
//
// Everything the checker must see (each Ready, each applied entry, each
// installed snapshot, each start) is reported to a HostObserver.
// Threading: single-threaded; every method runs inside an EventQueue event.
#ifndef SPATE_TESTS_SIM_NODE_HOST_H_
#define SPATE_TESTS_SIM_NODE_HOST_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/prng.h"
#include "proto/raft.pb.h"
#include "raft/options.h"
#include "raft/ready.h"
#include "raft/replica.h"
#include "raft/types.h"
#include "tests/sim/app_state.h"
#include "tests/sim/event_queue.h"
#include "tests/sim/sim_disk.h"
#include "tests/sim/sim_network.h"
#include "tests/sim/trace.h"

namespace spate::sim {

// What the hosts report to the safety checker.
class HostObserver {
 public:
  virtual ~HostObserver() = default;
  // A replica was (re)created from the durable state `app`.
  virtual void OnStart(const raft::Replica& replica, const AppState& app) = 0;
  // The replica handed out `ready` (before the host acts on it).
  virtual void OnReady(const raft::Replica& replica,
                       const raft::Ready& ready) = 0;
  // The host applied `entry`; the state machine is now `after`.
  virtual void OnApply(const raft::Replica& replica, const raft::Entry& entry,
                       const AppState& after) = 0;
  // The host installed an incoming snapshot: the state machine is `state`.
  virtual void OnInstall(const raft::Replica& replica,
                         const AppState& state) = 0;
  // The host met something no correct core produces (a refused write, an
  // entry out of order, a message from a member refused).
  virtual void OnViolation(const std::string& what) = 0;
};

struct HostConfig {
  // id, group, seed and the raft knobs; `applied` is filled in at start.
  raft::ReplicaOptions options;
  // A tick every tick_ms, each node's clock running fast or slow by up to
  // tick_drift_us per tick (drawn at each start). Drift accumulates: tick k
  // comes at start + k * (tick_ms * 1000 +- drift) microseconds, rounded
  // to the millisecond.
  SimTime tick_ms = 10;
  uint64_t tick_drift_us = 0;
  // Each Ready's write takes 0..disk_latency_max_ms.
  SimTime disk_latency_max_ms = 2;
  // Compact the log (snapshot at the applied index) once it holds this many
  // applied entries; 0 never compacts.
  raft::Index compact_entries = 16;
  // Power loss right after a Ready was carried out (messages sent, writes
  // perhaps unsynced), per mille of Readys, and per mille of Readys that
  // changed the term or the vote (the writes elections hinge on). The node
  // restarts 10..restart_delay_max_ms later. Off once
  // set_power_loss(false).
  uint64_t crash_per_mille = 0;
  uint64_t election_crash_per_mille = 0;
  SimTime restart_delay_max_ms = 300;
};

class NodeHost {
 public:
  // `bootstrap`: the group's initial membership, persisted on this node's
  // disk before its first start. All pointers must outlive the host.
  NodeHost(const HostConfig& config, const raft::ConfState& bootstrap,
           EventQueue* queue, SimNetwork* network, base::Prng* prng,
           const Trace* trace, HostObserver* observer);

  NodeHost(const NodeHost&) = delete;
  NodeHost& operator=(const NodeHost&) = delete;

  raft::NodeId id() const { return config_.options.id; }
  bool up() const { return replica_ != nullptr; }
  // Bumped by every crash; work scheduled by an older incarnation is void.
  uint64_t incarnation() const { return incarnation_; }
  // Null while crashed.
  const raft::Replica* replica() const { return replica_.get(); }
  const SimDisk& disk() const { return disk_; }
  // The state machine (what the host has applied, durable or not).
  const AppState& app() const { return disk_.visible().app; }
  uint64_t crashes() const { return crashes_; }

  // (Re)creates the replica from the durable disk. Requires !up().
  void Start();
  // Power loss. Requires up().
  void Crash();
  // Enables the power losses of HostConfig (on at construction).
  void set_power_loss(bool enabled) { power_loss_ = enabled; }

  // Inputs; each runs the Ready loop afterwards. Require up().
  void Receive(const raft::Message& message);
  absl::StatusOr<raft::Index> Propose(std::string data);
  absl::StatusOr<raft::Index> ProposeConfChange(const raft::ConfChange& cc);
  absl::Status TransferLeadership(raft::NodeId to);
  // The transport's reports about a message this host sent: a snapshot
  // delivered, or any message lost (a lost snapshot is reported failed; a
  // message blocked by a partition or sent to a crashed node makes the
  // leader stop pipelining to it). Ignored if the sender crashed since.
  void SnapshotDelivered(const Envelope& envelope);
  void Lost(const Envelope& envelope, SimNetwork::Loss loss);

 private:
  void ScheduleTick();
  void OnTick(uint64_t incarnation);
  // Takes the next Ready, if any and none is in flight, and schedules its
  // write.
  void PumpReady();
  void FinishReady(const raft::Ready& ready);
  absl::Status Persist(const raft::Ready& ready);
  absl::Status ApplyCommitted(const raft::Ready& ready);
  void MaybeCompact();
  // Power loss after `ready` (HostConfig), with a restart scheduled.
  void MaybeLosePower(bool election);
  void TraceReady(const raft::Ready& ready) const;
  std::string name() const;

  HostConfig config_;
  EventQueue* queue_;
  SimNetwork* network_;
  base::Prng* prng_;
  const Trace* trace_;
  HostObserver* observer_;

  SimDisk disk_;
  std::unique_ptr<raft::Replica> replica_;
  uint64_t incarnation_ = 0;
  uint64_t crashes_ = 0;
  // This incarnation's tick period, its start and the ticks it made.
  uint64_t tick_period_us_ = 0;
  SimTime started_ms_ = 0;
  uint64_t ticks_ = 0;
  // A Ready was taken and its write has not finished.
  bool ready_in_flight_ = false;
  bool power_loss_ = true;
};

// The up node leading in the highest term among `hosts`, null if none (what
// clients and the nemesis take for "the leader").
NodeHost* FindLeader(const std::vector<NodeHost*>& hosts);

}  // namespace spate::sim

#endif  // SPATE_TESTS_SIM_NODE_HOST_H_
