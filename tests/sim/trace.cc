#include "tests/sim/trace.h"

#include "absl/strings/str_format.h"

namespace spate::sim {

void Trace::Add(absl::string_view who, absl::string_view what) const {
  if (!sink_) return;
  sink_(absl::StrFormat("[%8dms] %-6s %s", clock_->now(), who, what));
}

}  // namespace spate::sim
