#include "raft/read_only.h"

#include "gtest/gtest.h"

namespace spate::raft {
namespace {

TEST(ReadOnlyTest, IdsRoundTripThroughContexts) {
  for (uint64_t id :
       {uint64_t{1}, uint64_t{255}, uint64_t{1} << 40, ~uint64_t{0}}) {
    EXPECT_EQ(ReadOnly::DecodeId(ReadOnly::EncodeId(id)),
              std::optional<uint64_t>(id));
  }
  EXPECT_FALSE(ReadOnly::DecodeId("short").has_value());
  EXPECT_FALSE(ReadOnly::DecodeId("").has_value());
}

TEST(ReadOnlyTest, AckOfALaterRequestReleasesEarlierOnes) {
  ReadOnly ro;
  const uint64_t a = ro.Add(10, 1, "a");
  const uint64_t b = ro.Add(12, 2, "b");
  const uint64_t c = ro.Add(12, 1, "c");
  EXPECT_EQ(ro.size(), 3u);
  const auto* acks = ro.RecvAck(b, 3);
  ASSERT_NE(acks, nullptr);
  EXPECT_EQ(acks->size(), 1u);
  EXPECT_EQ(ro.RecvAck(c + 1, 3), nullptr);  // unknown id
  std::vector<ReadOnly::Request> released = ro.Release(b);
  ASSERT_EQ(released.size(), 2u);
  EXPECT_EQ(released[0].id, a);
  EXPECT_EQ(released[0].index, 10u);
  EXPECT_EQ(released[0].context, "a");
  EXPECT_EQ(released[1].from, 2u);
  EXPECT_EQ(ro.size(), 1u);
  EXPECT_EQ(ro.last_id(), c);
  EXPECT_EQ(ro.RecvAck(a, 3), nullptr);  // already released
}

TEST(ReadOnlyTest, IdsStayUniqueAcrossClear) {
  ReadOnly ro;
  const uint64_t a = ro.Add(1, 1, "x");
  ro.Clear();
  EXPECT_TRUE(ro.empty());
  const uint64_t b = ro.Add(1, 1, "x");
  EXPECT_GT(b, a);  // a late ack for `a` cannot release `b`
  EXPECT_EQ(ro.RecvAck(a, 2), nullptr);
  EXPECT_TRUE(ro.Release(a).empty());
}

}  // namespace
}  // namespace spate::raft
