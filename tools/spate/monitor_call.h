// Asking nodes for monitoring data from the CLI: Admin.Monitor (the HTTP
// monitoring endpoints over gRPC, server/monitor_endpoints.h) on the
// --server addresses, in order, until one answers. Used by `spate subs`
// and `spate clients`.
// Threading: call from the command's thread.
#ifndef SPATE_TOOLS_SPATE_MONITOR_CALL_H_
#define SPATE_TOOLS_SPATE_MONITOR_CALL_H_

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace spate::cli {

struct MonitorResult {
  std::string address;  // the node that answered
  int http_status = 0;
  nlohmann::json body;
};

// Asks `address` for `path` with `params`, waiting at most `timeout`. A
// transport error is its status; an HTTP-level error (404, 503) is a
// result with that http_status.
absl::StatusOr<MonitorResult> CallMonitor(
    const std::string& address, const std::string& path,
    const std::map<std::string, std::string>& params, absl::Duration timeout);

// CallMonitor on each of `servers` until one answers (any http_status).
// UNAVAILABLE naming every address's error when none does.
absl::StatusOr<MonitorResult> CallAnyMonitor(
    const std::vector<std::string>& servers, const std::string& path,
    const std::map<std::string, std::string>& params, absl::Duration timeout);

}  // namespace spate::cli

#endif  // SPATE_TOOLS_SPATE_MONITOR_CALL_H_
