// `spate pub` end to end against the fake server.
#include "tools/spate/pub.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "client/testing/fake_streaming.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/spate/command.h"

namespace spate::cli {
namespace {

using ::spate::client::testing::FakeServer;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

class PubTest : public ::testing::Test {
 protected:
  int Run(std::vector<std::string> args, const std::string& stdin_text = "") {
    std::vector<std::string> argv = {"spate", "pub", "--server",
                                     server_.address()};
    argv.insert(argv.end(), args.begin(), args.end());
    in_.str(stdin_text);
    in_.clear();
    out_.str("");
    err_.str("");
    return RunCli({PubCommand()}, argv, io_);
  }

  FakeServer server_;
  std::istringstream in_;
  std::ostringstream out_;
  std::ostringstream err_;
  std::atomic<bool> interrupted_{false};
  Io io_{&in_, &out_, &err_, &interrupted_};
};

TEST_F(PubTest, PublishesTheMessageAndPrintsItsSequence) {
  ASSERT_EQ(Run({"orders", "hello"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), "published orders seq=1\n");
  const auto published = server_.service().sync_published();
  ASSERT_EQ(published.size(), 1u);
  EXPECT_EQ(published[0].subject(), "orders");
  EXPECT_EQ(published[0].data(), "hello");
  EXPECT_TRUE(absl::StartsWith(published[0].client_id(), "spate-cli-"));
  // The connection was closed, not left to expire.
  EXPECT_EQ(server_.service().closes().size(), 1u);
}

TEST_F(PubTest, PublishesEachStdinLine) {
  ASSERT_EQ(Run({"orders", "--client_id=me"}, "first\nsecond\n"), kExitOk)
      << err_.str();
  EXPECT_EQ(out_.str(), "published orders seq=1\npublished orders seq=2\n");
  const auto published = server_.service().sync_published();
  ASSERT_EQ(published.size(), 2u);
  EXPECT_EQ(published[0].data(), "first");
  EXPECT_EQ(published[1].data(), "second");
  EXPECT_EQ(published[1].client_id(), "me");
}

TEST_F(PubTest, AsyncCountPrintsASummary) {
  ASSERT_EQ(Run({"orders", "x", "--async", "--count", "50"}), kExitOk)
      << err_.str();
  EXPECT_THAT(out_.str(),
              MatchesRegex("published 50 messages to orders in [0-9.]+s "
                           "\\([0-9]+ msgs/s\\), last seq=50\n"));
  EXPECT_EQ(server_.service().stream_published().size(), 50u);
  EXPECT_TRUE(server_.service().sync_published().empty());
}

TEST_F(PubTest, AsyncSingleMessagePrintsItsSequence) {
  ASSERT_EQ(Run({"orders", "x", "--async"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), "published orders seq=1\n");
}

TEST_F(PubTest, ServerErrorIsPrintedAndFails) {
  server_.service().set_publish_status(grpc::Status(
      grpc::StatusCode::INVALID_ARGUMENT, "subject has an empty token"));
  EXPECT_EQ(Run({"a..b", "x"}), kExitError);
  EXPECT_THAT(err_.str(), HasSubstr("spate pub: INVALID_ARGUMENT"));
  EXPECT_THAT(err_.str(), HasSubstr("subject has an empty token"));
}

TEST_F(PubTest, AsyncAckErrorsFail) {
  server_.service().set_ack_error(
      "orders", grpc::StatusCode::RESOURCE_EXHAUSTED, "channel limit reached");
  EXPECT_EQ(Run({"orders", "x", "--async", "--count=3"}), kExitError);
  EXPECT_THAT(err_.str(), HasSubstr("3 publish(es) failed"));
  EXPECT_THAT(err_.str(), HasSubstr("channel limit reached"));
}

TEST_F(PubTest, ConnectFailureIsPrinted) {
  server_.service().set_connect_status(
      grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "client id in use"));
  EXPECT_EQ(Run({"orders", "x"}), kExitError);
  EXPECT_THAT(err_.str(), HasSubstr("client id in use"));
}

TEST_F(PubTest, NeedsAChannel) {
  EXPECT_EQ(Run({}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("expected CHANNEL [MESSAGE]"));
  EXPECT_EQ(Run({"a", "b", "c"}), kExitUsage);
}

}  // namespace
}  // namespace spate::cli
