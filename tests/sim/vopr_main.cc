// vopr: runs the deterministic Raft simulator by hand (after TigerBeetle's
// VOPR). Replays one seed, or runs many random ones until one fails.
//
//   bazel run //tests/sim:vopr -- --seed=17 --nodes=5 --verbose   # replay
//   bazel run //tests/sim:vopr -- --seeds=10000                  # soak
//
// With --seeds the seeds come from std::random_device (the only
// nondeterminism, and outside the simulation): each is printed with its
// result, so any failure can be replayed with --seed. Exit status 1 on the
// first failure.
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <random>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "tests/sim/simulator.h"

ABSL_FLAG(uint64_t, seed, 0, "replay this seed (0: see --seeds)");
ABSL_FLAG(int, seeds, 0, "run this many random seeds");
ABSL_FLAG(int, nodes, 0,
          "group size, 3 or 5 (0: 3 with --seed; with --seeds, 3 and 5 "
          "in turn)");
ABSL_FLAG(int, steps, spate::sim::kDefaultSteps, "events in the fault phase");
ABSL_FLAG(int, liveness_ticks, spate::sim::kDefaultLivenessTicks,
          "raft ticks allowed to converge after the faults");
ABSL_FLAG(bool, verbose, false, "print the trace of every event");

namespace spate::sim {
namespace {

bool RunOne(uint64_t seed, int nodes) {
  SimOptions options;
  options.seed = seed;
  options.nodes = nodes;
  options.steps = absl::GetFlag(FLAGS_steps);
  options.liveness_ticks = absl::GetFlag(FLAGS_liveness_ticks);
  if (absl::GetFlag(FLAGS_verbose)) {
    // Flushed line by line: a CHECK failure in the core must not lose the
    // end of the trace.
    options.trace = [](absl::string_view line) {
      std::cout << line << std::endl;
    };
  }
  const SimResult result = RunSimulation(options);
  if (!result.status.ok()) {
    std::cout << "FAIL " << result.status.message() << std::endl;
    return false;
  }
  std::cout << "ok seed=" << seed << " nodes=" << nodes << " "
            << result.Summary() << "\n  config: " << result.config << std::endl;
  return true;
}

int Main() {
  const int nodes_flag = absl::GetFlag(FLAGS_nodes);
  if (nodes_flag != 0 && nodes_flag != 3 && nodes_flag != 5) {
    std::cerr << "--nodes must be 3 or 5\n";
    return 2;
  }
  if (absl::GetFlag(FLAGS_seed) != 0) {
    return RunOne(absl::GetFlag(FLAGS_seed), nodes_flag == 0 ? 3 : nodes_flag)
               ? 0
               : 1;
  }
  const int seeds = absl::GetFlag(FLAGS_seeds);
  if (seeds <= 0) {
    std::cerr << absl::ProgramUsageMessage() << "\n";
    return 2;
  }
  std::random_device device;
  for (int i = 0; i < seeds; ++i) {
    uint64_t seed = (static_cast<uint64_t>(device()) << 32) | device();
    if (seed == 0) seed = 1;  // 0 means "no seed" to --seed
    const int nodes = nodes_flag != 0 ? nodes_flag : (i % 2 == 0 ? 3 : 5);
    if (!RunOne(seed, nodes)) return 1;
  }
  return 0;
}

}  // namespace
}  // namespace spate::sim

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "vopr --seed=N [--nodes=3|5] [--steps=S] [--verbose]  replays a seed\n"
      "vopr --seeds=K [--nodes=3|5]                        runs K random "
      "seeds");
  absl::ParseCommandLine(argc, argv);
  return spate::sim::Main();
}
