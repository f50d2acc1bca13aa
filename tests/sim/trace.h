// Trace: the simulator's optional event log, one line per event:
//   [   1234ms] n2 recv 1->2 MsgApp Term:3 Log:3/17 Commit:16 Entries:[...]
// It is how a failing seed is understood (`vopr --seed=N --verbose`) and how
// determinism is tested (two runs of a seed must produce identical traces).
// Disabled, it costs one branch per event: callers test enabled() before
// formatting anything.
// Threading: single-threaded.
#ifndef SPATE_TESTS_SIM_TRACE_H_
#define SPATE_TESTS_SIM_TRACE_H_

#include <functional>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "tests/sim/event_queue.h"

namespace spate::sim {

class Trace {
 public:
  // Lines go to `sink` (without a trailing newline); an empty sink disables
  // tracing.
  Trace(const EventQueue* clock, std::function<void(absl::string_view)> sink)
      : clock_(clock), sink_(std::move(sink)) {}

  bool enabled() const { return static_cast<bool>(sink_); }
  // `who` is a short actor name ("n2", "net", "client", "faults").
  void Add(absl::string_view who, absl::string_view what) const;

 private:
  const EventQueue* clock_;
  std::function<void(absl::string_view)> sink_;
};

}  // namespace spate::sim

#endif  // SPATE_TESTS_SIM_TRACE_H_
