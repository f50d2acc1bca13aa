// Connection against the in-process fake server: connect, pings and the
// lost handler, synchronous publish, close and thread cleanup.
#include "client/connection.h"

#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "client/testing/fake_streaming.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace spate::client {
namespace {

using ::spate::client::testing::CountClientThreads;
using ::spate::client::testing::Eventually;
using ::spate::client::testing::FakeServer;
using ::testing::HasSubstr;

ClientOptions OptionsFor(const FakeServer& server) {
  ClientOptions options;
  options.servers = {server.address()};
  options.client_id = "conn-test";
  return options;
}

// An address where nothing listens: a fake server that was shut down.
std::string DeadAddress() {
  FakeServer gone;
  return gone.address();
}

TEST(ConnectTest, SendsClientIdAndAFreshRandomConnId) {
  FakeServer server;
  auto first = Connection::Connect(OptionsFor(server));
  ASSERT_TRUE(first.ok()) << first.status();
  auto second_options = OptionsFor(server);
  second_options.client_id = "conn-test-2";
  auto second = Connection::Connect(second_options);
  ASSERT_TRUE(second.ok()) << second.status();

  const auto requests = server.service().connect_requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].client_id(), "conn-test");
  EXPECT_EQ(requests[1].client_id(), "conn-test-2");
  EXPECT_EQ(requests[0].conn_id().size(), 16u);
  EXPECT_NE(requests[0].conn_id(), requests[1].conn_id());
  EXPECT_EQ((*first)->server(), server.address());
  EXPECT_EQ((*first)->server_info().cluster_name(), "fake");
}

