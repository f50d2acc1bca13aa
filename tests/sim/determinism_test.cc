// The simulator is deterministic: the same seed gives the same run, event for
// event (compared through the full trace), and a different seed gives a
// different one (so the comparison is not vacuous).
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "tests/sim/simulator.h"

namespace spate::sim {
namespace {

struct TracedRun {
  SimResult result;
  std::vector<std::string> trace;
};

TracedRun Simulate(uint64_t seed, int nodes) {
  TracedRun run;
  SimOptions options;
  options.seed = seed;
  options.nodes = nodes;
  options.steps = 5000;
  options.trace = [&run](absl::string_view line) {
    run.trace.emplace_back(line);
  };
  run.result = RunSimulation(options);
  return run;
}

TEST(DeterminismTest, SameSeedSameTrace) {
  for (int nodes : {3, 5}) {
    SCOPED_TRACE(nodes);
    const TracedRun first = Simulate(7, nodes);
    const TracedRun second = Simulate(7, nodes);
    ASSERT_TRUE(first.result.status.ok()) << first.result.status;
    ASSERT_GT(first.trace.size(), 1000u);
    ASSERT_EQ(first.trace.size(), second.trace.size());
    for (size_t i = 0; i < first.trace.size(); ++i) {
      ASSERT_EQ(first.trace[i], second.trace[i])
          << "first difference, line " << i;
    }
    EXPECT_EQ(first.result.Summary(), second.result.Summary());
  }
}

TEST(DeterminismTest, DifferentSeedDifferentTrace) {
  const TracedRun a = Simulate(7, 3);
  const TracedRun b = Simulate(8, 3);
  EXPECT_NE(a.trace, b.trace);
  EXPECT_NE(a.result.config + a.result.Summary(),
            b.result.config + b.result.Summary());
}

TEST(DeterminismTest, TracingDoesNotChangeTheRun) {
  // The test suite runs without a trace; a replay with --verbose must be
  // the same run.
  SimOptions options;
  options.seed = 11;
  options.nodes = 5;
  options.steps = 5000;
  const SimResult quiet = RunSimulation(options);
  const TracedRun traced = Simulate(11, 5);
  EXPECT_EQ(quiet.Summary(), traced.result.Summary());
}

}  // namespace
}  // namespace spate::sim
