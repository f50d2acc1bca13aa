// The CI smoke set of the fault-injection harness: ten seeded schedules of
// about ten seconds each against real 3- and 5-node clusters, together
// covering every fault kind; each must be valid (nothing acked lost, no
// unexpected message, no reordering, holes or divergence). A failure
// prints the schedule, what the checker found and the replay command.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/faults/fault_runner.h"
#include "tests/faults/schedule.h"

namespace spate::faults {
namespace {

struct Scenario {
  std::string name;
  uint64_t seed;
  int nodes;
  std::vector<FaultKind> kinds;
};

std::vector<Scenario> Scenarios() {
  using K = FaultKind;
  return {
      {"CrashOneNode", 101, 3, {K::kCrash}},
      {"CrashMinorityOfFive", 102, 5, {K::kCrashMinority}},
      {"CrashAllAndPowerLoss", 103, 3, {K::kCrashAll, K::kPowerLoss}},
      {"PauseNodes", 104, 3, {K::kPause}},
      {"IsolateAndOneWay", 105, 3, {K::kIsolate, K::kOneWay}},
      {"SplitFive", 106, 5, {K::kSplit, K::kSlowLink}},
      {"CorruptStoppedNode", 107, 3, {K::kCorrupt}},
      {"ClockJumps", 108, 3, {K::kClockJump}},
      {"EverythingThree", 109, 3, AllFaultKinds()},
      {"EverythingFive", 110, 5, AllFaultKinds()},
  };
}

class FaultsTest : public ::testing::TestWithParam<Scenario> {};

TEST_P(FaultsTest, RunIsValid) {
  const Scenario& scenario = GetParam();
  RunOptions options;
  options.seed = scenario.seed;
  options.nodes = scenario.nodes;
  options.kinds = scenario.kinds;
  options.fault_phase = absl::Seconds(10);
  RunReport report = RunSchedule(options);
  std::cout << report.Summary() << std::endl;
  EXPECT_TRUE(report.valid()) << report.Explain();
  // Each focused scenario applies every kind it names (schedules depend on
  // the seed only, so this holds on every run); the mixed ones some.
  int applied = 0;
  for (FaultKind kind : scenario.kinds) {
    const int count = report.faults[FaultKindName(kind)];
    applied += count;
    if (scenario.kinds.size() <= 2) {
      EXPECT_GT(count, 0) << FaultKindName(kind) << "\n" << report.Explain();
    }
  }
  EXPECT_GT(applied, 0) << report.Explain();
  EXPECT_GT(report.check.acked, 0) << report.Explain();
}

INSTANTIATE_TEST_SUITE_P(Smoke, FaultsTest, ::testing::ValuesIn(Scenarios()),
                         [](const ::testing::TestParamInfo<Scenario>& info) {
                           return absl::StrCat(info.param.name, "_seed",
                                               info.param.seed);
                         });

}  // namespace
}  // namespace spate::faults
