#include "server/channel_limits.h"

#include "gtest/gtest.h"

namespace spate::server {
namespace {

TEST(ChannelLimitsTest, PatternMatching) {
  EXPECT_TRUE(ChannelPatternMatches("foo", "foo"));
  EXPECT_FALSE(ChannelPatternMatches("foo", "foo.bar"));
  EXPECT_TRUE(ChannelPatternMatches("foo.*", "foo.bar"));
  EXPECT_FALSE(ChannelPatternMatches("foo.*", "foo"));
  EXPECT_FALSE(ChannelPatternMatches("foo.*", "foo.bar.baz"));
  EXPECT_TRUE(ChannelPatternMatches("foo.>", "foo.bar"));
  EXPECT_TRUE(ChannelPatternMatches("foo.>", "foo.bar.baz"));
  EXPECT_FALSE(ChannelPatternMatches("foo.>", "foo"));
  EXPECT_TRUE(ChannelPatternMatches("*.b.>", "a.b.c"));
  EXPECT_TRUE(ChannelPatternMatches(">", "anything.at.all"));
}

TEST(ChannelLimitsTest, PatternValidation) {
  EXPECT_TRUE(ValidateChannelPattern("foo.*.>").ok());
  EXPECT_FALSE(ValidateChannelPattern("").ok());
  EXPECT_FALSE(ValidateChannelPattern("foo.>.bar").ok());
  EXPECT_FALSE(ValidateChannelPattern("foo..bar").ok());
  EXPECT_FALSE(ValidateChannelPattern("fo*").ok());
}

TEST(ChannelLimitsTest, FirstMatchingOverrideWinsFieldByField) {
  StoreConfig store;
  store.mutable_limits()->set_max_msgs(100);
  store.mutable_limits()->set_max_bytes(1000);
  ChannelLimitsOverride* first = store.add_channel_overrides();
  first->set_pattern("logs.>");
  first->mutable_limits()->set_max_msgs(0);  // unlimited for logs
  ChannelLimitsOverride* second = store.add_channel_overrides();
  second->set_pattern("logs.debug");
  second->mutable_limits()->set_max_msgs(5);

  ChannelLimits plain = ResolveChannelLimits("orders", store);
  EXPECT_EQ(plain.max_msgs(), 100);
  EXPECT_EQ(plain.max_bytes(), 1000);
  EXPECT_EQ(plain.max_subs(), 1000);  // config default

  ChannelLimits logs = ResolveChannelLimits("logs.debug", store);
  EXPECT_EQ(logs.max_msgs(), 0);
  EXPECT_EQ(logs.max_bytes(), 1000);  // inherited
}

}  // namespace
}  // namespace spate::server
