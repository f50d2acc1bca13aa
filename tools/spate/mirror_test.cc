// `spate mirror add|remove|list` against two real single-node clusters,
// "east" and "west", linked by gateways: a mirror declared from the CLI
// catches up with its source and follows it, the list shows it with its
// lag, bad declarations are refused with the reason and change nothing,
// and remove deletes it. MergeMirrorLists prefers the feeding node.
#include "tools/spate/mirror.h"

#include <atomic>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/cluster.h"
#include "tests/testing/server_process.h"
#include "tests/testing/waits.h"
#include "tools/spate/command.h"
#include "tools/spate/pub.h"

namespace spate::cli {
namespace {

using ::spate::testing::ServerProcess;
using ::spate::testing::TestCluster;
using ::spate::testing::WaitFor;
using ::testing::HasSubstr;

constexpr absl::Duration kPatience = absl::Seconds(30);

// The row of `output` whose first cell is `channel`, split on spaces.
std::vector<std::string> Row(const std::string& output,
                             const std::string& channel) {
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    std::vector<std::string> cells =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (!cells.empty() && cells[0] == channel) return cells;
  }
  return {};
}

class MirrorCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string east_gateway =
        absl::StrCat("127.0.0.1:", ServerProcess::FreePort());
    const std::string west_gateway =
        absl::StrCat("127.0.0.1:", ServerProcess::FreePort());
    const std::string tuning =
        "gateway { directory_refresh_ms: 200 request_timeout_ms: 2000 }\n";
    east_ = std::make_unique<TestCluster>(
        1,
        absl::StrCat("gateways { name: \"west\" addresses: \"", west_gateway,
                     "\" }\n", tuning,
                     "mirrors { channel: \"configured\" source_cluster: "
                     "\"west\" source_channel: \"orders\" }\n"),
        "east", std::vector<std::string>{east_gateway});
    west_ = std::make_unique<TestCluster>(
        1,
        absl::StrCat("gateways { name: \"east\" addresses: \"", east_gateway,
                     "\" }\n", tuning),
        "west", std::vector<std::string>{west_gateway});
    absl::Status started = west_->Start();
    ASSERT_TRUE(started.ok()) << started << west_->Logs();
    started = east_->Start();
    ASSERT_TRUE(started.ok()) << started << east_->Logs();
  }

  void TearDown() override {
    for (TestCluster* cluster : {east_.get(), west_.get()}) {
      if (HasFailure()) std::cerr << cluster->Logs();
      cluster->StopAll();
    }
  }

  int Run(std::vector<std::string> args, TestCluster* cluster) {
    std::vector<std::string> argv = {"spate"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--server");
    argv.push_back(cluster->client_address(1));
    out_.str("");
    err_.str("");
    return RunCli({PubCommand(), MirrorCommand()}, argv, io_);
  }

  // Publishes `count` messages to west's `channel`.
  void PublishInWest(const std::string& channel, int count) {
    for (int i = 0; i < count; ++i) {
      ASSERT_TRUE(WaitFor(
          [&] {
            return Run({"pub", channel, absl::StrCat("m", i)}, west_.get()) ==
                   kExitOk;
          },
          kPatience))
          << err_.str();
    }
  }

  // `spate mirror list` in east until `channel`'s row satisfies `done`.
  template <typename Done>
  bool ListUntil(const std::string& channel, Done done) {
    return WaitFor(
        [&] {
          return Run({"mirror", "list"}, east_.get()) == kExitOk &&
                 done(Row(out_.str(), channel));
        },
        kPatience);
  }

  std::unique_ptr<TestCluster> east_;
  std::unique_ptr<TestCluster> west_;
  std::istringstream in_;
  std::ostringstream out_;
  std::ostringstream err_;
  std::atomic<bool> interrupted_{false};
  Io io_{&in_, &out_, &err_, &interrupted_};
};

TEST_F(MirrorCommandTest, AddedMirrorCatchesUpFollowsAndIsRemoved) {
  PublishInWest("payments", 5);
  ASSERT_TRUE(WaitFor(
      [&] {
        return Run({"mirror", "add", "payments-copy", "west", "payments"},
                   east_.get()) == kExitOk;
      },
      kPatience))
      << err_.str();
  EXPECT_THAT(out_.str(),
              HasSubstr("mirror payments-copy of west/payments declared"));
  // Declared again: not an error, nothing new.
  ASSERT_EQ(
      Run({"mirror", "add", "payments-copy", "west", "payments"}, east_.get()),
      kExitOk)
      << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("was declared already"));

  // CHANNEL SOURCE DECLARED LAST SOURCE-LAST LAG STATE ("SOURCE LAST" is
  // two header words; rows have one cell per column).
  ASSERT_TRUE(ListUntil("payments-copy", [](const std::vector<std::string>& r) {
    return r.size() == 7 && r[3] == "5" && r[4] == "5" && r[5] == "0" &&
           r[6] == "RUNNING";
  })) << out_.str();
  EXPECT_EQ(Row(out_.str(), "payments-copy")[1], "west/payments");
  EXPECT_EQ(Row(out_.str(), "payments-copy")[2], "admin");
  EXPECT_EQ(Row(out_.str(), "configured")[2], "config");

  // It follows the source.
  PublishInWest("payments", 3);
  ASSERT_TRUE(ListUntil("payments-copy", [](const std::vector<std::string>& r) {
    return r.size() == 7 && r[3] == "8" && r[5] == "0";
  })) << out_.str();

  ASSERT_EQ(Run({"mirror", "remove", "payments-copy"}, east_.get()), kExitOk)
      << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("mirror payments-copy removed"));
  ASSERT_TRUE(ListUntil("payments-copy", [](const std::vector<std::string>& r) {
    return r.empty();
  })) << out_.str();
}

