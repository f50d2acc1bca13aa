// Subscriptions against the fake server: the request, errors on the first
// frame, delivery order, auto and manual ack frames, close vs unsubscribe,
// resubscribing (same connection and after a reconnection), loss and
// shutdown.
#include "client/subscription.h"

#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "client/connection.h"
#include "client/testing/fake_streaming.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace spate::client {
namespace {

using ::spate::client::testing::CountClientThreads;
using ::spate::client::testing::Eventually;
using ::spate::client::testing::FakeServer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<MsgProto> Msgs(uint64_t first, uint64_t last) {
  std::vector<MsgProto> msgs;
  for (uint64_t seq = first; seq <= last; ++seq) {
    MsgProto msg;
    msg.set_sequence(seq);
    msg.set_subject("orders");
    msg.set_data("m" + std::to_string(seq));
    msgs.push_back(std::move(msg));
  }
  return msgs;
}

std::vector<uint64_t> Flatten(
    const std::vector<std::vector<uint64_t>>& frames) {
  std::vector<uint64_t> all;
  for (const auto& frame : frames)
    all.insert(all.end(), frame.begin(), frame.end());
  return all;
}

// Records what a MessageHandler saw.
class Inbox {
 public:
  MessageHandler Handler() {
    return [this](const Message& message) {
      absl::MutexLock lock(&mu_);
      sequences_.push_back(message.sequence());
      data_.push_back(message.data());
      threads_.insert(std::this_thread::get_id());
    };
  }
  size_t size() const {
    absl::MutexLock lock(&mu_);
    return sequences_.size();
  }
  std::vector<uint64_t> sequences() const {
    absl::MutexLock lock(&mu_);
    return sequences_;
  }
  std::vector<std::string> data() const {
    absl::MutexLock lock(&mu_);
    return data_;
  }
  std::set<std::thread::id> threads() const {
    absl::MutexLock lock(&mu_);
    return threads_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<uint64_t> sequences_;
  std::vector<std::string> data_;
  std::set<std::thread::id> threads_;
};

class SubscriptionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ClientOptions options;
    options.servers = {server_.address()};
    options.client_id = "sub-test";
    options.connect_timeout = absl::Seconds(5);
    auto connection = Connection::Connect(options);
    ASSERT_TRUE(connection.ok()) << connection.status();
    connection_ = std::move(*connection);
  }

  FakeServer server_;
  std::unique_ptr<Connection> connection_;
};

TEST_F(SubscriptionTest, SendsTheRequestAndReturnsTheResponse) {
  SubscribeOptions options;
  options.durable_name = "dur";
  options.q_group = "workers";
  options.max_in_flight = 7;
  options.ack_wait = absl::Seconds(3);
  options.start = StartPosition::AtSequence(42);
  auto sub = connection_->Subscribe("orders", options, [](const Message&) {});
  ASSERT_TRUE(sub.ok()) << sub.status();
  EXPECT_EQ((*sub)->id(), "sub-0");
  EXPECT_EQ((*sub)->start_sequence(), 1u);
  EXPECT_EQ((*sub)->subject(), "orders");

  const auto requests = server_.service().subscribe_requests();
  ASSERT_EQ(requests.size(), 1u);
  const SubscriptionRequest& request = requests[0];
  EXPECT_EQ(request.client_id(), "sub-test");
  EXPECT_EQ(request.conn_id(),
            server_.service().connect_requests()[0].conn_id());
  EXPECT_EQ(request.subject(), "orders");
  EXPECT_EQ(request.durable_name(), "dur");
  EXPECT_EQ(request.q_group(), "workers");
  EXPECT_EQ(request.max_in_flight(), 7);
  EXPECT_EQ(request.ack_wait_in_secs(), 3);
  EXPECT_EQ(request.start_position(), ::spate::SEQUENCE_START);
  EXPECT_EQ(request.start_sequence(), 42u);
}

