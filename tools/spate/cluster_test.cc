// `spate cluster status` against three real spate-server processes:
// discovery from one address, every node, a channel with its leader and
// last sequence, follower lag, and a killed node shown down.
#include "tools/spate/cluster.h"

#include <google/protobuf/util/json_util.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/cluster.h"
#include "tests/testing/waits.h"
#include "tools/spate/cluster_view.h"
#include "tools/spate/cluster_view.pb.h"
#include "tools/spate/command.h"
#include "tools/spate/pub.h"
#include "tools/spate/subs.h"

namespace spate::cli {
namespace {

using ::spate::testing::TestCluster;
using ::testing::HasSubstr;

constexpr absl::Duration kPatience = absl::Seconds(30);

// A table row split on runs of spaces.
std::vector<std::string> Cells(absl::string_view line) {
  return absl::StrSplit(line, ' ', absl::SkipEmpty());
}

// The first row of `output` whose cell `column` is `key`, or empty.
std::vector<std::string> Row(const std::string& output, size_t column,
                             const std::string& key) {
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    std::vector<std::string> cells = Cells(line);
    if (cells.size() > column && cells[column] == key) return cells;
  }
  return {};
}

// Whether `row` has `value` in cell `i`.
bool CellIs(const std::vector<std::string>& row, size_t i,
            const std::string& value) {
  return row.size() > i && row[i] == value;
}

class ClusterStatusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<TestCluster>(3);
    const absl::Status started = cluster_->Start();
    ASSERT_TRUE(started.ok()) << started << cluster_->Logs();
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << cluster_->Logs();
    cluster_->StopAll();
  }

  int Run(std::vector<std::string> args) {
    std::vector<std::string> argv = {"spate"};
    argv.insert(argv.end(), args.begin(), args.end());
    out_.str("");
    err_.str("");
    return RunCli({PubCommand(), ClusterCommand()}, argv, io_);
  }

  // Publishes `data` through node `via` (retrying while the cluster
  // elects leaders); returns the acked sequence.
  uint64_t Publish(int via, const std::string& channel,
                   const std::string& data) {
    const absl::Time deadline = absl::Now() + kPatience;
    while (absl::Now() < deadline) {
      if (Run({"pub", channel, data, "--server",
               cluster_->client_address(via)}) == kExitOk) {
        uint64_t sequence = 0;
        const std::string prefix = absl::StrCat("published ", channel, " seq=");
        const std::string out = out_.str();
        EXPECT_TRUE(absl::SimpleAtoi(
            absl::StripSuffix(absl::StripPrefix(out, prefix), "\n"), &sequence))
            << out;
        return sequence;
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
    ADD_FAILURE() << "publish never succeeded: " << err_.str();
    return 0;
  }

  // The node that answers as `channel`'s leader, asked of each node
  // directly, or 0.
  int LeaderOf(const std::string& channel) {
    for (int id = 1; id <= cluster_->size(); ++id) {
      if (!cluster_->node(id).running()) continue;
      absl::StatusOr<ClusterStatusResponse> status =
          FetchClusterStatus(cluster_->client_address(id), absl::Seconds(5));
      if (!status.ok()) continue;
      for (const GroupStatus& group : status->groups()) {
        if (group.channel() == channel && group.role() == "leader") return id;
      }
    }
    return 0;
  }

  // Runs `spate cluster status` with `servers` until `done(output)`
  // holds; returns whether it did.
  template <typename Done>
  bool StatusUntil(const std::string& servers, Done done) {
    const absl::Time deadline = absl::Now() + kPatience;
    while (absl::Now() < deadline) {
      if (Run({"cluster", "status", "--server", servers}) == kExitOk &&
          done(out_.str())) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
    return false;
  }

  std::unique_ptr<TestCluster> cluster_;
  std::istringstream in_;
  std::ostringstream out_;
  std::ostringstream err_;
  std::atomic<bool> interrupted_{false};
  Io io_{&in_, &out_, &err_, &interrupted_};
};

TEST_F(ClusterStatusTest, ShowsEveryNodeAndTheChannelFromItsLeader) {
  Publish(2, "orders", "one");
  Publish(3, "orders", "two");
  const uint64_t last = Publish(2, "orders", "three");
  ASSERT_GE(last, 3u);

  // Only node 1 is given: the others are found through its answer.
  int leader = 0;
  const bool shown =
      StatusUntil(cluster_->client_address(1), [&](const std::string& output) {
        for (int id = 1; id <= 3; ++id) {
          const std::vector<std::string> node =
              Row(output, 0, absl::StrCat(id));
          if (!CellIs(node, 1, cluster_->client_address(id)) ||
              !CellIs(node, 2, "up")) {
            return false;
          }
        }
        leader = LeaderOf("orders");
        // GROUP CHANNEL LEADER TERM COMMIT APPLIED LAG MSGS BYTES FIRST
        // LAST SUBS
        const std::vector<std::string> row = Row(output, 1, "orders");
        return leader != 0 && row.size() == 12 &&
               row[2] == absl::StrCat(leader) && row[7] == "3" &&
               row[10] == absl::StrCat(last);
      });
  EXPECT_TRUE(shown) << out_.str() << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("cluster \"test\": 3 nodes (3 up)"));
  EXPECT_EQ(Row(out_.str(), 1, "(metadata)").size(), 12u) << out_.str();

  // The JSON carries the same merged view, and each follower's lag
  // (leader's last index minus its match) drains to 0 once idle.
  ClusterView view;
  const absl::Time deadline = absl::Now() + kPatience;
  bool caught_up = false;
  while (!caught_up && absl::Now() < deadline) {
    ASSERT_EQ(Run({"cluster", "status", "--json", "--server",
                   cluster_->ClientAddresses()}),
              kExitOk)
        << err_.str();
    view.Clear();
    ASSERT_TRUE(
        google::protobuf::util::JsonStringToMessage(out_.str(), &view).ok())
        << out_.str();
    for (const GroupView& group : view.groups()) {
      if (group.channel() != "orders") continue;
      int followers = 0;
      for (const ReplicaView& replica : group.replicas()) {
        if (replica.has_progress() && replica.lag() == 0) ++followers;
      }
      caught_up = group.leader_answered() && followers == 2 &&
                  group.last_sequence() == last && group.msgs() == 3;
    }
    if (!caught_up) absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_TRUE(caught_up) << out_.str();
  ASSERT_EQ(view.nodes_size(), 3);
  for (const NodeView& node : view.nodes()) {
    EXPECT_TRUE(node.up()) << node.node_id();
  }
  EXPECT_EQ(view.cluster_name(), "test");
}

TEST_F(ClusterStatusTest, AKilledNodeIsShownDown) {
  const uint64_t last = Publish(1, "orders", "one");
  cluster_->Kill(3);

  const bool shown =
      StatusUntil(cluster_->ClientAddresses(), [&](const std::string& out) {
        const std::vector<std::string> three = Row(out, 0, "3");
        const std::vector<std::string> row = Row(out, 1, "orders");
        // NODE ADDRESS STATE LEADS REACHABLE-FROM; the channel is led by a
        // live node (re-elected if node 3 led it).
        return three.size() == 5 && three[2] == "down" && three[3] == "0" &&
               three[4] == "-" && CellIs(Row(out, 0, "1"), 2, "up") &&
               CellIs(Row(out, 0, "2"), 2, "up") && row.size() == 12 &&
               (row[2] == "1" || row[2] == "2") &&
               row[10] == absl::StrCat(last);
      });
  EXPECT_TRUE(shown) << out_.str() << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("3 nodes (2 up)"));

  // Asked only of the dead node, nothing answers: that is an error.
  EXPECT_EQ(Run({"cluster", "status", "--server", cluster_->client_address(3)}),
            kExitError);
  EXPECT_THAT(err_.str(), HasSubstr("no node answered"));
  EXPECT_TRUE(CellIs(Row(out_.str(), 0, "?"), 2, "down")) << out_.str();
}

TEST(PrintClusterStatusTest, ShowsTheGatewaysSection) {
  ClusterView view;
  view.set_cluster_name("east");
  GatewayLinkView* link = view.add_gateway_links();
  link->set_node_id(2);
  link->set_remote("west");
  link->set_state("UP");
  link->set_address("127.0.0.1:7222");
  link->set_bytes_sent(123);
  link->set_bytes_received(4567);
  link->set_reconnects(1);
  link->set_remote_channels(4);
  MirrorView* mirror = view.add_mirrors();
  mirror->set_channel("copy");
  mirror->set_node_id(2);
  mirror->set_source_cluster("west");
  mirror->set_source_channel("orders");
  mirror->set_local_last_sequence(7);
  mirror->set_source_last_sequence(9);
  mirror->set_lag(2);
  mirror->set_state("RUNNING");
  ConflictView* conflict = view.add_conflicts();
  conflict->set_channel("dup");
  conflict->add_clusters("east");
  conflict->add_clusters("west");
  conflict->set_routed_to("east");
  std::ostringstream out;
  PrintClusterStatus(view, out);
  const std::string text = out.str();
  EXPECT_THAT(text, HasSubstr("\nGateways\n"));
  std::vector<std::string> row = Row(text, 1, "west");
  ASSERT_EQ(row.size(), 9u) << text;
  EXPECT_EQ(row[0], "2");
  EXPECT_EQ(row[2], "UP");
  EXPECT_EQ(row[5], "123");
  EXPECT_EQ(row[6], "4567");
  EXPECT_EQ(row[7], "1");
  row = Row(text, 0, "copy");
  ASSERT_EQ(row.size(), 7u) << text;
  EXPECT_EQ(row[1], "west/orders");
  EXPECT_EQ(row[3], "7");
  EXPECT_EQ(row[4], "9");
  EXPECT_EQ(row[5], "2");
  EXPECT_THAT(text, HasSubstr("conflict: channel dup is owned by east, west; "
                              "requests go to east"));
}

TEST(ClusterCommandTest, RejectsAnUnknownSubcommand) {
  std::istringstream in;
  std::ostringstream out;
  std::ostringstream err;
  std::atomic<bool> interrupted{false};
  const Io io{&in, &out, &err, &interrupted};
  EXPECT_EQ(RunCli({ClusterCommand()}, {"spate", "cluster", "stats"}, io),
            kExitUsage);
  EXPECT_THAT(err.str(), HasSubstr("expected `status`"));
}

TEST(ClusterMembershipCommandTest, AddsAndRemovesANode) {
  TestCluster cluster(4, "clients { ping_interval_ms: 600000 }",
                      /*members=*/3);
  ASSERT_TRUE(cluster.Start().ok()) << cluster.Logs();
  ASSERT_TRUE(cluster.StartNode(4).ok()) << cluster.Logs();
  std::istringstream in;
  std::ostringstream out;
  std::ostringstream err;
  std::atomic<bool> interrupted{false};
  const Io io{&in, &out, &err, &interrupted};
  const std::string servers =
      absl::StrCat(cluster.client_address(1), ",", cluster.client_address(2),
                   ",", cluster.client_address(3));
  auto meta_voters = [&]() {
    std::vector<uint64_t> voters;
    absl::StatusOr<ClusterStatusResponse> status = cluster.Status(1);
    if (!status.ok()) return voters;
    for (const GroupStatus& group : status->groups()) {
      if (group.group_id() == 0) {
        voters.assign(group.voters().begin(), group.voters().end());
      }
    }
    return voters;
  };
  auto has = [](const std::vector<uint64_t>& v, uint64_t x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };

  EXPECT_EQ(RunCli({ClusterCommand()},
                   {"spate", "cluster", "add", "4", cluster.cluster_address(4),
                    cluster.client_address(4), "--server", servers},
                   io),
            kExitOk)
      << err.str();
  EXPECT_THAT(out.str(), HasSubstr("node 4 added"));
  EXPECT_TRUE(spate::testing::WaitFor([&] { return has(meta_voters(), 4); },
                                      absl::Seconds(60)))
      << cluster.Logs();

  EXPECT_EQ(
      RunCli({ClusterCommand()},
             {"spate", "cluster", "remove", "4", "--server", servers}, io),
      kExitOk)
      << err.str();
  EXPECT_TRUE(spate::testing::WaitFor([&] { return !has(meta_voters(), 4); },
                                      absl::Seconds(60)))
      << cluster.Logs();
  // Unknown node and bad arguments: clear errors.
  EXPECT_EQ(
      RunCli({ClusterCommand()},
             {"spate", "cluster", "remove", "9", "--server", servers}, io),
      kExitError);
  EXPECT_THAT(err.str(), HasSubstr("no node 9"));
  EXPECT_EQ(RunCli({ClusterCommand()}, {"spate", "cluster", "add", "x"}, io),
            kExitUsage);
  cluster.StopAll();
}

// With authentication on, `spate cluster status` and `spate clients` send
// the credential flags (or $SPATE_TOKEN) on their Admin calls; without
// them the node refuses.
TEST(ClusterCommandAuthTest, StatusSendsTheCredentials) {
  TestCluster cluster(
      1,
      "auth { enabled: true\n"
      "  users { name: \"ops\" tokens: \"ops-token\" admin: true }\n"
      "}\n");
  ASSERT_TRUE(cluster.Start().ok()) << cluster.Logs();
  std::istringstream in;
  std::ostringstream out;
  std::ostringstream err;
  std::atomic<bool> interrupted{false};
  const Io io{&in, &out, &err, &interrupted};
  const std::string server = cluster.client_address(1);
  auto run = [&](std::vector<std::string> args) {
    out.str("");
    err.str("");
    args.insert(args.begin(), "spate");
    return RunCli({ClusterCommand(), ClientsCommand()}, args, io);
  };

  // No credentials, or a wrong token: refused.
  EXPECT_EQ(run({"cluster", "status", "--server", server}), kExitError);
  EXPECT_EQ(run({"cluster", "status", "--server", server, "--token", "guess"}),
            kExitError);
  EXPECT_EQ(run({"clients", "--server", server}), kExitError);
  EXPECT_THAT(err.str(), HasSubstr("authentication failed"));

  // The token flag: the status table and the clients list.
  bool shown = spate::testing::WaitFor(
      [&] {
        return run({"cluster", "status", "--server", server, "--token",
                    "ops-token"}) == kExitOk &&
               CellIs(Row(out.str(), 0, "1"), 2, "up");
      },
      kPatience);
  EXPECT_TRUE(shown) << out.str() << err.str();
  EXPECT_EQ(run({"clients", "--server", server, "--token", "ops-token"}),
            kExitOk)
      << err.str();

  // $SPATE_TOKEN when the flag is not given.
  ASSERT_EQ(setenv("SPATE_TOKEN", "ops-token", 1), 0);
  EXPECT_EQ(run({"cluster", "status", "--server", server}), kExitOk)
      << err.str();
  unsetenv("SPATE_TOKEN");
  cluster.StopAll();
}

}  // namespace
}  // namespace spate::cli
