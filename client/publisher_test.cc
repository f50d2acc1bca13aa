// Async publishing (Connection::PublishAsync / Flush over AsyncPublisher)
// against the fake server: ack order, the window, error mapping, resending
// after stream breaks and reconnections, retrying UNAVAILABLE acks,
// batching and timeouts.
#include "client/publisher.h"

#include <atomic>
#include <memory>
#include <numeric>
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

using ::spate::client::testing::Eventually;
using ::spate::client::testing::FakeServer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// gRPC buffers about 4 MB of a stream the server does not read; eight 1 MB
// frames are sure to leave the writer stuck in HTTP/2 flow control.
constexpr int kStuckFrames = 8;
const std::string& MegabytePayload() {
  static const std::string* payload = new std::string(1000000, 'x');
  return *payload;
}

// What AckHandlers reported, in the order they ran.
class AckLog {
 public:
  AckHandler Handler() {
    return [this](const std::string& guid,
                  const absl::StatusOr<uint64_t>& result) {
      absl::MutexLock lock(&mu_);
      guids_.push_back(guid);
      results_.push_back(result);
    };
  }
  size_t size() const {
    absl::MutexLock lock(&mu_);
    return results_.size();
  }
  std::vector<std::string> guids() const {
    absl::MutexLock lock(&mu_);
    return guids_;
  }
  std::vector<absl::StatusOr<uint64_t>> results() const {
    absl::MutexLock lock(&mu_);
    return results_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> guids_;
  std::vector<absl::StatusOr<uint64_t>> results_;
};

class PublisherTest : public ::testing::Test {
 protected:
  std::unique_ptr<Connection> Connect(
      int window = 16384, absl::Duration ack_wait = absl::Seconds(30)) {
    ClientOptions options;
    options.servers = {server_.address()};
    options.client_id = "pub-test";
    options.max_pub_acks_in_flight = window;
    options.pub_ack_wait = ack_wait;
    auto connection = Connection::Connect(options);
    EXPECT_TRUE(connection.ok()) << connection.status();
    return connection.ok() ? std::move(*connection) : nullptr;
  }

  FakeServer server_;
};

TEST_F(PublisherTest, HandlersRunInAckOrderWithSequences) {
  auto connection = Connect();
  AckLog log;
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(
        connection->PublishAsync("orders", std::to_string(i), log.Handler())
            .ok());
  }
  ASSERT_TRUE(connection->Flush(absl::Seconds(10)).ok());
  ASSERT_EQ(log.size(), 200u);
  const auto results = log.results();
  const auto guids = log.guids();
  const auto published = server_.service().stream_published();
  ASSERT_EQ(published.size(), 200u);
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].status();
    EXPECT_EQ(*results[i], static_cast<uint64_t>(i + 1));
    // The server saw them in publish order with the guids the handlers got.
    EXPECT_EQ(published[i].data(), std::to_string(i));
    EXPECT_EQ(published[i].guid(), guids[i]);
    EXPECT_EQ(published[i].client_id(), "pub-test");
  }
}

TEST_F(PublisherTest, WindowBlocksUntilAcksArrive) {
  auto connection = Connect(/*window=*/4);
  server_.service().set_hold_acks(true);
  AckLog log;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(connection->PublishAsync("orders", "x", log.Handler()).ok());
  }
  ASSERT_TRUE(Eventually(
      [&] { return server_.service().stream_published().size() == 4; }));
  absl::Notification fifth_done;
  absl::Status fifth;
  std::thread publisher([&] {
    fifth = connection->PublishAsync("orders", "fifth", log.Handler());
    fifth_done.Notify();
  });
  // The window is full: the fifth publish waits and is not sent.
  EXPECT_FALSE(
      fifth_done.WaitForNotificationWithTimeout(absl::Milliseconds(200)));
  EXPECT_EQ(server_.service().stream_published().size(), 4u);

  server_.service().set_hold_acks(false);
  ASSERT_TRUE(fifth_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  publisher.join();
  EXPECT_TRUE(fifth.ok()) << fifth;
  ASSERT_TRUE(connection->Flush(absl::Seconds(10)).ok());
  EXPECT_EQ(log.size(), 5u);
  EXPECT_LE(server_.service().max_unacked(), 4);
}

