// Operating spate-server processes: a bad config stops start-up naming the
// field and its line; SIGHUP reloads the log level and rejects a bad file;
// SIGTERM hands leadership away and loses no acknowledged message; a
// backup (Admin.Backup) restores into a new data dir that serves the same
// messages.
#include <signal.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "proto/admin.grpc.pb.h"
#include "tests/testing/cluster.h"
#include "tests/testing/server_process.h"
#include "tests/testing/stream_client.h"
#include "tests/testing/waits.h"

namespace spate::testing {
namespace {

bool LogHas(const ServerProcess& server, const std::string& text) {
  return server.Log().find(text) != std::string::npos;
}

// Publishes `count` messages on one stream; all must be acked in order.
void PublishAcked(TestConnection* conn, const std::string& channel, int first,
                  int count) {
  std::vector<PubMsg> msgs;
  for (int i = first; i < first + count; ++i) {
    msgs.push_back(conn->Msg(channel, absl::StrCat("m", i)));
  }
  absl::StatusOr<std::vector<PubAck>> acks = conn->PublishStream(msgs);
  ASSERT_TRUE(acks.ok()) << acks.status();
  ASSERT_EQ(acks->size(), msgs.size());
  for (const PubAck& ack : *acks)
    ASSERT_TRUE(ack.error().empty()) << ack.error();
}

// Every message of `channel` from the first, as "m<i>" payloads.
std::vector<std::string> ReadAll(const std::string& address,
                                 const std::string& client_id,
                                 const std::string& channel, size_t count) {
  TestConnection conn(address, client_id);
  EXPECT_TRUE(conn.Connect().ok());
  SubscriptionRequest request = conn.SubRequest(channel);
  request.set_start_position(FIRST);
  TestSubscriber sub(conn.stub(), request);
  EXPECT_TRUE(sub.WaitStarted().ok());
  std::vector<std::string> data;
  for (const MsgProto& msg : sub.NextN(count, absl::Seconds(20))) {
    EXPECT_EQ(msg.sequence(), data.size() + 1);
    data.push_back(msg.data());
  }
  return data;
}

// Messages stored in `channel` as node `address` sees it, or -1.
int64_t ChannelMsgs(const std::string& address, const std::string& channel) {
  auto admin = Admin::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  ClusterStatusResponse status;
  if (!admin->ClusterStatus(&context, ClusterStatusRequest(), &status).ok()) {
    return -1;
  }
  for (const GroupStatus& group : status.groups()) {
    if (group.channel() == channel) return group.msgs();
  }
  return -1;
}

std::vector<std::string> Expected(int count) {
  std::vector<std::string> data;
  for (int i = 1; i <= count; ++i) data.push_back(absl::StrCat("m", i));
  return data;
}

TEST(OpsTest, BadConfigFailsNamingFieldAndLine) {
  ServerProcess unknown(ServerProcess::NewTempDir("bad1"),
                        "log_level: \"info\"\nstore {\n  max_chanels: 5\n}\n");
  absl::Status status = unknown.Start();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("max_chanels"), std::string::npos) << status;
  EXPECT_NE(status.message().find("line 3"), std::string::npos) << status;

  ServerProcess invalid(ServerProcess::NewTempDir("bad2"),
                        "log_level: \"info\"\n\nraft {\n  tick_ms: 0\n}\n");
  status = invalid.Start();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("raft.tick_ms must be >= 1"),
            std::string::npos)
      << status;
  EXPECT_NE(status.message().find("line 4"), std::string::npos) << status;
}

TEST(OpsTest, SighupReloadsLogLevelAndLimitsAndRejectsABadFile) {
  ServerProcess server(
      ServerProcess::NewTempDir("hup"),
      "log_level: \"info\"\nstore { limits { max_msgs: 100 } }\n");
  ASSERT_TRUE(server.Start().ok());
  const std::string config_path = server.data_dir() + ".conf";
  TestConnection conn(server.address(), "c1");
  ASSERT_TRUE(conn.Connect().ok());
  PublishAcked(&conn, "orders", 1, 10);
  ASSERT_EQ(ChannelMsgs(server.address(), "orders"), 10);

  std::ofstream(config_path) << "log_level: \"debug\"\nraft { tick_ms: 20 }\n"
                                "store { limits { max_msgs: 5 } }\n";
  kill(server.pid(), SIGHUP);
  EXPECT_TRUE(WaitFor([&] { return LogHas(server, "log_level info -> debug"); },
                      absl::Seconds(10)))
      << server.Log();
  EXPECT_TRUE(
      WaitFor([&] { return LogHas(server, "take effect after a restart"); },
              absl::Seconds(10)))
      << server.Log();
  EXPECT_TRUE(LogHas(server, "tick_ms")) << server.Log();
  // The channel keeps only its newest 5 now, and new channels get 5 too.
  EXPECT_TRUE(
      WaitFor([&] { return ChannelMsgs(server.address(), "orders") == 5; },
              absl::Seconds(10)))
      << server.Log();
  EXPECT_TRUE(LogHas(server, "channel limits changed channel=orders"));
  PublishAcked(&conn, "fresh", 1, 7);
  EXPECT_EQ(ChannelMsgs(server.address(), "fresh"), 5);

  std::ofstream(config_path) << "log_level: \"loud\"\n";
  kill(server.pid(), SIGHUP);
  EXPECT_TRUE(WaitFor(
      [&] {
        return LogHas(server, "config reload rejected") &&
               LogHas(server, "log_level must be");
      },
      absl::Seconds(10)))
      << server.Log();
  // Still serving, still at debug (the bad file changed nothing).
  EXPECT_TRUE(conn.Publish("orders", "after reload").ok());
  EXPECT_TRUE(server.Stop().ok());
  EXPECT_FALSE(LogHas(server, "log_level debug -> "));
}

