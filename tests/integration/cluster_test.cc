// Three real spate-server processes on 127.0.0.1 forming one cluster:
// requests through any node, leaders spread, failover with no acked
// message lost.
#include "tests/testing/cluster.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "proto/admin.grpc.pb.h"
#include "tests/testing/stream_client.h"
#include "tests/testing/waits.h"

namespace spate::testing {
namespace {

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

  absl::StatusOr<ClusterStatusResponse> Status(int node) {
    return cluster_->Status(node);
  }
  int LeaderOf(const std::string& channel) {
    return cluster_->LeaderOf(channel);
  }

  std::unique_ptr<TestCluster> cluster_;
};

// Publishes messages g0..g{count-1} through every running node in turn,
// retrying each unacknowledged one with its guid until it is acked.
class Publisher {
 public:
  Publisher(TestCluster* cluster, std::string client_id, std::string channel,
            int count)
      : cluster_(cluster),
        client_id_(std::move(client_id)),
        channel_(std::move(channel)),
        count_(count) {}

  void Run() {
    thread_ = std::thread([this] { Loop(); });
  }
  void Join() { thread_.join(); }
  size_t acked() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_.size();
  }
  std::map<int, uint64_t> Acked() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_;
  }

 private:
  void Loop() {
    std::unique_ptr<TestConnection> conn;
    int node = 1;
    std::set<int> pending;
    for (int i = 0; i < count_; ++i) pending.insert(i);
    const absl::Time deadline = absl::Now() + absl::Minutes(4);
    while (!pending.empty() && absl::Now() < deadline) {
      node = node % cluster_->size() + 1;
      if (!cluster_->node(node).running()) continue;
      conn = std::make_unique<TestConnection>(cluster_->client_address(node),
                                              client_id_);
      conn->set_conn_id(client_id_ + "-conn");
      if (!conn->Connect().ok()) {
        absl::SleepFor(absl::Milliseconds(50));
        continue;
      }
      // Up to 50 messages per call, oldest pending first.
      PubBatch batch;
      for (int i : pending) {
        PubMsg* msg = batch.add_msgs();
        *msg = conn->Msg(channel_, absl::StrCat("m", i));
        msg->set_guid(absl::StrCat("g", i));
        if (batch.msgs_size() == 50) break;
      }
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
      PubAckBatch acks;
      grpc::Status status = conn->stub()->PublishBatch(&context, batch, &acks);
      if (!status.ok()) continue;
      std::lock_guard<std::mutex> lock(mu_);
      for (const PubAck& ack : acks.acks()) {
        if (!ack.error().empty()) continue;
        const int i = std::stoi(ack.guid().substr(1));
        auto [it, inserted] = acked_.emplace(i, ack.sequence());
        // A republished guid must get its original sequence back.
        EXPECT_EQ(it->second, ack.sequence()) << ack.guid();
        pending.erase(i);
      }
    }
  }

  TestCluster* cluster_;
  const std::string client_id_;
  const std::string channel_;
  const int count_;
  std::thread thread_;
  std::mutex mu_;
  std::map<int, uint64_t> acked_;  // message number -> sequence
};

struct Received {
  uint64_t sequence;
  bool redelivered;
  int session;
};

// A durable subscriber that acks everything it receives, resubscribing
// through any running node whenever its stream ends, until stopped.
class DurableSubscriber {
 public:
  DurableSubscriber(TestCluster* cluster, std::string client_id,
                    std::string channel)
      : cluster_(cluster),
        client_id_(std::move(client_id)),
        channel_(std::move(channel)) {}

  void Start() {
    stop_ = false;
    thread_ = std::thread([this] { Loop(); });
  }
  // Graceful: half-closes, so the server commits the acks and the close
  // before the stream ends.
  void Stop() {
    stop_ = true;
    thread_.join();
  }
  std::vector<Received> Log() {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }
  std::set<uint64_t> Sequences() {
    std::lock_guard<std::mutex> lock(mu_);
    std::set<uint64_t> out;
    for (const Received& r : log_) out.insert(r.sequence);
    return out;
  }

