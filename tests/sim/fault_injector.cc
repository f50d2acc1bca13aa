#include "tests/sim/fault_injector.h"

#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace spate::sim {

FaultInjector::FaultInjector(std::vector<NodeHost*> hosts, SimNetwork* network,
                             base::Prng* prng, const Trace* trace,
                             bool leader_churn)
    : hosts_(std::move(hosts)),
      network_(network),
      prng_(prng),
      trace_(trace),
      leader_churn_(leader_churn) {}

NetworkFaults FaultInjector::CalmNetwork() {
  NetworkFaults calm;
  calm.latency_min_ms = 1;
  calm.latency_max_ms = 5;
  return calm;
}

void FaultInjector::Note(const std::string& what) const {
  if (trace_->enabled()) trace_->Add("faults", what);
}

void FaultInjector::Act() {
  if (leader_churn_) {
    ActOnLeader();
    return;
  }
  const uint64_t dice = prng_->Uniform(100);
  if (dice < 10) {
    CrashOne(PickHost(/*up=*/true));
  } else if (dice < 18) {
    CrashOne(FindLeader(hosts_));
  } else if (dice < 45) {
    RestartOne();
  } else if (dice < 55) {
    PartitionSymmetric();
  } else if (dice < 62) {
    IsolateLeader();
  } else if (dice < 70) {
    PartitionAsymmetric();
  } else if (dice < 82) {
    ++stats_.heals;
    network_->Heal();
    Note("heal the network");
  } else {
    ChangeNetwork();
  }
}

void FaultInjector::ActOnLeader() {
  const uint64_t dice = prng_->Uniform(100);
  if (dice < 35) {
    IsolateLeader();
  } else if (dice < 70) {
    ++stats_.heals;
    network_->Heal();
    Note("heal the network");
  } else if (dice < 80) {
    CrashOne(FindLeader(hosts_));
  } else if (dice < 95) {
    RestartOne();
  } else {
    ChangeNetwork();
  }
}

NodeHost* FaultInjector::PickHost(bool up) {
  std::vector<NodeHost*> candidates;
  for (NodeHost* h : hosts_) {
    if (h->up() == up) candidates.push_back(h);
  }
  if (candidates.empty()) return nullptr;
  return candidates[prng_->Uniform(candidates.size())];
}

void FaultInjector::CrashOne(NodeHost* host) {
  if (host == nullptr) return;
  ++stats_.crashes;
  Note(absl::StrCat("crash n", host->id()));
  host->Crash();
}

void FaultInjector::RestartOne() {
  NodeHost* host = PickHost(/*up=*/false);
  if (host == nullptr) return;
  ++stats_.restarts;
  Note(absl::StrCat("restart n", host->id()));
  host->Start();
}

void FaultInjector::PartitionSymmetric() {
  std::set<raft::NodeId> a;
  std::set<raft::NodeId> b;
  for (NodeHost* h : hosts_) {
    (prng_->Chance(1, 2) ? a : b).insert(h->id());
  }
  network_->Heal();
  network_->Partition(a, b);
  ++stats_.symmetric_partitions;
  Note(
      absl::StrCat("symmetric partition, blocked: ", network_->BlockedLinks()));
}

void FaultInjector::IsolateLeader() {
  NodeHost* leader = FindLeader(hosts_);
  if (leader == nullptr) return;
  std::set<raft::NodeId> others;
  for (NodeHost* h : hosts_) {
    if (h != leader) others.insert(h->id());
  }
  network_->Heal();
  network_->Partition({leader->id()}, others);
  ++stats_.symmetric_partitions;
  Note(absl::StrCat("isolate the leader n", leader->id()));
}

void FaultInjector::PartitionAsymmetric() {
  network_->Heal();
  const raft::NodeId victim = prng_->Range(1, hosts_.size());
  switch (prng_->Uniform(3)) {
    case 0:  // the victim hears nobody, everybody hears it
      for (NodeHost* h : hosts_) {
        if (h->id() != victim) network_->Block(h->id(), victim);
      }
      break;
    case 1:  // the victim hears everybody, nobody hears it
      for (NodeHost* h : hosts_) {
        if (h->id() != victim) network_->Block(victim, h->id());
      }
      break;
    default:  // random one-way cuts
      for (NodeHost* from : hosts_) {
        for (NodeHost* to : hosts_) {
          if (from != to && prng_->Chance(1, 4)) {
            network_->Block(from->id(), to->id());
          }
        }
      }
      break;
  }
  ++stats_.asymmetric_partitions;
  Note(absl::StrCat("asymmetric partition, blocked: ",
                    network_->BlockedLinks()));
}

void FaultInjector::ChangeNetwork() {
  NetworkFaults faults = CalmNetwork();
  switch (prng_->Uniform(4)) {
    case 0:  // calm
      break;
    case 1:  // lossy
      faults.drop_per_mille = 100;
      faults.duplicate_per_mille = 20;
      break;
    case 2:  // slow and reordering
      faults.latency_max_ms = 40;
      faults.spike_per_mille = 50;
      faults.spike_max_ms = 300;
      break;
    default:  // chaotic
      faults.drop_per_mille = 300;
      faults.duplicate_per_mille = 100;
      faults.latency_max_ms = 20;
      faults.spike_per_mille = 20;
      faults.spike_max_ms = 500;
      break;
  }
  network_->set_faults(faults);
  ++stats_.network_changes;
  Note(absl::StrCat("network now ", faults.DebugString()));
}

void FaultInjector::HealAll() {
  network_->Heal();
  network_->set_faults(CalmNetwork());
  Note("heal everything: calm network, restart crashed nodes");
  for (NodeHost* h : hosts_) {
    h->set_power_loss(false);
    if (!h->up()) h->Start();
  }
}

}  // namespace spate::sim
