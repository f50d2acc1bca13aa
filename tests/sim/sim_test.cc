// The simulator over fixed seeds: 500 runs of a 3-node group and 500 of a
// 5-node group, each a full fault phase and liveness phase (simulator.h).
// The target is sharded; gtest spreads the parameterized cases over the
// shards. A failing seed prints its replay command; if the core aborts on a
// CHECK instead, the signal handler below prints it.
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstring>
#include <string>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/sim/simulator.h"

namespace spate::sim {
namespace {

constexpr uint64_t kSeeds = 500;

// The replay command of the running seed, for the abort handler (a
// fixed buffer: the handler may only call async-signal-safe functions).
char g_replay[256];

void PrintReplayOnAbort(int signal) {
  const char prefix[] = "\n*** simulator aborted; replay with: ";
  (void)!write(STDERR_FILENO, prefix, sizeof(prefix) - 1);
  (void)!write(STDERR_FILENO, g_replay, strlen(g_replay));
  (void)!write(STDERR_FILENO, "\n", 1);
  std::signal(signal, SIG_DFL);
  std::raise(signal);
}

class SimSeedTest : public ::testing::TestWithParam<std::tuple<int, uint64_t>> {
};

TEST_P(SimSeedTest, SafeUnderFaultsAndConvergesAfter) {
  SimOptions options;
  options.nodes = std::get<0>(GetParam());
  options.seed = std::get<1>(GetParam());
  const std::string replay = ReplayCommand(options) + " --verbose";
  snprintf(g_replay, sizeof(g_replay), "%s", replay.c_str());
  std::signal(SIGABRT, PrintReplayOnAbort);
  const SimResult result = RunSimulation(options);
  ASSERT_TRUE(result.status.ok()) << result.status.message();
  // The run did exercise the group: commands committed, elections held.
  EXPECT_GT(result.commands_committed, 0u) << result.Summary();
  EXPECT_GT(result.leader_terms, 0u) << result.Summary();
}

std::string SeedName(
    const ::testing::TestParamInfo<std::tuple<int, uint64_t>>& info) {
  return absl::StrCat("nodes", std::get<0>(info.param), "_seed",
                      std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(
    ThreeNodes, SimSeedTest,
    ::testing::Combine(::testing::Values(3),
                       ::testing::Range<uint64_t>(1, kSeeds + 1)),
    SeedName);
INSTANTIATE_TEST_SUITE_P(
    FiveNodes, SimSeedTest,
    ::testing::Combine(::testing::Values(5),
                       ::testing::Range<uint64_t>(1, kSeeds + 1)),
    SeedName);

}  // namespace
}  // namespace spate::sim