 private:
  void Loop() {
    int node = 0;
    while (!stop_) {
      node = node % cluster_->size() + 1;
      if (!cluster_->node(node).running()) continue;
      TestConnection conn(cluster_->client_address(node), client_id_);
      conn.set_conn_id(client_id_ + "-conn");
      if (!conn.Connect().ok()) {
        absl::SleepFor(absl::Milliseconds(50));
        continue;
      }
      SubscriptionRequest request = conn.SubRequest(channel_);
      request.set_durable_name("durable");
      request.set_max_in_flight(64);
      request.set_start_position(FIRST);
      TestSubscriber sub(conn.stub(), request);
      if (!sub.WaitStarted().ok()) {
        absl::SleepFor(absl::Milliseconds(50));
        continue;
      }
      const int session = ++sessions_;
      while (!stop_ && !sub.ended()) {
        std::optional<MsgProto> msg = sub.Next(absl::Milliseconds(50));
        if (!msg) continue;
        {
          std::lock_guard<std::mutex> lock(mu_);
          log_.push_back({msg->sequence(), msg->redelivered(), session});
        }
        sub.Ack(msg->sequence());
      }
      if (stop_) {
        EXPECT_TRUE(sub.CloseSend().ok());
        // Whatever arrived before the close committed was not acked.
        while (std::optional<MsgProto> late = sub.Next(absl::ZeroDuration())) {
          std::lock_guard<std::mutex> lock(mu_);
          log_.push_back({late->sequence(), late->redelivered(), -session});
        }
      }
    }
  }

  TestCluster* cluster_;
  const std::string client_id_;
  const std::string channel_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<Received> log_;  // session < 0: received but not acked
  int sessions_ = 0;
};

// Raw clients do not ping: keep them registered for the whole test.
constexpr char kNoExpiry[] = "clients { ping_interval_ms: 600000 }";

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

// One PublishStream's messages are stored in the order they were sent,
// through any node, also while the channel is being created (the first
// frames then travel through the metadata leader, the later ones straight
// to the channel's new leader) and when forwarded.
TEST_F(ClusterTest, PublishStreamKeepsItsOrderThroughAnyNodeOnANewChannel) {
  StartCluster();
  constexpr int kMsgs = 300;
  constexpr int kChannelsPerNode = 4;
  for (int node = 1; node <= 3; ++node) {
    auto conn = Connected(node, absl::StrCat("p", node));
    for (int k = 0; k < kChannelsPerNode; ++k) {
      const std::string channel = absl::StrCat("fresh", node, "-", k);
      std::vector<PubMsg> msgs;
      for (int i = 1; i <= kMsgs; ++i) {
        msgs.push_back(conn->Msg(channel, absl::StrCat("m", i)));
      }
      // Small frames: many forwarded batches per stream.
      absl::StatusOr<std::vector<PubAck>> acks =
          conn->PublishStream(msgs, /*msgs_per_frame=*/16);
      ASSERT_TRUE(acks.ok()) << acks.status();
      ASSERT_EQ(acks->size(), msgs.size());
      for (const PubAck& ack : *acks) {
        ASSERT_TRUE(ack.error().empty()) << channel << ": " << ack.error();
      }
    }
  }
  auto reader = Connected(1, "reader");
  for (int node = 1; node <= 3; ++node) {
    for (int k = 0; k < kChannelsPerNode; ++k) {
      const std::string channel = absl::StrCat("fresh", node, "-", k);
      SubscriptionRequest request = reader->SubRequest(channel);
      request.set_start_position(FIRST);
      request.set_max_in_flight(kMsgs);
      TestSubscriber sub(reader->stub(), request);
      std::vector<MsgProto> msgs = sub.NextN(kMsgs);
      ASSERT_EQ(msgs.size(), static_cast<size_t>(kMsgs)) << channel;
      for (int i = 0; i < kMsgs; ++i) {
        ASSERT_EQ(msgs[i].data(), absl::StrCat("m", i + 1))
            << channel << " sequence " << msgs[i].sequence();
      }
    }
  }
}