TEST_F(MirrorCommandTest, BadDeclarationsAreRefusedWithTheReason) {
  // A regular channel of east, and the configured mirror created.
  ASSERT_TRUE(WaitFor(
      [&] {
        return Run({"pub", "local", "x"}, east_.get()) == kExitOk;
      },
      kPatience))
      << err_.str();
  ASSERT_TRUE(ListUntil("configured", [](const std::vector<std::string>& r) {
    return !r.empty();
  })) << out_.str();

  EXPECT_EQ(Run({"mirror", "add", "copy", "north"}, east_.get()), kExitError);
  EXPECT_THAT(
      err_.str(),
      HasSubstr("cluster 'north' is not among this cluster's gateways"));
  EXPECT_EQ(Run({"mirror", "add", "bad*name", "west"}, east_.get()),
            kExitError);
  EXPECT_THAT(err_.str(), HasSubstr("INVALID_ARGUMENT"));
  EXPECT_EQ(Run({"mirror", "add", "local", "west"}, east_.get()), kExitError);
  EXPECT_THAT(err_.str(), HasSubstr("exists already as a regular channel"));
  EXPECT_EQ(Run({"mirror", "add", "configured", "west", "other"}, east_.get()),
            kExitError);
  EXPECT_THAT(err_.str(), HasSubstr("a mirror of west/orders"));
  EXPECT_EQ(Run({"mirror", "remove", "configured"}, east_.get()), kExitError);
  EXPECT_THAT(err_.str(), HasSubstr("declared in the config file"));
  EXPECT_EQ(Run({"mirror", "remove", "local"}, east_.get()), kExitError);
  EXPECT_THAT(err_.str(), HasSubstr("is a regular channel, not a mirror"));
  EXPECT_EQ(Run({"mirror", "add", "x"}, east_.get()), kExitUsage);

  // Nothing changed: "local" is still a regular channel taking publishes,
  // and the only mirror is the configured one.
  EXPECT_EQ(Run({"pub", "local", "y"}, east_.get()), kExitOk) << err_.str();
  ASSERT_EQ(Run({"mirror", "list"}, east_.get()), kExitOk) << err_.str();
  EXPECT_TRUE(Row(out_.str(), "local").empty()) << out_.str();
  EXPECT_TRUE(Row(out_.str(), "copy").empty()) << out_.str();
  EXPECT_FALSE(Row(out_.str(), "configured").empty()) << out_.str();
}

TEST(MergeMirrorListsTest, PrefersTheFeedingNodeThenTheFreshestReplica) {
  ListMirrorsResponse follower;
  MirrorEntry* stale = follower.add_mirrors();
  stale->set_channel("b");
  stale->set_has_replica(true);
  stale->set_local_last_sequence(7);
  MirrorEntry* only_here = follower.add_mirrors();
  only_here->set_channel("a");
  ListMirrorsResponse leader;
  MirrorEntry* fed = leader.add_mirrors();
  fed->set_channel("b");
  fed->set_has_replica(true);
  fed->set_local_last_sequence(5);
  fed->mutable_feed()->set_lag(2);
  ListMirrorsResponse merged = MergeMirrorLists({follower, leader});
  ASSERT_EQ(merged.mirrors_size(), 2);
  EXPECT_EQ(merged.mirrors(0).channel(), "a");
  EXPECT_EQ(merged.mirrors(1).channel(), "b");
  EXPECT_TRUE(merged.mirrors(1).has_feed());
  EXPECT_EQ(merged.mirrors(1).local_last_sequence(), 5u);
  // Without a feed, the replica with the most messages wins.
  ListMirrorsResponse fresher;
  MirrorEntry* ahead = fresher.add_mirrors();
  ahead->set_channel("b");
  ahead->set_has_replica(true);
  ahead->set_local_last_sequence(9);
  merged = MergeMirrorLists({follower, fresher});
  EXPECT_EQ(merged.mirrors(1).local_last_sequence(), 9u);
}

}  // namespace
}  // namespace spate::cli
