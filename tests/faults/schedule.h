// Fault schedules of the fault-injection harness (tests/faults/): a list
// of faults, one at a time, drawn from a seed, so every run can be
// replayed from its seed (plus the node count, kinds and length it was
// made with). The FaultRunner (fault_runner.h) applies a schedule to a
// FaultCluster; this file only decides what happens when.
//
// Each fault starts at `at` (from the start of the fault phase), lasts
// `length` and is undone by the runner at its end (nodes restarted, links
// healed, clocks set back). Faults never overlap: at most one is active,
// with a short gap between them, so the cluster always has a quorum of
// intact disks (a corrupt or power-lost minority never meets another).
// Threading: plain values and a pure function.
#ifndef SPATE_TESTS_FAULTS_SCHEDULE_H_
#define SPATE_TESTS_FAULTS_SCHEDULE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/faults/link_proxy.h"

namespace spate::faults {

enum class FaultKind {
  kCrash,          // SIGKILL one node, restart it
  kCrashMinority,  // SIGKILL a minority at once (1 of 3, 2 of 5)
  kCrashAll,       // SIGKILL every node, restart them all
  kPowerLoss,      // SIGKILL nodes running with --test_lose_unsynced_writes
  kPause,          // SIGSTOP one node, SIGCONT it
  kIsolate,        // every link to and from one node cut (drop or stall)
  kOneWay,         // the links from one node to the others cut, not back
  kSplit,          // the cluster split in two sides (minority | majority)
  kSlowLink,       // delay on every link of one node
  kCorrupt,        // stop one node, flip bits in or truncate a RocksDB file
  kClockJump,      // one node's wall clock jumps (libfaketime)
};
inline constexpr int kFaultKinds = 11;

const char* FaultKindName(FaultKind kind);
absl::StatusOr<FaultKind> ParseFaultKind(const std::string& name);
std::vector<FaultKind> AllFaultKinds();

struct Fault {
  FaultKind kind = FaultKind::kCrash;
  absl::Duration at;
  absl::Duration length;
  std::vector<int> nodes;                // the nodes hit (a split's minority)
  LinkMode link_mode = LinkMode::kDrop;  // kIsolate, kOneWay, kSplit
  absl::Duration delay;                  // kSlowLink
  absl::Duration clock_offset;           // kClockJump
  int corrupt_bits = 0;                  // kCorrupt: 0 truncates a file

  std::string Describe() const;
};

struct ScheduleOptions {
  int nodes = 3;
  absl::Duration length = absl::Seconds(15);  // of the fault phase
  std::vector<FaultKind> kinds;               // drawn from, uniformly
};

std::vector<Fault> MakeSchedule(uint64_t seed, const ScheduleOptions& options);

}  // namespace spate::faults

#endif  // SPATE_TESTS_FAULTS_SCHEDULE_H_
