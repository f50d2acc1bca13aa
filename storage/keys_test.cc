#include "storage/keys.h"

#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace spate::storage {
namespace {

// Values around every byte boundary, where a little-endian or variable
// length encoding would break byte order.
std::vector<uint64_t> InterestingValues() {
  std::vector<uint64_t> values = {0, 1, 2, UINT64_MAX - 1, UINT64_MAX};
  for (int shift = 7; shift < 64; shift += 8) {
    const uint64_t boundary = uint64_t{1} << shift;
    values.push_back(boundary - 1);
    values.push_back(boundary);
    values.push_back(boundary + 1);
    values.push_back((boundary << 1) - 1);
  }
  return values;
}

TEST(KeysTest, RaftLogKeysSortLikeGroupThenIndex) {
  const std::vector<uint64_t> values = InterestingValues();
  for (uint64_t group_a : {uint64_t{0}, uint64_t{1}, uint64_t{256}}) {
    for (uint64_t group_b : {uint64_t{0}, uint64_t{1}, uint64_t{256}}) {
      for (uint64_t a : values) {
        for (uint64_t b : values) {
          const bool numeric_less =
              group_a < group_b || (group_a == group_b && a < b);
          EXPECT_EQ(RaftLogKey(group_a, a) < RaftLogKey(group_b, b),
                    numeric_less)
              << group_a << "/" << a << " vs " << group_b << "/" << b;
        }
      }
    }
  }
}

TEST(KeysTest, RaftLogKeyRoundTrips) {
  for (uint64_t group : InterestingValues()) {
    for (uint64_t index : InterestingValues()) {
      raft::GroupId parsed_group = 0;
      raft::Index parsed_index = 0;
      ASSERT_TRUE(ParseRaftLogKey(RaftLogKey(group, index), &parsed_group,
                                  &parsed_index));
      EXPECT_EQ(parsed_group, group);
      EXPECT_EQ(parsed_index, index);
    }
  }
  raft::GroupId group;
  raft::Index index;
  EXPECT_FALSE(ParseRaftLogKey("short", &group, &index));
}

TEST(KeysTest, MessageKeyRoundTripsAndSorts) {
  const std::vector<uint64_t> values = InterestingValues();
  for (uint64_t a : values) {
    for (uint64_t b : values) {
      EXPECT_EQ(MessageKey(7, a) < MessageKey(7, b), a < b);
    }
    uint64_t channel = 0;
    uint64_t sequence = 0;
    ASSERT_TRUE(ParseMessageKey(MessageKey(7, a), &channel, &sequence));
    EXPECT_EQ(channel, 7u);
    EXPECT_EQ(sequence, a);
  }
}

TEST(KeysTest, RaftStateKeyRoundTrips) {
  for (RaftStateKind kind :
       {RaftStateKind::kHardState, RaftStateKind::kConfState,
        RaftStateKind::kSnapshotMetadata, RaftStateKind::kSnapshotData}) {
    raft::GroupId group = 0;
    RaftStateKind parsed = RaftStateKind::kHardState;
    ASSERT_TRUE(ParseRaftStateKey(RaftStateKey(42, kind), &group, &parsed));
    EXPECT_EQ(group, 42u);
    EXPECT_EQ(parsed, kind);
  }
  raft::GroupId group;
  RaftStateKind kind;
  std::string bad_kind = RaftStateKey(42, RaftStateKind::kHardState);
  bad_kind.back() = 9;
  EXPECT_FALSE(ParseRaftStateKey(bad_kind, &group, &kind));
}

bool InRange(const KeyRange& range, const std::string& key) {
  return range.begin <= key && key < range.end;
}

TEST(KeysTest, GroupRangesHoldExactlyTheirGroup) {
  for (uint64_t group : {uint64_t{0}, uint64_t{5}, uint64_t{255}, uint64_t{256},
                         UINT64_MAX - 1}) {
    const KeyRange log = RaftLogRange(group);
    EXPECT_TRUE(InRange(log, RaftLogKey(group, 0)));
    EXPECT_TRUE(InRange(log, RaftLogKey(group, UINT64_MAX)));
    EXPECT_FALSE(InRange(log, RaftLogKey(group + 1, 0)));
    if (group > 0) {
      EXPECT_FALSE(InRange(log, RaftLogKey(group - 1, UINT64_MAX)));
    }

    const KeyRange state = RaftStateRange(group);
    EXPECT_TRUE(InRange(state, RaftStateKey(group, RaftStateKind::kHardState)));
    EXPECT_TRUE(
        InRange(state, RaftStateKey(group, RaftStateKind::kSnapshotData)));
    EXPECT_FALSE(
        InRange(state, RaftStateKey(group + 1, RaftStateKind::kHardState)));
  }
}

TEST(KeysTest, IndexAndSequenceRanges) {
  const KeyRange log = RaftLogIndexRange(3, 10, 20);
  EXPECT_FALSE(InRange(log, RaftLogKey(3, 9)));
  EXPECT_TRUE(InRange(log, RaftLogKey(3, 10)));
  EXPECT_TRUE(InRange(log, RaftLogKey(3, 19)));
  EXPECT_FALSE(InRange(log, RaftLogKey(3, 20)));

  // Inclusive, and to_seq may be the largest sequence.
  const KeyRange all = MessageSequenceRange(3, 1, UINT64_MAX);
  EXPECT_TRUE(InRange(all, MessageKey(3, UINT64_MAX)));
  EXPECT_FALSE(InRange(all, MessageKey(3, 0)));
  EXPECT_FALSE(InRange(all, MessageKey(4, 0)));
  const KeyRange one = MessageSequenceRange(3, 5, 5);
  EXPECT_TRUE(InRange(one, MessageKey(3, 5)));
  EXPECT_FALSE(InRange(one, MessageKey(3, 4)));
  EXPECT_FALSE(InRange(one, MessageKey(3, 6)));
  const KeyRange none = MessageSequenceRange(3, 6, 5);
  EXPECT_EQ(none.begin, none.end);
}

TEST(KeysTest, StateRangesDoNotOverlap) {
  const std::vector<std::string> keys = {
      ChannelRecordKey(0),     ChannelRecordKey(UINT64_MAX),
      SubscriptionKey(1, 2),   ClientKey("a"),
      ClientKey("zz"),         MetaKey(),
      DirectoryKey("foo.bar"), DirectoryKey("")};
  const std::vector<KeyRange> ranges = {ChannelRecordRange(),
                                        SubscriptionRange(1), ClientRange(),
                                        DirectoryRange()};
  for (const std::string& key : keys) {
    int containing = 0;
    for (const KeyRange& range : ranges) containing += InRange(range, key);
    EXPECT_EQ(containing, key == MetaKey() ? 0 : 1)
        << DescribeKey(Space::kState, key);
  }
  // One channel's subscriptions only.
  EXPECT_TRUE(InRange(SubscriptionRange(1), SubscriptionKey(1, UINT64_MAX)));
  EXPECT_FALSE(InRange(SubscriptionRange(1), SubscriptionKey(2, 0)));
  EXPECT_FALSE(InRange(SubscriptionRange(1), SubscriptionKey(0, UINT64_MAX)));
}

TEST(KeysTest, PrefixEnd) {
  EXPECT_EQ(PrefixEnd("a"), "b");
  EXPECT_EQ(PrefixEnd(std::string("a\xff\xff", 3)), "b");
  EXPECT_EQ(PrefixEnd(std::string("\x01\xff", 2)), "\x02");
}

TEST(KeysDeathTest, PrefixEndOfAllOnesCrashes) {
  EXPECT_DEATH(PrefixEnd(std::string("\xff\xff", 2)), "no key range");
}

TEST(KeysTest, DescribeKeyIsReadable) {
  EXPECT_EQ(DescribeKey(Space::kRaftLog, RaftLogKey(7, 42)),
            "raft_log group=7 index=42");
  EXPECT_EQ(DescribeKey(Space::kRaftState,
                        RaftStateKey(7, RaftStateKind::kConfState)),
            "raft_state group=7 conf_state");
  EXPECT_EQ(DescribeKey(Space::kMessages, MessageKey(3, 9)),
            "messages channel=3 sequence=9");
  EXPECT_EQ(DescribeKey(Space::kState, SubscriptionKey(3, 4)),
            "state subscription channel=3 sub=4");
  EXPECT_EQ(DescribeKey(Space::kState, DirectoryKey("a.b")),
            "state directory name=\"a.b\"");
  EXPECT_EQ(DescribeKey(Space::kRaftLog, "x"), "raft_log key=\"x\"");
}

}  // namespace
}  // namespace spate::storage
