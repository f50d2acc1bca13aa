// Two 3-node clusters ("east" and "west", real spate-server processes on
// 127.0.0.1) linked by gateways (DESIGN.md §7): directories exchanged,
// remote publish acked after the owner's commit, a remote durable
// subscriber resuming after its client restarts and after the owner's
// leader is killed, a partitioned link failing
// remote requests in bounded time without blocking local ones, a refused
// link, and a mirror that catches up, survives a cut link and a SIGKILL of
// its leader, and ends byte-identical to its source.
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "proto/admin.pb.h"
#include "tests/testing/cluster.h"
#include "tests/testing/server_process.h"
#include "tests/testing/stream_client.h"
#include "tests/testing/waits.h"

namespace spate::testing {
namespace {

std::vector<std::string> FreeAddresses(int count) {
  std::vector<std::string> addresses;
  for (int i = 0; i < count; ++i) {
    addresses.push_back(absl::StrCat("127.0.0.1:", ServerProcess::FreePort()));
  }
  return addresses;
}

std::string GatewayTo(const std::string& name,
                      const std::vector<std::string>& addresses) {
  std::string text = absl::StrCat("gateways { name: \"", name, "\"");
  for (const std::string& address : addresses) {
    absl::StrAppend(&text, " addresses: \"", address, "\"");
  }
  return absl::StrCat(text, " }\n");
}

constexpr char kGatewayTuning[] =
    "gateway { directory_refresh_ms: 200 request_timeout_ms: 2000 }\n";

class GatewayTest : public ::testing::Test {
 protected:
  // east mirrors west's "orders" as "orders-copy" (with `mirror_limits`).
  void StartClusters(const std::string& east_extra = "") {
    const std::vector<std::string> east_gateways = FreeAddresses(3);
    const std::vector<std::string> west_gateways = FreeAddresses(3);
    east_ = std::make_unique<TestCluster>(
        3,
        absl::StrCat(GatewayTo("west", west_gateways), kGatewayTuning,
                     "mirrors { channel: \"orders-copy\" source_cluster: "
                     "\"west\" source_channel: \"orders\" }\n",
                     east_extra),
        "east", east_gateways);
    west_ = std::make_unique<TestCluster>(
        3, absl::StrCat(GatewayTo("east", east_gateways), kGatewayTuning),
        "west", west_gateways);
    west_gateways_ = west_gateways;
    absl::Status status = west_->Start();
    ASSERT_TRUE(status.ok()) << status << west_->Logs();
    status = east_->Start();
    ASSERT_TRUE(status.ok()) << status << east_->Logs();
  }

  void TearDown() override {
    for (TestCluster* cluster : {east_.get(), west_.get()}) {
      if (cluster == nullptr) continue;
      if (HasFailure() || getenv("SPATE_TEST_LOGS")) {
        std::cerr << cluster->Logs();
      }
      cluster->StopAll();
    }
  }

  std::unique_ptr<TestConnection> Connected(TestCluster* cluster, int node,
                                            const std::string& client_id) {
    auto connection = std::make_unique<TestConnection>(
        cluster->client_address(node), client_id);
    absl::StatusOr<ConnectResponse> response =
        Retry([&] { return connection->Connect(); });
    EXPECT_TRUE(response.ok()) << response.status();
    return connection;
  }

  // Node `node`'s view of the link to `remote`.
  GatewayLinkStatus Link(TestCluster* cluster, int node,
                         const std::string& remote) {
    absl::StatusOr<ClusterStatusResponse> status = cluster->Status(node);
    if (!status.ok()) return GatewayLinkStatus();
    for (const GatewayLinkStatus& link : status->gateways().links()) {
      if (link.cluster() == remote) return link;
    }
    return GatewayLinkStatus();
  }

