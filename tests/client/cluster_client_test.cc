// The C++ client library against a 3-node cluster of real spate-server
// processes: when the node it is connected to dies, the client reconnects
// through another one and its publishes and subscriptions carry on; when
// only a channel's leader dies, its subscriptions are re-established on
// the same connection.
#include <atomic>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/admin.grpc.pb.h"
#include "tests/client/recorder.h"
#include "tests/testing/cluster.h"

namespace spate::testing {
namespace {

class ClusterClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<TestCluster>(3);
    const absl::Status started = cluster_->Start();
    ASSERT_TRUE(started.ok()) << started << cluster_->Logs();
  }

  void TearDown() override {
    if (HasFailure() || getenv("SPATE_TEST_LOGS")) {
      std::cerr << cluster_->Logs();
    }
    cluster_->StopAll();
  }

  // Connects (the cluster may still be electing its metadata leader).
  std::unique_ptr<client::Connection> Connect(
      const std::string& client_id, std::vector<std::string> servers) {
    client::ClientOptions options;
    options.servers = std::move(servers);
    options.client_id = client_id;
    options.connect_timeout = absl::Seconds(5);
    options.pub_ack_wait = absl::Seconds(60);
    options.reconnect_wait = absl::Seconds(60);
    options.connection_lost_handler = [](const absl::Status& reason) {
      ADD_FAILURE() << "connection lost: " << reason;
    };
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (true) {
      auto connection = client::Connection::Connect(options);
      if (connection.ok()) return std::move(*connection);
      if (!absl::IsUnavailable(connection.status()) || absl::Now() > deadline) {
        ADD_FAILURE() << connection.status();
        return nullptr;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
  }

  std::vector<std::string> AllServers() const {
    return {cluster_->client_address(1), cluster_->client_address(2),
            cluster_->client_address(3)};
  }

  int NodeAt(const std::string& address) const {
    for (int id = 1; id <= cluster_->size(); ++id) {
      if (cluster_->client_address(id) == address) return id;
    }
    return 0;
  }

  // Subscribes, retrying while the channel has no leader yet.
  std::unique_ptr<client::Subscription> Subscribe(
      client::Connection* connection, const std::string& channel,
      client::SubscribeOptions options, client::MessageHandler handler) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (true) {
      auto sub = connection->Subscribe(channel, options, handler);
      if (sub.ok()) return std::move(*sub);
      if (!absl::IsUnavailable(sub.status()) || absl::Now() > deadline) {
        ADD_FAILURE() << sub.status();
        return nullptr;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
  }

  // channel -> leader node id, and the metadata leader under "", as node
  // `id` sees them.
  std::map<std::string, int> Leaders(int id) {
    auto stub = Admin::NewStub(grpc::CreateChannel(
        cluster_->client_address(id), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    ClusterStatusResponse response;
    std::map<std::string, int> leaders;
    if (!stub->ClusterStatus(&context, ClusterStatusRequest(), &response)
             .ok()) {
      return leaders;
    }
    for (const GroupStatus& group : response.groups()) {
      leaders[group.channel()] = static_cast<int>(group.leader_id());
    }
    return leaders;
  }

  // The node leading `name` as node 1 sees it, once it knows that leader
  // and the metadata leader, when it is neither node 1 nor the metadata
  // leader (whose loss would also stall pings); else 0.
  int LeaderElsewhere(const std::string& name) {
    std::map<std::string, int> leaders;
    if (!Eventually([&] {
          leaders = Leaders(1);
          return leaders[name] != 0 && leaders[""] != 0;
        })) {
      ADD_FAILURE() << "node 1 knows no leader of " << name;
      return 0;
    }
    const int leader = leaders[name];
    return leader != 1 && leader != leaders[""] ? leader : 0;
  }

  std::unique_ptr<TestCluster> cluster_;
};

TEST_F(ClusterClientTest, ClientCarriesOnThroughAnotherNodeWhenItsNodeDies) {
  auto publisher = Connect("publisher", AllServers());
  auto subscriber = Connect("subscriber", AllServers());
  ASSERT_TRUE(publisher != nullptr && subscriber != nullptr);
  client::SubscribeOptions durable_options;
  durable_options.durable_name = "d";
  durable_options.start = client::StartPosition::First();
  client::SubscribeOptions plain_options;
  plain_options.start = client::StartPosition::First();
  Deliveries durable;
  Deliveries plain;
  auto durable_sub =
      Subscribe(subscriber.get(), "orders", durable_options, durable.Handler());
  auto plain_sub =
      Subscribe(subscriber.get(), "orders", plain_options, plain.Handler());
  ASSERT_TRUE(durable_sub != nullptr && plain_sub != nullptr);

  AckResults acks;
  std::atomic<bool> stop{false};
  std::atomic<int> published{0};
  std::atomic<int> refused{0};
  std::thread publishing([&] {
    for (int i = 0; !stop.load(); ++i) {
      if (!publisher
               ->PublishAsync("orders", absl::StrCat("m", i), acks.Handler(i))
               .ok()) {
        ++refused;
      }
      ++published;
      // Paced, so that the node dies mid-run rather than after it.
      if (i % 50 == 49) absl::SleepFor(absl::Milliseconds(5));
    }
  });
  ASSERT_TRUE(Eventually([&] { return acks.acked() >= 300; }));
  const std::string victim_address = publisher->server();
  const int victim = NodeAt(victim_address);
  ASSERT_NE(victim, 0);
  std::cerr << "killing node " << victim << " (" << victim_address << ")\n";
  cluster_->Kill(victim);
  const size_t acked_at_kill = acks.acked();
  ASSERT_TRUE(Eventually([&] { return acks.acked() >= acked_at_kill + 300; },
                         absl::Seconds(60)));
  stop = true;
  publishing.join();
  ASSERT_TRUE(publisher->Flush(absl::Seconds(60)).ok());
  EXPECT_EQ(refused.load(), 0);

  // The client moved to a live node on its own.
  EXPECT_NE(publisher->server(), victim_address);
  EXPECT_GE(publisher->reconnects(), 1);
  // Every publish got a sequence of its own.
  const auto results = acks.all();
  ASSERT_EQ(results.size(), static_cast<size_t>(published.load()));
  std::map<uint64_t, int> index_by_sequence;
  for (const auto& [index, result] : results) {
    ASSERT_TRUE(result.ok()) << index << ": " << result.status();
    EXPECT_TRUE(index_by_sequence.emplace(*result, index).second)
        << "sequence " << *result << " given twice";
  }
  std::cerr << "published " << published.load() << ", resent "
            << publisher->resent_publishes() << "\n";

  // Both subscriptions received every acknowledged message.
  const uint64_t last = index_by_sequence.rbegin()->first;
  ASSERT_TRUE(durable.WaitFor(last, absl::Seconds(60)));
  ASSERT_TRUE(plain.WaitFor(last, absl::Seconds(60)));
  for (Deliveries* inbox : {&durable, &plain}) {
    const std::set<uint64_t> distinct = inbox->distinct();
    for (const auto& [sequence, index] : index_by_sequence) {
      ASSERT_EQ(distinct.count(sequence), 1u) << "lost " << sequence;
    }
    std::set<uint64_t> seen;
    for (const Deliveries::Delivery& delivery : inbox->all()) {
      auto it = index_by_sequence.find(delivery.sequence);
      ASSERT_NE(it, index_by_sequence.end()) << delivery.sequence;
      EXPECT_EQ(delivery.data, absl::StrCat("m", it->second));
      // A durable gets unacked messages again, flagged.
      if (!seen.insert(delivery.sequence).second) {
        EXPECT_TRUE(delivery.redelivered) << delivery.sequence;
      }
    }
    EXPECT_EQ(inbox->threads().size(), 1u);
  }
  EXPECT_GE(durable_sub->resubscribes(), 1);
  EXPECT_GE(plain_sub->resubscribes(), 1);
  EXPECT_TRUE(subscriber->Close().ok());
  EXPECT_TRUE(publisher->Close().ok());
}

TEST_F(ClusterClientTest, SubscribeRightAfterItsNodeDiedGoesThroughAnother) {
  auto publisher = Connect("publisher", AllServers());
  auto subscriber = Connect("subscriber", AllServers());
  ASSERT_TRUE(publisher != nullptr && subscriber != nullptr);
  absl::StatusOr<uint64_t> sequence = publisher->Publish("audit", "first");
  ASSERT_TRUE(sequence.ok()) << sequence.status();
  const std::string victim_address = subscriber->server();
  const int victim = NodeAt(victim_address);
  ASSERT_NE(victim, 0);
  cluster_->Kill(victim);
  // No retry loop here: the client itself must find a live node.
  client::SubscribeOptions options;
  options.durable_name = "d";
  options.start = client::StartPosition::First();
  Deliveries inbox;
  absl::StatusOr<std::unique_ptr<client::Subscription>> sub =
      subscriber->Subscribe("audit", options, inbox.Handler());
  ASSERT_TRUE(sub.ok()) << sub.status();
  EXPECT_NE(subscriber->server(), victim_address);
  ASSERT_TRUE(inbox.WaitFor(*sequence, absl::Seconds(30)));
  EXPECT_EQ(inbox.all().front().data, "first");
  EXPECT_TRUE(subscriber->Close().ok());
  // The publisher may have been on the dead node too; its close is not
  // what this test is about.
  publisher->Close().IgnoreError();
}

TEST_F(ClusterClientTest,
       CloseRightAfterItsNodeDiedEndsTheClientThroughAnother) {
  auto leaver = Connect("leaver", AllServers());
  ASSERT_TRUE(leaver != nullptr);
  absl::StatusOr<uint64_t> sequence = leaver->Publish("audit", "hello");
  ASSERT_TRUE(sequence.ok()) << sequence.status();
  const int victim = NodeAt(leaver->server());
  ASSERT_NE(victim, 0);
  cluster_->Kill(victim);
  // The client has not noticed (its next ping is seconds away): Close must
  // still end the client, through another node.
  const absl::Status closed = leaver->Close();
  EXPECT_TRUE(closed.ok()) << closed;
  // Ended on the server: the id is free again at once, not refused as
  // held by a live client.
  client::ClientOptions options;
  options.servers = AllServers();
  options.client_id = "leaver";
  options.connect_timeout = absl::Seconds(5);
  absl::StatusOr<std::unique_ptr<client::Connection>> again =
      client::Connection::Connect(options);
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!again.ok() && absl::IsUnavailable(again.status()) &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
    again = client::Connection::Connect(options);
  }
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE((*again)->Close().ok());
}

TEST_F(ClusterClientTest, LeaderMoveResubscribesOnTheSameConnection) {
  // Only node 1: the client cannot move, it must not need to.
  auto connection = Connect("watcher", {cluster_->client_address(1)});
  ASSERT_NE(connection, nullptr);
  // Channels spread their leaders over the nodes; pick one led elsewhere
  // (and not by the metadata leader, whose loss would also stall pings).
  std::string channel;
  int leader = 0;
  for (int i = 0; i < 12 && channel.empty(); ++i) {
    const std::string name = absl::StrCat("c", i);
    absl::StatusOr<uint64_t> seq = connection->Publish(name, "m1");
    ASSERT_TRUE(seq.ok()) << seq.status();
    leader = LeaderElsewhere(name);
    if (leader != 0) channel = name;
  }
  ASSERT_FALSE(channel.empty()) << "no channel led outside node 1";
  std::cerr << "channel " << channel << " led by node " << leader << "\n";

  client::SubscribeOptions options;
  options.start = client::StartPosition::First();
  Deliveries inbox;
  auto sub = Subscribe(connection.get(), channel, options, inbox.Handler());
  ASSERT_NE(sub, nullptr);
  for (int i = 2; i <= 10; ++i) {
    ASSERT_TRUE(connection->Publish(channel, absl::StrCat("m", i)).ok());
  }
  ASSERT_TRUE(inbox.WaitFor(10));
  cluster_->Kill(leader);
  // Sync publishes retry UNAVAILABLE until the channel has a new leader.
  for (int i = 11; i <= 20; ++i) {
    absl::StatusOr<uint64_t> seq =
        connection->Publish(channel, absl::StrCat("m", i));
    ASSERT_TRUE(seq.ok()) << seq.status();
    EXPECT_EQ(*seq, static_cast<uint64_t>(i));
  }
  ASSERT_TRUE(inbox.WaitFor(20, absl::Seconds(60)));
  std::vector<uint64_t> expected;
  for (uint64_t seq = 1; seq <= 20; ++seq) expected.push_back(seq);
  // Resumed right after the last message handed out: no gap, no repeat.
  EXPECT_EQ(inbox.sequences(), expected);
  EXPECT_EQ(connection->reconnects(), 0);
  EXPECT_GE(sub->resubscribes(), 1);
  EXPECT_TRUE(connection->Close().ok());
}

// Every acked sequence of `acked` (sequence → payload) is stored in
// `channel` with its payload: a new subscription from the first message
// receives them all.
void ExpectStored(client::Connection* connection, const std::string& channel,
                  const std::map<uint64_t, std::string>& acked) {
  client::SubscribeOptions options;
  options.start = client::StartPosition::First();
  Deliveries inbox;
  std::unique_ptr<client::Subscription> sub;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (sub == nullptr) {
    auto subscribed = connection->Subscribe(channel, options, inbox.Handler());
    if (subscribed.ok()) {
      sub = std::move(*subscribed);
    } else {
      ASSERT_TRUE(absl::IsUnavailable(subscribed.status()) &&
                  absl::Now() < deadline)
          << subscribed.status();
      absl::SleepFor(absl::Milliseconds(100));
    }
  }
  ASSERT_TRUE(inbox.WaitFor(acked.rbegin()->first, absl::Seconds(60)));
  std::map<uint64_t, std::string> stored;
  for (const Deliveries::Delivery& delivery : inbox.all()) {
    stored.emplace(delivery.sequence, delivery.data);
  }
  for (const auto& [seq, data] : acked) {
    auto it = stored.find(seq);
    ASSERT_NE(it, stored.end()) << channel << ": acked " << seq << " lost";
    EXPECT_EQ(it->second, data) << channel << " " << seq;
  }
  EXPECT_TRUE(sub->Close().ok());
}

TEST_F(ClusterClientTest, SyncPublishGoesToTheLeaderAndSurvivesItsLoss) {
  // Only node 1: whatever it does not lead it forwards, naming the leader.
  auto connection = Connect("router", {cluster_->client_address(1)});
  ASSERT_NE(connection, nullptr);
  // Sync publishes from several threads at once while node 1 has the
  // channel created (the metadata leader creates it, maybe elsewhere, and
  // routes learnt meanwhile may name it): every acked publish is stored,
  // once, whatever route it took.
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  std::string channel;
  int leader = 0;
  for (int c = 0; c < 8 && channel.empty(); ++c) {
    const std::string name = absl::StrCat("routed", c);
    absl::Mutex mu;
    std::map<uint64_t, std::string> acked;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          const std::string data = absl::StrCat("t", t, "-", i);
          absl::StatusOr<uint64_t> seq = connection->Publish(name, data);
          ASSERT_TRUE(seq.ok()) << seq.status();
          absl::MutexLock lock(&mu);
          EXPECT_TRUE(acked.emplace(*seq, data).second)
              << "sequence " << *seq << " acked twice";
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    ASSERT_EQ(acked.size(), static_cast<size_t>(kThreads * kPerThread));
    EXPECT_EQ(acked.rbegin()->first, static_cast<uint64_t>(acked.size()));
    ASSERT_NO_FATAL_FAILURE(ExpectStored(connection.get(), name, acked));
    leader = LeaderElsewhere(name);
    if (leader != 0) channel = name;
  }
  ASSERT_FALSE(channel.empty()) << "no channel led outside node 1";
  std::cerr << "channel " << channel << " led by node " << leader << "\n";

  // Sequential publishes from here: each gets the next sequence.
  uint64_t next = kThreads * kPerThread + 1;
  std::map<uint64_t, std::string> acked;
  auto publish = [&](const std::string& data) {
    absl::StatusOr<uint64_t> seq = connection->Publish(channel, data);
    ASSERT_TRUE(seq.ok()) << seq.status();
    EXPECT_EQ(*seq, next) << data;
    ++next;
    acked.emplace(*seq, data);
  };
  // The route is taken once the connection to the leader is up.
  const int64_t routed_before = connection->leader_publishes();
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  for (int i = 0; connection->leader_publishes() < routed_before + 10; ++i) {
    ASSERT_LT(absl::Now(), give_up) << "publishes never went to the leader";
    ASSERT_NO_FATAL_FAILURE(publish(absl::StrCat("direct", i)));
  }

  // The leader dies: publishes fall back to node 1 (which forwards to the
  // new leader, naming it) and go there; nothing acked is lost.
  cluster_->Kill(leader);
  const int64_t routed_at_kill = connection->leader_publishes();
  for (int i = 0; i < 40; ++i) {
    ASSERT_NO_FATAL_FAILURE(publish(absl::StrCat("after", i)));
  }
  std::cerr << "routed " << connection->leader_publishes() - routed_at_kill
            << " of 40 publishes after the leader died\n";
  ASSERT_NO_FATAL_FAILURE(ExpectStored(connection.get(), channel, acked));
  EXPECT_EQ(connection->reconnects(), 0);
  EXPECT_TRUE(connection->Close().ok());
}

}  // namespace
}  // namespace spate::testing
