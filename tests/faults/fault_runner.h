// FaultRunner: one run of the fault-injection harness (tests/faults/).
// Starts a FaultCluster of 3 or 5 real spate-server processes, runs the
// Workload against it, applies a seeded fault schedule (schedule.h), then
// heals everything, restarts every node, lets the subscribers drain, reads
// every channel through every node and judges the History (checker.h).
// A run is replayable from its seed with the same nodes, kinds and length
// (ReplayCommand()).
// Threading: RunSchedule blocks its caller for the whole run; the
// cluster's proxies and the workload's clients run their own threads.
#ifndef SPATE_TESTS_FAULTS_FAULT_RUNNER_H_
#define SPATE_TESTS_FAULTS_FAULT_RUNNER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "tests/faults/checker.h"
#include "tests/faults/schedule.h"

namespace spate::faults {

struct RunOptions {
  uint64_t seed = 1;
  int nodes = 3;
  absl::Duration fault_phase = absl::Seconds(15);
  std::vector<FaultKind> kinds = AllFaultKinds();
  int channels = 3;
  int publishers = 2;
  // Print the fault timeline as it happens (stderr).
  bool verbose = false;
};

struct RunReport {
  RunOptions options;
  CheckResult check;
  std::map<std::string, int> faults;  // applied, by kind name
  // What the harness did and saw, in order (faults, corruption outcomes).
  std::vector<std::string> timeline;
  // A failure of the run itself: a node that would not restart, a cluster
  // that did not settle, a drain that did not finish. Counted as invalid.
  absl::Status error;
  absl::Duration elapsed;

  bool valid() const { return error.ok() && check.valid(); }
  // "seed=.. nodes=.. faults=.. <check summary>".
  std::string Summary() const;
  // The command that replays this run.
  std::string ReplayCommand() const;
  // Summary, error, timeline and the checker's details.
  std::string Explain() const;
};

RunReport RunSchedule(const RunOptions& options);

}  // namespace spate::faults

#endif  // SPATE_TESTS_FAULTS_FAULT_RUNNER_H_