  // The channel's last sequence on its leader in `cluster` (0 if unknown).
  uint64_t LastSequence(TestCluster* cluster, const std::string& channel) {
    for (int id = 1; id <= cluster->size(); ++id) {
      if (!cluster->node(id).running()) continue;
      absl::StatusOr<ClusterStatusResponse> status = cluster->Status(id);
      if (!status.ok()) continue;
      for (const GroupStatus& group : status->groups()) {
        if (group.channel() == channel && group.role() == "leader") {
          return group.last_sequence();
        }
      }
    }
    return 0;
  }

  // Every message of `channel` from sequence 1, read by a subscriber on
  // `node`.
  std::vector<MsgProto> ReadAll(TestCluster* cluster, int node,
                                const std::string& channel, size_t count) {
    std::unique_ptr<TestConnection> reader =
        Connected(cluster, node, absl::StrCat("reader-", channel));
    SubscriptionRequest request = reader->SubRequest(channel);
    request.set_start_position(StartPosition::FIRST);
    request.set_max_in_flight(16384);
    TestSubscriber subscriber(reader->stub(), request);
    std::vector<MsgProto> msgs;
    while (msgs.size() < count) {
      std::vector<MsgProto> got =
          subscriber.NextN(count - msgs.size(), absl::Seconds(20));
      if (got.empty()) break;
      subscriber.AckAll(got);
      msgs.insert(msgs.end(), got.begin(), got.end());
    }
    subscriber.Cancel();
    return msgs;
  }

  std::unique_ptr<TestCluster> east_;
  std::unique_ptr<TestCluster> west_;
  std::vector<std::string> west_gateways_;
};

TEST_F(GatewayTest, RemotePublishIsAckedAfterTheOwnerCommits) {
  StartClusters();
  std::unique_ptr<TestConnection> west = Connected(west_.get(), 1, "w");
  absl::StatusOr<uint64_t> seq =
      Retry([&] { return west->Publish("orders", "w1"); });
  ASSERT_TRUE(seq.ok()) << seq.status();
  ASSERT_EQ(*seq, 1u);

  // Every east node learns west's directory over the gateway.
  for (int id = 1; id <= 3; ++id) {
    ASSERT_TRUE(WaitFor(
        [&] {
          GatewayLinkStatus link = Link(east_.get(), id, "west");
          return link.state() == "UP" && link.channels() >= 1;
        },
        absl::Seconds(20)))
        << Link(east_.get(), id, "west").ShortDebugString();
  }

  // A client of east publishes to west's channel through any east node.
  std::unique_ptr<TestConnection> east = Connected(east_.get(), 2, "e");
  for (int i = 2; i <= 11; ++i) {
    absl::StatusOr<uint64_t> acked =
        Retry([&] { return east->Publish("orders", absl::StrCat("e", i)); });
    ASSERT_TRUE(acked.ok()) << acked.status();
    EXPECT_EQ(*acked, static_cast<uint64_t>(i));
    // The ack came after west's commit: west's leader already has it.
    EXPECT_GE(LastSequence(west_.get(), "orders"), *acked);
  }
  // The channel stays west's: east created no channel of that name.
  absl::StatusOr<ClusterStatusResponse> status = east_->Status(1);
  ASSERT_TRUE(status.ok());
  for (const GroupStatus& group : status->groups()) {
    EXPECT_NE(group.channel(), "orders");
  }
  EXPECT_EQ(status->gateways().conflicts_size(), 0);
  std::vector<MsgProto> msgs = ReadAll(west_.get(), 3, "orders", 11);
  ASSERT_EQ(msgs.size(), 11u);
  for (int i = 0; i < 11; ++i) {
    EXPECT_EQ(msgs[i].sequence(), static_cast<uint64_t>(i + 1));
    EXPECT_EQ(msgs[i].data(), i == 0 ? "w1" : absl::StrCat("e", i + 1));
  }

  // West partitioned (paused): remote publishes fail with UNAVAILABLE in
  // bounded time, local traffic in east is not blocked.
  for (int id = 1; id <= 3; ++id) west_->node(id).Pause();
  const absl::Time start = absl::Now();
  absl::StatusOr<uint64_t> failed = east->Publish("orders", "lost");
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable)
      << failed.status();
  EXPECT_LT(took, absl::Seconds(5));
  absl::StatusOr<uint64_t> local =
      Retry([&] { return east->Publish("local-only", "x"); });
  EXPECT_TRUE(local.ok()) << local.status();
  for (int id = 1; id <= 3; ++id) west_->node(id).Resume();
  absl::StatusOr<uint64_t> again = Retry(
      [&] { return east->Publish("orders", "after"); }, absl::Seconds(30));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, 12u);
}

