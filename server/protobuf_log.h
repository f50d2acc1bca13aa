// Protobuf's own log lines, routed into base/log at a bounded rate.
//
// Protobuf logs an ERROR line for every message it refuses to parse
// because a string field holds invalid UTF-8 ("String field ... contains
// invalid UTF-8 data when parsing a protocol buffer"): one line per call
// that any client can send, a log flood an attacker controls. gRPC refuses
// the call either way (INTERNAL); only the logging is at stake.
// InstallProtobufLogHandler() sends every protobuf log line through one
// process-wide LogRateLimiter: at most 10 lines per 10 s are written (as
// WARNING, ERROR as ERROR); the others are counted, and the next line
// written says how many were dropped. FATAL lines are always written.
//
// Threading: LogRateLimiter is thread-safe; InstallProtobufLogHandler may
// be called from any thread, any number of times (installs once).
#ifndef SPATE_SERVER_PROTOBUF_LOG_H_
#define SPATE_SERVER_PROTOBUF_LOG_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace spate::server {

// Lets through at most `lines_per_window` lines per `window_ns` (fixed
// windows starting at the first line of each).
class LogRateLimiter {
 public:
  LogRateLimiter(int lines_per_window, int64_t window_ns)
      : lines_per_window_(lines_per_window), window_ns_(window_ns) {}

  // Whether a line at `now_ns` may be written; when it may, `*suppressed`
  // is the number of lines refused since the previous one let through.
  bool Admit(int64_t now_ns, int64_t* suppressed);

 private:
  const int lines_per_window_;
  const int64_t window_ns_;
  absl::Mutex mu_;
  int64_t window_start_ns_ ABSL_GUARDED_BY(mu_) = 0;
  int lines_in_window_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t suppressed_ ABSL_GUARDED_BY(mu_) = 0;
};

inline constexpr int kProtobufLogLinesPerWindow = 10;
inline constexpr int64_t kProtobufLogWindowNs = 10'000'000'000;

// Routes protobuf logging through the limiter into base/log.
void InstallProtobufLogHandler();

// Protobuf log lines written and dropped since the handler was installed.
struct ProtobufLogCounts {
  int64_t written = 0;
  int64_t suppressed = 0;
};
ProtobufLogCounts GetProtobufLogCounts();

}  // namespace spate::server

#endif  // SPATE_SERVER_PROTOBUF_LOG_H_
