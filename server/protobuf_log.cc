#include "server/protobuf_log.h"

#include <google/protobuf/stubs/logging.h>

#include <atomic>
#include <string>

#include "absl/base/call_once.h"
#include "absl/time/clock.h"
#include "base/log.h"

namespace spate::server {
namespace {

std::atomic<int64_t> g_written{0};
std::atomic<int64_t> g_suppressed{0};

LogRateLimiter& Limiter() {
  static LogRateLimiter* limiter =
      new LogRateLimiter(kProtobufLogLinesPerWindow, kProtobufLogWindowNs);
  return *limiter;
}

void HandleProtobufLog(google::protobuf::LogLevel level, const char* filename,
                       int line, const std::string& message) {
  int64_t dropped = 0;
  if (level != google::protobuf::LOGLEVEL_FATAL &&
      !Limiter().Admit(absl::GetCurrentTimeNanos(), &dropped)) {
    g_suppressed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  g_written.fetch_add(1, std::memory_order_relaxed);
  const base::LogLevel ours = level >= google::protobuf::LOGLEVEL_ERROR
                                  ? base::LogLevel::kError
                                  : base::LogLevel::kWarning;
  if (!base::LogEnabled(ours)) return;
  base::internal::LogLine out(ours, filename, line);
  out.stream() << "protobuf: " << message;
  if (dropped > 0) {
    out.stream() << " (" << dropped
                 << " protobuf log lines suppressed before this one)";
  }
}

}  // namespace

bool LogRateLimiter::Admit(int64_t now_ns, int64_t* suppressed) {
  absl::MutexLock lock(&mu_);
  if (lines_in_window_ == 0 || now_ns - window_start_ns_ >= window_ns_) {
    window_start_ns_ = now_ns;
    lines_in_window_ = 0;
  }
  if (lines_in_window_ >= lines_per_window_) {
    ++suppressed_;
    return false;
  }
  ++lines_in_window_;
  *suppressed = suppressed_;
  suppressed_ = 0;
  return true;
}

void InstallProtobufLogHandler() {
  static absl::once_flag once;
  absl::call_once(once,
                  [] { google::protobuf::SetLogHandler(&HandleProtobufLog); });
}

ProtobufLogCounts GetProtobufLogCounts() {
  ProtobufLogCounts counts;
  counts.written = g_written.load(std::memory_order_relaxed);
  counts.suppressed = g_suppressed.load(std::memory_order_relaxed);
  return counts;
}

}  // namespace spate::server
