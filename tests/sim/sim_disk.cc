#include "tests/sim/sim_disk.h"

#include <utility>

#include "base/check.h"

namespace spate::sim {

SimDisk::SimDisk(const raft::ConfState& bootstrap)
    : durable_{raft::testing::MemoryLog(bootstrap), AppState{}},
      visible_{raft::testing::MemoryLog(bootstrap), AppState{}} {}

absl::Status SimDisk::Apply(Write write, bool sync) {
  if (absl::Status s = write(&visible_); !s.ok()) return s;
  unsynced_.push_back(std::move(write));
  if (sync) Flush(unsynced_.size());
  return absl::OkStatus();
}

void SimDisk::Flush(size_t count) {
  for (size_t i = 0; i < count; ++i) {
    const absl::Status s = unsynced_[i](&durable_);
    CHECK(s.ok()) << "a write that succeeded on the visible state failed on "
                     "the durable one: "
                  << s;
  }
  unsynced_.clear();
}

void SimDisk::Crash(base::Prng* prng) {
  Flush(prng->Uniform(unsynced_.size() + 1));
  visible_ = durable_;
}

}  // namespace spate::sim
