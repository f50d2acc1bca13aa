// SimDisk: one simulated node's disk, with the persistence model a real host
// has (DESIGN.md §6). A write is visible at once (the replica reads it back
// through reader()), but only a synced write makes it durable, and a sync
// also flushes every earlier write, in order, like fsync of an append-only
// file or a RocksDB WAL. A crash keeps a random prefix of the unsynced
// writes (the OS may have flushed some), loses the rest, and the node
// restarts from what is durable.
//
// A disk holds the raft log (a MemoryLog: entries, hard state, membership,
// snapshot) and the state machine (AppState) side by side, so one write can
// change both atomically, as the host's single WriteBatch does: a snapshot
// with the state it carries, a membership change with its applied index.
// Threading: single-threaded.
#ifndef SPATE_TESTS_SIM_SIM_DISK_H_
#define SPATE_TESTS_SIM_SIM_DISK_H_

#include <cstddef>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "base/prng.h"
#include "proto/raft.pb.h"
#include "raft/log_reader.h"
#include "raft/testing/memory_log.h"
#include "tests/sim/app_state.h"

namespace spate::sim {

struct DiskState {
  raft::testing::MemoryLog log;
  AppState app;
};

class SimDisk {
 public:
  // A mutation of the disk. It runs on the visible state at once and again
  // on the durable state when synced; both have seen the same earlier
  // writes, so it must give the same result on both.
  using Write = std::function<absl::Status(DiskState*)>;

  // A new member of a group: `bootstrap` is the persisted initial
  // membership (empty for a node that joins later).
  explicit SimDisk(const raft::ConfState& bootstrap);

  SimDisk(const SimDisk&) = delete;
  SimDisk& operator=(const SimDisk&) = delete;

  // Applies `write`; with `sync`, it and every earlier write are durable
  // when Apply returns. A write that fails (the host asked for something
  // the log refuses, e.g. a gap) returns its error and is never made
  // durable; the visible state is then undefined (the simulator stops).
  absl::Status Apply(Write write, bool sync);

  // Power loss: keeps a prefix of the unsynced writes of random length and
  // resets the visible state to the durable one. reader() stays valid (same
  // object, new contents).
  void Crash(base::Prng* prng);

  const raft::LogReader* reader() const { return &visible_.log; }
  const DiskState& visible() const { return visible_; }
  const DiskState& durable() const { return durable_; }
  size_t unsynced_writes() const { return unsynced_.size(); }

 private:
  // Makes the first `count` unsynced writes durable and forgets the rest.
  void Flush(size_t count);

  DiskState durable_;
  DiskState visible_;
  // Writes applied to visible_ but not yet to durable_, oldest first.
  std::vector<Write> unsynced_;
};

}  // namespace spate::sim

#endif  // SPATE_TESTS_SIM_SIM_DISK_H_