TEST_F(GatewayTest, UnknownClusterIsRefused) {
  StartClusters();
  // A single-node cluster "north" that west does not list.
  ServerProcess north(
      ServerProcess::NewTempDir("north"),
      absl::StrCat("node { cluster_name: \"north\" }\n",
                   GatewayTo("west", west_gateways_), kGatewayTuning));
  absl::Status started = north.Start();
  ASSERT_TRUE(started.ok()) << started << north.Log();
  // North's view: west refuses it, and says why.
  ASSERT_TRUE(WaitFor(
      [&] {
        return north.Log().find("gateway link REFUSED cluster=west") !=
               std::string::npos;
      },
      absl::Seconds(20)))
      << north.Log();
  EXPECT_NE(north.Log().find("is not among cluster 'west''s gateways"),
            std::string::npos)
      << north.Log();
  north.Stop().IgnoreError();
}

TEST_F(GatewayTest, MirrorCatchesUpSurvivesFaultsAndIsByteIdentical) {
  StartClusters();
  constexpr int kFirst = 10000;
  constexpr int kMore = 2000;
  std::unique_ptr<TestConnection> west;
  auto publish = [&](int from, int count) {
    // A fresh client each time: the test does not ping, and a paused
    // cluster drops idle clients.
    west = Connected(west_.get(), 1, absl::StrCat("pub", from));
    std::vector<PubMsg> msgs;
    for (int i = from; i < from + count; ++i) {
      PubMsg msg = west->Msg(
          "orders", absl::StrCat("payload-", i, "-", std::string(i % 97, 'x')));
      (*msg.mutable_headers())["n"] = absl::StrCat(i);
      msg.set_guid(absl::StrCat("g", i));
      msgs.push_back(std::move(msg));
    }
    // Messages refused with a retryable error (a leader moved) are sent
    // again with the same guid: deduplication stores each once.
    for (int round = 0; round < 20 && !msgs.empty(); ++round) {
      absl::StatusOr<std::vector<PubAck>> acks =
          Retry([&] { return west->PublishStream(msgs, 256); });
      ASSERT_TRUE(acks.ok()) << acks.status();
      absl::flat_hash_set<std::string> failed;
      for (const PubAck& ack : *acks) {
        if (ack.error().empty()) continue;
        ASSERT_EQ(ack.error_code(),
                  static_cast<int>(absl::StatusCode::kUnavailable))
            << ack.error();
        failed.insert(ack.guid());
      }
      std::vector<PubMsg> again;
      for (PubMsg& msg : msgs) {
        if (failed.contains(msg.guid())) again.push_back(std::move(msg));
      }
      msgs = std::move(again);
      if (!msgs.empty()) absl::SleepFor(absl::Milliseconds(200));
    }
    ASSERT_TRUE(msgs.empty()) << msgs.size() << " messages never stored";
  };
  const absl::Time start = absl::Now();
  publish(1, kFirst);
  const absl::Duration publish_took = absl::Now() - start;
  ASSERT_TRUE(WaitFor(
      [&] { return LastSequence(east_.get(), "orders-copy") == kFirst; },
      absl::Seconds(60)))
      << LastSequence(east_.get(), "orders-copy");
  const absl::Duration caught_up = absl::Now() - start;
  std::cout << "mirror: " << kFirst << " messages published in " << publish_took
            << ", mirrored within " << caught_up << " of the first publish ("
            << static_cast<int64_t>(kFirst / absl::ToDoubleSeconds(caught_up))
            << " msgs/s end to end)\n";

  // Publishing to a mirror is refused.
  std::unique_ptr<TestConnection> east = Connected(east_.get(), 1, "e");
  absl::StatusOr<uint64_t> refused = east->Publish("orders-copy", "no");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition)
      << refused.status();

  // Lag is visible on the feeding node while west publishes.
  // Cut the link (west paused), publish after it is restored.
  for (int id = 1; id <= 3; ++id) west_->node(id).Pause();
  absl::SleepFor(absl::Seconds(3));
  for (int id = 1; id <= 3; ++id) west_->node(id).Resume();
  publish(kFirst + 1, kMore);

  // SIGKILL the mirror's leader in east while west keeps publishing.
  const int mirror_leader = east_->LeaderOf("orders-copy");
  ASSERT_GT(mirror_leader, 0);
  east_->Kill(mirror_leader);
  publish(kFirst + kMore + 1, kMore);
  const uint64_t total = kFirst + 2 * kMore;
  ASSERT_TRUE(
      WaitFor([&] { return LastSequence(east_.get(), "orders-copy") == total; },
              absl::Seconds(60)))
      << LastSequence(east_.get(), "orders-copy");
  absl::Status restarted = east_->StartNode(mirror_leader);
  ASSERT_TRUE(restarted.ok()) << restarted;

  // Mirror status on its feeding node: caught up, no lag.
  const int feeder = east_->LeaderOf("orders-copy");
  ASSERT_TRUE(WaitFor(
      [&] {
        absl::StatusOr<ClusterStatusResponse> status = east_->Status(feeder);
        if (!status.ok()) return false;
        for (const MirrorStatus& mirror : status->gateways().mirrors()) {
          if (mirror.channel() == "orders-copy") {
            return mirror.lag() == 0 && mirror.source_last_sequence() == total;
          }
        }
        return false;
      },
      absl::Seconds(20)));

  // Byte-identical: same sequences, payloads, headers and timestamps.
  std::vector<MsgProto> source = ReadAll(west_.get(), 2, "orders", total);
  std::vector<MsgProto> copy =
      ReadAll(east_.get(), mirror_leader, "orders-copy", total);
  ASSERT_EQ(source.size(), total);
  ASSERT_EQ(copy.size(), total);
  for (size_t i = 0; i < total; ++i) {
    ASSERT_EQ(copy[i].sequence(), i + 1);
    ASSERT_EQ(copy[i].sequence(), source[i].sequence());
    ASSERT_EQ(copy[i].data(), source[i].data()) << i;
    ASSERT_EQ(copy[i].timestamp(), source[i].timestamp()) << i;
    ASSERT_EQ(copy[i].crc32(), source[i].crc32()) << i;
    ASSERT_EQ(copy[i].headers().at("n"), source[i].headers().at("n")) << i;
  }
}

