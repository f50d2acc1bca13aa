#include "tests/faults/schedule.h"

#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace spate::faults {
namespace {

ScheduleOptions Options(int nodes, std::vector<FaultKind> kinds) {
  ScheduleOptions options;
  options.nodes = nodes;
  options.length = absl::Seconds(60);
  options.kinds = std::move(kinds);
  return options;
}

TEST(ScheduleTest, SameSeedSameSchedule) {
  const ScheduleOptions options = Options(5, AllFaultKinds());
  std::vector<Fault> a = MakeSchedule(42, options);
  std::vector<Fault> b = MakeSchedule(42, options);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].Describe(), b[i].Describe());
  }
  auto text = [](const std::vector<Fault>& faults) {
    std::string out;
    for (const Fault& fault : faults) out += fault.Describe() + "\n";
    return out;
  };
  EXPECT_NE(text(a), text(MakeSchedule(43, options)));
}

TEST(ScheduleTest, FaultsDoNotOverlapAndStartWithinThePhase) {
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    const ScheduleOptions options = Options(3, AllFaultKinds());
    absl::Duration free_from = absl::ZeroDuration();
    for (const Fault& fault : MakeSchedule(seed, options)) {
      EXPECT_GE(fault.at, free_from) << fault.Describe();
      EXPECT_LT(fault.at, options.length) << fault.Describe();
      free_from = fault.at + fault.length;
    }
  }
}

TEST(ScheduleTest, OnlyAMinorityIsHitExceptCrashAllAndPowerLoss) {
  for (int nodes : {3, 5}) {
    for (uint64_t seed = 1; seed <= 50; ++seed) {
      for (const Fault& fault :
           MakeSchedule(seed, Options(nodes, AllFaultKinds()))) {
        const std::set<int> distinct(fault.nodes.begin(), fault.nodes.end());
        EXPECT_EQ(distinct.size(), fault.nodes.size()) << fault.Describe();
        for (int id : fault.nodes) {
          EXPECT_GE(id, 1);
          EXPECT_LE(id, nodes);
        }
        if (fault.kind == FaultKind::kCrashAll) {
          EXPECT_EQ(static_cast<int>(fault.nodes.size()), nodes);
        } else if (fault.kind != FaultKind::kPowerLoss) {
          EXPECT_LE(static_cast<int>(fault.nodes.size()), (nodes - 1) / 2)
              << fault.Describe();
        }
      }
    }
  }
}

TEST(ScheduleTest, DrawsOnlyTheGivenKinds) {
  for (const Fault& fault : MakeSchedule(7, Options(3, {FaultKind::kPause}))) {
    EXPECT_EQ(fault.kind, FaultKind::kPause);
  }
  EXPECT_TRUE(MakeSchedule(7, Options(3, {})).empty());
}

TEST(ScheduleTest, KindNamesRoundTrip) {
  for (FaultKind kind : AllFaultKinds()) {
    absl::StatusOr<FaultKind> parsed = ParseFaultKind(FaultKindName(kind));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, kind);
  }
  EXPECT_FALSE(ParseFaultKind("meteor").ok());
}

}  // namespace
}  // namespace spate::faults
