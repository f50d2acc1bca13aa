#include "base/prng.h"

#include "gtest/gtest.h"

namespace spate::base {
namespace {

TEST(PrngTest, SameSeedSameSequence) {
  Prng a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.Next();
    EXPECT_EQ(x, b.Next());
    differs |= x != c.Next();
  }
  EXPECT_TRUE(differs);
}

TEST(PrngTest, StableAcrossPlatforms) {
  // Pinned so that a replayed simulator seed means the same run everywhere.
  Prng prng(1);
  EXPECT_EQ(prng.Next(), 12966619160104079557ULL);
}

TEST(PrngTest, RangeStaysInBounds) {
  Prng prng(7);
  int seen_lo = 0, seen_hi = 0;
  for (int i = 0; i < 10000; ++i) {
    const uint64_t x = prng.Range(10, 20);
    ASSERT_GE(x, 10u);
    ASSERT_LE(x, 20u);
    seen_lo += x == 10;
    seen_hi += x == 20;
  }
  EXPECT_GT(seen_lo, 0);
  EXPECT_GT(seen_hi, 0);
}

}  // namespace
}  // namespace spate::base
