// Bounded waiting for multi-process tests: never a bare sleep (STYLE.md),
// always a condition polled until a deadline.
#ifndef SPATE_TESTS_TESTING_WAITS_H_
#define SPATE_TESTS_TESTING_WAITS_H_

#include <functional>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace spate::testing {

// Polls `done` every 20 ms until it holds or `timeout` passes; returns
// its last value.
inline bool WaitFor(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return done();
}

// Calls `fn` (returning absl::Status or absl::StatusOr) again while it
// answers UNAVAILABLE — what a client retries — until `timeout`.
inline const absl::Status& StatusOf(const absl::Status& status) {
  return status;
}
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& result) {
  return result.status();
}

template <typename Fn>
auto Retry(Fn fn, absl::Duration timeout = absl::Seconds(20)) {
  const absl::Time deadline = absl::Now() + timeout;
  auto result = fn();
  while (!result.ok() && absl::IsUnavailable(StatusOf(result)) &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
    result = fn();
  }
  return result;
}

}  // namespace spate::testing

#endif  // SPATE_TESTS_TESTING_WAITS_H_
