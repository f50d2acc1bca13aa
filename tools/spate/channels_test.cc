// `spate channels` and `spate channel info` against three real
// spate-server processes.
#include "tools/spate/channels.h"

#include <google/protobuf/util/json_util.h>

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
#include "tools/spate/cli_cluster_test.h"
#include "tools/spate/cluster_view.pb.h"
#include "tools/spate/command.h"
#include "tools/spate/pub.h"
#include "tools/spate/sub.h"

namespace spate::cli {
namespace {

using ::testing::HasSubstr;

class ChannelsTest : public CliClusterTest {
 protected:
  ChannelsTest()
      : CliClusterTest({PubCommand(), SubCommand(), ChannelsCommand(),
                        ChannelCommand()}) {}
};

TEST_F(ChannelsTest, ListsChannelsAndShowsOneInDetail) {
  RunUntilOk({"pub", "orders", "one", Via(1)});
  RunUntilOk({"pub", "orders", "two", Via(2)});
  RunUntilOk({"pub", "orders", "three", Via(3)});
  RunUntilOk({"pub", "payments", "paid!", Via(2)});
  RunUntilOk({"sub", "orders", "--durable", "billing", "--all", "--count", "1",
              "--client_id", "reader", Via(3)});
  ASSERT_EQ(out_.str(), "[#1] one\n");

  // CHANNEL MSGS BYTES FIRST LAST SUBS LEADER, from every node's view.
  const absl::Time deadline = absl::Now() + kPatience;
  std::vector<std::string> orders;
  std::vector<std::string> payments;
  while (absl::Now() < deadline) {
    ASSERT_EQ(Run({"channels", "--server", cluster_->ClientAddresses()}),
              kExitOk)
        << err_.str();
    orders = TableRow(out_.str(), "orders");
    payments = TableRow(out_.str(), "payments");
    if (orders.size() == 7 && orders[5] == "1" && payments.size() == 7) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_EQ(orders, (std::vector<std::string>{"orders", "3", "11", "1", "3",
                                              "1", orders.back()}))
      << out_.str();
  EXPECT_EQ(payments, (std::vector<std::string>{"payments", "1", "5", "1", "1",
                                                "0", payments.back()}))
      << out_.str();
  const std::string leader = orders.back();
  EXPECT_TRUE(leader == "1" || leader == "2" || leader == "3") << leader;

  // The detail agrees and names every replica's role.
  ASSERT_EQ(Run({"channel", "info", "orders", Via(1)}), kExitOk) << err_.str();
  const std::string info = out_.str();
  EXPECT_THAT(info, HasSubstr("leader         node " + leader + ", term "));
  EXPECT_THAT(info, HasSubstr("messages       3 (11 bytes), sequences 1..3"));
  EXPECT_THAT(info, HasSubstr("subscriptions  1"));
  EXPECT_THAT(info, HasSubstr("voters         1,2,3"));
  int leaders = 0;
  int followers = 0;
  for (const std::string id : {"1", "2", "3"}) {
    const std::vector<std::string> replica = TableRow(info, id);
    ASSERT_GE(replica.size(), 2u) << info;
    leaders += replica[1] == "leader";
    followers += replica[1] == "follower";
    EXPECT_EQ(replica[1] == "leader", id == leader) << info;
  }
  EXPECT_EQ(leaders, 1) << info;
  EXPECT_EQ(followers, 2) << info;

  // --json: the same data as protobuf JSON.
  ASSERT_EQ(Run({"channels", "--json", Via(2)}), kExitOk) << err_.str();
  ChannelList list;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(out_.str(), &list).ok())
      << out_.str();
  ASSERT_EQ(list.channels_size(), 2) << out_.str();
  EXPECT_EQ(list.channels(0).channel(), "orders");
  EXPECT_EQ(list.channels(0).last_sequence(), 3u);
  EXPECT_EQ(list.channels(1).channel(), "payments");
  EXPECT_EQ(list.channels(1).msgs(), 1);

  ASSERT_EQ(Run({"channel", "info", "payments", "--json", Via(3)}), kExitOk);
  GroupView payments_view;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(out_.str(), &payments_view)
          .ok())
      << out_.str();
  EXPECT_EQ(payments_view.channel(), "payments");
  EXPECT_EQ(payments_view.bytes(), 5);
  EXPECT_EQ(payments_view.replicas_size(), 3);
}

TEST_F(ChannelsTest, UnknownChannelIsNotFound) {
  RunUntilOk({"channels", Via(1)});
  EXPECT_EQ(out_.str(), "no channels\n");
  EXPECT_EQ(Run({"channel", "info", "nope", Via(1)}), kExitError);
  EXPECT_THAT(err_.str(), HasSubstr("no channel named \"nope\""));
}

}  // namespace
}  // namespace spate::cli
