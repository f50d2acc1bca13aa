#include "server/protobuf_log.h"

#include <string>

#include "gtest/gtest.h"
#include "proto/streaming.pb.h"

namespace spate::server {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

TEST(LogRateLimiterTest, LetsThroughABoundedNumberPerWindowAndCountsTheRest) {
  LogRateLimiter limiter(3, 10 * kSecond);
  int64_t suppressed = -1;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(limiter.Admit(100 * kSecond + i, &suppressed));
    EXPECT_EQ(suppressed, 0);
  }
  for (int i = 0; i < 50; ++i) {
    EXPECT_FALSE(limiter.Admit(101 * kSecond + i, &suppressed));
  }
  // Still inside the window.
  EXPECT_FALSE(limiter.Admit(109 * kSecond, &suppressed));
  // A new window: the first line reports what was dropped.
  ASSERT_TRUE(limiter.Admit(110 * kSecond, &suppressed));
  EXPECT_EQ(suppressed, 51);
  ASSERT_TRUE(limiter.Admit(110 * kSecond + 1, &suppressed));
  EXPECT_EQ(suppressed, 0);
}

// What a hostile client sends: a PubMsg whose subject is not UTF-8.
// Protobuf refuses each one and logs a line per message; with the handler
// installed, 1,000 of them write at most one window's worth of lines.
TEST(ProtobufLogHandlerTest, InvalidUtf8FloodWritesBoundedLines) {
  InstallProtobufLogHandler();
  InstallProtobufLogHandler();  // idempotent
  PubMsg msg;
  msg.set_subject("orders");
  msg.set_data("x");
  std::string wire = msg.SerializeAsString();
  const size_t at = wire.find("orders");
  ASSERT_NE(at, std::string::npos);
  wire[at] = '\xff';  // not UTF-8

  const ProtobufLogCounts before = GetProtobufLogCounts();
  for (int i = 0; i < 1000; ++i) {
    PubMsg parsed;
    ASSERT_FALSE(parsed.ParseFromString(wire));
  }
  const ProtobufLogCounts after = GetProtobufLogCounts();
  const int64_t written = after.written - before.written;
  const int64_t suppressed = after.suppressed - before.suppressed;
  EXPECT_GE(written + suppressed, 1000);  // protobuf did log every one
  EXPECT_LE(written, kProtobufLogLinesPerWindow);
  EXPECT_GE(suppressed, 1000 - kProtobufLogLinesPerWindow);
}

}  // namespace
}  // namespace spate::server
