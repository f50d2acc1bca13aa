#include "tests/sim/simulator.h"

#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/prng.h"
#include "proto/raft.pb.h"
#include "raft/options.h"
#include "raft/replica.h"
#include "tests/sim/checker.h"
#include "tests/sim/fault_injector.h"
#include "tests/sim/node_host.h"
#include "tests/sim/sim_network.h"
#include "tests/sim/trace.h"
#include "tests/sim/workload.h"

namespace spate::sim {
namespace {

constexpr raft::GroupId kGroup = 1;
constexpr SimTime kTickMs = 10;

// Independent streams per component: a change in how one component draws
// does not reshuffle the others.
uint64_t StreamSeed(uint64_t seed, uint64_t stream) {
  return seed * 0x9e3779b97f4a7c15ULL + stream * 0xbf58476d1ce4e5b9ULL + 1;
}

template <typename T, size_t N>
T Pick(base::Prng* prng, const T (&choices)[N]) {
  return choices[prng->Uniform(N)];
}

class Simulator {
 public:
  explicit Simulator(const SimOptions& options);
  SimResult Run();

 private:
  void Configure();
  void ScheduleClient();
  void ScheduleFault();
  // Runs one event and the safety checks.
  absl::Status Step();
  bool Converged() const;
  void Deliver(const Envelope& envelope);
  void Lose(const Envelope& envelope, SimNetwork::Loss loss);
  absl::Status Failure(const std::string& what) const;
  void Fill(SimResult* result) const;

