// Process and machine figures `spate bench` reads from /proc (Linux): the
// CPU time a process used so far (utime + stime of /proc/PID/stat), so a
// benchmark can report the CPU seconds each server process spent on one
// case, and the load average, so results carry the machine's load.
// Threading: free functions without state; call from any thread.
#ifndef SPATE_TOOLS_SPATE_PROC_STATS_H_
#define SPATE_TOOLS_SPATE_PROC_STATS_H_

#include <sys/types.h>

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace spate::cli {

// utime + stime in clock ticks from the text of /proc/PID/stat. The
// command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'. InvalidArgument if the text is malformed.
absl::StatusOr<int64_t> ParseStatCpuTicks(absl::string_view stat);

// CPU seconds (user + system) process `pid` used since it started;
// NotFound if it does not exist (any more).
absl::StatusOr<double> ProcessCpuSeconds(pid_t pid);

// The 1-minute load average from /proc/loadavg (the text's first field).
absl::StatusOr<double> ParseLoadAverage1m(absl::string_view loadavg);
absl::StatusOr<double> LoadAverage1m();

}  // namespace spate::cli

#endif  // SPATE_TOOLS_SPATE_PROC_STATS_H_
