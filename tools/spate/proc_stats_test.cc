#include "tools/spate/proc_stats.h"

#include <unistd.h>

#include <chrono>

#include "gtest/gtest.h"

namespace spate::cli {
namespace {

TEST(ProcStatsTest, ParsesUtimePlusStime) {
  // A command name with spaces and a ')' must not shift the fields.
  const char kStat[] =
      "4242 (spate (srv) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 "
      "250 75 0 0 20 0 12 0 100 1000000 500 18446744073709551615\n";
  absl::StatusOr<int64_t> ticks = ParseStatCpuTicks(kStat);
  ASSERT_TRUE(ticks.ok()) << ticks.status();
  EXPECT_EQ(*ticks, 325);
}

TEST(ProcStatsTest, RejectsMalformedStat) {
  EXPECT_FALSE(ParseStatCpuTicks("no parenthesis here").ok());
  EXPECT_FALSE(ParseStatCpuTicks("1 (x) S 1 2 3").ok());
  EXPECT_FALSE(
      ParseStatCpuTicks("1 (x) S 1 2 3 4 5 6 7 8 9 10 abc 5 0 0").ok());
}

TEST(ProcStatsTest, OwnCpuTimeGrowsWithWork) {
  absl::StatusOr<double> before = ProcessCpuSeconds(getpid());
  ASSERT_TRUE(before.ok()) << before.status();
  // Burn about 0.3 s of CPU (ticks are 10 ms).
  const auto until =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  volatile uint64_t sink = 0;
  while (std::chrono::steady_clock::now() < until) sink = sink + 1;
  absl::StatusOr<double> after = ProcessCpuSeconds(getpid());
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_GT(*after - *before, 0.05);
}

TEST(ProcStatsTest, MissingProcessIsNotFound) {
  // PIDs are below 2^22 on Linux (pid_max's limit).
  EXPECT_EQ(ProcessCpuSeconds(1 << 23).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(ProcStatsTest, LoadAverage) {
  absl::StatusOr<double> load = ParseLoadAverage1m("3.25 2.00 1.50 3/400 99\n");
  ASSERT_TRUE(load.ok()) << load.status();
  EXPECT_DOUBLE_EQ(*load, 3.25);
  EXPECT_FALSE(ParseLoadAverage1m("").ok());
  absl::StatusOr<double> live = LoadAverage1m();
  ASSERT_TRUE(live.ok()) << live.status();
  EXPECT_GE(*live, 0);
}

}  // namespace
}  // namespace spate::cli
