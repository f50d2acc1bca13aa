#include "raft/inflights.h"

#include "gtest/gtest.h"

namespace spate::raft {
namespace {

TEST(InflightsTest, FullAtCountMax) {
  Inflights in(3, 1000);
  in.Add(1, 10);
  in.Add(2, 10);
  EXPECT_FALSE(in.Full());
  in.Add(5, 10);
  EXPECT_TRUE(in.Full());
  EXPECT_EQ(in.count(), 3u);
  EXPECT_EQ(in.bytes(), 30u);
}

TEST(InflightsTest, FullAtBytesMax) {
  Inflights in(10, 100);
  in.Add(1, 60);
  EXPECT_FALSE(in.Full());
  in.Add(2, 40);
  EXPECT_TRUE(in.Full());
  in.FreeLE(1);
  EXPECT_FALSE(in.Full());
  EXPECT_EQ(in.bytes(), 40u);
}

TEST(InflightsTest, FreeLEFreesAcknowledgedPrefix) {
  Inflights in(10, 1 << 20);
  for (Index i = 1; i <= 8; ++i) in.Add(i * 10, 1);
  in.FreeLE(35);  // frees 10, 20, 30
  EXPECT_EQ(in.count(), 5u);
  in.FreeLE(5);  // stale ack: nothing
  EXPECT_EQ(in.count(), 5u);
  in.FreeLE(80);
  EXPECT_EQ(in.count(), 0u);
  EXPECT_EQ(in.bytes(), 0u);
}

TEST(InflightsTest, RingWrapsAroundAndGrows) {
  Inflights in(4, 1 << 20);
  Index next = 1;
  // Interleave adds and frees so the ring start moves all around.
  for (int round = 0; round < 20; ++round) {
    while (!in.Full()) in.Add(next++, 1);
    EXPECT_EQ(in.count(), 4u);
    in.FreeLE(next - 3);  // keep two
    EXPECT_EQ(in.count(), 2u);
  }
  in.Reset();
  EXPECT_EQ(in.count(), 0u);
  EXPECT_FALSE(in.Full());
}

TEST(InflightsDeathTest, AddingToAFullWindowIsABug) {
  Inflights in(1, 100);
  in.Add(1, 1);
  EXPECT_DEATH(in.Add(2, 1), "full");
}

TEST(InflightsDeathTest, IndexesMustIncrease) {
  Inflights in(4, 100);
  in.Add(5, 1);
  EXPECT_DEATH(in.Add(5, 1), "increase");
}

}  // namespace
}  // namespace spate::raft
