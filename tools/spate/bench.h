// `spate bench [CHANNEL]`: a load generator and meter for a Spate cluster —
// N publishers and M subscribers (plain, durable or queue), sync or
// windowed async publishing, open-loop rates, and per role msgs/s, MB/s
// and latency percentiles, with the CPU time of the server processes.
// This file maps the flags to a BenchConfig (bench_config.h); BenchRunner
// (bench_runner.h) does the work and bench_report.h prints it.
#ifndef SPATE_TOOLS_SPATE_BENCH_H_
#define SPATE_TOOLS_SPATE_BENCH_H_

#include "tools/spate/command.h"

namespace spate::cli {

Command BenchCommand();

}  // namespace spate::cli

#endif  // SPATE_TOOLS_SPATE_BENCH_H_
