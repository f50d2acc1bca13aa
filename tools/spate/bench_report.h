// BenchResult: what one `spate bench` run measured, per role (publishers,
// subscribers), plus the CPU time of each server process and the machine's
// load; and its two renderings: a short human-readable report and a JSON
// object (`spate bench --json`, read by tools/bench.sh).
// Threading: plain values and pure functions.
#ifndef SPATE_TOOLS_SPATE_BENCH_REPORT_H_
#define SPATE_TOOLS_SPATE_BENCH_REPORT_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tools/spate/bench_config.h"
#include "tools/spate/latency_histogram.h"

namespace spate::cli {

// One role (all publishers, or all subscribers) of a run.
struct RoleResult {
  int clients = 0;
  // Publishers: acknowledged publishes. Subscribers: first deliveries of
  // the run's messages (redeliveries not counted).
  int64_t msgs = 0;
  // Publishers: failed publishes. Subscribers: redeliveries received.
  int64_t errors = 0;
  // From the role's start to its last ack (publishers) or last counted
  // delivery (subscribers).
  double seconds = 0;
  // Each client's own rate.
  std::vector<double> client_msgs_per_s;
  // Publishers: publish → ack. Subscribers: publish → delivery (end to
  // end; the publish time travels in the payload).
  LatencyHistogram latency;

  double msgs_per_s() const { return seconds > 0 ? msgs / seconds : 0; }
  double mb_per_s(int64_t size_bytes) const {
    return msgs_per_s() * static_cast<double>(size_bytes) / 1e6;
  }
};

struct ServerCpu {
  pid_t pid = 0;
  // CPU seconds (user + system) the process used during the run; negative
  // if it could not be read at the end (the process exited).
  double cpu_seconds = 0;
};

struct BenchResult {
  BenchConfig config;
  std::optional<RoleResult> pub;
  std::optional<RoleResult> sub;
  std::vector<ServerCpu> servers;
  // CPU seconds of this benchmark process itself (the clients).
  double bench_cpu_seconds = 0;
  double load_1m_start = 0;
  double load_1m_end = 0;
  double elapsed_seconds = 0;

  // Sum over `servers` (ignoring unreadable ones).
  double server_cpu_seconds() const;
  // The run's messages (published, or read when nothing was published)
  // per server CPU-second; 0 without server figures.
  double msgs_per_server_cpu_second() const;
};

std::string FormatText(const BenchResult& result);
// One JSON object on one line.
std::string FormatJson(const BenchResult& result);

}  // namespace spate::cli

#endif  // SPATE_TOOLS_SPATE_BENCH_REPORT_H_
