// HTTP monitoring against real spate-server processes: every endpoint's
// JSON follows real activity (publishes, durable and queue subscriptions,
// pending messages after unacked deliveries), /metrics parses as the
// Prometheus text format and its counters move, /healthz follows quorum.
#include <httplib.h>

#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/testing/cluster.h"
#include "tests/testing/server_process.h"
#include "tests/testing/stream_client.h"
#include "tests/testing/waits.h"

namespace spate::testing {
namespace {

using Json = nlohmann::json;

constexpr char kMonitorConfig[] = "monitor_address: \"127.0.0.1:0\"\n";

struct HttpResult {
  int status = 0;
  std::string body;
};

HttpResult Get(const std::string& address, const std::string& path) {
  const size_t colon = address.rfind(':');
  int port = 0;
  EXPECT_TRUE(absl::SimpleAtoi(address.substr(colon + 1), &port)) << address;
  httplib::Client client(address.substr(0, colon), port);
  client.set_connection_timeout(5);
  client.set_read_timeout(10);
  httplib::Result result = client.Get(path.c_str());
  if (!result) return {};
  return {result->status, result->body};
}

Json GetJson(const std::string& address, const std::string& path,
             int expected_status = 200) {
  HttpResult result = Get(address, path);
  EXPECT_EQ(result.status, expected_status) << path << ": " << result.body;
  Json json = Json::parse(result.body, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(json.is_discarded()) << path << ": " << result.body;
  return json;
}

// Parses the Prometheus text exposition format: every sample line is
// `name{labels} value`; returns "name{labels}" → value. Fails the test on a
// line that is neither a comment nor a well-formed sample.
std::map<std::string, double> ParseMetrics(const std::string& text) {
  std::map<std::string, double> samples;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    EXPECT_NE(space, absl::string_view::npos) << line;
    if (space == absl::string_view::npos) continue;
    double value = 0;
    const std::string value_text(line.substr(space + 1));
    EXPECT_TRUE(absl::SimpleAtod(value_text, &value) || value_text == "+Inf" ||
                value_text == "NaN")
        << line;
    const std::string key(line.substr(0, space));
    const size_t brace = key.find('{');
    const std::string name = key.substr(0, brace);
    EXPECT_FALSE(name.empty()) << line;
    for (char c : name) {
      EXPECT_TRUE(absl::ascii_isalnum(c) || c == '_' || c == ':') << line;
    }
    if (brace != std::string::npos) {
      EXPECT_EQ(key.back(), '}') << line;
    }
    samples[key] = value;
  }
  return samples;
}

class MonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(
        ServerProcess::NewTempDir("monitor"), kMonitorConfig);
    absl::Status status = server_->Start();
    ASSERT_TRUE(status.ok()) << status;
    ASSERT_FALSE(server_->monitor_address().empty()) << server_->Log();
    monitor_ = server_->monitor_address();
  }
  void TearDown() override {
    if (server_->running()) {
      absl::Status stopped = server_->Stop();
      EXPECT_TRUE(stopped.ok()) << stopped;
    }
    if (HasFailure()) std::cerr << "---- server log ----\n" << server_->Log();
  }
  std::unique_ptr<TestConnection> Connected(const std::string& client_id) {
    auto connection =
        std::make_unique<TestConnection>(server_->address(), client_id);
    absl::StatusOr<ConnectResponse> response = connection->Connect();
    EXPECT_TRUE(response.ok()) << response.status();
    return connection;
  }

  std::unique_ptr<ServerProcess> server_;
  std::string monitor_;
};