TEST_F(PublisherTest, ManyPublishersNeverExceedTheWindow) {
  auto connection = Connect(/*window=*/8);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 250; ++i) {
        if (!connection->PublishAsync("orders", "x", nullptr).ok()) ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_TRUE(connection->Flush(absl::Seconds(10)).ok());
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(server_.service().stream_published().size(), 1000u);
  EXPECT_LE(server_.service().max_unacked(), 8);
  EXPECT_GE(server_.service().max_unacked(), 1);
}

TEST_F(PublisherTest, UnackedPublishesExpireAndFreeTheWindow) {
  auto connection = Connect(/*window=*/2, /*ack_wait=*/absl::Milliseconds(300));
  server_.service().set_hold_acks(true);
  AckLog log;
  ASSERT_TRUE(connection->PublishAsync("orders", "1", log.Handler()).ok());
  ASSERT_TRUE(connection->PublishAsync("orders", "2", log.Handler()).ok());
  // The window is full until the two held publishes time out (stan.go's
  // ack timeout), 300 ms after they were queued; then the third gets in.
  // Its own wait starts 150 ms later so that it cannot time out first.
  const absl::Time queued = absl::Now();
  absl::SleepFor(absl::Milliseconds(150));
  ASSERT_TRUE(connection->PublishAsync("orders", "3", log.Handler()).ok());
  EXPECT_GE(absl::Now() - queued, absl::Milliseconds(290));
  ASSERT_TRUE(Eventually([&] { return log.size() >= 2; }));
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(log.results()[i].status().code(),
              absl::StatusCode::kDeadlineExceeded);
  }
  // Late acks of expired publishes are ignored; the third is acked.
  server_.service().set_hold_acks(false);
  ASSERT_TRUE(connection->Flush(absl::Seconds(10)).ok());
  ASSERT_EQ(log.size(), 3u);
  ASSERT_TRUE(log.results()[2].ok()) << log.results()[2].status();
  EXPECT_EQ(*log.results()[2], 3u);
}

TEST_F(PublisherTest, FullWindowTimesOutWhileTheServerIsStuck) {
  auto connection = Connect(/*window=*/kStuckFrames + 2,
                            /*ack_wait=*/absl::Seconds(1));
  // The server stops reading: nothing is acked, and the stuck writer
  // cannot expire anything, so the window stays full.
  server_.service().set_pause_reads(true);
  for (int i = 0; i < kStuckFrames + 2; ++i) {
    ASSERT_TRUE(
        connection->PublishAsync("big", MegabytePayload(), nullptr).ok());
  }
  const absl::Status extra = connection->PublishAsync("small", "z", nullptr);
  EXPECT_EQ(extra.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(extra.message(), HasSubstr("window full"));
  server_.service().set_pause_reads(false);
  ASSERT_TRUE(connection->Flush(absl::Seconds(10)).ok());
}

TEST_F(PublisherTest, PubAckErrorMapsToItsCode) {
  server_.service().set_ack_error("too.big",
                                  grpc::StatusCode::RESOURCE_EXHAUSTED,
                                  "payload exceeds max_payload");
  auto connection = Connect();
  AckLog log;
  ASSERT_TRUE(connection->PublishAsync("ok", "a", log.Handler()).ok());
  ASSERT_TRUE(connection->PublishAsync("too.big", "b", log.Handler()).ok());
  ASSERT_TRUE(connection->PublishAsync("ok", "c", log.Handler()).ok());
  ASSERT_TRUE(connection->Flush(absl::Seconds(10)).ok());
  const auto results = log.results();
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(*results[0], 1u);
  EXPECT_EQ(results[1].status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(results[1].status().message(), "payload exceeds max_payload");
  // One bad message does not end the stream.
  EXPECT_EQ(*results[2], 2u);
}

TEST_F(PublisherTest, StreamBreakResendsPendingWithTheirGuids) {
  auto connection = Connect();
  server_.service().set_hold_acks(true);
  AckLog log;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        connection->PublishAsync("orders", std::to_string(i), log.Handler())
            .ok());
  }
  ASSERT_TRUE(Eventually(
      [&] { return server_.service().stream_published().size() == 3; }));
  // The stream ends but the connection is fine (pings pass): a new stream
  // carries the same messages again, in order.
  server_.service().CancelPublishStreams();
  ASSERT_TRUE(Eventually(
      [&] { return server_.service().stream_published().size() == 6; }));
  EXPECT_EQ(log.size(), 0u);
  server_.service().set_hold_acks(false);
  ASSERT_TRUE(connection->Flush(absl::Seconds(10)).ok());
  const auto published = server_.service().stream_published();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(published[3 + i].guid(), published[i].guid());
    EXPECT_EQ(published[3 + i].data(), std::to_string(i));
  }
  // The server stored each guid once: the handlers get those sequences.
  ASSERT_EQ(log.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(log.results()[i].ok()) << log.results()[i].status();
    EXPECT_EQ(*log.results()[i], static_cast<uint64_t>(i + 1));
    EXPECT_EQ(log.guids()[i], published[i].guid());
  }
  EXPECT_EQ(connection->resent_publishes(), 3);
  EXPECT_EQ(connection->reconnects(), 0);
}

