// Regression test from the smoke scenario CorruptStoppedNode (seed 107):
// a node whose RocksDB write-ahead log lost its synced tail while it was
// stopped (the file truncated) must not come back with the shorter log as
// if nothing happened (DESIGN.md §6: a node that finds a truncated record
// never silently truncates; it stops voting and leading for the affected
// groups and repairs from its peers, or exits with a clear message).
// Silently forgetting acknowledged raft entries and votes is what lets a
// later election pick a leader without committed entries.
//
// The node is kept cut off from its peers after the restart, so it cannot
// repair before we look: it must have exited, moved the damaged store aside
// (to rebuild from its peers), or report the channel's group halted, or
// still hold every entry it held before.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/faults/fault_cluster.h"
#include "tests/testing/stream_client.h"
#include "tests/testing/waits.h"

namespace spate::faults {
namespace {

using testing::Retry;
using testing::TestConnection;
using testing::WaitFor;

// The newest write-ahead log file of a RocksDB directory.
std::filesystem::path NewestWal(const std::string& dir) {
  std::filesystem::path newest;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (absl::EndsWith(name, ".log") && entry.path() > newest) {
      newest = entry.path();
    }
  }
  return newest;
}

// Flips one bit of byte 10 of the newest write-ahead log of `dir`: inside
// the first record's payload (its header is 7 bytes), with later records
// behind it, so it is corruption RocksDB reports, not a torn tail.
void FlipEarlyWalBit(const std::string& dir) {
  const std::filesystem::path wal = NewestWal(dir);
  ASSERT_FALSE(wal.empty());
  ASSERT_GT(std::filesystem::file_size(wal), 64u);
  std::fstream file(wal, std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(10);
  char byte = 0;
  file.read(&byte, 1);
  byte = static_cast<char>(byte ^ 0x10);
  file.seekp(10);
  file.write(&byte, 1);
}

// The damaged stores a node moved aside (`<data_dir>.damaged-<seconds>`).
int DamagedCopies(const std::string& data_dir) {
  const std::filesystem::path dir(data_dir);
  int copies = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(dir.parent_path())) {
    if (absl::StartsWith(entry.path().filename().string(),
                         dir.filename().string() + ".damaged-")) {
      ++copies;
    }
  }
  return copies;
}

TEST(CorruptionTest, TruncatedSyncedWalIsNotSilentlyAccepted_seed107) {
  FaultClusterOptions options;
  options.extra_config = "clients { ping_interval_ms: 500 }\n";
  FaultCluster cluster(options);
  ASSERT_TRUE(cluster.Start(/*lose_unsynced=*/false).ok()) << cluster.Logs();
  TestConnection conn(cluster.client_address(1), "pub");
  ASSERT_TRUE(Retry([&] { return conn.Connect(); }).ok());
  constexpr int kMessages = 300;
  for (int i = 1; i <= kMessages; ++i) {
    ASSERT_TRUE(Retry([&] {
                  return conn.Publish(
                      "wal", absl::StrCat("m", i, "-", std::string(200, 'x')));
                }).ok());
  }
  std::optional<GroupStatus> before;
  ASSERT_TRUE(WaitFor(
      [&] {
        before = cluster.Group(3, "wal");
        return before && before->last_sequence() == kMessages &&
               before->commit_index() == before->last_index();
      },
      absl::Seconds(20)));

  cluster.Kill(3);
  const std::filesystem::path wal = NewestWal(cluster.data_dir(3));
  ASSERT_FALSE(wal.empty());
  const uint64_t size = std::filesystem::file_size(wal);
  std::filesystem::resize_file(wal, size / 2);
  for (int peer : {1, 2}) {
    cluster.SetLink(3, peer, LinkRule{LinkMode::kDrop});
    cluster.SetLink(peer, 3, LinkRule{LinkMode::kDrop});
  }
  absl::Status started = cluster.StartNode(3, /*lose_unsynced=*/false);
  if (!started.ok()) {
    // The refusal must say why: print it for the test log.
    std::cout << "node 3 refused its damaged store: " << started << "\n"
              << cluster.process(3).Log() << std::endl;
    return;
  }
  std::optional<GroupStatus> after;
  ASSERT_TRUE(WaitFor(
      [&] {
        return (after = cluster.Group(3, "wal")) || !cluster.Status(3).ok() ||
               DamagedCopies(cluster.data_dir(3));
      },
      absl::Seconds(10)));
  if (!after) {
    // Found the damage: stopped serving, or moved the store aside to
    // rebuild it from the peers (it cannot reach them yet).
    SUCCEED() << "node 3 did not serve its damaged store";
    return;
  }
  EXPECT_TRUE(after->halted() || after->last_index() >= before->last_index())
      << "node 3 came back from a truncated write-ahead log (" << wal << ", "
      << size << " -> " << size / 2 << " bytes) with the channel's raft log "
      << "at index " << after->last_index() << " (held " << before->last_index()
      << ", sequence " << after->last_sequence() << " of "
      << before->last_sequence() << ", term " << after->term() << " vs "
      << before->term() << ") and the group not halted: it "
      << "forgot synced entries and votes without noticing.\n"
      << cluster.Logs();
}

// The consequence, end to end: node 2 is cut off while 300 messages are
// acked by nodes 1 and 3; then node 1 crashes and node 3 loses the synced
// tail of its log while stopped. Nodes 2 and 3 are a majority, and neither
// holds the last acked messages. A node that detects its damage refuses to
// vote or lead, so the channel stays unavailable until node 1 returns (no
// ack is lost). A node that does not detect it lets 2 and 3 elect a
// leader that hands out the acked sequences again: acked messages lost.
TEST(CorruptionTest, TruncatedWalPlusCrashNeverReusesAckedSequences_seed107) {
  FaultClusterOptions options;
  options.extra_config = "clients { ping_interval_ms: 500 }\n";
  FaultCluster cluster(options);
  ASSERT_TRUE(cluster.Start(/*lose_unsynced=*/false).ok()) << cluster.Logs();
  TestConnection conn(cluster.client_address(1), "pub");
  ASSERT_TRUE(Retry([&] { return conn.Connect(); }).ok());
  ASSERT_TRUE(Retry([&] { return conn.Publish("w", "first"); }).ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        for (int id : {1, 2, 3}) {
          std::optional<GroupStatus> group = cluster.Group(id, "w");
          if (!group || group->last_sequence() != 1) return false;
        }
        return true;
      },
      absl::Seconds(20)));
  for (int peer : {1, 3}) {
    cluster.SetLink(2, peer, LinkRule{LinkMode::kDrop});
    cluster.SetLink(peer, 2, LinkRule{LinkMode::kDrop});
  }
  // Retried publishes (while the channel's leader moves away from node 2)
  // may store a message twice, so the acked top is measured, not assumed.
  uint64_t acked = 1;
  for (int i = 2; i <= 301; ++i) {
    absl::StatusOr<uint64_t> sequence = conn.PublishReconnecting(
        "w", absl::StrCat("m", i, "-", std::string(200, 'x')),
        absl::Seconds(20));
    ASSERT_TRUE(sequence.ok()) << sequence.status();
    acked = std::max(acked, *sequence);
  }
  const uint64_t kAcked = acked;
  ASSERT_TRUE(WaitFor(
      [&] {
        std::optional<GroupStatus> group = cluster.Group(3, "w");
        return group && group->last_sequence() == kAcked;
      },
      absl::Seconds(20)));
  cluster.Kill(1);
  cluster.Kill(3);
  const std::filesystem::path wal = NewestWal(cluster.data_dir(3));
  ASSERT_FALSE(wal.empty());
  std::filesystem::resize_file(wal, std::filesystem::file_size(wal) / 2);
  cluster.HealLinks();
  const absl::Status node3 = cluster.StartNode(3, /*lose_unsynced=*/false);
  TestConnection conn2(cluster.client_address(2), "pub2");
  const absl::Status connected =
      Retry([&] { return conn2.Connect(); }, absl::Seconds(15)).status();
  absl::StatusOr<uint64_t> after = absl::UnavailableError("not connected");
  if (connected.ok()) {
    after = conn2.PublishReconnecting("w", "after", absl::Seconds(15));
  }
  if (after.ok()) {
    EXPECT_GT(*after, kAcked)
        << "nodes 2 and 3 (node 3 restarted from a write-ahead log cut to "
        << "half: " << (node3.ok() ? "it ran" : node3.ToString())
        << ") acked a new message at sequence " << *after
        << ", a sequence already acked for another message: acked "
        << "messages were lost.\n"
        << cluster.Logs();
  }
  // Once node 1 is back, the channel must serve again and keep counting.
  ASSERT_TRUE(cluster.StartNode(1, /*lose_unsynced=*/false).ok());
  if (!after.ok()) {
    TestConnection conn1(cluster.client_address(1), "pub1");
    ASSERT_TRUE(Retry([&] { return conn1.Connect(); }).ok());
    absl::StatusOr<uint64_t> later =
        conn1.PublishReconnecting("w", "later", absl::Seconds(30));
    ASSERT_TRUE(later.ok()) << later.status() << "\n" << cluster.Logs();
    EXPECT_GT(*later, kAcked);
  }
}

