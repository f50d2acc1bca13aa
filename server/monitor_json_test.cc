#include "server/monitor_json.h"

#include <nlohmann/json.hpp>

#include "gtest/gtest.h"

namespace spate::server {
namespace {

using Json = nlohmann::json;

MonitorSnapshot SampleSnapshot() {
  MonitorSnapshot snapshot;
  snapshot.cluster_name = "c1";
  snapshot.node_id = 2;
  snapshot.meta.set_role("leader");
  snapshot.client_count = 1;
  snapshot.channel_count = 1;
  snapshot.subscription_count = 2;
  snapshot.stored_msgs = 5;
  snapshot.stored_bytes = 50;
  ChannelView channel;
  channel.name = "orders";
  channel.msgs = 5;
  channel.last_seq = 5;
  channel.first_seq = 1;
  SubscriptionView sub;
  sub.channel = "orders";
  sub.client_id = "me";
  sub.durable_name = "d";
  sub.is_durable = true;
  sub.max_inflight = 10;
  sub.ack_wait_ms = 30000;
  sub.last_sent = 5;
  sub.pending_count = 2;
  channel.subscriptions.push_back(sub);
  snapshot.channels.push_back(channel);
  snapshot.total = 1;
  return snapshot;
}

TEST(MonitorJsonTest, ServerzCarriesNatsFieldsAndTotals) {
  MonitorContext context;
  context.version = "v";
  context.start_time_ns = 1'000'000'000;
  context.now_ns = 3'725'000'000'000 + context.start_time_ns;
  context.in_msgs = 7;
  context.out_bytes = 70;
  context.open_fds = 12;
  const Json json = Json::parse(ServerzJson(SampleSnapshot(), context));
  EXPECT_EQ(json["cluster_id"], "c1");
  EXPECT_EQ(json["server_id"], "2");
  EXPECT_EQ(json["role"], "Leader");
  EXPECT_EQ(json["uptime"], "1h2m5s");
  EXPECT_EQ(json["clients"], 1);
  EXPECT_EQ(json["subscriptions"], 2);
  EXPECT_EQ(json["channels"], 1);
  EXPECT_EQ(json["total_msgs"], 5);
  EXPECT_EQ(json["in_msgs"], 7);
  EXPECT_EQ(json["out_bytes"], 70);
  EXPECT_EQ(json["open_fds"], 12);
}

TEST(MonitorJsonTest, ChannelszListsNamesOrSubscriptions) {
  const MonitorSnapshot snapshot = SampleSnapshot();
  Json names = Json::parse(
      ChannelszJson(snapshot, MonitorContext(), {0, 10}, false, false));
  EXPECT_EQ(names["names"], Json::array({"orders"}));
  EXPECT_EQ(names["count"], 1);
  EXPECT_EQ(names["total"], 1);
  EXPECT_EQ(names["limit"], 10);

  Json one = Json::parse(
      ChannelszJson(snapshot, MonitorContext(), {0, 10}, true, true));
  EXPECT_EQ(one["name"], "orders");
  ASSERT_EQ(one["subscriptions"].size(), 1u);
  const Json& sub = one["subscriptions"][0];
  EXPECT_EQ(sub["client_id"], "me");
  EXPECT_EQ(sub["durable_name"], "d");
  EXPECT_EQ(sub["is_durable"], true);
  EXPECT_EQ(sub["ack_wait"], 30);
  EXPECT_EQ(sub["pending_count"], 2);
  EXPECT_EQ(sub["last_sent"], 5);
}

TEST(MonitorJsonTest, UnknownSingleChannelIsAnError) {
  MonitorSnapshot snapshot;
  snapshot.found = false;
  const Json json = Json::parse(
      ChannelszJson(snapshot, MonitorContext(), {0, 10}, true, true));
  EXPECT_EQ(json["error"], "unknown channel");
}

TEST(MonitorJsonTest, ClusterzComputesFollowerLag) {
  MonitorSnapshot snapshot;
  GroupStatus group;
  group.set_group_id(3);
  group.set_role("leader");
  group.set_last_index(100);
  PeerProgress* peer = group.add_peers();
  peer->set_node_id(2);
  peer->set_match_index(90);
  snapshot.groups.push_back(group);
  const Json json = Json::parse(ClusterzJson(snapshot, MonitorContext()));
  ASSERT_EQ(json["groups"].size(), 1u);
  EXPECT_EQ(json["groups"][0]["followers"][0]["lag"], 10);
  EXPECT_EQ(json["groups"][0]["role"], "Leader");
}

TEST(MonitorJsonTest, UptimeAndTimeFormats) {
  EXPECT_EQ(FormatUptime(0), "0s");
  EXPECT_EQ(FormatUptime(61'000'000'000), "1m1s");
  EXPECT_EQ(FormatUptime(90061'000'000'000), "1d1h1m1s");
  EXPECT_EQ(FormatTime(0), "1970-01-01T00:00:00.000000000Z");
}

}  // namespace
}  // namespace spate::server