TEST_F(ClusterTest, LeaderKilledTwiceWhilePublishingAndSubscribing) {
  StartCluster(3, kNoExpiry);
  const std::string channel = "failover";
  auto setup = Connected(1, "setup");
  ASSERT_TRUE(Retry([&] { return setup->Publish(channel, "create"); }).ok());

  Publisher publisher(cluster_.get(), "publisher", channel, 10000);
  DurableSubscriber subscriber(cluster_.get(), "subscriber", channel);
  publisher.Run();
  subscriber.Start();

  // 1: stop the subscriber, kill the leader, restart it, resume.
  WaitFor([&] { return publisher.acked() >= 2000; }, absl::Minutes(2));
  subscriber.Stop();
  std::set<uint64_t> acked_before_first;
  for (const Received& r : subscriber.Log()) {
    if (r.session > 0) acked_before_first.insert(r.sequence);
  }
  const size_t log_mark = subscriber.Log().size();
  int leader = LeaderOf(channel);
  ASSERT_NE(leader, 0);
  std::cerr << "killing leader " << leader << " at acked=" << publisher.acked()
            << "\n";
  cluster_->Kill(leader);
  subscriber.Start();
  WaitFor([&] { return publisher.acked() >= 4000; }, absl::Minutes(2));
  ASSERT_TRUE(cluster_->StartNode(leader).ok());

  // 2: kill the leader with the subscriber attached; later stop and
  // resume the subscriber again.
  WaitFor([&] { return publisher.acked() >= 6000; }, absl::Minutes(2));
  leader = LeaderOf(channel);
  ASSERT_NE(leader, 0);
  std::cerr << "killing leader " << leader << " at acked=" << publisher.acked()
            << "\n";
  cluster_->Kill(leader);
  WaitFor([&] { return publisher.acked() >= 8000; }, absl::Minutes(2));
  ASSERT_TRUE(cluster_->StartNode(leader).ok());
  subscriber.Stop();
  subscriber.Start();

  publisher.Join();
  std::map<int, uint64_t> acked = publisher.Acked();
  ASSERT_EQ(acked.size(), 10000u) << "not every publish was acked";
  std::set<uint64_t> acked_seqs;
  for (const auto& [i, seq] : acked) acked_seqs.insert(seq);
  EXPECT_EQ(acked_seqs.size(), 10000u) << "two publishes share a sequence";

  // Every acked message reaches the durable subscriber.
  WaitFor(
      [&] {
        std::set<uint64_t> got = subscriber.Sequences();
        return std::includes(got.begin(), got.end(), acked_seqs.begin(),
                             acked_seqs.end());
      },
      absl::Minutes(2));
  subscriber.Stop();
  std::vector<Received> log = subscriber.Log();
  std::set<uint64_t> got;
  for (const Received& r : log) got.insert(r.sequence);
  for (uint64_t seq : acked_seqs) {
    ASSERT_TRUE(got.count(seq))
        << "acked message " << seq << " never delivered";
  }

  // In sequence order within each session; repeats flagged redelivered.
  std::map<int, uint64_t> last_in_session;
  std::set<uint64_t> seen;
  for (const Received& r : log) {
    if (r.session < 0) continue;
    auto it = last_in_session.find(r.session);
    if (it != last_in_session.end()) {
      EXPECT_GT(r.sequence, it->second)
          << "out of order in session " << r.session;
    }
    last_in_session[r.session] = r.sequence;
    if (!seen.insert(r.sequence).second) {
      EXPECT_TRUE(r.redelivered)
          << "repeat of " << r.sequence << " not flagged redelivered";
    }
  }
  // Nothing acked before the first (graceful) stop came back after it.
  for (size_t i = log_mark; i < log.size(); ++i) {
    EXPECT_FALSE(acked_before_first.count(log[i].sequence))
        << "acked message " << log[i].sequence << " redelivered";
  }

  int redelivered = 0;
  std::set<int> sessions;
  for (const Received& r : log) {
    redelivered += r.redelivered;
    sessions.insert(r.session);
  }
  std::cerr << "deliveries=" << log.size() << " redelivered=" << redelivered
            << " sessions=" << sessions.size() << "\n";
  EXPECT_GE(sessions.size(), 4u);  // stopped and resumed, plus a failover

  // Every node ends with the same messages (the acked ones among them).
  for (int id = 1; id <= 3; ++id) {
    uint64_t last = 0;
    WaitFor(
        [&] {
          absl::StatusOr<ClusterStatusResponse> status = Status(id);
          if (!status.ok()) return false;
          for (const GroupStatus& g : status->groups()) {
            if (g.channel() == channel) last = g.last_sequence();
          }
          return last >= *acked_seqs.rbegin();
        },
        absl::Seconds(30));
    EXPECT_GE(last, *acked_seqs.rbegin()) << "node " << id;
  }
}

