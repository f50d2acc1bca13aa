// FaultInjector: the simulator's nemesis. During the fault phase each Act()
// is one random fault: crash a node or the leader (losing its unsynced
// writes), restart one, isolate the leader, cut the network into two sides
// (symmetric partition), cut some links in one direction only (asymmetric
// partition: a node that can send but not hear, or hear but not send), heal, or
// change how badly the network behaves (loss, duplication, latency, latency
// spikes). HealAll() ends the fault phase: the network heals and turns calm,
// every crashed node restarts. Threading: single-threaded.
#ifndef SPATE_TESTS_SIM_FAULT_INJECTOR_H_
#define SPATE_TESTS_SIM_FAULT_INJECTOR_H_

#include <cstdint>
#include <vector>

#include "base/prng.h"
#include "tests/sim/node_host.h"
#include "tests/sim/sim_network.h"
#include "tests/sim/trace.h"

namespace spate::sim {

struct FaultStats {
  uint64_t crashes = 0;
  uint64_t restarts = 0;
  uint64_t symmetric_partitions = 0;
  uint64_t asymmetric_partitions = 0;
  uint64_t heals = 0;
  uint64_t network_changes = 0;
};

class FaultInjector {
 public:
  // hosts[i] is node i+1. Pointers must outlive the injector.
  // With `leader_churn`, Act() mostly isolates, heals and crashes the
  // current leader: short reigns that leave entries of many terms on
  // different minorities (the ground of Raft's Figure 8).
  FaultInjector(std::vector<NodeHost*> hosts, SimNetwork* network,
                base::Prng* prng, const Trace* trace, bool leader_churn);

  // One random fault.
  void Act();
  // Heals the network, makes it calm, restarts every crashed node.
  void HealAll();

  // A network with no loss and short latencies.
  static NetworkFaults CalmNetwork();

  const FaultStats& stats() const { return stats_; }

 private:
  // A random node that is up (or down), null if none.
  NodeHost* PickHost(bool up);
  // Crashes `host`, if not null.
  void CrashOne(NodeHost* host);
  // One fault of the leader-churn mix.
  void ActOnLeader();
  // Cuts the leader off from every other node (Jepsen's partition-leader).
  void IsolateLeader();
  void RestartOne();
  void PartitionSymmetric();
  void PartitionAsymmetric();
  void ChangeNetwork();
  void Note(const std::string& what) const;

  std::vector<NodeHost*> hosts_;
  SimNetwork* network_;
  base::Prng* prng_;
  const Trace* trace_;
  bool leader_churn_;
  FaultStats stats_;
};

}  // namespace spate::sim

#endif  // SPATE_TESTS_SIM_FAULT_INJECTOR_H_
