// SessionTracker: tickets, verdicts (same session, new session, loss,
// close, abandon, deadline) and the supervisor's view of requests.
#include "client/session_tracker.h"

#include <atomic>
#include <memory>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace spate::client {
namespace {

std::shared_ptr<const Session> NewSession(const std::string& server) {
  auto session = std::make_shared<Session>();
  session->server = server;
  return session;
}

absl::Time Soon() { return absl::Now() + absl::Seconds(10); }

TEST(SessionTrackerTest, PassedCheckReturnsTheSameSession) {
  const auto first = NewSession("a:1");
  SessionTracker tracker(first);
  EXPECT_EQ(tracker.AwaitRequest(absl::Now()), 0u);
  const uint64_t ticket = tracker.RequestCheck();
  EXPECT_EQ(tracker.AwaitRequest(Soon()), ticket);
  tracker.CheckPassed(ticket);
  EXPECT_EQ(tracker.AwaitRequest(absl::Now()), 0u);
  auto verdict = tracker.AwaitCheck(ticket, Soon());
  ASSERT_TRUE(verdict.ok()) << verdict.status();
  EXPECT_EQ(*verdict, first);
}

TEST(SessionTrackerTest, ACheckDoesNotSatisfyLaterTickets) {
  SessionTracker tracker(NewSession("a:1"));
  const uint64_t early = tracker.RequestCheck();
  const uint64_t checking = tracker.AwaitRequest(Soon());
  // Asked while the ping for `checking` was on its way.
  const uint64_t late = tracker.RequestCheck();
  tracker.CheckPassed(checking);
  EXPECT_TRUE(tracker.AwaitCheck(early, Soon()).ok());
  EXPECT_EQ(tracker.AwaitCheck(late, absl::Now() + absl::Milliseconds(20))
                .status()
                .code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(tracker.AwaitRequest(absl::Now()), late);
}

TEST(SessionTrackerTest, AwaitRequestCanWaitForANewerTicket) {
  SessionTracker tracker(NewSession("a:1"));
  const uint64_t failed = tracker.RequestCheck();
  // The ping for `failed` did not pass: the supervisor waits for its own
  // recheck time unless a newer request comes.
  const absl::Time start = absl::Now();
  EXPECT_EQ(tracker.AwaitRequest(start + absl::Milliseconds(30), failed),
            failed);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(30));
  const uint64_t newer = tracker.RequestCheck();
  EXPECT_EQ(tracker.AwaitRequest(Soon(), failed), newer);
}

TEST(SessionTrackerTest, ReconnectHandsTheNewSessionToEveryWaiter) {
  const auto first = NewSession("a:1");
  const auto second = NewSession("b:2");
  SessionTracker tracker(first);
  const uint64_t ticket = tracker.RequestCheck();
  ASSERT_TRUE(tracker.BeginReconnect());
  EXPECT_EQ(tracker.state(), SessionTracker::State::kReconnecting);
  EXPECT_TRUE(tracker.CheckUsable().ok());
  absl::Notification got;
  std::shared_ptr<const Session> seen;
  std::thread waiter([&] {
    auto verdict = tracker.AwaitCheck(ticket, Soon());
    if (verdict.ok()) seen = *verdict;
    got.Notify();
  });
  EXPECT_FALSE(got.WaitForNotificationWithTimeout(absl::Milliseconds(50)));
  ASSERT_TRUE(tracker.Reconnected(second));
  ASSERT_TRUE(got.WaitForNotificationWithTimeout(absl::Seconds(10)));
  waiter.join();
  EXPECT_EQ(seen, second);
  EXPECT_EQ(tracker.session(), second);
  EXPECT_EQ(tracker.reconnects(), 1);
  EXPECT_EQ(tracker.state(), SessionTracker::State::kConnected);
}

TEST(SessionTrackerTest, LossAndCloseEndTheWaitsAndRefuseUse) {
  SessionTracker tracker(NewSession("a:1"));
  const uint64_t ticket = tracker.RequestCheck();
  tracker.Lose(absl::NotFoundError("replaced"));
  auto verdict = tracker.AwaitCheck(ticket, absl::InfiniteFuture());
  EXPECT_EQ(verdict.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(verdict.status().message().find("replaced"), std::string::npos);
  EXPECT_EQ(tracker.CheckUsable().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(tracker.BeginReconnect());
  // The supervisor stops waiting for requests once the state is final.
  EXPECT_EQ(tracker.AwaitRequest(absl::InfiniteFuture()), 0u);

  EXPECT_EQ(tracker.Close(), SessionTracker::State::kLost);
  EXPECT_EQ(tracker.AwaitCheck(ticket, absl::InfiniteFuture()).status().code(),
            absl::StatusCode::kCancelled);
  EXPECT_NE(tracker.CheckUsable().message().find("closed"), std::string::npos);
}

TEST(SessionTrackerTest, ReconnectAfterCloseKeepsTheSessionButStaysClosed) {
  const auto second = NewSession("b:2");
  SessionTracker tracker(NewSession("a:1"));
  ASSERT_TRUE(tracker.BeginReconnect());
  EXPECT_EQ(tracker.Close(), SessionTracker::State::kReconnecting);
  EXPECT_FALSE(tracker.Reconnected(second));
  EXPECT_EQ(tracker.session(), second);
  EXPECT_EQ(tracker.state(), SessionTracker::State::kClosed);
  EXPECT_FALSE(tracker.SleepUnlessClosed(absl::InfiniteFuture()));
}

TEST(SessionTrackerTest, AbandonFlagEndsAWait) {
  SessionTracker tracker(NewSession("a:1"));
  const uint64_t ticket = tracker.RequestCheck();
  std::atomic<bool> abandon{false};
  absl::Notification got;
  absl::Status status;
  std::thread waiter([&] {
    status =
        tracker.AwaitCheck(ticket, absl::InfiniteFuture(), &abandon).status();
    got.Notify();
  });
  EXPECT_FALSE(got.WaitForNotificationWithTimeout(absl::Milliseconds(50)));
  abandon.store(true);
  tracker.WakeWaiters();
  ASSERT_TRUE(got.WaitForNotificationWithTimeout(absl::Seconds(10)));
  waiter.join();
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace spate::client
