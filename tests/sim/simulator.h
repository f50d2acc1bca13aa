// The deterministic Raft simulator (DESIGN.md §5, STYLE.md "Deterministic
// simulation"): one run of a raft group of 3 or 5 nodes, entirely decided
// by its seed.
//
//   1. Set-up: the seed draws the group's configuration (pre-vote,
//      check-quorum, flow-control windows, compaction threshold, disk
//      latency) and the nodes start as the voters of a new group.
//   2. Fault phase: `steps` events (ticks, deliveries, disk writes, client
//      actions from Workload, faults from FaultInjector, power losses
//      right after Readys in NodeHost).
//   3. Liveness phase: the faults stop (network healed and calm, crashed
//      nodes restarted), clients stop proposing commands and only restore
//      the full membership; within `liveness_ticks` raft ticks the group
//      must have one leader with every node a voter, and every node must
//      have applied the leader's whole log, which covers every command ever
//      seen committed.
//
// After every event the Checker verifies the safety properties (checker.h).
// A run is reproducible: the same options give the same trace, event for
// event; a failure names the command that replays it.
// Threading: RunSimulation is self-contained; runs may go on in parallel
// threads (nothing is shared).
#ifndef SPATE_TESTS_SIM_SIMULATOR_H_
#define SPATE_TESTS_SIM_SIMULATOR_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "tests/sim/event_queue.h"

namespace spate::sim {

inline constexpr int kDefaultSteps = 30000;
inline constexpr int kDefaultLivenessTicks = 3000;

struct SimOptions {
  uint64_t seed = 1;
  int nodes = 3;
  // Events in the fault phase.
  int steps = kDefaultSteps;
  // Raft ticks allowed for the liveness phase.
  int liveness_ticks = kDefaultLivenessTicks;
  // Receives the trace, one line per call; empty: no trace.
  std::function<void(absl::string_view)> trace;
};

struct SimResult {
  // OK, or the first safety violation / the liveness failure, with the
  // seed, the nodes' state and the replay command.
  absl::Status status;
  // The configuration drawn from the seed.
  std::string config;
  uint64_t events = 0;
  SimTime fault_phase_ms = 0;
  // From the end of the faults until convergence.
  SimTime converge_ms = 0;
  uint64_t commands_proposed = 0;
  uint64_t commands_committed = 0;
  uint64_t last_index = 0;
  uint64_t leader_terms = 0;
  uint64_t crashes = 0;
  uint64_t conf_changes = 0;
  uint64_t messages = 0;

  // One line of numbers.
  std::string Summary() const;
};

SimResult RunSimulation(const SimOptions& options);

// "bazel run //tests/sim:vopr -- --seed=N --nodes=M [--steps=S]"
std::string ReplayCommand(const SimOptions& options);

}  // namespace spate::sim

#endif  // SPATE_TESTS_SIM_SIMULATOR_H_
