// EventQueue: the simulator's discrete-event scheduler and virtual clock.
// Every source of activity (node ticks, disk writes, message deliveries,
// client actions, faults) schedules a closure at a virtual time; RunNext runs
// the earliest. Ties are broken by scheduling order, never by addresses or
// hashes, so a run is a pure function of its seed (STYLE.md "Deterministic
// simulation"). Time is in virtual milliseconds; nothing reads a real clock.
//
// Closures that act on a node capture the node's incarnation and do nothing
// once it crashed (NodeHost), so a crash cancels its pending work without
// the queue knowing about nodes.
// Threading: single-threaded, like the whole simulator.
#ifndef SPATE_TESTS_SIM_EVENT_QUEUE_H_
#define SPATE_TESTS_SIM_EVENT_QUEUE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <utility>

namespace spate::sim {

// Virtual milliseconds since the start of a run.
using SimTime = uint64_t;

class EventQueue {
 public:
  SimTime now() const { return now_; }
  bool empty() const { return events_.empty(); }
  size_t size() const { return events_.size(); }

  // Runs `fn` at `time` (>= now()); events at the same time run in the
  // order they were scheduled.
  void At(SimTime time, std::function<void()> fn);
  void After(SimTime delay_ms, std::function<void()> fn) {
    At(now_ + delay_ms, std::move(fn));
  }

  // Advances the clock to the earliest event and runs it. Requires !empty().
  void RunNext();

 private:
  SimTime now_ = 0;
  uint64_t next_seq_ = 0;
  // Keyed by (time, scheduling sequence number): a total, deterministic order.
  std::map<std::pair<SimTime, uint64_t>, std::function<void()>> events_;
};

}  // namespace spate::sim

#endif  // SPATE_TESTS_SIM_EVENT_QUEUE_H_