TEST_F(MonitorTest, EndpointsFollowActivity) {
  auto publisher = Connected("pub1");
  for (int i = 1; i <= 5; ++i) {
    ASSERT_TRUE(publisher->Publish("orders", absl::StrCat("msg", i)).ok());
  }
  // A durable subscription with a window of 2 that never acks: 2 pending,
  // stalled.
  auto durable_client = Connected("sub1");
  SubscriptionRequest durable = durable_client->SubRequest("orders");
  durable.set_durable_name("dur");
  durable.set_max_in_flight(2);
  durable.set_ack_wait_in_secs(30);
  durable.set_start_position(FIRST);
  TestSubscriber durable_sub(durable_client->stub(), durable);
  ASSERT_TRUE(durable_sub.WaitStarted().ok());
  ASSERT_EQ(durable_sub.NextN(2).size(), 2u);
  // A queue member that acks everything.
  auto queue_client = Connected("q1");
  SubscriptionRequest queue = queue_client->SubRequest("orders");
  queue.set_q_group("workers");
  queue.set_start_position(FIRST);
  TestSubscriber queue_sub(queue_client->stub(), queue);
  ASSERT_TRUE(queue_sub.WaitStarted().ok());
  std::vector<MsgProto> got = queue_sub.NextN(5);
  ASSERT_EQ(got.size(), 5u);
  ASSERT_TRUE(queue_sub.AckAll(got));

  // Acks travel asynchronously: wait until the queue member shows none.
  Json orders;
  ASSERT_TRUE(WaitFor(
      [&] {
        orders =
            GetJson(monitor_, "/streaming/channelsz?channel=orders&subs=1");
        if (!orders.contains("subscriptions")) return false;
        for (const Json& sub : orders["subscriptions"]) {
          if (sub["queue_name"] == "workers" && sub["pending_count"] != 0) {
            return false;
          }
        }
        return true;
      },
      absl::Seconds(10)))
      << orders.dump(2);
  EXPECT_EQ(orders["name"], "orders");
  EXPECT_EQ(orders["msgs"], 5);
  EXPECT_EQ(orders["first_seq"], 1);
  EXPECT_EQ(orders["last_seq"], 5);
  EXPECT_EQ(orders["is_leader"], true);
  ASSERT_EQ(orders["subscriptions"].size(), 2u) << orders.dump(2);
  for (const Json& sub : orders["subscriptions"]) {
    if (sub["durable_name"] == "dur") {
      EXPECT_EQ(sub["client_id"], "sub1");
      EXPECT_EQ(sub["is_durable"], true);
      EXPECT_EQ(sub["is_offline"], false);
      EXPECT_EQ(sub["queue_name"], "");
      EXPECT_EQ(sub["max_inflight"], 2);
      EXPECT_EQ(sub["ack_wait"], 30);
      EXPECT_EQ(sub["last_sent"], 2);
      EXPECT_EQ(sub["pending_count"], 2);
      EXPECT_EQ(sub["is_stalled"], true);
    } else {
      EXPECT_EQ(sub["client_id"], "q1");
      EXPECT_EQ(sub["queue_name"], "workers");
      EXPECT_EQ(sub["is_durable"], false);
      EXPECT_EQ(sub["last_sent"], 5);
      EXPECT_EQ(sub["is_stalled"], false);
    }
  }

  Json serverz = GetJson(monitor_, "/streaming/serverz");
  EXPECT_EQ(serverz["server_id"], "1");
  EXPECT_EQ(serverz["role"], "Leader");
  EXPECT_EQ(serverz["state"], "CLUSTERED");
  EXPECT_EQ(serverz["clients"], 3);
  EXPECT_EQ(serverz["channels"], 1);
  EXPECT_EQ(serverz["subscriptions"], 2);
  EXPECT_EQ(serverz["total_msgs"], 5);
  EXPECT_EQ(serverz["in_msgs"], 5);
  EXPECT_EQ(serverz["in_bytes"], 5 * 4);
  EXPECT_GE(serverz["out_msgs"].get<int64_t>(), 7);
  EXPECT_GT(serverz["open_fds"].get<int64_t>(), 0);
  EXPECT_TRUE(serverz.contains("uptime"));
  EXPECT_TRUE(serverz.contains("start_time"));

  Json storez = GetJson(monitor_, "/streaming/storez");
  EXPECT_EQ(storez["type"], "ROCKSDB");
  EXPECT_EQ(storez["total_msgs"], 5);
  EXPECT_EQ(storez["total_bytes"], 20);
  EXPECT_EQ(storez["limits"]["max_msgs"], 1000000);
  EXPECT_EQ(storez["limits"]["max_channels"], 10000);

  Json channels = GetJson(monitor_, "/streaming/channelsz");
  EXPECT_EQ(channels["names"], Json::array({"orders"}));
  EXPECT_EQ(channels["total"], 1);
  Json with_subs = GetJson(monitor_, "/streaming/channelsz?subs=1");
  ASSERT_EQ(with_subs["channels"].size(), 1u);
  EXPECT_EQ(with_subs["channels"][0]["subscriptions"].size(), 2u);

  Json clients = GetJson(monitor_, "/streaming/clientsz");
  EXPECT_EQ(clients["total"], 3);
  ASSERT_EQ(clients["clients"].size(), 3u);
  EXPECT_EQ(clients["clients"][0]["id"], "pub1");
  Json page = GetJson(monitor_, "/streaming/clientsz?offset=1&limit=1");
  ASSERT_EQ(page["clients"].size(), 1u);
  EXPECT_EQ(page["clients"][0]["id"], "q1");
  EXPECT_EQ(page["count"], 1);
  EXPECT_EQ(page["total"], 3);
  Json one = GetJson(monitor_, "/streaming/clientsz?client=sub1&subs=1");
  EXPECT_EQ(one["id"], "sub1");
  ASSERT_EQ(one["subscriptions"]["orders"].size(), 1u) << one.dump(2);
  EXPECT_EQ(one["subscriptions"]["orders"][0]["durable_name"], "dur");
  EXPECT_EQ(one["subscriptions"]["orders"][0]["pending_count"], 2);

  Json missing = GetJson(monitor_, "/streaming/channelsz?channel=nope", 404);
  EXPECT_TRUE(missing.contains("error"));
  missing = GetJson(monitor_, "/streaming/clientsz?client=nope", 404);
  EXPECT_TRUE(missing.contains("error"));

  // The durable goes offline and keeps its 2 unacked messages.
  ASSERT_TRUE(durable_sub.CloseSend().ok());
  Json offline;
  ASSERT_TRUE(WaitFor(
      [&] {
        offline =
            GetJson(monitor_, "/streaming/channelsz?channel=orders&subs=1");
        for (const Json& sub : offline["subscriptions"]) {
          if (sub["durable_name"] == "dur") return sub["is_offline"] == true;
        }
        return false;
      },
      absl::Seconds(10)))
      << offline.dump(2);
  for (const Json& sub : offline["subscriptions"]) {
    if (sub["durable_name"] != "dur") continue;
    EXPECT_EQ(sub["pending_count"], 2);
    EXPECT_EQ(sub["last_sent"], 2);
  }

  Json cluster = GetJson(monitor_, "/streaming/clusterz");
  ASSERT_EQ(cluster["groups"].size(), 2u) << cluster.dump(2);
  EXPECT_EQ(cluster["groups"][1]["channel"], "orders");
  EXPECT_EQ(cluster["groups"][1]["role"], "Leader");
  EXPECT_GT(cluster["groups"][1]["commit_index"].get<uint64_t>(), 0u);

  HttpResult health = Get(monitor_, "/healthz");
  EXPECT_EQ(health.status, 200) << health.body;
  HttpResult unknown = Get(monitor_, "/nope");
  EXPECT_EQ(unknown.status, 404);
}

