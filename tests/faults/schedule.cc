#include "tests/faults/schedule.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/prng.h"

namespace spate::faults {
namespace {

constexpr const char* kNames[kFaultKinds] = {
    "crash",     "crash_minority", "crash_all", "power_loss",
    "pause",     "isolate",        "one_way",   "split",
    "slow_link", "corrupt",        "clock_jump"};

// `count` distinct nodes out of 1..nodes.
std::vector<int> PickNodes(base::Prng* prng, int nodes, int count) {
  std::vector<int> all;
  for (int id = 1; id <= nodes; ++id) all.push_back(id);
  for (int i = 0; i < count; ++i) {
    std::swap(all[i], all[i + prng->Uniform(nodes - i)]);
  }
  all.resize(count);
  std::sort(all.begin(), all.end());
  return all;
}

absl::Duration Millis(base::Prng* prng, int64_t lo, int64_t hi) {
  return absl::Milliseconds(static_cast<int64_t>(prng->Range(lo, hi)));
}

}  // namespace

const char* FaultKindName(FaultKind kind) {
  return kNames[static_cast<int>(kind)];
}

absl::StatusOr<FaultKind> ParseFaultKind(const std::string& name) {
  for (int i = 0; i < kFaultKinds; ++i) {
    if (name == kNames[i]) return static_cast<FaultKind>(i);
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown fault kind ", name));
}

std::vector<FaultKind> AllFaultKinds() {
  std::vector<FaultKind> kinds;
  for (int i = 0; i < kFaultKinds; ++i) {
    kinds.push_back(static_cast<FaultKind>(i));
  }
  return kinds;
}

std::string Fault::Describe() const {
  std::string text =
      absl::StrCat("t=", absl::ToInt64Milliseconds(at), "ms ",
                   FaultKindName(kind), " nodes=", absl::StrJoin(nodes, ","),
                   " for ", absl::ToInt64Milliseconds(length), "ms");
  switch (kind) {
    case FaultKind::kIsolate:
    case FaultKind::kOneWay:
    case FaultKind::kSplit:
      absl::StrAppend(&text, " mode=", LinkModeName(link_mode));
      break;
    case FaultKind::kSlowLink:
      absl::StrAppend(&text, " delay=", absl::ToInt64Milliseconds(delay), "ms");
      break;
    case FaultKind::kClockJump:
      absl::StrAppend(&text, " offset=", absl::ToInt64Seconds(clock_offset),
                      "s");
      break;
    case FaultKind::kCorrupt:
      absl::StrAppend(&text, corrupt_bits == 0
                                 ? " truncate"
                                 : absl::StrCat(" bits=", corrupt_bits));
      break;
    default:
      break;
  }
  return text;
}

std::vector<Fault> MakeSchedule(uint64_t seed, const ScheduleOptions& options) {
  base::Prng prng(seed);
  std::vector<Fault> faults;
  if (options.kinds.empty()) return faults;
  const int minority = (options.nodes - 1) / 2;
  absl::Duration at = Millis(&prng, 500, 1500);
  while (at < options.length) {
    Fault fault;
    fault.kind = options.kinds[prng.Uniform(options.kinds.size())];
    fault.at = at;
    fault.length = Millis(&prng, 500, 3000);
    switch (fault.kind) {
      case FaultKind::kCrashMinority:
        fault.nodes = PickNodes(&prng, options.nodes, minority);
        break;
      case FaultKind::kCrashAll:
        fault.nodes = PickNodes(&prng, options.nodes, options.nodes);
        break;
      case FaultKind::kPowerLoss:
        // One node, or all of them at once (a data-centre power cut).
        fault.nodes = PickNodes(&prng, options.nodes,
                                prng.Chance(1, 3) ? options.nodes : 1);
        break;
      case FaultKind::kSplit:
        fault.nodes = PickNodes(&prng, options.nodes,
                                static_cast<int>(prng.Range(1, minority)));
        fault.link_mode =
            prng.Chance(1, 2) ? LinkMode::kDrop : LinkMode::kStall;
        fault.length = Millis(&prng, 1000, 4000);
        break;
      case FaultKind::kIsolate:
      case FaultKind::kOneWay:
        fault.nodes = PickNodes(&prng, options.nodes, 1);
        fault.link_mode =
            prng.Chance(1, 2) ? LinkMode::kDrop : LinkMode::kStall;
        fault.length = Millis(&prng, 1000, 4000);
        break;
      case FaultKind::kSlowLink:
        fault.nodes = PickNodes(&prng, options.nodes, 1);
        fault.delay = Millis(&prng, 20, 400);
        break;
      case FaultKind::kCorrupt:
        fault.nodes = PickNodes(&prng, options.nodes, 1);
        fault.corrupt_bits =
            prng.Chance(1, 3) ? 0 : static_cast<int>(prng.Range(1, 8));
        break;
      case FaultKind::kClockJump: {
        fault.nodes = PickNodes(&prng, options.nodes, 1);
        const int64_t seconds = static_cast<int64_t>(prng.Range(5, 7200));
        fault.clock_offset =
            absl::Seconds(prng.Chance(1, 2) ? seconds : -seconds);
        fault.length = Millis(&prng, 2000, 5000);
        break;
      }
      default:
        fault.nodes = PickNodes(&prng, options.nodes, 1);
        break;
    }
    faults.push_back(fault);
    at += fault.length + Millis(&prng, 500, 2000);
  }
  return faults;
}

}  // namespace spate::faults
