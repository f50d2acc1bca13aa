// Two 3-node clusters ("east" and "west", real spate-server processes on
// 127.0.0.1) linked by gateways (DESIGN.md §7): directories exchanged,
// remote publish acked after the owner's commit, a remote durable
// subscriber resuming after its client restarts and after the owner's
// leader is killed, a partitioned link failing
// remote requests in bounded time without blocking local ones, a refused
// link, and a mirror that catches up, survives a cut link and a SIGKILL of
// its leader, and ends byte-identical to its source.
#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "proto/admin.grpc.pb.h"
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

// The body of GET `path` on the HTTP monitor at `address` ("" on failure).
std::string HttpGet(const std::string& address, const std::string& path) {
  const size_t colon = address.rfind(':');
  httplib::Client client(address.substr(0, colon),
                         std::stoi(address.substr(colon + 1)));
  client.set_connection_timeout(5);
  client.set_read_timeout(10);
  httplib::Result result = client.Get(path.c_str());
  if (!result || result->status != 200) return "";
  return result->body;
}

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

  // Calls `call(stub, context)` on each node of `cluster` until one that is
  // not "ask the metadata leader" (UNAVAILABLE) answers; retries 20 s.
  template <typename Call>
  grpc::Status AtLeader(TestCluster* cluster, Call call) {
    grpc::Status last;
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline) {
      for (int id = 1; id <= cluster->size(); ++id) {
        auto stub = Admin::NewStub(grpc::CreateChannel(
            cluster->client_address(id), grpc::InsecureChannelCredentials()));
        grpc::ClientContext context;
        context.set_deadline(
            absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
        last = call(stub.get(), &context);
        if (last.error_code() != grpc::StatusCode::UNAVAILABLE) return last;
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
    return last;
  }

  grpc::Status AddMirror(const std::string& channel, const std::string& cluster,
                         const std::string& source,
                         AddMirrorResponse* response) {
    AddMirrorRequest request;
    request.set_channel(channel);
    request.set_source_cluster(cluster);
    request.set_source_channel(source);
    return AtLeader(east_.get(),
                    [&](Admin::Stub* stub, grpc::ClientContext* context) {
                      return stub->AddMirror(context, request, response);
                    });
  }

  grpc::Status RemoveMirror(const std::string& channel) {
    RemoveMirrorRequest request;
    request.set_channel(channel);
    RemoveMirrorResponse response;
    return AtLeader(east_.get(),
                    [&](Admin::Stub* stub, grpc::ClientContext* context) {
                      return stub->RemoveMirror(context, request, &response);
                    });
  }

  // Node `node`'s Admin.ListMirrors.
  ListMirrorsResponse Mirrors(TestCluster* cluster, int node) {
    auto stub = Admin::NewStub(grpc::CreateChannel(
        cluster->client_address(node), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    ListMirrorsResponse response;
    grpc::Status status =
        stub->ListMirrors(&context, ListMirrorsRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
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

TEST_F(GatewayTest, MirrorDeclaredByAdminRpcCatchesUpFollowsAndIsMonitored) {
  StartClusters("monitor_address: \"127.0.0.1:0\"\n");
  std::unique_ptr<TestConnection> west = Connected(west_.get(), 1, "w");
  for (int i = 1; i <= 100; ++i) {
    ASSERT_TRUE(Retry([&] {
                  return west->Publish("payments", absl::StrCat("p", i));
                }).ok());
  }
  std::unique_ptr<TestConnection> east = Connected(east_.get(), 1, "e");
  ASSERT_TRUE(Retry([&] { return east->Publish("local", "x"); }).ok());

  // Bad requests are refused with the reason, and change nothing.
  AddMirrorResponse added;
  grpc::Status status = AddMirror("bad*name", "west", "payments", &added);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  status = AddMirror("copy", "", "payments", &added);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  status = AddMirror("copy", "north", "payments", &added);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("'north' is not among"),
            std::string::npos)
      << status.error_message();
  status = AddMirror("local", "west", "payments", &added);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_NE(status.error_message().find("exists already as a regular channel"),
            std::string::npos)
      << status.error_message();
  status = AddMirror("orders-copy", "west", "payments", &added);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(RemoveMirror("orders-copy").error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(RemoveMirror("local").error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(RemoveMirror("nothing").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(Retry([&] { return east->Publish("local", "still mine"); }).ok());
  const ListMirrorsResponse before = Mirrors(east_.get(), 2);
  for (const MirrorEntry& mirror : before.mirrors()) {
    EXPECT_EQ(mirror.channel(), "orders-copy");
    EXPECT_TRUE(mirror.configured());
  }

  // Declared at runtime: it catches up, follows, and refuses publishes.
  status = AddMirror("payments-copy", "west", "payments", &added);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(added.created());
  status = AddMirror("payments-copy", "west", "payments", &added);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(added.created());
  ASSERT_TRUE(
      WaitFor([&] { return LastSequence(east_.get(), "payments-copy") == 100; },
              absl::Seconds(30)))
      << LastSequence(east_.get(), "payments-copy");
  for (int i = 101; i <= 150; ++i) {
    ASSERT_TRUE(Retry([&] {
                  return west->Publish("payments", absl::StrCat("p", i));
                }).ok());
  }
  ASSERT_TRUE(
      WaitFor([&] { return LastSequence(east_.get(), "payments-copy") == 150; },
              absl::Seconds(30)))
      << LastSequence(east_.get(), "payments-copy");
  absl::StatusOr<uint64_t> refused = east->Publish("payments-copy", "no");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition)
      << refused.status();
  std::vector<MsgProto> copy = ReadAll(east_.get(), 3, "payments-copy", 150);
  ASSERT_EQ(copy.size(), 150u);
  EXPECT_EQ(copy[0].data(), "p1");
  EXPECT_EQ(copy[149].sequence(), 150u);
  EXPECT_EQ(copy[149].data(), "p150");

  // Monitoring: the feeding node's /streaming/gatewayz shows the mirror
  // with lag 0, every node its link to west UP with traffic; /metrics has
  // the gateway series.
  const int feeder = east_->LeaderOf("payments-copy");
  ASSERT_GT(feeder, 0);
  const std::string monitor = east_->node(feeder).monitor_address();
  ASSERT_FALSE(monitor.empty());
  nlohmann::json gatewayz;
  ASSERT_TRUE(WaitFor(
      [&] {
        gatewayz = nlohmann::json::parse(
            HttpGet(monitor, "/streaming/gatewayz"), nullptr, false);
        if (gatewayz.is_discarded()) return false;
        for (const auto& mirror : gatewayz["mirrors"]) {
          if (mirror["channel"] == "payments-copy") {
            return mirror["lag"] == 0 && mirror["local_last_seq"] == 150 &&
                   mirror["source_last_seq"] == 150;
          }
        }
        return false;
      },
      absl::Seconds(20)))
      << gatewayz.dump(2);
  EXPECT_EQ(gatewayz["cluster"], "east");
  ASSERT_EQ(gatewayz["links"].size(), 1u) << gatewayz.dump(2);
  const nlohmann::json& link = gatewayz["links"][0];
  EXPECT_EQ(link["remote"], "west");
  EXPECT_EQ(link["state"], "UP");
  EXPECT_FALSE(link["connected_since"].get<std::string>().empty());
  EXPECT_GT(link["bytes_in"].get<int64_t>(), 1000);
  EXPECT_GT(link["bytes_out"].get<int64_t>(), 0);
  EXPECT_EQ(link["reconnects"], 0);
  const std::string metrics = HttpGet(monitor, "/metrics");
  for (const char* series :
       {"spate_gateway_bytes_sent_total{remote=\"west\"}",
        "spate_gateway_bytes_received_total{remote=\"west\"}",
        "spate_gateway_link_up{remote=\"west\"} 1",
        "spate_mirror_lag_messages{channel=\"payments-copy\"} 0"}) {
    EXPECT_NE(metrics.find(series), std::string::npos) << series << "\n"
                                                       << metrics;
  }
  // The CLI's view: ClusterStatus carries the link's new fields.
  GatewayLinkStatus seen = Link(east_.get(), feeder, "west");
  EXPECT_GT(seen.connected_since_ns(), 0);

  // Removed: the mirror channel goes, the source stays.
  status = RemoveMirror("payments-copy");
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_TRUE(WaitFor(
      [&] {
        const ListMirrorsResponse listed = Mirrors(east_.get(), 1);
        for (const MirrorEntry& mirror : listed.mirrors()) {
          if (mirror.channel() == "payments-copy") return false;
        }
        return true;
      },
      absl::Seconds(20)));
  EXPECT_EQ(LastSequence(west_.get(), "payments"), 150u);
}

TEST_F(GatewayTest, ConcurrentlyCreatedNameIsResolvedTheSameWayAndNotMerged) {
  StartClusters();
  // "dup" is created in east while west is down, then in west while east
  // is down: neither directory had it, so each cluster owns a copy. (Down,
  // not paused: a paused cluster's sockets still take in the other's
  // directory updates and it learns the name the moment it continues.)
  for (int id = 1; id <= 3; ++id) west_->Kill(id);
  {
    std::unique_ptr<TestConnection> east = Connected(east_.get(), 1, "e1");
    for (int i = 1; i <= 3; ++i) {
      ASSERT_TRUE(Retry([&] {
                    return east->Publish("dup", absl::StrCat("east", i));
                  }).ok());
    }
  }
  for (int id = 1; id <= 3; ++id) east_->Kill(id);
  for (int id = 1; id <= 3; ++id) {
    const absl::Status started = west_->StartNode(id);
    ASSERT_TRUE(started.ok()) << started << west_->Logs();
  }
  {
    std::unique_ptr<TestConnection> west = Connected(west_.get(), 1, "w1");
    absl::StatusOr<uint64_t> seq =
        Retry([&] { return west->Publish("dup", "west1"); }, absl::Seconds(30));
    ASSERT_TRUE(seq.ok()) << seq.status();
    EXPECT_EQ(*seq, 1u);
  }
  for (int id = 1; id <= 3; ++id) {
    const absl::Status started = east_->StartNode(id);
    ASSERT_TRUE(started.ok()) << started << east_->Logs();
  }

  // Both clusters report the conflict the same way: "east" (the smaller
  // name) serves the name; both copies keep their data.
  for (TestCluster* cluster : {east_.get(), west_.get()}) {
    for (int id = 1; id <= 3; ++id) {
      GatewayConflict conflict;
      ASSERT_TRUE(WaitFor(
          [&] {
            absl::StatusOr<ClusterStatusResponse> status = cluster->Status(id);
            if (!status.ok()) return false;
            for (const GatewayConflict& c : status->gateways().conflicts()) {
              if (c.channel() == "dup") conflict = c;
            }
            return conflict.channel() == "dup";
          },
          absl::Seconds(30)))
          << cluster->Logs();
      EXPECT_EQ(conflict.routed_to(), "east");
      ASSERT_EQ(conflict.clusters_size(), 2);
      EXPECT_EQ(conflict.clusters(0), "east");
      EXPECT_EQ(conflict.clusters(1), "west");
    }
  }
  EXPECT_NE(west_->Logs().find("channel name conflict: channel=dup"),
            std::string::npos);
  EXPECT_NE(east_->Logs().find("channel name conflict: channel=dup"),
            std::string::npos);

  // A west client's publish goes to east's copy; west's copy is untouched.
  std::unique_ptr<TestConnection> west = Connected(west_.get(), 2, "w2");
  absl::StatusOr<uint64_t> routed =
      Retry([&] { return west->Publish("dup", "from west"); });
  ASSERT_TRUE(routed.ok()) << routed.status();
  EXPECT_EQ(*routed, 4u);
  EXPECT_EQ(LastSequence(east_.get(), "dup"), 4u);
  EXPECT_EQ(LastSequence(west_.get(), "dup"), 1u);
  std::vector<MsgProto> east_copy = ReadAll(east_.get(), 2, "dup", 4);
  ASSERT_EQ(east_copy.size(), 4u);
  EXPECT_EQ(east_copy[0].data(), "east1");
  EXPECT_EQ(east_copy[3].data(), "from west");
}

TEST_F(GatewayTest, RemoteQueueGroupAndMaxInFlightAreHonoured) {
  StartClusters();
  std::unique_ptr<TestConnection> west = Connected(west_.get(), 1, "w");
  ASSERT_TRUE(Retry([&] { return west->Publish("jobs", "j0"); }).ok());
  for (int id = 1; id <= 3; ++id) {
    ASSERT_TRUE(WaitFor(
        [&] {
          GatewayLinkStatus link = Link(east_.get(), id, "west");
          return link.state() == "UP" && link.channels() >= 1;
        },
        absl::Seconds(20)));
  }

  // MaxInFlight 3 without acks: exactly 3 cross the gateway, then nothing
  // until acks come back across it.
  std::unique_ptr<TestConnection> slow = Connected(east_.get(), 2, "slow");
  SubscriptionRequest request = slow->SubRequest("jobs");
  request.set_start_position(StartPosition::FIRST);
  request.set_max_in_flight(3);
  request.set_ack_wait_in_secs(60);
  TestSubscriber limited(slow->stub(), request);
  ASSERT_TRUE(limited.WaitStarted().ok());
  for (int i = 1; i <= 9; ++i) {
    ASSERT_TRUE(Retry([&] {
                  return west->Publish("jobs", absl::StrCat("j", i));
                }).ok());
  }
  std::vector<MsgProto> first = limited.NextN(3, absl::Seconds(10));
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(first[0].sequence(), 1u);
  EXPECT_TRUE(limited.NextN(1, absl::Seconds(2)).empty());
  ASSERT_TRUE(limited.AckAll(first));
  std::vector<MsgProto> next = limited.NextN(3, absl::Seconds(10));
  ASSERT_EQ(next.size(), 3u);
  EXPECT_EQ(next[0].sequence(), 4u);
  EXPECT_TRUE(limited.NextN(1, absl::Seconds(2)).empty());
  limited.Cancel();

  // A queue group with one member in east (through the gateway) and one
  // in west: every new message goes to exactly one of them.
  std::unique_ptr<TestConnection> remote_member =
      Connected(east_.get(), 3, "worker-east");
  std::unique_ptr<TestConnection> local_member =
      Connected(west_.get(), 2, "worker-west");
  auto member = [](TestConnection* client) {
    SubscriptionRequest request = client->SubRequest("jobs");
    request.set_q_group("workers");
    request.set_max_in_flight(100);
    return std::make_unique<TestSubscriber>(client->stub(), request);
  };
  std::unique_ptr<TestSubscriber> east_sub = member(remote_member.get());
  std::unique_ptr<TestSubscriber> west_sub = member(local_member.get());
  ASSERT_TRUE(east_sub->WaitStarted().ok());
  ASSERT_TRUE(west_sub->WaitStarted().ok());
  constexpr int kJobs = 40;
  for (int i = 0; i < kJobs; ++i) {
    ASSERT_TRUE(Retry([&] {
                  return west->Publish("jobs", absl::StrCat("q", i));
                }).ok());
  }
  std::set<uint64_t> seen;
  int east_got = 0;
  int west_got = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        for (auto [sub, count] : {std::pair{east_sub.get(), &east_got},
                                  std::pair{west_sub.get(), &west_got}}) {
          for (const MsgProto& msg :
               sub->NextN(kJobs, absl::Milliseconds(300))) {
            EXPECT_TRUE(seen.insert(msg.sequence()).second)
                << "sequence " << msg.sequence() << " delivered twice";
            sub->Ack(msg.sequence());
            ++*count;
          }
        }
        return seen.size() == kJobs;
      },
      absl::Seconds(30)))
      << seen.size();
  EXPECT_GT(east_got, 0);
  EXPECT_GT(west_got, 0);
  EXPECT_EQ(*seen.begin(), 11u);
  EXPECT_EQ(*seen.rbegin(), 10u + kJobs);
  east_sub->Cancel();
  west_sub->Cancel();
}

}  // namespace
}  // namespace spate::testing
