// One spate-server process per test, driven over real gRPC: every client
// behaviour of DESIGN.md §4 on a single node, including crash recovery.
#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/testing/server_process.h"
#include "tests/testing/stream_client.h"

namespace spate::testing {
namespace {

using absl::StatusCode;

class SingleNodeTest : public ::testing::Test {
 protected:
  void StartServer(const std::string& config = "") {
    if (data_dir_.empty()) data_dir_ = ServerProcess::NewTempDir("node");
    server_ = std::make_unique<ServerProcess>(data_dir_, config);
    absl::Status status = server_->Start();
    ASSERT_TRUE(status.ok()) << status;
  }

  std::unique_ptr<TestConnection> Connected(const std::string& client_id) {
    auto connection =
        std::make_unique<TestConnection>(server_->address(), client_id);
    absl::StatusOr<ConnectResponse> response = connection->Connect();
    EXPECT_TRUE(response.ok()) << response.status();
    return connection;
  }

  void TearDown() override {
    if (server_ != nullptr && server_->running()) {
      EXPECT_TRUE(server_->Stop().ok()) << server_->Log();
    }
  }

  std::string data_dir_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(SingleNodeTest, PublishThenSubscribeFromFirst) {
  StartServer();
  auto conn = Connected("c1");
  for (int i = 1; i <= 3; ++i) {
    absl::StatusOr<uint64_t> seq =
        conn->Publish("orders", absl::StrCat("m", i));
    ASSERT_TRUE(seq.ok()) << seq.status();
    EXPECT_EQ(*seq, static_cast<uint64_t>(i));
  }
  SubscriptionRequest request = conn->SubRequest("orders");
  request.set_start_position(FIRST);
  TestSubscriber sub(conn->stub(), request);
  absl::StatusOr<SubscriptionResponse> started = sub.WaitStarted();
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ(started->start_sequence(), 1u);
  std::vector<MsgProto> msgs = sub.NextN(3);
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[0].data(), "m1");
  EXPECT_EQ(msgs[2].sequence(), 3u);
  EXPECT_EQ(msgs[1].subject(), "orders");
  EXPECT_FALSE(msgs[0].redelivered());
  EXPECT_GT(msgs[0].timestamp(), 0);

  // New messages arrive live.
  ASSERT_TRUE(conn->Publish("orders", "m4").ok());
  std::optional<MsgProto> live = sub.Next();
  ASSERT_TRUE(live.has_value());
  EXPECT_EQ(live->sequence(), 4u);
}

}  // namespace
}  // namespace spate::testing
