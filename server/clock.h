// Clock: the node's only source of time (ack-wait deadlines, heartbeat
// expiry, raft ticks, message timestamps), so tests and the simulator can
// drive time by hand. Times are nanoseconds since the Unix epoch.
// Threading: SystemClock is thread-safe; ManualClock is for single-threaded
// tests or guarded by the caller.
#ifndef SPATE_SERVER_CLOCK_H_
#define SPATE_SERVER_CLOCK_H_

#include <atomic>
#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace spate::server {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowNs() const = 0;
};

class SystemClock : public Clock {
 public:
  int64_t NowNs() const override { return absl::GetCurrentTimeNanos(); }
};

class ManualClock : public Clock {
 public:
  explicit ManualClock(int64_t start_ns = 1700000000000000000)
      : now_(start_ns) {}
  int64_t NowNs() const override { return now_.load(); }
  void Advance(absl::Duration d) { now_ += absl::ToInt64Nanoseconds(d); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace spate::server

#endif  // SPATE_SERVER_CLOCK_H_