TEST_F(GatewayTest, RemoteDurableSubscriberResumesAfterRestartAndFailover) {
  StartClusters("clients { ping_interval_ms: 200 }\n");
  std::unique_ptr<TestConnection> west = Connected(west_.get(), 1, "w");
  for (int i = 1; i <= 5; ++i) {
    absl::StatusOr<uint64_t> seq =
        Retry([&] { return west->Publish("orders", absl::StrCat("m", i)); });
    ASSERT_TRUE(seq.ok()) << seq.status();
  }
  for (int id = 1; id <= 3; ++id) {
    ASSERT_TRUE(
        WaitFor([&] { return Link(east_.get(), id, "west").channels() >= 1; },
                absl::Seconds(20)));
  }

  // A durable subscription of an east client to west's channel.
  auto subscribe = [&](TestConnection* client) {
    SubscriptionRequest request = client->SubRequest("orders");
    request.set_durable_name("audit");
    request.set_start_position(StartPosition::FIRST);
    request.set_max_in_flight(100);
    request.set_ack_wait_in_secs(30);
    return std::make_unique<TestSubscriber>(client->stub(), request);
  };
  std::unique_ptr<TestConnection> client = Connected(east_.get(), 2, "sub");
  std::unique_ptr<TestSubscriber> sub = subscribe(client.get());
  absl::StatusOr<SubscriptionResponse> started = sub->WaitStarted();
  ASSERT_TRUE(started.ok()) << started.status();
  std::vector<MsgProto> got = sub->NextN(5, absl::Seconds(10));
  ASSERT_EQ(got.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(got[i].sequence(), static_cast<uint64_t>(i + 1));
    EXPECT_EQ(got[i].data(), absl::StrCat("m", i + 1));
  }
  // Only 1..3 acked, then the client dies and restarts.
  ASSERT_TRUE(sub->Ack(1) && sub->Ack(2) && sub->Ack(3));
  absl::SleepFor(absl::Milliseconds(500));  // the acks cross the gateway
  sub->Cancel();
  sub.reset();
  client.reset();
  absl::SleepFor(absl::Milliseconds(500));  // the old connection is stale
  client = Connected(east_.get(), 3, "sub");

  // The durable (its state is in west) resumes: 4 and 5 again, then new.
  std::vector<MsgProto> resumed;
  ASSERT_TRUE(WaitFor(
      [&] {
        sub = subscribe(client.get());
        return sub->WaitStarted().ok();
      },
      absl::Seconds(20)));
  resumed = sub->NextN(2, absl::Seconds(10));
  ASSERT_EQ(resumed.size(), 2u);
  EXPECT_EQ(resumed[0].sequence(), 4u);
  EXPECT_TRUE(resumed[0].redelivered());
  EXPECT_EQ(resumed[1].sequence(), 5u);
  for (int i = 6; i <= 8; ++i) {
    ASSERT_TRUE(Retry([&] {
                  return west->Publish("orders", absl::StrCat("m", i));
                }).ok());
  }
  std::vector<MsgProto> fresh = sub->NextN(3, absl::Seconds(10));
  ASSERT_EQ(fresh.size(), 3u);
  EXPECT_EQ(fresh[0].sequence(), 6u);
  EXPECT_EQ(fresh[2].sequence(), 8u);
  ASSERT_TRUE(sub->AckAll(resumed) && sub->AckAll(fresh));
  absl::SleepFor(absl::Milliseconds(500));

  // The owner's leader is killed: the stream ends, the client resubscribes
  // and gets what was published meanwhile, nothing lost.
  const int leader = west_->LeaderOf("orders");
  ASSERT_GT(leader, 0);
  west_->Kill(leader);
  absl::Status ended = sub->WaitEnd(absl::Seconds(20));
  EXPECT_FALSE(ended.ok());
  const int publisher_node = leader == 1 ? 2 : 1;
  west = Connected(west_.get(), publisher_node, "w2");
  for (int i = 9; i <= 10; ++i) {
    ASSERT_TRUE(Retry([&] {
                  return west->Publish("orders", absl::StrCat("m", i));
                }).ok());
  }
  std::set<uint64_t> after;
  ASSERT_TRUE(WaitFor(
      [&] {
        sub = subscribe(client.get());
        return sub->WaitStarted().ok();
      },
      absl::Seconds(30)));
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const MsgProto& msg : sub->NextN(1, absl::Seconds(1))) {
          // Acked before the kill: only redelivered if the ack had not
          // committed yet (at-least-once), never a gap.
          after.insert(msg.sequence());
          sub->Ack(msg.sequence());
        }
        return after.count(9) && after.count(10);
      },
      absl::Seconds(20)));
  EXPECT_GE(*after.begin(), 4u);
  sub->Cancel();
}

}  // namespace
}  // namespace spate::testing