// Reads a channel from FIRST through `node` with a plain subscription,
// resubscribing after retryable errors like a client would:
// sequence -> data.
std::map<uint64_t, std::string> ReadAll(TestCluster* cluster, int node,
                                        const std::string& channel,
                                        size_t expected) {
  std::map<uint64_t, std::string> out;
  TestConnection conn(cluster->client_address(node), "reader");
  if (!Retry([&] { return conn.Connect(); }).ok()) return out;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (out.size() < expected && absl::Now() < deadline) {
    SubscriptionRequest request = conn.SubRequest(channel);
    request.set_start_position(SEQUENCE_START);
    request.set_start_sequence(out.empty() ? 1 : out.rbegin()->first + 1);
    request.set_max_in_flight(4096);
    TestSubscriber sub(conn.stub(), request);
    absl::StatusOr<SubscriptionResponse> started = sub.WaitStarted();
    if (!started.ok()) {
      if (!absl::IsUnavailable(started.status())) {
        std::cerr << "ReadAll through node " << node << ": " << started.status()
                  << "\n";
        return out;
      }
      absl::SleepFor(absl::Milliseconds(50));
      continue;
    }
    while (out.size() < expected && absl::Now() < deadline && !sub.ended()) {
      std::optional<MsgProto> msg = sub.Next(absl::Milliseconds(200));
      if (!msg) continue;
      out[msg->sequence()] = msg->data();
      sub.Ack(msg->sequence());
    }
  }
  return out;
}

TEST_F(ClusterTest, WholeClusterRestartKeepsMessagesAndDurablePositions) {
  StartCluster(3, kNoExpiry);
  auto conn = Connected(1, "c1");
  for (int i = 1; i <= 200; ++i) {
    ASSERT_TRUE(
        Retry([&] { return conn->Publish("all", absl::StrCat("m", i)); }).ok());
  }
  // A durable acks the first 120 and stops gracefully.
  {
    SubscriptionRequest request = conn->SubRequest("all");
    request.set_durable_name("d");
    request.set_start_position(FIRST);
    request.set_max_in_flight(32);
    TestSubscriber sub(conn->stub(), request);
    for (int i = 1; i <= 120; ++i) {
      std::optional<MsgProto> msg = sub.Next();
      ASSERT_TRUE(msg.has_value());
      ASSERT_EQ(msg->sequence(), static_cast<uint64_t>(i));
      sub.Ack(msg->sequence());
    }
    ASSERT_TRUE(sub.CloseSend().ok());
  }
  for (int id = 1; id <= 3; ++id) cluster_->Kill(id);  // all at once
  ASSERT_TRUE(cluster_->Start().ok()) << cluster_->Logs();

  auto again = Connected(2, "c1-again");
  std::map<uint64_t, std::string> all = ReadAll(cluster_.get(), 3, "all", 200);
  ASSERT_EQ(all.size(), 200u);
  for (int i = 1; i <= 200; ++i) {
    EXPECT_EQ(all[i], absl::StrCat("m", i));
  }
  TestConnection resumed_conn(cluster_->client_address(2), "c1");
  ASSERT_TRUE(Retry([&] { return resumed_conn.Connect(); }).ok());
  SubscriptionRequest request = resumed_conn.SubRequest("all");
  request.set_durable_name("d");
  request.set_max_in_flight(32);
  TestSubscriber sub(resumed_conn.stub(), request);
  std::optional<MsgProto> first = sub.Next(absl::Seconds(20));
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->sequence(), 121u);  // the first unacked message
}

TEST_F(ClusterTest, WipedFollowerCatchesUpThenLeaderKillLosesNothing) {
  StartCluster(
      3, absl::StrCat(kNoExpiry,
                      getenv("SPATE_DEBUG") ? " log_level: \"debug\"" : ""));
  auto conn = Connected(1, "c1");
  for (int i = 1; i <= 300; ++i) {
    ASSERT_TRUE(Retry([&] {
                  return conn->Publish("wipe", absl::StrCat("m", i));
                }).ok());
  }
  const int leader = LeaderOf("wipe");
  ASSERT_NE(leader, 0);
  const int follower = leader % 3 + 1;
  ASSERT_TRUE(cluster_->Wipe(follower).ok()) << cluster_->Logs();
  // The wiped node catches up: same last sequence as the others.
  WaitFor(
      [&] {
        absl::StatusOr<ClusterStatusResponse> status = Status(follower);
        if (!status.ok()) return false;
        for (const GroupStatus& g : status->groups()) {
          if (g.channel() == "wipe") return g.last_sequence() == 300;
        }
        return false;
      },
      absl::Seconds(60));
  // Now lose the leader: the wiped-and-recovered node must be a full
  // replica for the channel to lose nothing.
  cluster_->Kill(leader);
  std::map<uint64_t, std::string> all =
      ReadAll(cluster_.get(), follower, "wipe", 300);
  if (all.size() != 300u) {
    for (int id = 1; id <= 3; ++id) {
      if (!cluster_->node(id).running()) continue;
      absl::StatusOr<ClusterStatusResponse> status = Status(id);
      std::cerr << "node " << id << ": "
                << (status.ok() ? status->DebugString()
                                : status.status().ToString())
                << "\n";
    }
  }
  ASSERT_EQ(all.size(), 300u);
  EXPECT_EQ(all[300], "m300");
}

