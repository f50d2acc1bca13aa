#include "server/stream_limits.h"

#include "gtest/gtest.h"

namespace spate::server {
namespace {

TEST(StreamLimitsTest, StreamsAreCountedAndReleased) {
  StreamLimits limits(2, 0);
  EXPECT_TRUE(limits.AcquireStream().ok());
  EXPECT_TRUE(limits.AcquireStream().ok());
  absl::Status third = limits.AcquireStream();
  EXPECT_EQ(third.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(third.message().find("max_streams"), absl::string_view::npos);
  limits.ReleaseStream();
  EXPECT_EQ(limits.streams(), 1);
  EXPECT_TRUE(limits.AcquireStream().ok());
}

TEST(StreamLimitsTest, SubscriptionsPerClientId) {
  StreamLimits limits(0, 2);
  EXPECT_TRUE(limits.AcquireSubscription("a").ok());
  EXPECT_TRUE(limits.AcquireSubscription("a").ok());
  EXPECT_EQ(limits.AcquireSubscription("a").code(),
            absl::StatusCode::kResourceExhausted);
  // Another client is not affected.
  EXPECT_TRUE(limits.AcquireSubscription("b").ok());
  limits.ReleaseSubscription("a");
  EXPECT_EQ(limits.subscriptions("a"), 1);
  EXPECT_TRUE(limits.AcquireSubscription("a").ok());
  limits.ReleaseSubscription("b");
  EXPECT_EQ(limits.subscriptions("b"), 0);
}

TEST(StreamLimitsTest, ZeroMeansUnlimited) {
  StreamLimits limits(0, 0);
  for (int i = 0; i < 10000; ++i) ASSERT_TRUE(limits.AcquireStream().ok());
  EXPECT_EQ(limits.streams(), 10000);
}

}  // namespace
}  // namespace spate::server