TEST_F(MonitorTest, MetricsParseAndCountersMove) {
  auto publisher = Connected("pub1");
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(publisher->Publish("events", "abc").ok());
  }
  HttpResult first = Get(monitor_, "/metrics");
  ASSERT_EQ(first.status, 200);
  std::map<std::string, double> before = ParseMetrics(first.body);
  EXPECT_EQ(before["spate_channel_published_msgs_total{channel=\"events\"}"],
            3);
  EXPECT_EQ(before["spate_channel_published_bytes_total{channel=\"events\"}"],
            9);
  EXPECT_EQ(before["spate_channels"], 1);
  EXPECT_EQ(before["spate_raft_groups"], 2);
  EXPECT_GE(before["spate_raft_elections_total"], 1);
  EXPECT_GE(before["spate_raft_leader_changes_total"], 2);
  EXPECT_GE(before["spate_publish_commit_seconds_count"], 1);
  EXPECT_GE(before["spate_raft_fsync_seconds_count"], 1);
  EXPECT_GE(before["spate_raft_append_batch_entries_count"], 1);

  SubscriptionRequest request = publisher->SubRequest("events");
  request.set_start_position(FIRST);
  TestSubscriber sub(publisher->stub(), request);
  ASSERT_TRUE(sub.WaitStarted().ok());
  std::vector<MsgProto> got = sub.NextN(3);
  ASSERT_EQ(got.size(), 3u);
  ASSERT_TRUE(sub.AckAll(got));
  ASSERT_TRUE(publisher->Publish("events", "defg").ok());
  ASSERT_TRUE(sub.Next().has_value());

  std::map<std::string, double> after;
  ASSERT_TRUE(WaitFor(
      [&] {
        after = ParseMetrics(Get(monitor_, "/metrics").body);
        return after["spate_channel_acked_msgs_total{channel=\"events\"}"] == 3;
      },
      absl::Seconds(10)));
  EXPECT_EQ(after["spate_channel_published_msgs_total{channel=\"events\"}"], 4);
  EXPECT_EQ(after["spate_channel_delivered_msgs_total{channel=\"events\"}"], 4);
  EXPECT_EQ(after["spate_channel_delivered_bytes_total{channel=\"events\"}"],
            13);
  EXPECT_EQ(after["spate_channel_redelivered_msgs_total{channel=\"events\"}"],
            0);
  EXPECT_EQ(after["spate_out_msgs_total"], 4);
  EXPECT_EQ(after["spate_subscriptions"], 1);
  EXPECT_GT(after["spate_publish_commit_seconds_count"],
            before["spate_publish_commit_seconds_count"]);
}