TEST_F(ClusterTest, WipedFollowerCatchesUpBySnapshotOfACompactedLog) {
  // Logs compacted every 50 entries, channels trimmed to 200 messages: a
  // wiped node can only come back through a snapshot plus fetched messages.
  StartCluster(3, absl::StrCat(kNoExpiry,
                               " raft { snapshot_entries: 50 }"
                               " store { limits { max_msgs: 200 } }"));
  auto conn = Connected(1, "c1");
  for (int i = 1; i <= 300; ++i) {
    ASSERT_TRUE(Retry([&] {
                  return conn->Publish("snap", absl::StrCat("m", i));
                }).ok());
  }
  const int leader = LeaderOf("snap");
  ASSERT_NE(leader, 0);
  // Wait for a compaction on the leader (first_index moves up).
  WaitFor(
      [&] {
        absl::StatusOr<ClusterStatusResponse> status = Status(leader);
        if (!status.ok()) return false;
        for (const GroupStatus& g : status->groups()) {
          if (g.channel() == "snap") return g.first_index() > 1;
        }
        return false;
      },
      absl::Seconds(10));
  const int follower = leader % 3 + 1;
  ASSERT_TRUE(cluster_->Wipe(follower).ok()) << cluster_->Logs();
  uint64_t first = 0, last = 0;
  WaitFor(
      [&] {
        absl::StatusOr<ClusterStatusResponse> status = Status(follower);
        if (!status.ok()) return false;
        for (const GroupStatus& g : status->groups()) {
          if (g.channel() == "snap") {
            first = g.first_sequence();
            last = g.last_sequence();
          }
        }
        return last == 300;
      },
      absl::Seconds(60));
  ASSERT_EQ(last, 300u) << cluster_->Logs();
  EXPECT_EQ(first, 101u);
  EXPECT_NE(cluster_->node(follower).Log().find("snapshot installed group=1"),
            std::string::npos)
      << "the wiped node did not catch up through a snapshot";

  // The restored replica must be complete: lose the leader, read it all.
  cluster_->Kill(leader);
  std::map<uint64_t, std::string> all =
      ReadAll(cluster_.get(), follower, "snap", 200);
  ASSERT_EQ(all.size(), 200u);
  EXPECT_EQ(all.begin()->first, 101u);
  EXPECT_EQ(all[300], "m300");
  // And publishing goes on with the next sequence.
  auto again = Connected(follower, "c2");
  absl::StatusOr<uint64_t> seq =
      Retry([&] { return again->Publish("snap", "after"); });
  ASSERT_TRUE(seq.ok()) << seq.status();
  EXPECT_EQ(*seq, 301u);
}

TEST_F(ClusterTest, QuiescedChannelFailsOverWhenItsLeaderDies) {
  StartCluster(3, kNoExpiry);
  auto conn = Connected(1, "c1");
  ASSERT_TRUE(Retry([&] { return conn->Publish("quiet", "m1"); }).ok());
  const int leader = LeaderOf("quiet");
  ASSERT_NE(leader, 0);
  // Idle groups stop ticking and heartbeating.
  bool quiesced = false;
  WaitFor(
      [&] {
        absl::StatusOr<ClusterStatusResponse> status = Status(leader);
        if (!status.ok()) return false;
        for (const GroupStatus& g : status->groups()) {
          if (g.channel() == "quiet") quiesced = g.quiesced();
        }
        return quiesced;
      },
      absl::Seconds(20));
  ASSERT_TRUE(quiesced);
  cluster_->Kill(leader);
  const int other = leader % 3 + 1;
  auto again = Connected(other, "c2");
  absl::StatusOr<uint64_t> seq =
      Retry([&] { return again->Publish("quiet", "m2"); }, absl::Seconds(30));
  ASSERT_TRUE(seq.ok()) << seq.status();
  EXPECT_EQ(*seq, 2u);
  const int new_leader = LeaderOf("quiet");
  EXPECT_NE(new_leader, 0);
  EXPECT_NE(new_leader, leader);
}