// Also from CorruptStoppedNode: a bit flipped inside an early record of
// the write-ahead log is corruption RocksDB reports when the node opens its
// store. spate-server used to crash on it (SIGSEGV while tearing down the
// half-started server, nothing logged). Now a cluster node says what it
// found, keeps the damaged store aside and rebuilds from its peers, voting
// only once caught up.
TEST(CorruptionTest, CorruptWalRecordMakesTheNodeRebuildFromItsPeers_seed107) {
  FaultClusterOptions options;
  FaultCluster cluster(options);
  ASSERT_TRUE(cluster.Start(/*lose_unsynced=*/false).ok()) << cluster.Logs();
  TestConnection conn(cluster.client_address(1), "pub");
  ASSERT_TRUE(Retry([&] { return conn.Connect(); }).ok());
  for (int i = 1; i <= 20; ++i) {
    ASSERT_TRUE(
        Retry([&] { return conn.Publish("flip", absl::StrCat("m", i)); }).ok());
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        std::optional<GroupStatus> group = cluster.Group(3, "flip");
        return group && group->last_sequence() == 20;
      },
      absl::Seconds(20)));
  ASSERT_TRUE(cluster.StopNode(3).ok());
  FlipEarlyWalBit(cluster.data_dir(3));
  ASSERT_TRUE(cluster.StartNode(3, /*lose_unsynced=*/false).ok())
      << cluster.process(3).Log();
  EXPECT_EQ(DamagedCopies(cluster.data_dir(3)), 1);
  ASSERT_TRUE(WaitFor(
      [&] {
        std::optional<GroupStatus> group = cluster.Group(3, "flip");
        return group && group->last_sequence() == 20 &&
               absl::StrContains(cluster.process(3).Log(), "store rebuilt");
      },
      absl::Seconds(30)))
      << cluster.Logs();
  const std::string log = cluster.process(3).Log();
  EXPECT_TRUE(absl::StrContains(log, "store damaged, moved to")) << log;
  EXPECT_TRUE(absl::StrContains(log, "orruption")) << log;
  ASSERT_TRUE(Retry([&] { return conn.Publish("flip", "after"); }).ok());
}

