#include "server/clock.h"

#include <cstdint>
#include <cstdlib>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace spate::server {
namespace {

TEST(SystemClockTest, TimersStartAtTheWallClockAndNeverGoBack) {
  SystemClock clock;
  const int64_t wall = clock.WallNs();
  int64_t previous = clock.NowNs();
  // Same scale as the wall clock (timers and timestamps are both printed
  // and compared as epoch nanoseconds in logs and status).
  EXPECT_LT(std::abs(previous - wall), int64_t{1000000000});
  for (int i = 0; i < 1000; ++i) {
    const int64_t now = clock.NowNs();
    EXPECT_GE(now, previous);
    previous = now;
  }
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_GE(clock.NowNs() - previous, int64_t{20000000});
}

TEST(ManualClockTest, AWallClockStepMovesTimestampsNotTimers) {
  ManualClock clock;
  const int64_t start = clock.NowNs();
  clock.JumpWall(absl::Seconds(172));
  EXPECT_EQ(clock.NowNs(), start);
  EXPECT_EQ(clock.WallNs(), start + int64_t{172} * 1000000000);
  clock.Advance(absl::Milliseconds(10));
  clock.JumpWall(absl::Seconds(-172));
  EXPECT_EQ(clock.NowNs(), start + 10000000);
  EXPECT_EQ(clock.WallNs(), start + 10000000);
}

}  // namespace
}  // namespace spate::server