TEST_F(ClusterTest, LeadersOfThirtyChannelsSpreadOverTheNodes) {
  StartCluster(3, kNoExpiry);
  auto conn = Connected(1, "c1");
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(Retry([&] {
                  return conn->Publish(absl::StrCat("spread.", i), "m");
                }).ok());
  }
  std::map<uint64_t, int> leads;
  absl::StatusOr<ClusterStatusResponse> status = Status(1);
  ASSERT_TRUE(status.ok());
  for (const GroupStatus& g : status->groups()) {
    if (!g.channel().empty()) ++leads[g.leader_id()];
  }
  for (int id = 1; id <= 3; ++id) {
    EXPECT_GE(leads[id], 5) << "node " << id;
    EXPECT_LE(leads[id], 15) << "node " << id;
  }
}

TEST_F(ClusterTest, LeadersRebalanceAfterANodeReturns) {
  StartCluster(3, kNoExpiry);
  auto conn = Connected(2, "c1");
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(Retry([&] {
                  return conn->Publish(absl::StrCat("bal.", i), "m");
                }).ok());
  }
  cluster_->Kill(1);
  // Node 1's channels fail over to 2 and 3.
  auto leads_of = [&](int asked) {
    std::map<uint64_t, int> leads;
    absl::StatusOr<ClusterStatusResponse> status = Status(asked);
    if (!status.ok()) return leads;
    for (const GroupStatus& g : status->groups()) {
      if (!g.channel().empty()) ++leads[g.leader_id()];
    }
    return leads;
  };
  WaitFor([&] { return leads_of(2)[1] == 0 && leads_of(2)[0] == 0; },
          absl::Seconds(30));
  ASSERT_TRUE(cluster_->StartNode(1).ok());
  // Balancing hands node 1 its share back.
  std::map<uint64_t, int> leads;
  WaitFor(
      [&] {
        leads = leads_of(2);
        return leads[1] >= 8 && leads[2] >= 8 && leads[3] >= 8;
      },
      absl::Seconds(60));
  for (int id = 1; id <= 3; ++id) {
    EXPECT_GE(leads[id], 8) << "node " << id;
    EXPECT_LE(leads[id], 12) << "node " << id;
  }
}

TEST_F(ClusterTest, WithoutQuorumRequestsFailQuicklyAndRetryably) {
  StartCluster(3, kNoExpiry);
  auto conn = Connected(1, "c1");
  ASSERT_TRUE(Retry([&] { return conn->Publish("q", "m"); }).ok());
  cluster_->Kill(2);
  cluster_->Kill(3);
  const absl::Time start = absl::Now();
  absl::StatusOr<uint64_t> seq = conn->Publish("q", "lost?");
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(seq.status().code(), absl::StatusCode::kUnavailable)
      << seq.status();
  EXPECT_LT(took, absl::Seconds(10));  // bounded, not a hang
  // Nothing that failed is stored: with the quorum back, the next publish
  // gets sequence 2 (or the retried one is deduplicated).
  ASSERT_TRUE(cluster_->StartNode(2).ok());
  absl::StatusOr<uint64_t> after =
      Retry([&] { return conn->Publish("q", "m2"); });
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_LE(*after, 3u);
}

TEST(ClusterStartTest, DamagedStoreRefusesToStartWithAClearMessage) {
  const std::string dir = ServerProcess::NewTempDir("damaged");
  {
    ServerProcess node(dir);
    ASSERT_TRUE(node.Start().ok());
    ASSERT_TRUE(node.Stop().ok());
  }
  // Damage every file of the store (CURRENT/MANIFEST included).
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ofstream(entry.path(), std::ios::trunc) << "garbage";
  }
  ServerProcess again(dir);
  absl::Status started = again.Start(absl::Seconds(30));
  ASSERT_FALSE(started.ok());
  EXPECT_NE(again.Log().find(dir), std::string::npos)
      << "the error should name the data directory: " << again.Log();
}

}  // namespace
}  // namespace spate::testing
