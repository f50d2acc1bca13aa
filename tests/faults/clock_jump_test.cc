// Regression tests from soak seed 5011 (fault finding 8, docs/reliability.md):
// node 2's wall clock jumped +172 s for 2.6 s and back; afterwards node 2,
// leader of a channel, never caught up a restarted peer. Its event loop
// scheduled raft ticks on the wall clock: the tick due 10 ms after a
// (jumped) "now" was 172 s away once the clock came back, so the node sent
// no heartbeats, never re-probed the peer, and never quiesced or balanced
// for 172 s. Timers now run on the monotonic clock (server/clock.h); only
// timestamps use the wall clock.
//
// Both tests run every node under libfaketime and are skipped without it.
#include <iostream>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/faults/fault_cluster.h"
#include "tests/faults/fault_runner.h"
#include "tests/faults/schedule.h"
#include "tests/testing/stream_client.h"
#include "tests/testing/waits.h"

namespace spate::faults {
namespace {

using testing::Retry;
using testing::TestConnection;
using testing::WaitFor;

constexpr absl::Duration kPublishPatience = absl::Seconds(20);

// The pinned-down scenario: the channel's leader runs 3 s on a clock 172 s
// ahead, then on the right one again. It must keep ticking: an idle group
// it leads quiesces again (which takes ticks), and a follower restarted
// while messages were published catches up (which takes heartbeats).
TEST(ClockJumpTest, LeaderKeepsTickingAfterItsClockJumpsBack_seed5011) {
  FaultClusterOptions options;
  options.faketime_library = FindFaketimeLibrary();
  if (options.faketime_library.empty()) GTEST_SKIP() << "needs libfaketime";
  FaultCluster cluster(options);
  ASSERT_TRUE(cluster.Start(/*lose_unsynced=*/false).ok()) << cluster.Logs();
  TestConnection conn(cluster.client_address(1), "pub");
  ASSERT_TRUE(Retry([&] { return conn.Connect(); }).ok());
  for (int i = 1; i <= 20; ++i) {
    ASSERT_TRUE(
        conn.PublishReconnecting("j", absl::StrCat("m", i), kPublishPatience)
            .ok());
  }
  int leader = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        for (int id : {1, 2, 3}) {
          std::optional<GroupStatus> group = cluster.Group(id, "j");
          if (!group || group->last_sequence() != 20) return false;
        }
        std::optional<GroupStatus> group = cluster.Group(1, "j");
        leader = static_cast<int>(group->leader_id());
        return leader != 0;
      },
      absl::Seconds(20)))
      << cluster.Logs();
  const int follower = leader == 1 ? 2 : 1;

  // libfaketime re-reads the offset every second: 3 s covers at least one
  // second on the jumped clock, and 2 s after the revert the node is back.
  ASSERT_TRUE(cluster.SetClockOffset(leader, absl::Seconds(172)).ok());
  absl::SleepFor(absl::Seconds(3));
  ASSERT_TRUE(cluster.SetClockOffset(leader, absl::ZeroDuration()).ok());
  absl::SleepFor(absl::Seconds(2));

  TestConnection leader_conn(cluster.client_address(leader), "pub2");
  ASSERT_TRUE(Retry([&] { return leader_conn.Connect(); }).ok());
  ASSERT_TRUE(
      leader_conn.PublishReconnecting("j", "wake", kPublishPatience).ok());
  EXPECT_TRUE(WaitFor(
      [&] {
        std::optional<GroupStatus> group = cluster.Group(leader, "j");
        return group && group->role() == "leader" && group->quiesced();
      },
      absl::Seconds(10)))
      << "node " << leader
      << " stopped ticking after its clock jumped back: the group it leads "
         "never quiesced again\n"
      << cluster.Logs();

  ASSERT_TRUE(cluster.StopNode(follower).ok());
  uint64_t last = 0;
  for (int i = 0; i < 300; ++i) {
    absl::StatusOr<uint64_t> sequence = leader_conn.PublishReconnecting(
        "j", absl::StrCat("while-down-", i), kPublishPatience);
    ASSERT_TRUE(sequence.ok()) << sequence.status();
    last = *sequence;
  }
  ASSERT_TRUE(cluster.StartNode(follower, /*lose_unsynced=*/false).ok());
  EXPECT_TRUE(WaitFor(
      [&] {
        std::optional<GroupStatus> group = cluster.Group(follower, "j");
        return group && group->last_sequence() == last;
      },
      absl::Seconds(15)))
      << "node " << follower << " was not caught up to sequence " << last
      << "\n"
      << cluster.Logs();
}

// The soak run itself (5 nodes, every fault kind, 12 s of faults): a
// `clock_jump` of node 2 by +172 s, then a `corrupt` of node 3, which
// rebuilds from its peers, node 2 leading one of its channels.
TEST(ClockJumpTest, ClockJumpThenCorruptRunIsValid_seed5011) {
  if (FindFaketimeLibrary().empty()) GTEST_SKIP() << "needs libfaketime";
  RunOptions options;
  options.seed = 5011;
  options.nodes = 5;
  options.fault_phase = absl::Seconds(12);
  RunReport report = RunSchedule(options);
  std::cout << report.Summary() << std::endl;
  EXPECT_TRUE(report.valid()) << report.Explain();
  EXPECT_GT(report.faults["clock_jump"], 0) << report.Explain();
  EXPECT_GT(report.faults["corrupt"], 0) << report.Explain();
}

}  // namespace
}  // namespace spate::faults