  SimOptions options_;
  EventQueue queue_;
  Trace trace_;
  base::Prng config_prng_;
  base::Prng network_prng_;
  base::Prng host_prng_;
  base::Prng client_prng_;
  base::Prng fault_prng_;
  SimNetwork network_;
  Checker checker_;
  HostConfig host_config_;
  std::string config_;
  std::vector<std::unique_ptr<NodeHost>> hosts_;
  std::unique_ptr<Workload> workload_;
  std::unique_ptr<FaultInjector> faults_;
  // Faults come every 20..fault_gap_max_ms_: the seed's fault intensity.
  SimTime fault_gap_max_ms_ = 600;
  // Faults mostly aimed at the leader (FaultInjector).
  bool leader_churn_ = false;
  bool faults_on_ = true;
  SimTime faults_end_ms_ = 0;
  uint64_t events_ = 0;
  std::vector<const raft::Replica*> replicas_;  // scratch for the checker
};

Simulator::Simulator(const SimOptions& options)
    : options_(options),
      trace_(&queue_, options.trace),
      config_prng_(StreamSeed(options.seed, 1)),
      network_prng_(StreamSeed(options.seed, 2)),
      host_prng_(StreamSeed(options.seed, 3)),
      client_prng_(StreamSeed(options.seed, 4)),
      fault_prng_(StreamSeed(options.seed, 5)),
      network_(&queue_, &network_prng_, &trace_,
               SimNetwork::Handlers{
                   [this](const Envelope& e) { Deliver(e); },
                   [this](const Envelope& e, SimNetwork::Loss loss) {
                     Lose(e, loss);
                   }}),
      checker_(options.nodes) {
  Configure();
  raft::ConfState bootstrap;
  for (int i = 1; i <= options_.nodes; ++i) bootstrap.add_voters(i);
  std::vector<NodeHost*> hosts;
  for (int i = 1; i <= options_.nodes; ++i) {
    HostConfig config = host_config_;
    config.options.id = i;
    hosts_.push_back(std::make_unique<NodeHost>(config, bootstrap, &queue_,
                                                &network_, &host_prng_, &trace_,
                                                &checker_));
    hosts.push_back(hosts_.back().get());
  }
  workload_ = std::make_unique<Workload>(hosts, &client_prng_, &trace_);
  faults_ = std::make_unique<FaultInjector>(hosts, &network_, &fault_prng_,
                                            &trace_, leader_churn_);
}

void Simulator::Configure() {
  base::Prng* p = &config_prng_;
  raft::ReplicaOptions& o = host_config_.options;
  o.group = kGroup;
  o.seed = options_.seed;
  o.election_ticks = 10;
  o.heartbeat_ticks = 1;
  o.pre_vote = p->Chance(1, 2);
  o.check_quorum = p->Chance(1, 2);
  o.inflight_msgs_max = Pick<size_t>(p, {1, 4, 256});
  o.append_bytes_max = Pick<uint64_t>(p, {8, 64, 1 << 20});
  o.committed_bytes_max = Pick<uint64_t>(p, {16, 1 << 20});
  host_config_.tick_ms = kTickMs;
  host_config_.tick_drift_us = Pick<uint64_t>(p, {0, 20, 100});
  host_config_.disk_latency_max_ms = Pick<SimTime>(p, {0, 2, 8});
  host_config_.compact_entries = Pick<raft::Index>(p, {4, 16, 64});
  o.uncommitted_bytes_max = Pick<uint64_t>(p, {256, 4096, 64 << 20});
  host_config_.crash_per_mille = Pick<uint64_t>(p, {0, 1, 3});
  host_config_.election_crash_per_mille = Pick<uint64_t>(p, {0, 30, 100});
  fault_gap_max_ms_ = Pick<SimTime>(p, {60, 150, 600, 2000});
  leader_churn_ = p->Chance(1, 4);
  if (leader_churn_) fault_gap_max_ms_ = 100;
  config_ = absl::StrCat("nodes=", options_.nodes, " pre_vote=", o.pre_vote,
                         " check_quorum=", o.check_quorum,
                         " inflight=", o.inflight_msgs_max,
                         " append_bytes=", o.append_bytes_max,
                         " committed_bytes=", o.committed_bytes_max,
                         " tick_drift=", host_config_.tick_drift_us,
                         "us disk_latency<=", host_config_.disk_latency_max_ms,
                         "ms compact_entries=", host_config_.compact_entries,
                         " uncommitted_bytes=", o.uncommitted_bytes_max,
                         " power_loss=", host_config_.crash_per_mille, "/",
                         host_config_.election_crash_per_mille, " per mille",
                         " fault_gap<=", fault_gap_max_ms_, "ms",
                         leader_churn_ ? " leader_churn" : "");
}

void Simulator::ScheduleClient() {
  queue_.After(faults_on_ ? client_prng_.Range(2, 30) : kTickMs, [this] {
    if (faults_on_) {
      workload_->Act();
    } else {
      workload_->Repair();
    }
    ScheduleClient();
  });
}

void Simulator::ScheduleFault() {
  queue_.After(fault_prng_.Range(10, fault_gap_max_ms_), [this] {
    if (!faults_on_) return;
    faults_->Act();
    ScheduleFault();
  });
}

void Simulator::Deliver(const Envelope& envelope) {
  const raft::Message& m = envelope.message;
  NodeHost* to = hosts_[m.to() - 1].get();
  NodeHost* from = hosts_[m.from() - 1].get();
  if (!to->up()) {
    // The transport cannot reach a crashed node.
    from->Lost(envelope, SimNetwork::Loss::kBlocked);
    return;
  }
  to->Receive(m);
  if (m.type() == raft::MSG_SNAPSHOT) from->SnapshotDelivered(envelope);
}

void Simulator::Lose(const Envelope& envelope, SimNetwork::Loss loss) {
  hosts_[envelope.message.from() - 1]->Lost(envelope, loss);
}

absl::Status Simulator::Step() {
  queue_.RunNext();
  ++events_;
  replicas_.clear();
  for (const auto& h : hosts_) replicas_.push_back(h->replica());
  return checker_.CheckStep(replicas_);
}

bool Simulator::Converged() const {
  const NodeHost* leader = nullptr;
  for (const auto& h : hosts_) {
    if (!h->up()) return false;
    if (h->replica()->role() != raft::Role::kLeader) continue;
    if (leader != nullptr) return false;
    leader = h.get();
  }
  if (leader == nullptr) return false;
  const raft::Replica& r = *leader->replica();
  const raft::ConfState& cs = r.tracker().conf_state();
  if (cs.voters_size() != options_.nodes || cs.learners_size() != 0) {
    return false;
  }
  const raft::Index last = r.log().LastIndex();
  absl::StatusOr<raft::Term> last_term = r.log().LastTerm();
  if (!last_term.ok() || *last_term != r.term() ||
      last < checker_.max_committed()) {
    return false;
  }
  for (const auto& h : hosts_) {
    if (h->replica()->log().committed() != last || h->app().applied != last) {
      return false;
    }
  }
  return true;
}

absl::Status Simulator::Failure(const std::string& what) const {
  std::string nodes;
  for (const auto& h : hosts_) {
    absl::StrAppend(
        &nodes, "  n", h->id(), ": ",
        h->up() ? h->replica()->Status().DebugString() : std::string("crashed"),
        " applied=", h->app().applied, "\n");
  }
  return absl::InternalError(absl::StrCat(
      "seed=", options_.seed, " nodes=", options_.nodes, " failed at event ",
      events_, " (t=", queue_.now(), "ms): ", what, "\n  config: ", config_,
      "\n  network: ", network_.faults().DebugString(), " blocked: [",
      network_.BlockedLinks(), "]\n", nodes,
      "  replay: ", ReplayCommand(options_), " --verbose"));
}

void Simulator::Fill(SimResult* result) const {
  result->config = config_;
  result->events = events_;
  result->fault_phase_ms = faults_end_ms_;
  result->commands_proposed = workload_->stats().proposed;
  result->commands_committed = checker_.commands().size();
  result->last_index = checker_.max_committed();
  result->leader_terms = checker_.leader_terms();
  for (const auto& h : hosts_) result->crashes += h->crashes();
  result->conf_changes = workload_->stats().conf_changes;
  result->messages = network_.stats().sent;
}

SimResult Simulator::Run() {
  SimResult result;
  if (trace_.enabled()) trace_.Add("sim", "config: " + config_);
  for (const auto& h : hosts_) h->Start();
  ScheduleClient();
  ScheduleFault();
  for (int i = 0; i < options_.steps; ++i) {
    if (absl::Status s = Step(); !s.ok()) {
      result.status = Failure(std::string(s.message()));
      Fill(&result);
      return result;
    }
  }
  faults_on_ = false;
  faults_end_ms_ = queue_.now();
  faults_->HealAll();
  const SimTime deadline =
      queue_.now() + static_cast<SimTime>(options_.liveness_ticks) * kTickMs;
  while (!Converged()) {
    if (queue_.now() > deadline) {
      result.status = Failure(absl::StrCat(
          "liveness: no convergence within ", options_.liveness_ticks,
          " ticks after the faults stopped (a leader with every node a "
          "voter, every node applied its whole log, covering index ",
          checker_.max_committed(), ")"));
      Fill(&result);
      return result;
    }
    if (absl::Status s = Step(); !s.ok()) {
      result.status = Failure(std::string(s.message()));
      Fill(&result);
      return result;
    }
  }
  Fill(&result);
  result.converge_ms = queue_.now() - faults_end_ms_;
  if (trace_.enabled()) {
    trace_.Add("sim", absl::StrCat("converged: ", result.Summary()));
  }
  return result;
}

}  // namespace

std::string SimResult::Summary() const {
  return absl::StrCat("events=", events, " fault_phase=", fault_phase_ms,
                      "ms converge=", converge_ms,
                      "ms commands=", commands_committed, "/",
                      commands_proposed, " last_index=", last_index,
                      " leader_terms=", leader_terms, " crashes=", crashes,
                      " conf_changes=", conf_changes, " messages=", messages);
}

SimResult RunSimulation(const SimOptions& options) {
  Simulator simulator(options);
  return simulator.Run();
}

std::string ReplayCommand(const SimOptions& options) {
  std::string command =
      absl::StrCat("bazel run //tests/sim:vopr -- --seed=", options.seed,
                   " --nodes=", options.nodes);
  if (options.steps != kDefaultSteps) {
    absl::StrAppend(&command, " --steps=", options.steps);
  }
  if (options.liveness_ticks != kDefaultLivenessTicks) {
    absl::StrAppend(&command, " --liveness_ticks=", options.liveness_ticks);
  }
  return command;
}

}  // namespace spate::sim