TEST_F(SubscriptionTest, StartPositionsMapToTheProtocol) {
  const std::vector<std::pair<StartPosition, ::spate::StartPosition>> cases = {
      {StartPosition::NewOnly(), ::spate::NEW_ONLY},
      {StartPosition::LastReceived(), ::spate::LAST_RECEIVED},
      {StartPosition::First(), ::spate::FIRST},
      {StartPosition::AtTimeDelta(absl::Seconds(10)),
       ::spate::TIME_DELTA_START},
  };
  std::vector<std::unique_ptr<Subscription>> subs;
  for (const auto& [start, expected] : cases) {
    SubscribeOptions options;
    options.start = start;
    auto sub = connection_->Subscribe("orders", options, [](const Message&) {});
    ASSERT_TRUE(sub.ok()) << sub.status();
    subs.push_back(std::move(*sub));
  }
  const auto requests = server_.service().subscribe_requests();
  ASSERT_EQ(requests.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(requests[i].start_position(), cases[i].second) << i;
  }
  EXPECT_EQ(requests[3].start_time_delta_ns(), 10'000'000'000);
}

TEST_F(SubscriptionTest, ServerRefusalIsReturnedAsItsStatus) {
  server_.service().set_subscribe_status(grpc::Status(
      grpc::StatusCode::ALREADY_EXISTS, "durable dur is already in use"));
  auto sub = connection_->Subscribe("orders", {}, [](const Message&) {});
  ASSERT_FALSE(sub.ok());
  EXPECT_EQ(sub.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(sub.status().message(), "durable dur is already in use");
  // No thread is left behind by the failed attempt (only the ping thread).
  EXPECT_TRUE(Eventually([] { return CountClientThreads() == 1; }));
}

TEST_F(SubscriptionTest, RejectsBadOptionsLocally) {
  SubscribeOptions options;
  options.max_in_flight = 0;
  EXPECT_EQ(connection_->Subscribe("orders", options, [](const Message&) {})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  options = {};
  options.ack_wait = absl::Milliseconds(500);
  EXPECT_EQ(connection_->Subscribe("orders", options, [](const Message&) {})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(server_.service().subscribe_requests().empty());
}

TEST_F(SubscriptionTest, HandlerSeesMessagesInOrderOnOneThread) {
  Inbox inbox;
  auto sub = connection_->Subscribe("orders", {}, inbox.Handler());
  ASSERT_TRUE(sub.ok()) << sub.status();
  server_.service().Deliver(0, Msgs(1, 10));
  server_.service().Deliver(0, Msgs(11, 11));
  server_.service().Deliver(0, Msgs(12, 50));
  ASSERT_TRUE(Eventually([&] { return inbox.size() == 50; }));
  std::vector<uint64_t> expected(50);
  for (int i = 0; i < 50; ++i) expected[i] = i + 1;
  EXPECT_EQ(inbox.sequences(), expected);
  EXPECT_EQ(inbox.data()[49], "m50");
  ASSERT_EQ(inbox.threads().size(), 1u);
  EXPECT_NE(*inbox.threads().begin(), std::this_thread::get_id());
}

TEST_F(SubscriptionTest, MessageCarriesEveryField) {
  absl::Notification got;
  MsgProto seen;
  auto sub = connection_->Subscribe("orders", {}, [&](const Message& message) {
    seen = message.proto();
    EXPECT_EQ(message.timestamp(), absl::FromUnixNanos(123456789));
    EXPECT_TRUE(message.redelivered());
    EXPECT_EQ(message.redelivery_count(), 2u);
    EXPECT_EQ(message.headers().at("trace"), "abc");
    got.Notify();
  });
  ASSERT_TRUE(sub.ok()) << sub.status();
  MsgProto msg = Msgs(9, 9)[0];
  msg.set_timestamp(123456789);
  msg.set_redelivered(true);
  msg.set_redelivery_count(2);
  (*msg.mutable_headers())["trace"] = "abc";
  server_.service().Deliver(0, {msg});
  ASSERT_TRUE(got.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(seen.sequence(), 9u);
  EXPECT_EQ(seen.data(), "m9");
}

TEST_F(SubscriptionTest, AutoAckGoesOutAfterTheHandlerReturns) {
  absl::Notification in_third;
  absl::Notification release_third;
  auto sub = connection_->Subscribe("orders", {}, [&](const Message& message) {
    if (message.sequence() == 3) {
      in_third.Notify();
      release_third.WaitForNotification();
    }
    // Manual acks are refused in auto-ack mode.
    EXPECT_EQ(message.Ack().code(), absl::StatusCode::kFailedPrecondition);
  });
  ASSERT_TRUE(sub.ok()) << sub.status();
  server_.service().Deliver(0, Msgs(1, 5));
  ASSERT_TRUE(in_third.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(Eventually(
      [&] { return Flatten(server_.service().ack_frames(0)).size() == 2; }));
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_THAT(Flatten(server_.service().ack_frames(0)), ElementsAre(1, 2));
  release_third.Notify();
  ASSERT_TRUE(Eventually(
      [&] { return Flatten(server_.service().ack_frames(0)).size() == 5; }));
  EXPECT_THAT(Flatten(server_.service().ack_frames(0)),
              ElementsAre(1, 2, 3, 4, 5));
}

TEST_F(SubscriptionTest, AutoAcksAreBatchedIntoFrames) {
  Inbox inbox;
  auto sub = connection_->Subscribe("orders", {}, inbox.Handler());
  ASSERT_TRUE(sub.ok()) << sub.status();
  server_.service().Deliver(0, Msgs(1, 2000));
  ASSERT_TRUE(Eventually(
      [&] { return Flatten(server_.service().ack_frames(0)).size() == 2000; }));
  const auto frames = server_.service().ack_frames(0);
  // A frame per message would be 2000; whatever waits goes in one frame.
  EXPECT_LT(frames.size(), 2000u);
  std::vector<uint64_t> expected(2000);
  for (int i = 0; i < 2000; ++i) expected[i] = i + 1;
  EXPECT_EQ(Flatten(frames), expected);
}

TEST_F(SubscriptionTest, ManualAcksSendOnlyWhatWasAcked) {
  SubscribeOptions options;
  options.manual_acks = true;
  Inbox inbox;
  MessageHandler record = inbox.Handler();
  auto sub =
      connection_->Subscribe("orders", options, [&](const Message& message) {
        record(message);
        if (message.sequence() % 2 == 0) {
          EXPECT_TRUE(message.Ack().ok());
        }
      });
  ASSERT_TRUE(sub.ok()) << sub.status();
  server_.service().Deliver(0, Msgs(1, 5));
  ASSERT_TRUE(Eventually([&] { return inbox.size() == 5; }));
  ASSERT_TRUE(Eventually(
      [&] { return Flatten(server_.service().ack_frames(0)).size() == 2; }));
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_THAT(Flatten(server_.service().ack_frames(0)), ElementsAre(2, 4));
  // From another thread, through the handle.
  EXPECT_TRUE((*sub)->Ack(5).ok());
  ASSERT_TRUE(Eventually(
      [&] { return Flatten(server_.service().ack_frames(0)).size() == 3; }));
  EXPECT_THAT(Flatten(server_.service().ack_frames(0)), ElementsAre(2, 4, 5));
}

TEST_F(SubscriptionTest, CloseHalfClosesUnsubscribeSendsTheRpc) {
  SubscribeOptions options;
  options.durable_name = "dur";
  auto closed =
      connection_->Subscribe("orders", options, [](const Message&) {});
  auto removed =
      connection_->Subscribe("orders", options, [](const Message&) {});
  ASSERT_TRUE(closed.ok()) << closed.status();
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_TRUE((*closed)->Close().ok());
  // Close is the stream's end (the server keeps a durable); no RPC.
  EXPECT_TRUE(server_.service().subscribe_stream_half_closed(0));
  EXPECT_TRUE(server_.service().unsubscribes().empty());
  EXPECT_TRUE((*removed)->Unsubscribe().ok());
  // Idempotent: nothing is sent twice.
  EXPECT_TRUE((*closed)->Close().ok());
  EXPECT_TRUE((*removed)->Unsubscribe().ok());

  const auto unsubscribes = server_.service().unsubscribes();
  ASSERT_EQ(unsubscribes.size(), 1u);
  const UnsubscribeRequest& request = unsubscribes[0];
  EXPECT_FALSE(request.close_only());
  EXPECT_EQ(request.subscription_id(), "sub-1");
  EXPECT_EQ(request.client_id(), "sub-test");
  EXPECT_EQ(request.subject(), "orders");
  EXPECT_EQ(request.durable_name(), "dur");
  EXPECT_EQ(request.conn_id(),
            server_.service().connect_requests()[0].conn_id());
  // Then the stream was half-closed too, not cancelled.
  EXPECT_TRUE(
      Eventually([&] { return server_.service().open_streams() == 0; }));
  EXPECT_TRUE(server_.service().subscribe_stream_half_closed(1));
  // Acks after the end are refused.
  EXPECT_EQ((*closed)->Ack(1).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(SubscriptionTest, CloseGivesUpWhenTheServerDoesNotConfirm) {
  ClientOptions options;
  options.servers = {server_.address()};
  options.client_id = "impatient";
  options.connect_timeout = absl::Milliseconds(300);
  auto connection = Connection::Connect(options);
  ASSERT_TRUE(connection.ok()) << connection.status();
  auto sub = (*connection)->Subscribe("orders", {}, [](const Message&) {});
  ASSERT_TRUE(sub.ok()) << sub.status();
  server_.service().set_ignore_half_close(true);
  const absl::Time start = absl::Now();
  const absl::Status closed = (*sub)->Close();
  EXPECT_EQ(closed.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(closed.message(), HasSubstr("did not end the stream"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  // The stream was cancelled, which ends it on the server too.
  EXPECT_TRUE(
      Eventually([&] { return server_.service().open_streams() == 0; }));
}

TEST_F(SubscriptionTest, QueuedAcksAreSentBeforeTheStreamEnds) {
  SubscribeOptions options;
  options.manual_acks = true;
  auto sub = connection_->Subscribe("orders", options, [](const Message&) {});
  ASSERT_TRUE(sub.ok()) << sub.status();
  for (uint64_t seq = 1; seq <= 100; ++seq) ASSERT_TRUE((*sub)->Ack(seq).ok());
  ASSERT_TRUE((*sub)->Close().ok());
  // The fake records acks until it reads the half-close, so all of them
  // were in the stream ahead of it.
  EXPECT_EQ(Flatten(server_.service().ack_frames(0)).size(), 100u);
  EXPECT_TRUE(server_.service().subscribe_stream_half_closed(0));
}

TEST_F(SubscriptionTest, HandlerMayCloseItsOwnSubscription) {
  std::unique_ptr<Subscription> sub;
  absl::Mutex mu;
  absl::Notification closed;
  auto opened =
      connection_->Subscribe("orders", {}, [&](const Message& message) {
        if (message.sequence() != 2) return;
        absl::MutexLock lock(&mu);
        EXPECT_TRUE(sub->Close().ok());
        closed.Notify();
      });
  ASSERT_TRUE(opened.ok()) << opened.status();
  {
    absl::MutexLock lock(&mu);
    sub = std::move(*opened);
  }
  server_.service().Deliver(0, Msgs(1, 3));
  ASSERT_TRUE(closed.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(server_.service().subscribe_stream_half_closed(0));
  absl::MutexLock lock(&mu);
  sub.reset();  // Joins the handler's thread, which has returned.
}

TEST_F(SubscriptionTest, LostStreamRunsTheLostHandlerOnce) {
  std::atomic<int> calls{0};
  absl::Notification lost;
  SubscribeOptions options;
  options.lost_handler = [&](const absl::Status& status) {
    EXPECT_FALSE(status.ok());
    if (calls.fetch_add(1) == 0) lost.Notify();
  };
  auto sub = connection_->Subscribe("orders", options, [](const Message&) {});
  ASSERT_TRUE(sub.ok()) << sub.status();
  server_.service().CancelSubscribeStreams();
  ASSERT_TRUE(lost.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ((*sub)->Ack(1).code(), absl::StatusCode::kFailedPrecondition);
  // Closing still tells the server (a durable would be detached) and joins.
  EXPECT_TRUE((*sub)->Close().ok());
  EXPECT_EQ(calls.load(), 1);
}

TEST_F(SubscriptionTest, UnavailableEndResubscribesAfterTheLastHandedOut) {
  Inbox inbox;
  std::atomic<int> lost_calls{0};
  SubscribeOptions options;
  options.lost_handler = [&](const absl::Status&) { ++lost_calls; };
  auto sub = connection_->Subscribe("orders", options, inbox.Handler());
  ASSERT_TRUE(sub.ok()) << sub.status();
  server_.service().Deliver(0, Msgs(1, 3));
  ASSERT_TRUE(Eventually([&] { return inbox.size() == 3; }));
  // The channel's leader moved: the node ends the stream, the connection
  // itself is fine.
  server_.service().EndSubscribeStreams(grpc::Status(
      grpc::StatusCode::UNAVAILABLE, "channel leadership moved; retry"));
  ASSERT_TRUE(Eventually(
      [&] { return server_.service().subscribe_stream_count() == 2; }));
  const auto requests = server_.service().subscribe_requests();
  EXPECT_EQ(requests[1].start_position(), ::spate::SEQUENCE_START);
  EXPECT_EQ(requests[1].start_sequence(), 4u);
  EXPECT_EQ(requests[1].conn_id(), requests[0].conn_id());
  EXPECT_EQ(requests[1].subject(), "orders");
  server_.service().Deliver(1, Msgs(4, 5));
  ASSERT_TRUE(Eventually([&] { return inbox.size() == 5; }));
  EXPECT_THAT(inbox.sequences(), ElementsAre(1, 2, 3, 4, 5));
  // Same handler thread, same handle; no reconnection, no loss.
  EXPECT_EQ(inbox.threads().size(), 1u);
  EXPECT_EQ((*sub)->resubscribes(), 1);
  EXPECT_EQ((*sub)->id(), "sub-1");
  EXPECT_EQ(connection_->reconnects(), 0);
  EXPECT_EQ(lost_calls.load(), 0);
  // Acks go to the new stream.
  ASSERT_TRUE(Eventually(
      [&] { return Flatten(server_.service().ack_frames(1)).size() == 2; }));
  EXPECT_TRUE((*sub)->Close().ok());
  EXPECT_TRUE(server_.service().subscribe_stream_half_closed(1));
}

TEST_F(SubscriptionTest, DurableResubscribesWithItsOriginalRequest) {
  SubscribeOptions options;
  options.durable_name = "dur";
  options.max_in_flight = 7;
  options.ack_wait = absl::Seconds(3);
  options.start = StartPosition::First();
  Inbox inbox;
  auto sub = connection_->Subscribe("orders", options, inbox.Handler());
  ASSERT_TRUE(sub.ok()) << sub.status();
  server_.service().Deliver(0, Msgs(1, 2));
  ASSERT_TRUE(Eventually([&] { return inbox.size() == 2; }));
  server_.service().EndSubscribeStreams(
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "node stopping"));
  ASSERT_TRUE(Eventually(
      [&] { return server_.service().subscribe_stream_count() == 2; }));
  const auto requests = server_.service().subscribe_requests();
  // The server resumes a durable at its first unacked message.
  EXPECT_EQ(requests[1].SerializeAsString(), requests[0].SerializeAsString());
  EXPECT_EQ(requests[1].start_position(), ::spate::FIRST);
}

TEST_F(SubscriptionTest, EndThatResubscribingCannotFixIsALoss) {
  absl::Notification lost;
  absl::Status reason;
  SubscribeOptions options;
  options.lost_handler = [&](const absl::Status& status) {
    reason = status;
    lost.Notify();
  };
  auto sub = connection_->Subscribe("orders", options, [](const Message&) {});
  ASSERT_TRUE(sub.ok()) << sub.status();
  server_.service().EndSubscribeStreams(
      grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "slow consumer"));
  ASSERT_TRUE(lost.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(reason.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(reason.message(), "slow consumer");
  EXPECT_EQ(server_.service().subscribe_stream_count(), 1);
  EXPECT_TRUE((*sub)->Close().ok());
}

TEST_F(SubscriptionTest, PermanentlyRefusedResubscribeIsALoss) {
  absl::Notification lost;
  absl::Status reason;
  SubscribeOptions options;
  options.lost_handler = [&](const absl::Status& status) {
    reason = status;
    lost.Notify();
  };
  auto sub = connection_->Subscribe("orders", options, [](const Message&) {});
  ASSERT_TRUE(sub.ok()) << sub.status();
  server_.service().set_subscribe_status(grpc::Status(
      grpc::StatusCode::INVALID_ARGUMENT, "max_in_flight above the limit"));
  server_.service().EndSubscribeStreams(
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "leader moved"));
  ASSERT_TRUE(lost.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(reason.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(server_.service().subscribe_stream_count(), 2);
}

TEST_F(SubscriptionTest, RetryableRefusalsAreRetriedForReconnectWait) {
  ClientOptions client;
  client.servers = {server_.address()};
  client.client_id = "patient";
  client.reconnect_wait = absl::Milliseconds(400);
  auto connection = Connection::Connect(client);
  ASSERT_TRUE(connection.ok()) << connection.status();
  absl::Notification lost;
  absl::Status reason;
  SubscribeOptions options;
  options.durable_name = "dur";
  options.lost_handler = [&](const absl::Status& status) {
    reason = status;
    lost.Notify();
  };
  auto sub = (*connection)->Subscribe("orders", options, [](const Message&) {});
  ASSERT_TRUE(sub.ok()) << sub.status();
  // The old member is not closed yet on the server: "already active".
  server_.service().set_subscribe_status(
      grpc::Status(grpc::StatusCode::ALREADY_EXISTS,
                   "durable subscription 'dur' is already active"));
  const absl::Time ended = absl::Now();
  server_.service().EndSubscribeStreams(
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "leader moved"));
  ASSERT_TRUE(lost.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_GE(absl::Now() - ended, absl::Milliseconds(400));
  EXPECT_EQ(reason.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(reason.message(), HasSubstr("resubscribing to orders failed"));
  // Retried with a backoff, not in a tight loop.
  const int attempts = server_.service().subscribe_stream_count() - 1;
  EXPECT_GE(attempts, 3);
  EXPECT_LE(attempts, 12);
}

TEST_F(SubscriptionTest, RefusedResubscribeSucceedsOnceTheServerAgrees) {
  Inbox inbox;
  SubscribeOptions options;
  options.durable_name = "dur";
  auto sub = connection_->Subscribe("orders", options, inbox.Handler());
  ASSERT_TRUE(sub.ok()) << sub.status();
  server_.service().set_subscribe_status(
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "no leader yet"));
  server_.service().EndSubscribeStreams(
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "leader moved"));
  ASSERT_TRUE(Eventually(
      [&] { return server_.service().subscribe_stream_count() >= 3; }));
  server_.service().set_subscribe_status(grpc::Status::OK);
  ASSERT_TRUE(Eventually([&] { return (*sub)->resubscribes() == 1; }));
  const int last = server_.service().subscribe_stream_count() - 1;
  server_.service().Deliver(last, Msgs(1, 1));
  ASSERT_TRUE(Eventually([&] { return inbox.size() == 1; }));
}

TEST_F(SubscriptionTest, CloseWhileResubscribingReturnsPromptly) {
  auto sub = connection_->Subscribe("orders", {}, [](const Message&) {});
  ASSERT_TRUE(sub.ok()) << sub.status();
  server_.service().set_subscribe_status(
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "no leader yet"));
  server_.service().EndSubscribeStreams(
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "leader moved"));
  ASSERT_TRUE(Eventually(
      [&] { return server_.service().subscribe_stream_count() >= 2; }));
  const absl::Time start = absl::Now();
  EXPECT_TRUE((*sub)->Close().ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  // ping thread only.
  EXPECT_TRUE(Eventually([] { return CountClientThreads() == 1; }));
}

TEST(SubscriptionReconnectTest, SubscriptionsMoveToTheNextServer) {
  auto first = std::make_unique<FakeServer>();
  FakeServer second;
  ClientOptions client;
  client.servers = {first->address(), second.address()};
  client.client_id = "sub-test";
  client.ping_interval = absl::Milliseconds(20);
  client.ping_max_out = 2;
  auto connection = Connection::Connect(client);
  ASSERT_TRUE(connection.ok()) << connection.status();
  Inbox plain;
  Inbox durable;
  Inbox queue;
  SubscribeOptions durable_options;
  durable_options.durable_name = "dur";
  SubscribeOptions queue_options;
  queue_options.q_group = "workers";
  auto plain_sub = (*connection)->Subscribe("orders", {}, plain.Handler());
  auto durable_sub =
      (*connection)->Subscribe("orders", durable_options, durable.Handler());
  auto queue_sub =
      (*connection)->Subscribe("orders", queue_options, queue.Handler());
  ASSERT_TRUE(plain_sub.ok() && durable_sub.ok() && queue_sub.ok());
  first->service().Deliver(0, Msgs(1, 5));
  first->service().Deliver(1, Msgs(1, 5));
  first->service().Deliver(2, Msgs(1, 2));
  ASSERT_TRUE(Eventually([&] {
    return plain.size() == 5 && durable.size() == 5 && queue.size() == 2;
  }));
  first.reset();  // The server dies.

  ASSERT_TRUE(Eventually(
      [&] { return second.service().subscribe_stream_count() == 3; }));
  const auto requests = second.service().subscribe_requests();
  const std::string conn_id = second.service().connect_requests()[0].conn_id();
  for (const SubscriptionRequest& request : requests) {
    EXPECT_EQ(request.conn_id(), conn_id);
    EXPECT_EQ(request.client_id(), "sub-test");
    int index = &request - requests.data();
    if (request.durable_name() == "dur") {
      EXPECT_EQ(request.start_position(), ::spate::NEW_ONLY);
    } else if (request.q_group() == "workers") {
      EXPECT_EQ(request.start_position(), ::spate::SEQUENCE_START);
      EXPECT_EQ(request.start_sequence(), 3u);
    } else {
      EXPECT_EQ(request.start_position(), ::spate::SEQUENCE_START);
      EXPECT_EQ(request.start_sequence(), 6u);
      second.service().Deliver(index, Msgs(6, 7));
    }
  }
  ASSERT_TRUE(Eventually([&] { return plain.size() == 7; }));
  EXPECT_THAT(plain.sequences(), ElementsAre(1, 2, 3, 4, 5, 6, 7));
  EXPECT_EQ(plain.threads().size(), 1u);
  EXPECT_EQ((*connection)->reconnects(), 1);
  EXPECT_EQ((*plain_sub)->resubscribes(), 1);
}

TEST(SubscriptionReconnectTest, SubscribeWaitsForAReconnectionInProgress) {
  FakeServer server;
  ClientOptions client;
  client.servers = {server.address()};
  client.client_id = "sub-test";
  client.ping_interval = absl::Milliseconds(10);
  client.connect_timeout = absl::Seconds(5);
  client.reconnected_handler = [&](const std::string&) {
    server.service().set_ping_status(grpc::Status::OK);
  };
  auto connection = Connection::Connect(client);
  ASSERT_TRUE(connection.ok()) << connection.status();
  server.service().FailNextConnects(
      4, grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "still alive"));
  server.service().set_ping_status(
      grpc::Status(grpc::StatusCode::NOT_FOUND, "client was replaced"));
  ASSERT_TRUE(Eventually(
      [&] { return server.service().connect_requests().size() >= 2; }));
  auto sub = (*connection)->Subscribe("orders", {}, [](const Message&) {});
  ASSERT_TRUE(sub.ok()) << sub.status();
  const auto connects = server.service().connect_requests();
  ASSERT_EQ(connects.size(), 6u);
  // Sent once, on the new connection.
  const auto requests = server.service().subscribe_requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].conn_id(), connects.back().conn_id());
  EXPECT_NE(requests[0].conn_id(), connects[0].conn_id());
}

TEST_F(SubscriptionTest, ServerEndingTheStreamAfterUnsubscribeIsNoLoss) {
  server_.service().set_cancel_stream_on_unsubscribe(true);
  std::atomic<int> lost_calls{0};
  SubscribeOptions options;
  options.durable_name = "dur";
  options.lost_handler = [&](const absl::Status&) { ++lost_calls; };
  auto sub = connection_->Subscribe("orders", options, [](const Message&) {});
  ASSERT_TRUE(sub.ok()) << sub.status();
  EXPECT_TRUE((*sub)->Unsubscribe().ok());
  EXPECT_EQ(server_.service().unsubscribes().size(), 1u);
  EXPECT_EQ(lost_calls.load(), 0);
}

TEST_F(SubscriptionTest, DestroyingTheHandleClosesTheSubscription) {
  {
    auto sub = connection_->Subscribe("orders", {}, [](const Message&) {});
    ASSERT_TRUE(sub.ok()) << sub.status();
    // ping + 3 subscription threads (named right after they start).
    EXPECT_TRUE(Eventually([] { return CountClientThreads() == 4; }));
  }
  EXPECT_EQ(CountClientThreads(), 1);
  EXPECT_TRUE(server_.service().subscribe_stream_half_closed(0));
  EXPECT_TRUE(server_.service().unsubscribes().empty());
}

TEST_F(SubscriptionTest, ConnectionCloseDetachesWithoutUnsubscribing) {
  Inbox inbox;
  auto sub = connection_->Subscribe("orders", {}, inbox.Handler());
  ASSERT_TRUE(sub.ok()) << sub.status();
  server_.service().Deliver(0, Msgs(1, 3));
  ASSERT_TRUE(Eventually([&] { return inbox.size() == 3; }));
  ASSERT_TRUE(Eventually(
      [&] { return Flatten(server_.service().ack_frames(0)).size() == 3; }));
  EXPECT_TRUE(connection_->Close().ok());
  EXPECT_TRUE(server_.service().unsubscribes().empty());
  EXPECT_EQ(server_.service().closes().size(), 1u);
  EXPECT_TRUE(server_.service().subscribe_stream_half_closed(0));
  EXPECT_EQ(CountClientThreads(), 0);
  EXPECT_TRUE((*sub)->Close().ok());  // Already ended: nothing to do.
  EXPECT_TRUE(server_.service().unsubscribes().empty());
}

}  // namespace
}  // namespace spate::client