TEST(ConnectTest, SurfacesTheServersRefusal) {
  FakeServer server;
  server.service().set_connect_status(grpc::Status(
      grpc::StatusCode::ALREADY_EXISTS, "client id conn-test is in use"));
  auto connection = Connection::Connect(OptionsFor(server));
  ASSERT_FALSE(connection.ok());
  EXPECT_EQ(connection.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(connection.status().message(),
              HasSubstr("client id conn-test is in use"));
}

TEST(ConnectTest, SkipsUnreachableServersInOrder) {
  FakeServer server;
  ClientOptions options = OptionsFor(server);
  options.servers = {DeadAddress(), server.address()};
  auto connection = Connection::Connect(options);
  ASSERT_TRUE(connection.ok()) << connection.status();
  EXPECT_EQ((*connection)->server(), server.address());
}

TEST(ConnectTest, RefusalFromTheFirstServerStopsTheSearch) {
  FakeServer refusing;
  FakeServer accepting;
  refusing.service().set_connect_status(
      grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad client id"));
  ClientOptions options = OptionsFor(refusing);
  options.servers = {refusing.address(), accepting.address()};
  auto connection = Connection::Connect(options);
  EXPECT_EQ(connection.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(accepting.service().connect_requests().empty());
}

TEST(ConnectTest, NoServerReachableIsUnavailable) {
  ClientOptions options;
  options.servers = {DeadAddress()};
  options.client_id = "conn-test";
  auto connection = Connection::Connect(options);
  EXPECT_EQ(connection.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(connection.status().message(), HasSubstr(options.servers[0]));
}

TEST(ConnectTest, RejectsBadOptions) {
  ClientOptions options;
  options.client_id = "x";
  EXPECT_EQ(Connection::Connect(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.servers = {"127.0.0.1:1"};
  options.max_pub_acks_in_flight = 0;
  EXPECT_EQ(Connection::Connect(options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PingTest, UsesTheServersIntervalAndKeepsPinging) {
  FakeServer server;
  ConnectResponse response;
  response.set_ping_interval_ms(10);
  response.set_ping_max_out(3);
  server.service().set_connect_response(response);
  auto connection = Connection::Connect(OptionsFor(server));
  ASSERT_TRUE(connection.ok()) << connection.status();
  EXPECT_EQ((*connection)->ping_interval(), absl::Milliseconds(10));
  EXPECT_TRUE(Eventually([&] { return server.service().ping_count() >= 5; }));
}

TEST(PingTest, NotFoundLosesTheConnectionOnceWithoutReconnection) {
  FakeServer server;
  std::atomic<int> lost_calls{0};
  absl::Notification lost;
  absl::Status reason;
  ClientOptions options = OptionsFor(server);
  options.ping_interval = absl::Milliseconds(10);
  options.ping_max_out = 100;  // NOT_FOUND must not wait for misses.
  options.reconnect_wait = absl::ZeroDuration();
  options.connection_lost_handler = [&](const absl::Status& status) {
    reason = status;
    if (lost_calls.fetch_add(1) == 0) lost.Notify();
  };
  auto connection = Connection::Connect(options);
  ASSERT_TRUE(connection.ok()) << connection.status();
  ASSERT_TRUE(Eventually([&] { return server.service().ping_count() >= 2; }));
  server.service().set_ping_status(
      grpc::Status(grpc::StatusCode::NOT_FOUND, "client was replaced"));

  ASSERT_TRUE(lost.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(reason.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(reason.message(), HasSubstr("client was replaced"));
  // Pinging stopped: no more pings, no second call.
  const int pings = server.service().ping_count();
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(server.service().ping_count(), pings);
  EXPECT_EQ(lost_calls.load(), 1);

  const auto published = (*connection)->Publish("orders", "x");
  EXPECT_EQ(published.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(published.status().message(), HasSubstr("lost"));
  EXPECT_EQ((*connection)->PublishAsync("orders", "x", nullptr).code(),
            absl::StatusCode::kFailedPrecondition);
  // Nothing to close on the server: it no longer knows us.
  EXPECT_TRUE((*connection)->Close().ok());
  EXPECT_TRUE(server.service().closes().empty());
  // No reconnection was attempted.
  EXPECT_EQ(server.service().connect_requests().size(), 1u);
}

TEST(PingTest, PingMaxOutFailuresInARowLoseTheConnection) {
  FakeServer server;
  absl::Notification lost;
  absl::Status reason;
  ClientOptions options = OptionsFor(server);
  options.ping_interval = absl::Milliseconds(10);
  options.ping_max_out = 3;
  options.reconnect_wait = absl::ZeroDuration();
  options.connection_lost_handler = [&](const absl::Status& status) {
    reason = status;
    lost.Notify();
  };
  auto connection = Connection::Connect(options);
  ASSERT_TRUE(connection.ok()) << connection.status();
  server.service().set_ping_status(
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "no leader"));
  ASSERT_TRUE(lost.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(reason.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(reason.message(), HasSubstr("no leader"));
  EXPECT_GE(server.service().ping_count(), 3);
}

TEST(ReconnectTest, MovesToTheNextServerKeepingTheClientId) {
  FakeServer first;
  FakeServer second;
  std::atomic<int> lost_calls{0};
  absl::Notification reconnected;
  std::string reconnected_to;
  ClientOptions options = OptionsFor(first);
  options.servers = {first.address(), second.address()};
  options.ping_interval = absl::Milliseconds(10);
  options.connection_lost_handler = [&](const absl::Status&) { ++lost_calls; };
  options.reconnected_handler = [&](const std::string& server) {
    reconnected_to = server;
    reconnected.Notify();
  };
  auto connection = Connection::Connect(options);
  ASSERT_TRUE(connection.ok()) << connection.status();
  first.service().set_ping_status(
      grpc::Status(grpc::StatusCode::NOT_FOUND, "client was replaced"));

  ASSERT_TRUE(reconnected.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(reconnected_to, second.address());
  EXPECT_EQ((*connection)->server(), second.address());
  EXPECT_EQ((*connection)->reconnects(), 1);
  const auto before = first.service().connect_requests();
  const auto after = second.service().connect_requests();
  ASSERT_EQ(before.size(), 1u);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].client_id(), "conn-test");
  EXPECT_EQ(after[0].conn_id().size(), 16u);
  EXPECT_NE(after[0].conn_id(), before[0].conn_id());
  // The connection works on, with the new conn_id.
  auto published = (*connection)->Publish("orders", "x");
  ASSERT_TRUE(published.ok()) << published.status();
  ASSERT_EQ(second.service().sync_published().size(), 1u);
  EXPECT_EQ(second.service().sync_published()[0].conn_id(), after[0].conn_id());
  EXPECT_TRUE(Eventually([&] { return second.service().ping_count() >= 2; }));
  EXPECT_EQ(lost_calls.load(), 0);
  EXPECT_TRUE((*connection)->Close().ok());
  ASSERT_EQ(second.service().closes().size(), 1u);
  EXPECT_EQ(second.service().closes()[0].conn_id(), after[0].conn_id());
}

TEST(ReconnectTest, RetriesWhileTheOldConnectionLooksAlive) {
  FakeServer server;
  absl::Notification reconnected;
  ClientOptions options = OptionsFor(server);
  options.ping_interval = absl::Milliseconds(10);
  options.reconnected_handler = [&](const std::string&) {
    server.service().set_ping_status(grpc::Status::OK);
    reconnected.Notify();
  };
  auto connection = Connection::Connect(options);
  ASSERT_TRUE(connection.ok()) << connection.status();
  server.service().FailNextConnects(
      3, grpc::Status(grpc::StatusCode::ALREADY_EXISTS,
                      "client id conn-test is already connected and alive"));
  server.service().set_ping_status(
      grpc::Status(grpc::StatusCode::NOT_FOUND, "client was replaced"));

  ASSERT_TRUE(reconnected.WaitForNotificationWithTimeout(absl::Seconds(10)));
  const auto requests = server.service().connect_requests();
  ASSERT_EQ(requests.size(), 5u);
  // Every attempt of one reconnection uses the same new conn_id.
  for (size_t i = 2; i < requests.size(); ++i) {
    EXPECT_EQ(requests[i].conn_id(), requests[1].conn_id());
  }
  EXPECT_NE(requests[1].conn_id(), requests[0].conn_id());
  EXPECT_EQ((*connection)->reconnects(), 1);
}

TEST(ReconnectTest, GivesUpAfterReconnectWait) {
  FakeServer server;
  absl::Notification lost;
  absl::Status reason;
  ClientOptions options = OptionsFor(server);
  options.ping_interval = absl::Milliseconds(10);
  options.reconnect_wait = absl::Milliseconds(300);
  options.connection_lost_handler = [&](const absl::Status& status) {
    reason = status;
    lost.Notify();
  };
  auto connection = Connection::Connect(options);
  ASSERT_TRUE(connection.ok()) << connection.status();
  server.service().set_connect_status(
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "no leader"));
  const absl::Time broken = absl::Now();
  server.service().set_ping_status(
      grpc::Status(grpc::StatusCode::NOT_FOUND, "client was replaced"));

  ASSERT_TRUE(lost.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_GE(absl::Now() - broken, absl::Milliseconds(300));
  EXPECT_EQ(reason.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(reason.message(), HasSubstr("reconnecting failed within"));
  EXPECT_THAT(reason.message(), HasSubstr("client was replaced"));
  EXPECT_THAT(reason.message(), HasSubstr("no leader"));
  // Several attempts, with backoff rather than a tight loop.
  const size_t attempts = server.service().connect_requests().size() - 1;
  EXPECT_GE(attempts, 2u);
  EXPECT_LE(attempts, 20u);
  EXPECT_EQ((*connection)->Publish("orders", "x").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(ReconnectTest, ARefusalEndsReconnectingAtOnce) {
  FakeServer server;
  absl::Notification lost;
  absl::Status reason;
  ClientOptions options = OptionsFor(server);
  options.ping_interval = absl::Milliseconds(10);
  options.reconnect_wait = absl::Seconds(60);
  options.connection_lost_handler = [&](const absl::Status& status) {
    reason = status;
    lost.Notify();
  };
  auto connection = Connection::Connect(options);
  ASSERT_TRUE(connection.ok()) << connection.status();
  server.service().set_connect_status(
      grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad client id"));
  server.service().set_ping_status(
      grpc::Status(grpc::StatusCode::NOT_FOUND, "client was replaced"));
  ASSERT_TRUE(lost.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(reason.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(server.service().connect_requests().size(), 2u);
}

TEST(ReconnectTest, CloseEndsReconnectingPromptly) {
  FakeServer server;
  std::atomic<int> lost_calls{0};
  ClientOptions options = OptionsFor(server);
  options.ping_interval = absl::Milliseconds(10);
  options.connection_lost_handler = [&](const absl::Status&) { ++lost_calls; };
  auto connection = Connection::Connect(options);
  ASSERT_TRUE(connection.ok()) << connection.status();
  server.service().set_connect_status(
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "no leader"));
  server.service().set_ping_status(
      grpc::Status(grpc::StatusCode::NOT_FOUND, "client was replaced"));
  ASSERT_TRUE(Eventually(
      [&] { return server.service().connect_requests().size() >= 3; }));
  const absl::Time start = absl::Now();
  EXPECT_TRUE((*connection)->Close().ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_EQ(lost_calls.load(), 0);
  // Nobody to say goodbye to: the server did not know this connection.
  EXPECT_TRUE(server.service().closes().empty());
  EXPECT_EQ(CountClientThreads(), 0);
}

TEST(PublishTest, RetriesUnavailableWithTheSameGuid) {
  FakeServer server;
  auto connection = Connection::Connect(OptionsFor(server));
  ASSERT_TRUE(connection.ok()) << connection.status();
  server.service().set_publish_status(
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "no leader yet"));
  absl::StatusOr<uint64_t> published;
  std::thread publisher(
      [&] { published = (*connection)->Publish("orders", "x"); });
  ASSERT_TRUE(Eventually(
      [&] { return server.service().sync_published().size() >= 3; }));
  server.service().set_publish_status(grpc::Status::OK);
  publisher.join();
  ASSERT_TRUE(published.ok()) << published.status();
  EXPECT_EQ(*published, 1u);
  const auto attempts = server.service().sync_published();
  for (const PubMsg& attempt : attempts) {
    EXPECT_EQ(attempt.guid(), attempts[0].guid());
  }
}

TEST(PublishTest, UnavailableUntilTheDeadlineIsDeadlineExceeded) {
  FakeServer server;
  ClientOptions options = OptionsFor(server);
  options.pub_ack_wait = absl::Milliseconds(300);
  auto connection = Connection::Connect(options);
  ASSERT_TRUE(connection.ok()) << connection.status();
  server.service().set_publish_status(
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "no leader yet"));
  const absl::Time start = absl::Now();
  auto published = (*connection)->Publish("orders", "x");
  EXPECT_EQ(published.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(published.status().message(), HasSubstr("no leader yet"));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(290));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST(PublishTest, WaitsForTheReconnectionAndGoesToTheNewServer) {
  auto first = std::make_unique<FakeServer>();
  FakeServer second;
  ClientOptions options = OptionsFor(*first);
  options.servers = {first->address(), second.address()};
  options.ping_interval = absl::Milliseconds(20);
  options.ping_max_out = 2;
  auto connection = Connection::Connect(options);
  ASSERT_TRUE(connection.ok()) << connection.status();
  first->service().set_publish_status(
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down"));
  absl::StatusOr<uint64_t> published;
  std::thread publisher(
      [&] { published = (*connection)->Publish("orders", "x"); });
  ASSERT_TRUE(
      Eventually([&] { return !first->service().sync_published().empty(); }));
  const std::string guid = first->service().sync_published()[0].guid();
  first.reset();  // The server dies.
  publisher.join();
  ASSERT_TRUE(published.ok()) << published.status();
  ASSERT_EQ(second.service().sync_published().size(), 1u);
  EXPECT_EQ(second.service().sync_published()[0].guid(), guid);
  EXPECT_EQ((*connection)->reconnects(), 1);
}

TEST(PublishTest, ReturnsTheSequenceAndSendsIdsAndHeaders) {
  FakeServer server;
  auto connection = Connection::Connect(OptionsFor(server));
  ASSERT_TRUE(connection.ok()) << connection.status();
  auto first = (*connection)->Publish("orders", "one", {{"k", "v"}});
  auto second = (*connection)->Publish("orders", "two");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*first, 1u);
  EXPECT_EQ(*second, 2u);

  const auto published = server.service().sync_published();
  ASSERT_EQ(published.size(), 2u);
  EXPECT_EQ(published[0].client_id(), "conn-test");
  EXPECT_EQ(published[0].conn_id(),
            server.service().connect_requests()[0].conn_id());
  EXPECT_EQ(published[0].subject(), "orders");
  EXPECT_EQ(published[0].data(), "one");
  EXPECT_EQ(published[0].headers().at("k"), "v");
  EXPECT_FALSE(published[0].guid().empty());
  EXPECT_NE(published[0].guid(), published[1].guid());
}

TEST(PublishTest, ErrorStatusComesBackAsIs) {
  FakeServer server;
  server.service().set_publish_status(grpc::Status(
      grpc::StatusCode::INVALID_ARGUMENT, "subject 'a..b' has an empty token"));
  auto connection = Connection::Connect(OptionsFor(server));
  ASSERT_TRUE(connection.ok()) << connection.status();
  auto published = (*connection)->Publish("a..b", "x");
  EXPECT_EQ(published.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(published.status().message(), "subject 'a..b' has an empty token");
}

TEST(CloseTest, SendsCloseOnceAndRefusesLaterCalls) {
  FakeServer server;
  auto connection = Connection::Connect(OptionsFor(server));
  ASSERT_TRUE(connection.ok()) << connection.status();
  EXPECT_TRUE((*connection)->Close().ok());
  EXPECT_TRUE((*connection)->Close().ok());
  const auto closes = server.service().closes();
  ASSERT_EQ(closes.size(), 1u);
  EXPECT_EQ(closes[0].client_id(), "conn-test");
  EXPECT_EQ(closes[0].conn_id(),
            server.service().connect_requests()[0].conn_id());
  const auto published = (*connection)->Publish("orders", "x");
  EXPECT_EQ(published.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(published.status().message(), HasSubstr("closed"));
  EXPECT_EQ((*connection)
                ->Subscribe("orders", {}, [](const Message&) {})
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(CloseTest, DestructorEndsStreamsAndJoinsEveryThread) {
  FakeServer server;
  ASSERT_EQ(CountClientThreads(), 0);
  {
    ClientOptions options = OptionsFor(server);
    options.ping_interval = absl::Milliseconds(10);
    auto connection = Connection::Connect(options);
    ASSERT_TRUE(connection.ok()) << connection.status();
    ASSERT_TRUE((*connection)->PublishAsync("orders", "x", nullptr).ok());
    ASSERT_TRUE((*connection)->Flush(absl::Seconds(10)).ok());
    auto sub1 = (*connection)->Subscribe("orders", {}, [](const Message&) {});
    ASSERT_TRUE(sub1.ok()) << sub1.status();
    SubscribeOptions durable;
    durable.durable_name = "d";
    auto sub2 =
        (*connection)->Subscribe("orders", durable, [](const Message&) {});
    ASSERT_TRUE(sub2.ok()) << sub2.status();
    // ping + 2 publish + 2 x 3 subscription threads (they name themselves
    // right after they start).
    EXPECT_TRUE(Eventually([] { return CountClientThreads() == 9; }));
    connection->reset();
    EXPECT_EQ(CountClientThreads(), 0);
    EXPECT_EQ(server.service().closes().size(), 1u);
    // Both subscription streams were half-closed, not cancelled.
    EXPECT_TRUE(server.service().subscribe_stream_half_closed(0));
    EXPECT_TRUE(server.service().subscribe_stream_half_closed(1));
    // The handles outlive the connection; closing them is harmless.
    EXPECT_TRUE((*sub1)->Close().ok());
  }
  EXPECT_EQ(CountClientThreads(), 0);
}

TEST(CloseTest, LostHandlerMayCloseTheConnection) {
  FakeServer server;
  absl::Notification closed;
  Connection* raw = nullptr;
  ClientOptions options = OptionsFor(server);
  options.ping_interval = absl::Milliseconds(10);
  options.reconnect_wait = absl::ZeroDuration();
  options.connection_lost_handler = [&](const absl::Status&) {
    EXPECT_TRUE(raw->Close().ok());
    closed.Notify();
  };
  auto connection = Connection::Connect(options);
  ASSERT_TRUE(connection.ok()) << connection.status();
  raw = connection->get();
  server.service().set_ping_status(
      grpc::Status(grpc::StatusCode::NOT_FOUND, "expired"));
  ASSERT_TRUE(closed.WaitForNotificationWithTimeout(absl::Seconds(10)));
  connection->reset();
  EXPECT_EQ(CountClientThreads(), 0);
}

}  // namespace
}  // namespace spate::client
