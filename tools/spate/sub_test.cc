// `spate sub` end to end against the fake server.
#include "tools/spate/sub.h"

#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "client/testing/fake_streaming.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/spate/command.h"

namespace spate::cli {
namespace {

using ::spate::client::testing::Eventually;
using ::spate::client::testing::FakeServer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

MsgProto Msg(uint64_t sequence, std::string data, bool redelivered = false) {
  MsgProto msg;
  msg.set_sequence(sequence);
  msg.set_subject("orders");
  msg.set_data(std::move(data));
  msg.set_redelivered(redelivered);
  return msg;
}

class SubTest : public ::testing::Test {
 protected:
  // Runs `spate sub` on a thread; Wait() joins it and returns the code.
  void Start(std::vector<std::string> args) {
    std::vector<std::string> argv = {"spate", "sub", "--server",
                                     server_.address()};
    argv.insert(argv.end(), args.begin(), args.end());
    thread_ = std::thread(
        [this, argv] { exit_code_ = RunCli({SubCommand()}, argv, io_); });
  }
  int Wait() {
    thread_.join();
    return exit_code_;
  }
  std::vector<uint64_t> Acked() {
    std::vector<uint64_t> all;
    for (const auto& frame : server_.service().ack_frames(0)) {
      all.insert(all.end(), frame.begin(), frame.end());
    }
    return all;
  }

  FakeServer server_;
  std::istringstream in_;
  std::ostringstream out_;
  std::ostringstream err_;
  std::atomic<bool> interrupted_{false};
  Io io_{&in_, &out_, &err_, &interrupted_};
  std::thread thread_;
  int exit_code_ = -1;
};

TEST_F(SubTest, PrintsCountMessagesAcksOnlyThoseAndCloses) {
  Start({"orders", "--count=2", "--durable", "d", "--all", "--max_in_flight=5",
         "--ack_wait=7s"});
  ASSERT_TRUE(Eventually(
      [&] { return server_.service().subscribe_requests().size() == 1; }));
  server_.service().Deliver(
      0, {Msg(1, "one"), Msg(2, "two", true), Msg(3, "three")});
  ASSERT_EQ(Wait(), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), "[#1] one\n[#2] [redelivered] two\n");