TEST(OpsTest, SigtermHandsOffLeadershipAndKeepsAckedMessages) {
  TestCluster cluster(3);
  ASSERT_TRUE(cluster.Start().ok()) << cluster.Logs();
  TestConnection conn(cluster.client_address(1), "pub");
  ASSERT_TRUE(conn.Connect().ok());
  PublishAcked(&conn, "orders", 1, 100);
  const int leader = cluster.LeaderOf("orders");
  ASSERT_GT(leader, 0);

  absl::Status stopped = cluster.Stop(leader);
  ASSERT_TRUE(stopped.ok()) << stopped << cluster.node(leader).Log();
  EXPECT_TRUE(LogHas(cluster.node(leader), "still leading=0"))
      << cluster.node(leader).Log();
  EXPECT_TRUE(LogHas(cluster.node(leader), "stopped cleanly"));

  // The others carry on at once (the leadership was handed over).
  const int other = leader == 1 ? 2 : 1;
  TestConnection more(cluster.client_address(other), "pub2");
  ASSERT_TRUE(more.Connect().ok());
  PublishAcked(&more, "orders", 101, 50);

  ASSERT_TRUE(cluster.StartNode(leader).ok()) << cluster.Logs();
  // Every acked message, in order, through the restarted node.
  EXPECT_EQ(ReadAll(cluster.client_address(leader), "reader", "orders", 150),
            Expected(150));
  cluster.StopAll();
}

TEST(OpsTest, SigtermOnASingleNodeKeepsAckedMessages) {
  ServerProcess server(ServerProcess::NewTempDir("term"));
  ASSERT_TRUE(server.Start().ok());
  {
    TestConnection conn(server.address(), "pub");
    ASSERT_TRUE(conn.Connect().ok());
    PublishAcked(&conn, "orders", 1, 300);
  }
  ASSERT_TRUE(server.Stop().ok()) << server.Log();
  ASSERT_TRUE(server.Start().ok());
  EXPECT_EQ(ReadAll(server.address(), "reader", "orders", 300), Expected(300));
  EXPECT_TRUE(server.Stop().ok());
}

TEST(OpsTest, BackupRestoresIntoANewDataDir) {
  ServerProcess server(ServerProcess::NewTempDir("live"));
  ASSERT_TRUE(server.Start().ok());
  TestConnection conn(server.address(), "pub");
  ASSERT_TRUE(conn.Connect().ok());
  PublishAcked(&conn, "orders", 1, 40);

  const std::string backup = ServerProcess::NewTempDir("backups") + "/b1";
  auto admin = Admin::NewStub(grpc::CreateChannel(
      server.address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  BackupRequest request;
  request.set_dir(backup);
  BackupResponse response;
  const grpc::Status status = admin->Backup(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.dir(), backup);
  EXPECT_GT(response.files(), 0);
  EXPECT_GT(response.bytes(), 0);
  // Written after the backup: not in it.
  PublishAcked(&conn, "orders", 41, 5);
  ASSERT_TRUE(server.Stop().ok());

  ServerProcess restored(backup);
  ASSERT_TRUE(restored.Start().ok()) << restored.Log();
  EXPECT_EQ(ReadAll(restored.address(), "reader", "orders", 40), Expected(40));
  // Nothing beyond the backup's 40, and the channel goes on from there.
  TestConnection after(restored.address(), "pub3");
  ASSERT_TRUE(after.Connect().ok());
  absl::StatusOr<uint64_t> seq = after.Publish("orders", "next");
  ASSERT_TRUE(seq.ok()) << seq.status();
  EXPECT_EQ(*seq, 41u);
  EXPECT_TRUE(restored.Stop().ok());
}

}  // namespace
}  // namespace spate::testing
