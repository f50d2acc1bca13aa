#include "tools/spate/proc_stats.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace spate::cli {
namespace {

// Fields of /proc/PID/stat (proc(5)), 1-based; counted from field 3, the
// first after the command name.
constexpr int kUtimeField = 14;
constexpr int kStimeField = 15;
constexpr int kFirstFieldAfterComm = 3;

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

absl::StatusOr<int64_t> ParseStatCpuTicks(absl::string_view stat) {
  const size_t close = stat.rfind(')');
  if (close == absl::string_view::npos) {
    return absl::InvalidArgumentError("stat text has no command name");
  }
  const std::vector<absl::string_view> fields =
      absl::StrSplit(stat.substr(close + 1), ' ', absl::SkipWhitespace());
  const size_t stime_at = kStimeField - kFirstFieldAfterComm;
  if (fields.size() <= stime_at) {
    return absl::InvalidArgumentError("stat text has too few fields");
  }
  int64_t utime = 0;
  int64_t stime = 0;
  if (!absl::SimpleAtoi(fields[kUtimeField - kFirstFieldAfterComm], &utime) ||
      !absl::SimpleAtoi(fields[stime_at], &stime)) {
    return absl::InvalidArgumentError("stat utime/stime are not numbers");
  }
  return utime + stime;
}

absl::StatusOr<double> ProcessCpuSeconds(pid_t pid) {
  absl::StatusOr<std::string> stat =
      ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return stat.status();
  absl::StatusOr<int64_t> ticks = ParseStatCpuTicks(*stat);
  if (!ticks.ok()) return ticks.status();
  return static_cast<double>(*ticks) /
         static_cast<double>(sysconf(_SC_CLK_TCK));
}

absl::StatusOr<double> ParseLoadAverage1m(absl::string_view loadavg) {
  const std::vector<absl::string_view> fields =
      absl::StrSplit(loadavg, ' ', absl::SkipWhitespace());
  double load = 0;
  if (fields.empty() || !absl::SimpleAtod(fields[0], &load)) {
    return absl::InvalidArgumentError("malformed /proc/loadavg");
  }
  return load;
}

absl::StatusOr<double> LoadAverage1m() {
  absl::StatusOr<std::string> text = ReadFile("/proc/loadavg");
  if (!text.ok()) return text.status();
  return ParseLoadAverage1m(*text);
}

}  // namespace spate::cli