  const SubscriptionRequest request = server_.service().subscribe_requests()[0];
  EXPECT_EQ(request.subject(), "orders");
  EXPECT_EQ(request.durable_name(), "d");
  EXPECT_EQ(request.start_position(), ::spate::FIRST);
  EXPECT_EQ(request.max_in_flight(), 5);
  EXPECT_EQ(request.ack_wait_in_secs(), 7);
  // The third message was not printed, so it is not acked: a durable
  // resumes with it.
  EXPECT_THAT(Acked(), ElementsAre(1, 2));
  // Closed (the stream's end), not unsubscribed: the durable stays.
  EXPECT_TRUE(server_.service().subscribe_stream_half_closed(0));
  EXPECT_TRUE(server_.service().unsubscribes().empty());
  EXPECT_EQ(server_.service().closes().size(), 1u);
}

TEST_F(SubTest, CountShowsProgressOnStderrWhileWaiting) {
  Start({"orders", "--count=3"});
  ASSERT_TRUE(Eventually(
      [&] { return server_.service().subscribe_requests().size() == 1; }));
  server_.service().Deliver(0, {Msg(1, "one")});
  // Long enough for at least one progress line.
  absl::SleepFor(absl::Milliseconds(1500));
  server_.service().Deliver(0, {Msg(2, "two"), Msg(3, "three")});
  ASSERT_EQ(Wait(), kExitOk) << err_.str();
  EXPECT_THAT(err_.str(), HasSubstr("received 1 of 3\n"));
  // Messages alone on stdout.
  EXPECT_EQ(out_.str(), "[#1] one\n[#2] two\n[#3] three\n");
}

TEST_F(SubTest, UnsubscribeFlagRemovesTheSubscription) {
  Start({"orders", "--count=1", "--seq=4", "--queue=workers"});
  ASSERT_TRUE(Eventually(
      [&] { return server_.service().subscribe_requests().size() == 1; }));
  server_.service().Deliver(0, {Msg(4, "four")});
  ASSERT_EQ(Wait(), kExitOk) << err_.str();
  // Without --unsubscribe the subscription is only closed.
  EXPECT_TRUE(server_.service().unsubscribes().empty());
  const SubscriptionRequest request = server_.service().subscribe_requests()[0];
  EXPECT_EQ(request.start_position(), ::spate::SEQUENCE_START);
  EXPECT_EQ(request.start_sequence(), 4u);
  EXPECT_EQ(request.q_group(), "workers");

  Start({"orders", "--count=1", "--unsubscribe", "--since=5m"});
  ASSERT_TRUE(Eventually(
      [&] { return server_.service().subscribe_requests().size() == 2; }));
  server_.service().Deliver(1, {Msg(5, "five")});
  ASSERT_EQ(Wait(), kExitOk) << err_.str();
  const auto unsubscribes = server_.service().unsubscribes();
  ASSERT_EQ(unsubscribes.size(), 1u);
  EXPECT_FALSE(unsubscribes[0].close_only());
  EXPECT_EQ(unsubscribes[0].subscription_id(), "sub-1");
  const SubscriptionRequest since = server_.service().subscribe_requests()[1];
  EXPECT_EQ(since.start_position(), ::spate::TIME_DELTA_START);
  EXPECT_EQ(since.start_time_delta_ns(), 300'000'000'000);
}

TEST_F(SubTest, InterruptClosesCleanly) {
  Start({"orders"});
  ASSERT_TRUE(Eventually(
      [&] { return server_.service().subscribe_requests().size() == 1; }));
  server_.service().Deliver(0, {Msg(1, "one")});
  ASSERT_TRUE(Eventually([&] { return Acked().size() == 1; }));
  interrupted_ = true;
  ASSERT_EQ(Wait(), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), "[#1] one\n");
  EXPECT_EQ(server_.service().subscribe_requests()[0].start_position(),
            ::spate::NEW_ONLY);
  EXPECT_TRUE(server_.service().subscribe_stream_half_closed(0));
  EXPECT_TRUE(server_.service().unsubscribes().empty());
}

TEST_F(SubTest, LostSubscriptionExitsWithTheError) {
  Start({"orders"});
  ASSERT_TRUE(Eventually(
      [&] { return server_.service().subscribe_requests().size() == 1; }));
  server_.service().CancelSubscribeStreams();
  EXPECT_EQ(Wait(), kExitError);
  EXPECT_THAT(err_.str(), HasSubstr("spate sub: CANCELLED"));
}

TEST_F(SubTest, ABrokenStreamIsResubscribedAfterTheLastPrinted) {
  Start({"orders", "--count=2"});
  ASSERT_TRUE(Eventually(
      [&] { return server_.service().subscribe_requests().size() == 1; }));
  server_.service().Deliver(0, {Msg(1, "one")});
  ASSERT_TRUE(Eventually([&] { return Acked().size() == 1; }));
  server_.service().EndSubscribeStreams(
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "leader moved"));
  ASSERT_TRUE(Eventually(
      [&] { return server_.service().subscribe_requests().size() == 2; }));
  const SubscriptionRequest again = server_.service().subscribe_requests()[1];
  EXPECT_EQ(again.start_position(), ::spate::SEQUENCE_START);
  EXPECT_EQ(again.start_sequence(), 2u);
  server_.service().Deliver(1, {Msg(2, "two")});
  ASSERT_EQ(Wait(), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), "[#1] one\n[#2] two\n");
}

TEST_F(SubTest, ZeroReconnectWaitMakesABrokenStreamFinal) {
  Start({"orders", "--reconnect_wait=0"});
  ASSERT_TRUE(Eventually(
      [&] { return server_.service().subscribe_requests().size() == 1; }));
  server_.service().EndSubscribeStreams(
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "leader moved"));
  EXPECT_EQ(Wait(), kExitError);
  EXPECT_THAT(err_.str(), HasSubstr("leader moved"));
  EXPECT_EQ(server_.service().subscribe_requests().size(), 1u);
}

TEST_F(SubTest, ServerRefusalIsPrinted) {
  server_.service().set_subscribe_status(grpc::Status(
      grpc::StatusCode::ALREADY_EXISTS, "durable d is already in use"));
  Start({"orders", "--durable=d"});
  EXPECT_EQ(Wait(), kExitError);
  EXPECT_THAT(err_.str(), HasSubstr("durable d is already in use"));
}

TEST_F(SubTest, ConflictingStartFlagsAreAUsageError) {
  Start({"orders", "--last", "--all"});
  EXPECT_EQ(Wait(), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("choose one of"));
  Start({"orders", "--ack_wait=soon"});
  EXPECT_EQ(Wait(), kExitUsage);
  EXPECT_TRUE(server_.service().subscribe_requests().empty());
}

}  // namespace
}  // namespace spate::cli