TEST_F(PublisherTest, UnavailableAckIsRetriedWithTheSameGuid) {
  auto connection = Connect();
  server_.service().set_ack_error("orders", grpc::StatusCode::UNAVAILABLE,
                                  "no leader for channel orders yet");
  AckLog log;
  ASSERT_TRUE(connection->PublishAsync("orders", "x", log.Handler()).ok());
  ASSERT_TRUE(Eventually(
      [&] { return server_.service().stream_published().size() >= 3; }));
  EXPECT_EQ(log.size(), 0u);
  server_.service().ClearAckErrors();
  ASSERT_TRUE(connection->Flush(absl::Seconds(10)).ok());
  ASSERT_EQ(log.size(), 1u);
  ASSERT_TRUE(log.results()[0].ok()) << log.results()[0].status();
  EXPECT_EQ(*log.results()[0], 1u);
  const auto published = server_.service().stream_published();
  for (const PubMsg& msg : published) {
    EXPECT_EQ(msg.guid(), published[0].guid());
  }
}

TEST_F(PublisherTest, UnavailableAckUntilTheDeadlineExpires) {
  auto connection = Connect(/*window=*/16, absl::Milliseconds(300));
  server_.service().set_ack_error("orders", grpc::StatusCode::UNAVAILABLE,
                                  "no leader for channel orders yet");
  AckLog log;
  ASSERT_TRUE(connection->PublishAsync("orders", "x", log.Handler()).ok());
  ASSERT_TRUE(connection->Flush(absl::Seconds(10)).ok());
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log.results()[0].status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST(PublisherReconnectTest, PendingPublishesMoveToTheNextServerInOrder) {
  auto first = std::make_unique<FakeServer>();
  FakeServer second;
  ClientOptions options;
  options.servers = {first->address(), second.address()};
  options.client_id = "pub-test";
  options.ping_interval = absl::Milliseconds(20);
  options.ping_max_out = 2;
  auto connection = Connection::Connect(options);
  ASSERT_TRUE(connection.ok()) << connection.status();
  first->service().set_hold_acks(true);
  AckLog log;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE((*connection)
                    ->PublishAsync("orders", std::to_string(i), log.Handler())
                    .ok());
  }
  ASSERT_TRUE(Eventually(
      [&] { return first->service().stream_published().size() == 5; }));
  const auto sent_first = first->service().stream_published();
  first.reset();  // The server dies with the acks.
  // Published while the client reconnects: queued behind the others.
  ASSERT_TRUE((*connection)->PublishAsync("orders", "5", log.Handler()).ok());
  ASSERT_TRUE((*connection)->Flush(absl::Seconds(10)).ok());

  const auto sent_second = second.service().stream_published();
  ASSERT_EQ(sent_second.size(), 6u);
  const std::string conn_id = second.service().connect_requests()[0].conn_id();
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(sent_second[i].data(), std::to_string(i));
    EXPECT_EQ(sent_second[i].conn_id(), conn_id);
    if (i < 5) {
      EXPECT_EQ(sent_second[i].guid(), sent_first[i].guid());
    }
  }
  ASSERT_EQ(log.size(), 6u);
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(log.results()[i].ok()) << log.results()[i].status();
    EXPECT_EQ(*log.results()[i], static_cast<uint64_t>(i + 1));
  }
  EXPECT_EQ((*connection)->reconnects(), 1);
}

