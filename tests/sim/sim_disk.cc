#include "tests/sim/sim_disk.h"

#include <utility>

namespace spate::sim {

SimDisk::SimDisk(const raft::ConfState& bootstrap)
    : durable_{raft::testing::MemoryLog(bootstrap), AppState{}},
      visible_{raft::testing::MemoryLog(bootstrap), AppState{}} {}

void SimDisk::Apply(Write write, bool sync) {
  write(&visible_);
  unsynced_.push_back(std::move(write));
  if (!sync) return;
  for (const Write& w : unsynced_) w(&durable_);
  unsynced_.clear();
}

void SimDisk::Crash(base::Prng* prng) {
  const size_t kept = prng->Uniform(unsynced_.size() + 1);
  for (size_t i = 0; i < kept; ++i) unsynced_[i](&durable_);
  unsynced_.clear();
  visible_ = durable_;
}

}  // namespace spate::sim
