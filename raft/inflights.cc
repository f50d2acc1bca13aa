#include "raft/inflights.h"

#include <algorithm>

#include "base/check.h"

namespace spate::raft {

Inflights::Inflights(size_t count_max, uint64_t bytes_max)
    : count_max_(count_max), bytes_max_(bytes_max) {
  CHECK_GE(count_max, 1u);
}

void Inflights::Add(Index index, uint64_t bytes) {
  CHECK(!Full()) << "Add to a full inflight window";
  if (count_ > 0) {
    const Slot& last = buffer_[(start_ + count_ - 1) % buffer_.size()];
    CHECK_GT(index, last.index) << "inflight indexes must increase";
  }
  if (count_ == buffer_.size()) {
    // Grow lazily (most followers never fill their window), unrolling the
    // ring so that the live slots start at 0.
    std::vector<Slot> grown;
    grown.reserve(std::min(count_max_, std::max<size_t>(4, 2 * count_)));
    for (size_t i = 0; i < count_; ++i) {
      grown.push_back(buffer_[(start_ + i) % buffer_.size()]);
    }
    grown.resize(grown.capacity());
    buffer_ = std::move(grown);
    start_ = 0;
  }
  buffer_[(start_ + count_) % buffer_.size()] = Slot{index, bytes};
  ++count_;
  bytes_ += bytes;
}

void Inflights::FreeLE(Index index) {
  while (count_ > 0 && buffer_[start_].index <= index) {
    bytes_ -= buffer_[start_].bytes;
    start_ = (start_ + 1) % buffer_.size();
    --count_;
  }
  if (count_ == 0) start_ = 0;
  DCHECK(count_ > 0 || bytes_ == 0);
}

void Inflights::Reset() {
  start_ = 0;
  count_ = 0;
  bytes_ = 0;
}

}  // namespace spate::raft
