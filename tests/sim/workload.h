// Workload: the simulated clients of the group. During the fault phase each
// Act() is one random client action: propose a few unique commands (to a
// random node, following its leader hint once, as a real client would),
// ask the leader to hand over leadership, or change the membership (remove
// or demote a voter, add a learner, promote a learner, re-add a removed
// node), keeping at least a majority of the nodes as voters. In the liveness
// phase Repair() only restores the full membership (every node a voter), so
// that convergence can be required of every node.
//
// Commands are "c<n>" with n counting up from 1: each is proposed once, so
// the Checker can tell a command applied twice from one applied once.
// Threading: single-threaded.
#ifndef SPATE_TESTS_SIM_WORKLOAD_H_
#define SPATE_TESTS_SIM_WORKLOAD_H_

#include <cstdint>
#include <vector>

#include "base/prng.h"
#include "tests/sim/node_host.h"
#include "tests/sim/trace.h"

namespace spate::sim {

struct WorkloadStats {
  uint64_t proposed = 0;  // commands a leader accepted into its log
  uint64_t refused = 0;   // proposals refused (not leader, transfer, ...)
  uint64_t transfers = 0;
  uint64_t conf_changes = 0;  // membership changes a leader accepted
};

class Workload {
 public:
  // hosts[i] is node i+1. Pointers must outlive the workload.
  Workload(std::vector<NodeHost*> hosts, base::Prng* prng, const Trace* trace);

  // One random client action.
  void Act();
  // Asks the leader to add the lowest node that is not a voter (as a voter).
  // Returns true when every node is already a voter in the leader's view.
  bool Repair();

  const WorkloadStats& stats() const { return stats_; }

 private:
  NodeHost* RandomHost();
  void ProposeCommands();
  void TransferLeadership(NodeHost* leader);
  void ChangeMembership(NodeHost* leader);
  void ProposeConfChange(NodeHost* leader, const raft::ConfChange& cc);

  std::vector<NodeHost*> hosts_;
  base::Prng* prng_;
  const Trace* trace_;
  uint64_t next_command_ = 1;
  WorkloadStats stats_;
};

}  // namespace spate::sim

#endif  // SPATE_TESTS_SIM_WORKLOAD_H_
