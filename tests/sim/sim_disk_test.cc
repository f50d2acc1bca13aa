#include "tests/sim/sim_disk.h"

#include <vector>

#include "absl/status/status.h"
#include "base/prng.h"
#include "gtest/gtest.h"

namespace spate::sim {
namespace {

raft::ConfState Voters123() {
  raft::ConfState cs;
  for (raft::NodeId id : {1, 2, 3}) cs.add_voters(id);
  return cs;
}

// A write appending one entry at `index` and recording it as applied.
SimDisk::Write AppendAt(raft::Index index) {
  return [index](DiskState* disk) {
    raft::Entry e;
    e.set_index(index);
    e.set_term(1);
    e.set_data("x");
    if (absl::Status s = disk->log.Append({e}); !s.ok()) return s;
    disk->app.applied = index;
    return absl::OkStatus();
  };
}

TEST(SimDiskTest, WritesAreVisibleAtOnceAndDurableWhenSynced) {
  SimDisk disk(Voters123());
  ASSERT_TRUE(disk.Apply(AppendAt(1), /*sync=*/false).ok());
  EXPECT_EQ(disk.reader()->LastIndex(), 1u);
  EXPECT_EQ(disk.durable().log.LastIndex(), 0u);
  EXPECT_EQ(disk.unsynced_writes(), 1u);
  // A sync flushes the earlier unsynced write too.
  ASSERT_TRUE(disk.Apply(AppendAt(2), /*sync=*/true).ok());
  EXPECT_EQ(disk.durable().log.LastIndex(), 2u);
  EXPECT_EQ(disk.durable().app.applied, 2u);
  EXPECT_EQ(disk.unsynced_writes(), 0u);
}

TEST(SimDiskTest, CrashKeepsSyncedWritesAndAPrefixOfTheOthers) {
  std::vector<bool> kept_count_seen(6, false);
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    SimDisk disk(Voters123());
    ASSERT_TRUE(disk.Apply(AppendAt(1), /*sync=*/true).ok());
    for (raft::Index i = 2; i <= 5; ++i) {
      ASSERT_TRUE(disk.Apply(AppendAt(i), /*sync=*/false).ok());
    }
    const raft::LogReader* reader = disk.reader();
    base::Prng prng(seed);
    disk.Crash(&prng);
    // Same reader object, now showing the durable state: the synced entry
    // and a prefix of the unsynced ones, with the state written with them.
    EXPECT_EQ(reader, disk.reader());
    const raft::Index last = reader->LastIndex();
    ASSERT_GE(last, 1u);
    ASSERT_LE(last, 5u);
    EXPECT_EQ(disk.visible().app.applied, last);
    EXPECT_EQ(disk.durable().log.LastIndex(), last);
    EXPECT_EQ(disk.unsynced_writes(), 0u);
    kept_count_seen[last] = true;
  }
  // Over many crashes: all lost, all kept, and partial prefixes.
  for (raft::Index last = 1; last <= 5; ++last) {
    EXPECT_TRUE(kept_count_seen[last]) << last;
  }
}

TEST(SimDiskTest, FailedWriteIsReportedAndNeverMadeDurable) {
  SimDisk disk(Voters123());
  // A gap after the last index is refused by the log.
  EXPECT_EQ(disk.Apply(AppendAt(3), /*sync=*/true).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(disk.unsynced_writes(), 0u);
  EXPECT_EQ(disk.durable().log.LastIndex(), 0u);
  EXPECT_EQ(disk.durable().app.applied, 0u);
}

}  // namespace
}  // namespace spate::sim
