// faults: the fault-injection soak (tools/faults.sh runs it). Runs seeded
// schedules one after another against fresh real clusters, prints one
// summary line per run (and the full explanation with the replay command
// for an invalid one), then totals: runs, faults injected by kind,
// messages acked, and every checker count summed. Exits 1 if any run was
// invalid.
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/faults/fault_runner.h"

ABSL_FLAG(uint64_t, seed, 1, "First seed; run i uses seed + i");
ABSL_FLAG(int, runs, 1, "Number of schedules to run");
ABSL_FLAG(int, seconds, 15, "Length of each run's fault phase, seconds");
ABSL_FLAG(int, nodes, 0, "Nodes per cluster (3 or 5); 0 alternates by seed");
ABSL_FLAG(std::string, kinds, "",
          "Comma-separated fault kinds (default: all): crash, "
          "crash_minority, crash_all, power_loss, pause, isolate, one_way, "
          "split, slow_link, corrupt, clock_jump");
ABSL_FLAG(bool, verbose, false, "Print each fault as it is applied");

namespace spate::faults {
namespace {

int Main() {
  std::vector<FaultKind> kinds;
  const std::string kinds_flag = absl::GetFlag(FLAGS_kinds);
  if (kinds_flag.empty()) {
    kinds = AllFaultKinds();
  } else {
    for (absl::string_view name : absl::StrSplit(kinds_flag, ',')) {
      absl::StatusOr<FaultKind> kind = ParseFaultKind(std::string(name));
      if (!kind.ok()) {
        std::cerr << kind.status() << "\n";
        return 2;
      }
      kinds.push_back(*kind);
    }
  }
  std::map<std::string, int64_t> faults;
  CheckResult sum;
  int valid = 0;
  std::vector<uint64_t> invalid_seeds;
  const int runs = absl::GetFlag(FLAGS_runs);
  const absl::Time start = absl::Now();
  for (int i = 0; i < runs; ++i) {
    RunOptions options;
    options.seed = absl::GetFlag(FLAGS_seed) + i;
    options.nodes = absl::GetFlag(FLAGS_nodes);
    if (options.nodes == 0) options.nodes = options.seed % 4 == 3 ? 5 : 3;
    options.fault_phase = absl::Seconds(absl::GetFlag(FLAGS_seconds));
    options.kinds = kinds;
    options.verbose = absl::GetFlag(FLAGS_verbose);
    RunReport report = RunSchedule(options);
    std::cout << "run " << i + 1 << "/" << runs << " " << report.Summary()
              << std::endl;
    if (report.valid()) {
      ++valid;
    } else {
      invalid_seeds.push_back(options.seed);
    }
    // Reported-only findings (a payload stored twice) are explained too.
    if (!report.valid() || report.check.stored_twice > 0) {
      std::cout << report.Explain() << std::flush;
    }
    for (const auto& [kind, count] : report.faults) faults[kind] += count;
    const CheckResult& c = report.check;
    sum.attempted += c.attempted;
    sum.acked += c.acked;
    sum.failed += c.failed;
    sum.unknown += c.unknown;
    sum.unknown_stored += c.unknown_stored;
    sum.delivered += c.delivered;
    sum.redelivered += c.redelivered;
    sum.lost += c.lost;
    sum.unexpected += c.unexpected;
    sum.duplicated += c.duplicated;
    sum.dup_unflagged += c.dup_unflagged;
    sum.reordered += c.reordered;
    sum.holes += c.holes;
    sum.divergent += c.divergent;
    sum.backwards += c.backwards;
    sum.lagging += c.lagging;
    sum.stored_twice += c.stored_twice;
  }
  std::string by_kind;
  int64_t total = 0;
  for (const auto& [kind, count] : faults) {
    absl::StrAppend(&by_kind, " ", kind, "=", count);
    if (kind.rfind("corrupt_", 0) != 0) total += count;
  }
  std::cout << "TOTAL runs=" << runs << " valid=" << valid
            << " invalid=" << runs - valid
            << " minutes=" << absl::ToInt64Minutes(absl::Now() - start) << "\n"
            << "FAULTS total=" << total << by_kind << "\n"
            << "COUNTS " << sum.Summary().substr(sum.Summary().find(' ') + 1)
            << "\n";
  if (!invalid_seeds.empty()) {
    std::cout << "INVALID seeds:";
    for (uint64_t seed : invalid_seeds) std::cout << " " << seed;
    std::cout << "\n";
  }
  return invalid_seeds.empty() ? 0 : 1;
}

}  // namespace
}  // namespace spate::faults

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return spate::faults::Main();
}
