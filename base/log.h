// Levelled logging to stderr, one line per event:
//   2026-11-21T10:00:00.123456Z I server.cc:42] leader elected group=7 term=3
// Context goes in key=value pairs after the text. The level threshold is a
// process-wide atomic, changeable at run time (SIGHUP reload). Each line is
// formatted first and written with one write(2), so lines from different
// threads never interleave. Nothing is logged per message at level INFO.
#ifndef SPATE_BASE_LOG_H_
#define SPATE_BASE_LOG_H_

#include <sstream>
#include <string>

#include "absl/strings/string_view.h"

namespace spate::base {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Parses "debug", "info", "warning" or "error" (case-insensitive).
bool ParseLogLevel(absl::string_view text, LogLevel* level);
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
inline bool LogEnabled(LogLevel level) { return level >= GetLogLevel(); }

namespace internal {

class LogLine {
 public:
  LogLine(LogLevel level, const char* file, int line);
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;
  ~LogLine();
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

struct LogVoidify {
  void operator&(std::ostream&) {}
};

}  // namespace internal
}  // namespace spate::base

#define SPATE_LOG_LEVEL_DEBUG ::spate::base::LogLevel::kDebug
#define SPATE_LOG_LEVEL_INFO ::spate::base::LogLevel::kInfo
#define SPATE_LOG_LEVEL_WARNING ::spate::base::LogLevel::kWarning
#define SPATE_LOG_LEVEL_ERROR ::spate::base::LogLevel::kError

// LOG(INFO) << "text" << " key=" << value;
#define LOG(severity)                                                    \
  !::spate::base::LogEnabled(SPATE_LOG_LEVEL_##severity)                 \
      ? (void)0                                                          \
      : ::spate::base::internal::LogVoidify() &                          \
            ::spate::base::internal::LogLine(SPATE_LOG_LEVEL_##severity, \
                                             __FILE__, __LINE__)         \
                .stream()

#endif  // SPATE_BASE_LOG_H_