// The scenario of soak seed 3064, pinned down: node 3 is down while nodes 1
// and 2 find their stores damaged and rebuild them. Two empty voters are a
// majority of three; they must not elect a leader (it would hand out the
// acked sequences again). Once node 3, the only one holding the data, is
// back, it leads, the others catch up from it, and nothing acked is lost.
TEST(CorruptionTest, TwoRebuiltNodesElectNoLeaderWithoutTheData_seed3064) {
  FaultClusterOptions options;
  options.extra_config = "clients { ping_interval_ms: 500 }\n";
  FaultCluster cluster(options);
  ASSERT_TRUE(cluster.Start(/*lose_unsynced=*/false).ok()) << cluster.Logs();
  TestConnection conn(cluster.client_address(1), "pub");
  ASSERT_TRUE(Retry([&] { return conn.Connect(); }).ok());
  constexpr int kMessages = 50;
  for (int i = 1; i <= kMessages; ++i) {
    ASSERT_TRUE(
        Retry([&] { return conn.Publish("r", absl::StrCat("m", i)); }).ok());
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        for (int id : {1, 2, 3}) {
          std::optional<GroupStatus> group = cluster.Group(id, "r");
          if (!group || group->last_sequence() != kMessages) return false;
        }
        return true;
      },
      absl::Seconds(20)));
  ASSERT_TRUE(cluster.StopNode(3).ok());
  for (int id : {1, 2}) {
    ASSERT_TRUE(cluster.StopNode(id).ok());
    FlipEarlyWalBit(cluster.data_dir(id));
  }
  for (int id : {1, 2}) {
    ASSERT_TRUE(cluster.StartNode(id, /*lose_unsynced=*/false).ok())
        << cluster.process(id).Log();
    EXPECT_EQ(DamagedCopies(cluster.data_dir(id)), 1);
  }
  // Ten election timeouts and more: no leader of any group.
  absl::SleepFor(absl::Seconds(6));
  for (int id : {1, 2}) {
    absl::StatusOr<ClusterStatusResponse> status = cluster.Status(id);
    ASSERT_TRUE(status.ok()) << status.status();
    for (const GroupStatus& group : status->groups()) {
      EXPECT_EQ(group.leader_id(), 0u)
          << "node " << id << " sees a leader of group " << group.group_id()
          << " elected without the data: " << group.ShortDebugString() << "\n"
          << cluster.Logs();
    }
  }
  TestConnection conn2(cluster.client_address(2), "pub2");
  absl::StatusOr<uint64_t> early = absl::UnavailableError("not connected");
  if (conn2.Connect().ok()) early = conn2.Publish("r", "early");
  EXPECT_FALSE(early.ok()) << "acked at sequence " << *early
                           << " without the node holding the data";

  ASSERT_TRUE(cluster.StartNode(3, /*lose_unsynced=*/false).ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        for (int id : {1, 2, 3}) {
          std::optional<GroupStatus> group = cluster.Group(id, "r");
          if (!group || group->last_sequence() < kMessages) return false;
        }
        return true;
      },
      absl::Seconds(60)))
      << cluster.Logs();
  TestConnection conn3(cluster.client_address(1), "pub3");
  ASSERT_TRUE(Retry([&] { return conn3.Connect(); }).ok());
  absl::StatusOr<uint64_t> after =
      conn3.PublishReconnecting("r", "after", absl::Seconds(30));
  ASSERT_TRUE(after.ok()) << after.status() << "\n" << cluster.Logs();
  EXPECT_GT(*after, static_cast<uint64_t>(kMessages));
  ASSERT_TRUE(WaitFor(
      [&] {
        for (int id : {1, 2}) {
          if (!absl::StrContains(cluster.process(id).Log(), "store rebuilt")) {
            return false;
          }
        }
        return true;
      },
      absl::Seconds(30)))
      << cluster.Logs();
}

}  // namespace
}  // namespace spate::faults