TEST(MonitorClusterTest, ClusterzAndHealthFollowQuorum) {
  TestCluster cluster(3, kMonitorConfig);
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  TestConnection conn(cluster.client_address(1), "c1");
  ASSERT_TRUE(conn.Connect().ok());
  ASSERT_TRUE(conn.Publish("orders", "x").ok());
  const int leader = cluster.LeaderOf("orders");
  ASSERT_GT(leader, 0);

  for (int id = 1; id <= 3; ++id) {
    const std::string monitor = cluster.node(id).monitor_address();
    ASSERT_FALSE(monitor.empty());
    ASSERT_TRUE(WaitFor([&] { return Get(monitor, "/healthz").status == 200; },
                        absl::Seconds(20)))
        << id << ": " << Get(monitor, "/healthz").body;
  }
  // The channel's leader reports both followers caught up (lag 0).
  const std::string leader_monitor = cluster.node(leader).monitor_address();
  Json clusterz;
  ASSERT_TRUE(WaitFor(
      [&] {
        clusterz = GetJson(leader_monitor, "/streaming/clusterz");
        for (const Json& group : clusterz["groups"]) {
          if (group["channel"] != "orders") continue;
          if (group["followers"].size() != 2) return false;
          for (const Json& f : group["followers"]) {
            if (f["lag"] != 0) return false;
          }
          return group["leader"] == leader && group["role"] == "Leader";
        }
        return false;
      },
      absl::Seconds(20)))
      << clusterz.dump(2);
  EXPECT_EQ(clusterz["nodes"].size(), 3u);
  Json serverz = GetJson(leader_monitor, "/streaming/serverz");
  EXPECT_EQ(serverz["channels"], 1);

  // Two of three gone: the survivor has no quorum and says so.
  const int survivor = leader;
  for (int id = 1; id <= 3; ++id) {
    if (id != survivor) cluster.Kill(id);
  }
  const std::string monitor = cluster.node(survivor).monitor_address();
  HttpResult health;
  ASSERT_TRUE(WaitFor(
      [&] {
        health = Get(monitor, "/healthz");
        return health.status == 503;
      },
      absl::Seconds(20)))
      << health.body;
  EXPECT_NE(health.body.find("error"), std::string::npos);
  cluster.StopAll();
}

}  // namespace
}  // namespace spate::testing
