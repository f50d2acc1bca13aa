#include "base/check.h"

#include "gtest/gtest.h"

namespace spate::base {
namespace {

TEST(CheckTest, PassingChecksDoNothing) {
  int evaluations = 0;
  CHECK(++evaluations == 1) << "not printed";
  CHECK_EQ(evaluations, 1);
  CHECK_LT(0, evaluations);
  EXPECT_EQ(evaluations, 1);
}

TEST(CheckDeathTest, FailingCheckAbortsWithContext) {
  EXPECT_DEATH(CHECK(1 + 1 == 3) << "math broke", "CHECK failed.*math broke");
  EXPECT_DEATH(CHECK_EQ(2, 3), "2 == 3.*\\(2 vs 3\\)");
}

}  // namespace
}  // namespace spate::base
