#include "tests/sim/node_host.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/status_macros.h"
#include "raft/conf_change.h"
#include "raft/describe.h"

namespace spate::sim {

NodeHost::NodeHost(const HostConfig& config, const raft::ConfState& bootstrap,
                   EventQueue* queue, SimNetwork* network, base::Prng* prng,
                   const Trace* trace, HostObserver* observer)
    : config_(config),
      queue_(queue),
      network_(network),
      prng_(prng),
      trace_(trace),
      observer_(observer),
      disk_(bootstrap) {}

std::string NodeHost::name() const { return absl::StrCat("n", id()); }

void NodeHost::Start() {
  CHECK(!up());
  raft::ReplicaOptions options = config_.options;
  options.applied = disk_.durable().app.applied;
  // A restarted node draws new election timeouts, as a real one would.
  options.seed = config_.options.seed + incarnation_ * 0x9e3779b97f4a7c15ULL;
  absl::StatusOr<std::unique_ptr<raft::Replica>> replica =
      raft::Replica::Create(options, disk_.reader());
  if (!replica.ok()) {
    observer_->OnViolation(
        absl::StrCat(name(), " cannot restart from its durable state: ",
                     replica.status().ToString()));
    return;
  }
  replica_ = *std::move(replica);
  tick_period_us_ = config_.tick_ms * 1000 - config_.tick_drift_us +
                    prng_->Range(0, 2 * config_.tick_drift_us);
  started_ms_ = queue_->now();
  ticks_ = 0;
  if (trace_->enabled()) {
    trace_->Add(name(),
                absl::StrCat("start: ", replica_->Status().DebugString(),
                             " tick=", tick_period_us_, "us"));
  }
  observer_->OnStart(*replica_, app());
  ScheduleTick();
  PumpReady();
}

void NodeHost::Crash() {
  CHECK(up());
  replica_.reset();
  ready_in_flight_ = false;
  ++incarnation_;
  ++crashes_;
  const size_t unsynced = disk_.unsynced_writes();
  disk_.Crash(prng_);
  if (trace_->enabled()) {
    trace_->Add(name(), absl::StrCat("crash: ", unsynced,
                                     " unsynced writes at risk; "
                                     "durable applied=",
                                     app().applied, " hard state ",
                                     raft::DescribeHardState(
                                         disk_.durable().log.hard_state())));
  }
}

void NodeHost::ScheduleTick() {
  const uint64_t incarnation = incarnation_;
  ++ticks_;
  queue_->At(started_ms_ + ticks_ * tick_period_us_ / 1000,
             [this, incarnation] { OnTick(incarnation); });
}

void NodeHost::OnTick(uint64_t incarnation) {
  if (incarnation != incarnation_ || !up()) return;
  replica_->Tick();
  PumpReady();
  ScheduleTick();
}

void NodeHost::Receive(const raft::Message& message) {
  CHECK(up());
  if (trace_->enabled()) {
    trace_->Add(name(), absl::StrCat("recv ", raft::DescribeMessage(message)));
  }
  const absl::Status s = replica_->Step(message);
  // A correct group refuses only messages from nodes it no longer (or not
  // yet) counts as members.
  if (!s.ok() && replica_->tracker().IsMember(message.from())) {
    observer_->OnViolation(absl::StrCat(name(), " refused ",
                                        raft::DescribeMessage(message),
                                        " from a member: ", s.ToString()));
  }
  PumpReady();
}

absl::StatusOr<raft::Index> NodeHost::Propose(std::string data) {
  CHECK(up());
  absl::StatusOr<raft::Index> index = replica_->Propose(std::move(data));
  PumpReady();
  return index;
}

absl::StatusOr<raft::Index> NodeHost::ProposeConfChange(
    const raft::ConfChange& cc) {
  CHECK(up());
  absl::StatusOr<raft::Index> index = replica_->ProposeConfChange(cc);
  PumpReady();
  return index;
}

absl::Status NodeHost::TransferLeadership(raft::NodeId to) {
  CHECK(up());
  absl::Status s = replica_->TransferLeadership(to);
  PumpReady();
  return s;
}

void NodeHost::SnapshotDelivered(const Envelope& envelope) {
  if (!up() || envelope.sender_incarnation != incarnation_) return;
  replica_->ReportSnapshot(envelope.message.to(), /*ok=*/true);
  PumpReady();
}

void NodeHost::Lost(const Envelope& envelope, SimNetwork::Loss loss) {
  if (!up() || envelope.sender_incarnation != incarnation_) return;
  const raft::Message& m = envelope.message;
  if (m.type() == raft::MSG_SNAPSHOT) {
    replica_->ReportSnapshot(m.to(), /*ok=*/false);
  }
  if (loss == SimNetwork::Loss::kBlocked) replica_->ReportUnreachable(m.to());
  PumpReady();
}

void NodeHost::PumpReady() {
  if (!up() || ready_in_flight_ || !replica_->HasReady()) return;
  raft::Ready ready = replica_->TakeReady();
  observer_->OnReady(*replica_, ready);
  if (trace_->enabled()) TraceReady(ready);
  ready_in_flight_ = true;
  const uint64_t incarnation = incarnation_;
  queue_->After(prng_->Range(0, config_.disk_latency_max_ms),
                [this, incarnation, ready = std::move(ready)] {
                  if (incarnation == incarnation_ && up()) FinishReady(ready);
                });
}

void NodeHost::FinishReady(const raft::Ready& ready) {
  const raft::HardState& before = disk_.visible().log.hard_state();
  const bool election = ready.hard_state.has_value() &&
                        (ready.hard_state->term() != before.term() ||
                         ready.hard_state->vote() != before.vote());
  // ready.h: persist, then send, then apply, then Advance.
  if (absl::Status s = Persist(ready); !s.ok()) {
    observer_->OnViolation(
        absl::StrCat(name(), " cannot persist its Ready: ", s.ToString()));
    return;
  }
  for (const raft::Message& m : ready.messages) {
    network_->Send(Envelope{m, incarnation_});
  }
  if (absl::Status s = ApplyCommitted(ready); !s.ok()) {
    observer_->OnViolation(absl::StrCat(name(), ": ", s.ToString()));
    return;
  }
  replica_->Advance(ready);
  ready_in_flight_ = false;
  MaybeCompact();
  PumpReady();
  MaybeLosePower(election);
}

void NodeHost::MaybeLosePower(bool election) {
  const uint64_t per_mille =
      election ? config_.election_crash_per_mille : config_.crash_per_mille;
  if (!power_loss_ || per_mille == 0 || !prng_->Chance(per_mille, 1000)) {
    return;
  }
  if (trace_->enabled()) {
    trace_->Add(name(), election ? "power loss right after an election write"
                                 : "power loss right after a Ready");
  }
  Crash();
  const uint64_t incarnation = incarnation_;
  queue_->After(prng_->Range(10, config_.restart_delay_max_ms),
                [this, incarnation] {
                  if (!up() && incarnation == incarnation_ && power_loss_) {
                    Start();
                  }
                });
}

absl::Status NodeHost::Persist(const raft::Ready& ready) {
  std::optional<AppState> installed;
  if (ready.snapshot.has_value()) {
    installed = AppState::Decode(ready.snapshot->data());
    if (!installed.has_value() ||
        installed->applied != ready.snapshot->metadata().index()) {
      return absl::DataLossError(
          absl::StrCat("snapshot ", raft::DescribeSnapshot(*ready.snapshot),
                       " does not carry a state machine image at its index"));
    }
  }
  if (!installed.has_value() && ready.entries.empty() &&
      !ready.hard_state.has_value()) {
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(disk_.Apply(
      [snapshot = ready.snapshot, installed, entries = ready.entries,
       hard_state = ready.hard_state](DiskState* disk) -> absl::Status {
        if (snapshot.has_value()) {
          // The snapshot and the state it carries, in one write.
          RETURN_IF_ERROR(disk->log.ApplySnapshot(*snapshot));
          disk->app = *installed;
        }
        RETURN_IF_ERROR(disk->log.Append(entries));
        if (hard_state.has_value()) disk->log.SetHardState(*hard_state);
        return absl::OkStatus();
      },
      ready.must_sync));
  if (installed.has_value()) observer_->OnInstall(*replica_, *installed);
  return absl::OkStatus();
}

absl::Status NodeHost::ApplyCommitted(const raft::Ready& ready) {
  if (ready.committed_entries.empty()) return absl::OkStatus();
  AppState app = this->app();
  std::optional<raft::ConfState> conf_state;
  for (const raft::Entry& e : ready.committed_entries) {
    if (e.index() != app.applied + 1) {
      return absl::InternalError(
          absl::StrCat("committed entry ", raft::DescribeEntry(e),
                       " handed out after applied index ", app.applied));
    }
    if (e.type() == raft::ENTRY_CONF_CHANGE) {
      raft::ConfChange cc;
      if (!cc.ParseFromString(e.data())) {
        return absl::DataLossError(
            absl::StrCat("unparsable conf change at ", e.index()));
      }
      if (trace_->enabled()) {
        trace_->Add(name(),
                    absl::StrCat("apply ", raft::DescribeEntry(e), " to ",
                                 raft::ConfStateString(
                                     replica_->tracker().conf_state())));
      }
      absl::StatusOr<raft::ConfState> cs = replica_->ApplyConfChange(cc);
      if (cs.ok()) {
        conf_state = *cs;
      } else if (trace_->enabled()) {
        // Refused the same way on every replica (it applies the same log).
        trace_->Add(name(),
                    absl::StrCat("conf change ", raft::ConfChangeString(cc),
                                 " refused: ", cs.status().ToString()));
      }
    }
    app.Apply(e);
    observer_->OnApply(*replica_, e, app);
  }
  // The state machine, its applied index and the membership: one write.
  return disk_.Apply(
      [app, conf_state](DiskState* disk) {
        disk->app = app;
        if (conf_state.has_value()) disk->log.SetConfState(*conf_state);
        return absl::OkStatus();
      },
      /*sync=*/false);
}

void NodeHost::MaybeCompact() {
  const raft::testing::MemoryLog& log = disk_.visible().log;
  const AppState& app = this->app();
  if (config_.compact_entries == 0 ||
      app.applied < log.FirstIndex() + config_.compact_entries) {
    return;
  }
  const raft::Index index = app.applied;
  std::string image = app.Encode();
  const raft::ConfState cs = log.conf_state();  // as of the applied index
  const absl::Status s = disk_.Apply(
      [index, image, cs](DiskState* disk) {
        return disk->log.Compact(index, image, cs);
      },
      /*sync=*/false);
  if (!s.ok()) {
    observer_->OnViolation(
        absl::StrCat(name(), " cannot compact at ", index, ": ", s.ToString()));
  } else if (trace_->enabled()) {
    trace_->Add(name(), absl::StrCat("compacted through ", index));
  }
}

void NodeHost::TraceReady(const raft::Ready& ready) const {
  std::string line = "ready:";
  if (ready.soft_state.has_value()) {
    absl::StrAppend(&line, " ", raft::RoleName(ready.soft_state->role),
                    " leader=", ready.soft_state->leader);
  }
  if (ready.hard_state.has_value()) {
    absl::StrAppend(&line, " hs={", raft::DescribeHardState(*ready.hard_state),
                    "}");
  }
  if (ready.snapshot.has_value()) {
    absl::StrAppend(&line, " snap=", raft::DescribeSnapshot(*ready.snapshot));
  }
  if (!ready.entries.empty()) {
    absl::StrAppend(&line, " entries=", ready.entries.front().index(), "..",
                    ready.entries.back().index());
  }
  if (!ready.committed_entries.empty()) {
    absl::StrAppend(&line, " apply=", ready.committed_entries.front().index(),
                    "..", ready.committed_entries.back().index());
  }
  absl::StrAppend(&line, " msgs=", ready.messages.size(),
                  ready.must_sync ? " sync" : "");
  trace_->Add(name(), line);
}

NodeHost* FindLeader(const std::vector<NodeHost*>& hosts) {
  NodeHost* leader = nullptr;
  for (NodeHost* h : hosts) {
    if (!h->up() || h->replica()->role() != raft::Role::kLeader) continue;
    if (leader == nullptr || h->replica()->term() > leader->replica()->term()) {
      leader = h;
    }
  }
  return leader;
}

}  // namespace spate::sim