TEST(PublisherReconnectTest, LostConnectionFailsPendingWithUnavailable) {
  FakeServer server;
  ClientOptions options;
  options.servers = {server.address()};
  options.client_id = "pub-test";
  options.ping_interval = absl::Milliseconds(10);
  options.reconnect_wait = absl::ZeroDuration();
  absl::Notification lost;
  options.connection_lost_handler = [&](const absl::Status&) { lost.Notify(); };
  auto connection = Connection::Connect(options);
  ASSERT_TRUE(connection.ok()) << connection.status();
  server.service().set_hold_acks(true);
  AckLog log;
  ASSERT_TRUE((*connection)->PublishAsync("orders", "x", log.Handler()).ok());
  ASSERT_TRUE((*connection)->PublishAsync("orders", "y", log.Handler()).ok());
  server.service().set_ping_status(
      grpc::Status(grpc::StatusCode::NOT_FOUND, "client was replaced"));
  ASSERT_TRUE(lost.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE((*connection)->Flush(absl::Seconds(10)).ok());
  ASSERT_EQ(log.size(), 2u);
  for (const auto& result : log.results()) {
    EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(result.status().message(), HasSubstr("connection lost"));
  }
}

TEST_F(PublisherTest, HandlerMayPublishAgain) {
  auto connection = Connect(/*window=*/1);
  AckLog log;
  absl::Notification retried;
  ASSERT_TRUE(
      connection
          ->PublishAsync(
              "orders", "first",
              [&](const std::string&, const absl::StatusOr<uint64_t>&) {
                // The slot was freed before this runs.
                EXPECT_TRUE(
                    connection->PublishAsync("orders", "second", log.Handler())
                        .ok());
                retried.Notify();
              })
          .ok());
  ASSERT_TRUE(retried.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(connection->Flush(absl::Seconds(10)).ok());
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(*log.results()[0], 2u);
}

TEST_F(PublisherTest, WaitingMessagesShareOneFrame) {
  auto connection = Connect();
  // While the writer is stuck behind the big frames, the small messages
  // wait in the outbox; they must leave together.
  server_.service().set_pause_reads(true);
  for (int i = 0; i < kStuckFrames; ++i) {
    ASSERT_TRUE(
        connection->PublishAsync("big", MegabytePayload(), nullptr).ok());
  }
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(connection->PublishAsync("small", "y", nullptr).ok());
  }
  server_.service().set_pause_reads(false);
  ASSERT_TRUE(connection->Flush(absl::Seconds(10)).ok());
  const std::vector<int> sizes = server_.service().pub_batch_sizes();
  EXPECT_EQ(std::accumulate(sizes.begin(), sizes.end(), 0), kStuckFrames + 10);
  // Two 1 MB messages never share a frame, so each big one has its own; the
  // ten small ones add at most one frame (possibly sharing the last big
  // one's), never one frame each.
  EXPECT_LE(sizes.size(), static_cast<size_t>(kStuckFrames + 1))
      << ::testing::PrintToString(sizes);
  const auto published = server_.service().stream_published();
  ASSERT_EQ(published.size(), static_cast<size_t>(kStuckFrames + 10));
  EXPECT_EQ(published.back().subject(), "small");
}

TEST_F(PublisherTest, FramesStayUnderTheByteLimit) {
  auto connection = Connect();
  server_.service().set_pause_reads(true);
  const std::string payload(AsyncPublisher::kBatchBytesMax / 3, 'z');
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(connection->PublishAsync("orders", payload, nullptr).ok());
  }
  server_.service().set_pause_reads(false);
  ASSERT_TRUE(connection->Flush(absl::Seconds(10)).ok());
  const std::vector<int> sizes = server_.service().pub_batch_sizes();
  EXPECT_EQ(std::accumulate(sizes.begin(), sizes.end(), 0), 7);
  for (int size : sizes) {
    EXPECT_LE(size, 2);
  }
}

TEST_F(PublisherTest, FlushWaitsForEveryAck) {
  auto connection = Connect();
  server_.service().set_hold_acks(true);
  AckLog log;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(connection->PublishAsync("orders", "x", log.Handler()).ok());
  }
  const absl::Status early = connection->Flush(absl::Milliseconds(100));
  EXPECT_EQ(early.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(early.message(), HasSubstr("3 async publishes"));
  server_.service().set_hold_acks(false);
  EXPECT_TRUE(connection->Flush(absl::Seconds(10)).ok());
  EXPECT_EQ(log.size(), 3u);
}

TEST_F(PublisherTest, CloseFailsPendingWithCancelled) {
  auto connection = Connect();
  server_.service().set_hold_acks(true);
  AckLog log;
  ASSERT_TRUE(connection->PublishAsync("orders", "x", log.Handler()).ok());
  ASSERT_TRUE(connection->PublishAsync("orders", "y", log.Handler()).ok());
  EXPECT_TRUE(connection->Close().ok());
  ASSERT_EQ(log.size(), 2u);
  for (const auto& result : log.results()) {
    EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
  }
  EXPECT_EQ(connection->PublishAsync("orders", "z", nullptr).code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace spate::client
