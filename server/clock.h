// Clock: the node's only source of time, so tests and the simulator can
// drive time by hand. Two readings, both in nanoseconds on the Unix-epoch
// scale:
//   NowNs  – for timers and deadlines (raft ticks, ack-wait deadlines,
//            client expiry, serving waits, backoffs). Never jumps: in
//            SystemClock it is the wall clock read once at start, advanced
//            by the monotonic clock since. A wall-clock step (NTP, an
//            operator, the fault harness's libfaketime) must not stop the
//            node's ticks for the length of the step (fault finding 8: a
//            +172 s jump undone 2.6 s later left a leader without ticks, so
//            without heartbeats, for 172 s).
//   WallNs – for timestamps that leave the node or are compared with them
//            (message timestamps, channel creation and client connect
//            times, start-at-time subscriptions, max-age trimming): the
//            wall clock, steps included.
// Threading: SystemClock is thread-safe; ManualClock is for single-threaded
// tests or guarded by the caller.
#ifndef SPATE_SERVER_CLOCK_H_
#define SPATE_SERVER_CLOCK_H_

#include <atomic>
#include <chrono>
#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace spate::server {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic, on the epoch scale (see the file comment).
  virtual int64_t NowNs() const = 0;
  // Wall clock (see the file comment).
  virtual int64_t WallNs() const = 0;
};

// Nanoseconds of std::chrono::steady_clock (CLOCK_MONOTONIC: wall-clock
// steps never move it).
inline int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

class SystemClock : public Clock {
 public:
  SystemClock()
      : steady_to_epoch_ns_(absl::GetCurrentTimeNanos() - SteadyNowNs()) {}
  int64_t NowNs() const override { return steady_to_epoch_ns_ + SteadyNowNs(); }
  int64_t WallNs() const override { return absl::GetCurrentTimeNanos(); }

 private:
  // Wall time minus monotonic time at construction.
  const int64_t steady_to_epoch_ns_;
};

// Time moved by hand. The wall clock follows NowNs plus an offset that
// JumpWall changes, as a wall-clock step would.
class ManualClock : public Clock {
 public:
  explicit ManualClock(int64_t start_ns = 1700000000000000000)
      : now_(start_ns) {}
  int64_t NowNs() const override { return now_.load(); }
  int64_t WallNs() const override { return now_.load() + wall_offset_.load(); }
  void Advance(absl::Duration d) { now_ += absl::ToInt64Nanoseconds(d); }
  void JumpWall(absl::Duration d) {
    wall_offset_ += absl::ToInt64Nanoseconds(d);
  }

 private:
  std::atomic<int64_t> now_;
  std::atomic<int64_t> wall_offset_{0};
};

}  // namespace spate::server

#endif  // SPATE_SERVER_CLOCK_H_
