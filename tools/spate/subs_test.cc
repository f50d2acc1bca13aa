// `spate subs`, `spate clients` and `spate backup` against three real
// spate-server processes.
#include "tools/spate/subs.h"

#include <sys/stat.h>

#include <atomic>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/connection.h"
#include "gtest/gtest.h"
#include "tests/testing/cluster.h"
#include "tests/testing/server_process.h"
#include "tools/spate/backup.h"
#include "tools/spate/cli_cluster_test.h"
#include "tools/spate/command.h"
#include "tools/spate/pub.h"

namespace spate::cli {
namespace {

using ::spate::testing::ServerProcess;

class SubsTest : public CliClusterTest {
 protected:
  SubsTest()
      : CliClusterTest(
            {PubCommand(), SubsCommand(), ClientsCommand(), BackupCommand()}) {}
};

TEST_F(SubsTest, SubsAndClientsShowPendingFromTheLeader) {
  for (const char* data : {"a", "b", "c"}) {
    RunUntilOk({"pub", "orders", data, Via(1)});
  }
  // A durable member with a window of 2 that never acks.
  client::ClientOptions options;
  options.servers = {cluster_->client_address(1)};
  options.client_id = "holder";
  absl::StatusOr<std::unique_ptr<client::Connection>> connection =
      client::Connection::Connect(options);
  ASSERT_TRUE(connection.ok()) << connection.status();
  std::atomic<int> received{0};
  client::SubscribeOptions sub_options;
  sub_options.durable_name = "d";
  sub_options.max_in_flight = 2;
  sub_options.manual_acks = true;
  sub_options.start = client::StartPosition::First();
  absl::StatusOr<std::unique_ptr<client::Subscription>> sub =
      (*connection)
          ->Subscribe("orders", sub_options,
                      [&](const client::Message&) { ++received; });
  ASSERT_TRUE(sub.ok()) << sub.status();
  const absl::Time deadline = absl::Now() + kPatience;
  while (received < 2 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(received, 2);

  // Asked through a follower: the CLI goes to the leader for exact counts.
  const int leader = cluster_->LeaderOf("orders");
  ASSERT_GT(leader, 0);
  const int follower = leader == 1 ? 2 : 1;
  ASSERT_EQ(Run({"subs", "orders", Via(follower)}), kExitOk) << err_.str();
  // CLIENT DURABLE QUEUE STATE INFLIGHT PENDING LAST_SENT ACK_WAIT STALLED
  EXPECT_EQ(TableRow(out_.str(), "holder"),
            (std::vector<std::string>{"holder", "d", "-", "online", "2", "2",
                                      "2", "30s", "yes"}))
      << out_.str();

  ASSERT_EQ(Run({"subs", "orders", "--json", Via(follower)}), kExitOk);
  const nlohmann::json json = nlohmann::json::parse(out_.str());
  EXPECT_EQ(json["is_leader"], true);
  EXPECT_EQ(json["subscriptions"][0]["pending_count"], 2);

  EXPECT_EQ(Run({"subs", "nope", Via(1)}), kExitError);
  EXPECT_NE(err_.str().find("no channel named \"nope\""), std::string::npos)
      << err_.str();

  // Node 3 answers from its copy of the metadata, which may trail the
  // metadata leader by a moment right after the subscription was created.
  std::vector<std::string> holder;
  const absl::Time listed_by = absl::Now() + kPatience;
  do {
    ASSERT_EQ(Run({"clients", Via(3)}), kExitOk) << err_.str();
    holder = TableRow(out_.str(), "holder");
    if (holder.size() == 4u && holder[3] == "orders:d") break;
    absl::SleepFor(absl::Milliseconds(50));
  } while (absl::Now() < listed_by);
  ASSERT_EQ(holder.size(), 4u) << out_.str();
  EXPECT_EQ(holder[2], "1");
  EXPECT_EQ(holder[3], "orders:d");
  sub->reset();
  (*connection)->Close().IgnoreError();  // the test is over either way
}

TEST_F(SubsTest, BackupWritesACheckpoint) {
  RunUntilOk({"pub", "orders", "kept", Via(1)});
  const std::string dir = ServerProcess::NewTempDir("backup") + "/copy";
  ASSERT_EQ(Run({"backup", dir, Via(2)}), kExitOk) << err_.str();
  EXPECT_NE(out_.str().find("written to " + dir), std::string::npos)
      << out_.str();
  struct stat info;
  EXPECT_EQ(stat((dir + "/CURRENT").c_str(), &info), 0);
  // The directory exists now: a second backup there is refused.
  EXPECT_EQ(Run({"backup", dir, Via(2)}), kExitError);
  EXPECT_NE(err_.str().find("already exists"), std::string::npos) << err_.str();
  EXPECT_EQ(Run({"backup", "relative/dir", Via(2)}), kExitUsage);
}

}  // namespace
}  // namespace spate::cli
