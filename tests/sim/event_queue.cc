#include "tests/sim/event_queue.h"

#include "base/check.h"

namespace spate::sim {

void EventQueue::At(SimTime time, std::function<void()> fn) {
  CHECK_GE(time, now_) << "an event scheduled in the past";
  events_.emplace(std::make_pair(time, next_seq_++), std::move(fn));
}

void EventQueue::RunNext() {
  CHECK(!events_.empty());
  auto node = events_.extract(events_.begin());
  now_ = node.key().first;
  node.mapped()();
}

}  // namespace spate::sim
