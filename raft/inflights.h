// Inflights: the window of AppendEntries a leader has sent to one follower
// in the replicate state and not yet seen acknowledged (etcd's Inflights).
// Each entry is (last index carried, bytes carried). The window is full when
// either count_max messages or bytes_max bytes are outstanding; the leader
// then stops sending entries to that follower until acks free the window.
// Memory: a ring buffer that grows on demand up to count_max slots.
// Threading: owned by one Progress; event loop only.
#ifndef SPATE_RAFT_INFLIGHTS_H_
#define SPATE_RAFT_INFLIGHTS_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "raft/types.h"

namespace spate::raft {

class Inflights {
 public:
  Inflights(size_t count_max, uint64_t bytes_max);

  // Records a message carrying entries up to `index` (strictly increasing
  // across calls) and `bytes` of entry data. Requires !Full().
  void Add(Index index, uint64_t bytes);
  // Frees every message whose last index is <= `index` (acknowledged).
  void FreeLE(Index index);
  // Forgets everything (the follower left the replicate state).
  void Reset();

  bool Full() const { return count_ == count_max_ || bytes_ >= bytes_max_; }
  size_t count() const { return count_; }
  uint64_t bytes() const { return bytes_; }
  size_t count_max() const { return count_max_; }

 private:
  struct Slot {
    Index index;
    uint64_t bytes;
  };

  size_t count_max_;
  uint64_t bytes_max_;
  // Ring buffer: count_ slots starting at start_; grows up to count_max_.
  std::vector<Slot> buffer_;
  size_t start_ = 0;
  size_t count_ = 0;
  // Invariant: bytes_ == sum of the live slots' bytes.
  uint64_t bytes_ = 0;
};

}  // namespace spate::raft

#endif  // SPATE_RAFT_INFLIGHTS_H_
