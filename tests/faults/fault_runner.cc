#include "tests/faults/fault_runner.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "base/prng.h"
#include "tests/faults/fault_cluster.h"
#include "tests/faults/workload.h"
#include "tests/testing/stream_client.h"
#include "tests/testing/waits.h"

namespace spate::faults {
namespace {

using testing::TestConnection;
using testing::TestSubscriber;

// Shorter client timers than the defaults, so clients notice a dead or
// paused node within a couple of seconds.
constexpr char kExtraConfig[] =
    "clients { ping_interval_ms: 500 ping_max_out: 3 }\n";

constexpr absl::Duration kReaderPingInterval = absl::Milliseconds(250);

// Node channel -> last sequence, per node, for the workload's channels.
using LastSequences = std::map<int, std::map<std::string, uint64_t>>;

// A process that exited but was not reaped yet (its ServerProcess still
// believes it runs).
bool Exited(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(stat)),
                   std::istreambuf_iterator<char>());
  const size_t paren = text.rfind(')');
  return text.empty() ||
         (paren != std::string::npos && paren + 2 < text.size() &&
          (text[paren + 2] == 'Z' || text[paren + 2] == 'X'));
}

std::string Tail(const std::string& text, size_t bytes) {
  return text.size() <= bytes ? text : text.substr(text.size() - bytes);
}

class Runner {
 public:
  explicit Runner(const RunOptions& options) : options_(options) {
    report_.options = options;
    for (int i = 0; i < options.channels; ++i) {
      channels_.push_back(absl::StrCat("faults.c", i));
    }
    for (FaultKind kind : options.kinds) {
      if (kind == FaultKind::kPowerLoss) lossy_ = true;
      if (kind == FaultKind::kClockJump) clocks_ = true;
    }
  }

  RunReport Run() {
    const absl::Time start = absl::Now();
    report_.error = RunPhases();
    report_.elapsed = absl::Now() - start;
    if (cluster_) Note(absl::StrCat("proxies:\n", cluster_->ProxyStats()));
    if (cluster_ && report_.valid()) {
      // A valid run's data is of no further use (hundreds of MB per run in
      // a soak); an invalid one's stays for inspection.
      const std::string root = cluster_->root();
      workload_.reset();
      cluster_.reset();
      std::error_code error;
      std::filesystem::remove_all(root, error);
    } else if (cluster_) {
      Note(absl::StrCat("data and node logs kept in ", cluster_->root()));
    }
    return std::move(report_);
  }

 private:
  void Note(std::string text) {
    if (options_.verbose) {
      std::cerr << "[faults seed=" << options_.seed << "] " << text << "\n";
    }
    report_.timeline.push_back(std::move(text));
  }

  absl::Status RunPhases() {
    FaultClusterOptions cluster_options;
    cluster_options.nodes = options_.nodes;
    cluster_options.extra_config = kExtraConfig;
    if (clocks_) {
      cluster_options.faketime_library = FindFaketimeLibrary();
      if (cluster_options.faketime_library.empty()) {
        return absl::FailedPreconditionError(
            "clock_jump needs libfaketime (apt-get install faketime)");
      }
    }
    cluster_ = std::make_unique<FaultCluster>(cluster_options);
    if (absl::Status s = cluster_->Start(lossy_); !s.ok()) {
      return Context("cluster start", s);
    }
    WorkloadOptions workload_options;
    for (int id = 1; id <= options_.nodes; ++id) {
      workload_options.servers.push_back(cluster_->client_address(id));
    }
    workload_options.channels = channels_;
    workload_options.publishers = options_.publishers;
    workload_options.seed = options_.seed;
    workload_ = std::make_unique<Workload>(workload_options);
    if (absl::Status s = workload_->Start(absl::Seconds(30)); !s.ok()) {
      return Context("workload start", s);
    }
    ScheduleOptions schedule_options;
    schedule_options.nodes = options_.nodes;
    schedule_options.length = options_.fault_phase;
    schedule_options.kinds = options_.kinds;
    const absl::Time phase_start = absl::Now();
    for (const Fault& fault : MakeSchedule(options_.seed, schedule_options)) {
      const absl::Time due = phase_start + fault.at;
      if (absl::Now() < due) absl::SleepFor(due - absl::Now());
      Note(fault.Describe());
      if (absl::Status s = Apply(fault); !s.ok()) {
        return Context(fault.Describe(), s);
      }
      ++report_.faults[FaultKindName(fault.kind)];
    }
    const absl::Time phase_end = phase_start + options_.fault_phase;
    if (absl::Now() < phase_end) absl::SleepFor(phase_end - absl::Now());
    workload_->StopPublishing();
    Note(absl::StrCat("faults over; ", workload_->Progress()));
    return Finish();
  }

  absl::Status Finish() {
    if (absl::Status s = HealAndRestart(); !s.ok()) {
      return Context("heal and restart", s);
    }
    LastSequences lasts;
    absl::Status settled = Settle(&lasts, absl::Seconds(60));
    if (!settled.ok()) Note(absl::StrCat("not settled: ", settled.message()));
    std::map<std::string, uint64_t> last;
    for (const auto& [node, channels] : lasts) {
      for (const auto& [channel, sequence] : channels) {
        last[channel] = std::max(last[channel], sequence);
      }
    }
    absl::Status drained = workload_->Drain(last, absl::Seconds(60));
    Note(absl::StrCat("drained: ", workload_->Progress()));
    History history;
    std::map<int, std::map<std::string, std::map<uint64_t, std::string>>> reads;
    for (int id = 1; id <= options_.nodes; ++id) {
      for (const std::string& channel : channels_) {
        reads[id][channel] = ReadAll(id, channel, last[channel]);
      }
    }
    workload_->CloseAndReopen(absl::Seconds(2));
    history = workload_->TakeHistory();
    history.reads = std::move(reads);
    history.last_sequences = std::move(lasts);
    report_.check = Check(history);
    if (!settled.ok()) return settled;
    return drained;
  }

  absl::Status Apply(const Fault& fault) {
    switch (fault.kind) {
      case FaultKind::kCrash:
      case FaultKind::kCrashMinority:
      case FaultKind::kCrashAll:
      case FaultKind::kPowerLoss:
        for (int id : fault.nodes) cluster_->Kill(id);
        absl::SleepFor(fault.length);
        return StartNodes(fault.nodes);
      case FaultKind::kPause:
        for (int id : fault.nodes) cluster_->Pause(id);
        absl::SleepFor(fault.length);
        for (int id : fault.nodes) cluster_->Resume(id);
        return absl::OkStatus();
      case FaultKind::kIsolate:
      case FaultKind::kOneWay:
      case FaultKind::kSplit:
      case FaultKind::kSlowLink:
        CutLinks(fault);
        absl::SleepFor(fault.length);
        cluster_->HealLinks();
        return absl::OkStatus();
      case FaultKind::kCorrupt: {
        if (absl::Status s = Corrupt(fault); !s.ok()) return s;
        // A wiped or damaged node holds less than its peers until it has
        // caught up; the next fault waits for that, so that at most one
        // node lacks data at any time (soak seed 3064: two nodes wiped
        // 1.5 s apart, then the only intact node cut off).
        if (absl::Status s = CatchUp(absl::Seconds(60)); !s.ok()) {
          return absl::Status(s.code(),
                              absl::StrCat("after the damage: ", s.message()));
        }
        return absl::OkStatus();
      }
      case FaultKind::kClockJump: {
        const int id = fault.nodes[0];
        if (absl::Status s = cluster_->SetClockOffset(id, fault.clock_offset);
            !s.ok()) {
          return s;
        }
        absl::SleepFor(fault.length);
        return cluster_->SetClockOffset(id, absl::ZeroDuration());
      }
    }
    return absl::InternalError("unknown fault kind");
  }

  void CutLinks(const Fault& fault) {
    const std::set<int> side(fault.nodes.begin(), fault.nodes.end());
    LinkRule rule;
    rule.mode = fault.link_mode;
    if (fault.kind == FaultKind::kSlowLink) {
      rule.mode = LinkMode::kDelay;
      rule.delay = fault.delay;
    }
    for (int a : side) {
      for (int b = 1; b <= options_.nodes; ++b) {
        if (side.count(b)) continue;
        cluster_->SetLink(a, b, rule);
        if (fault.kind != FaultKind::kOneWay) cluster_->SetLink(b, a, rule);
      }
    }
  }

  absl::Status StartNodes(const std::vector<int>& nodes) {
    for (int id : nodes) {
      if (cluster_->running(id)) continue;
      if (absl::Status s = cluster_->StartNode(id, lossy_); !s.ok()) {
        return absl::Status(
            s.code(),
            absl::StrCat("node ", id, " did not restart: ", s.message(), "\n",
                         Tail(cluster_->process(id).Log(), 3000)));
      }
    }
    return absl::OkStatus();
  }

  static int CountOccurrences(const std::string& text,
                              const std::string& what) {
    int count = 0;
    for (size_t at = text.find(what); at != std::string::npos;
         at = text.find(what, at + what.size())) {
      ++count;
    }
    return count;
  }

  // Stops a node, damages its store and starts it again. The node must
  // either come back (having detected and repaired the damage, or the
  // damage hit nothing it needs) or exit with a clear message; then it is
  // wiped and rejoins empty, as an operator would do.
  absl::Status Corrupt(const Fault& fault) {
    const int id = fault.nodes[0];
    if (absl::Status s = cluster_->StopNode(id); !s.ok()) {
      Note(absl::StrCat("node ", id, " stop: ", s.message()));
    }
    base::Prng prng(options_.seed ^ absl::ToInt64Milliseconds(fault.at));
    absl::StatusOr<std::string> damage =
        cluster_->Corrupt(id, fault.corrupt_bits, &prng);
    Note(absl::StrCat("node ", id, ": ",
                      damage.ok() ? *damage : damage.status().ToString()));
    absl::SleepFor(fault.length);
    // The node's log is appended to across restarts.
    const auto rebuilds = [&] {
      return CountOccurrences(cluster_->process(id).Log(),
                              "store damaged, moved to");
    };
    const int rebuilds_before = rebuilds();
    absl::Status started = cluster_->StartNode(id, lossy_);
    if (started.ok()) {
      // Give it a moment to find the damage while it recovers.
      absl::SleepFor(absl::Seconds(1));
      if (!Exited(cluster_->process(id).pid())) {
        // The server moves a store it finds damaged aside and rebuilds from
        // its peers (server/node.h, Node::Open).
        const bool rebuilt = rebuilds() > rebuilds_before;
        Note(absl::StrCat("node ", id,
                          rebuilt ? " found the damage and rebuilds its store"
                                  : " runs after the damage"));
        ++report_.faults[rebuilt ? "corrupt_rebuilt" : "corrupt_accepted"];
        return absl::OkStatus();
      }
    }
    cluster_->Kill(id);  // reaps it
    const std::string log = cluster_->process(id).Log();
    Note(absl::StrCat("node ", id,
                      " refused the damaged store: ", Tail(log, 400)));
    ++report_.faults["corrupt_refused"];
    if (absl::Status s = cluster_->Wipe(id); !s.ok()) return s;
    return StartNodes({id});
  }

  absl::Status HealAndRestart() {
    cluster_->HealLinks();
    for (int id = 1; id <= options_.nodes; ++id) {
      if (cluster_->paused(id)) cluster_->Resume(id);
      if (clocks_) {
        cluster_->SetClockOffset(id, absl::ZeroDuration()).IgnoreError();
      }
    }
    std::vector<int> all;
    for (int id = 1; id <= options_.nodes; ++id) all.push_back(id);
    if (absl::Status s = StartNodes(all); !s.ok()) return s;
    // Every node restarts once more (graceful), without power-loss mode.
    for (int id : all) {
      if (absl::Status s = cluster_->StopNode(id); !s.ok()) {
        Note(absl::StrCat("node ", id, " graceful stop: ", s.ToString()));
      }
    }
    lossy_ = false;
    return StartNodes(all);
  }

  // Waits until every replica of every channel (a voter of its group in
  // any node's report: 3 of 5 nodes hold a channel) holds at least the last
  // sequence any node held when the wait began (publishers keep running,
  // so equal last sequences may never be seen at one instant).
  absl::Status CatchUp(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    std::map<std::string, uint64_t> target;
    std::map<std::string, std::set<uint64_t>> replicas;
    std::string why = "no status yet";
    while (absl::Now() < deadline) {
      bool done = true;
      for (int id = 1; id <= options_.nodes; ++id) {
        absl::StatusOr<ClusterStatusResponse> status = cluster_->Status(id);
        if (!status.ok()) continue;
        for (const GroupStatus& group : status->groups()) {
          if (group.channel().empty()) continue;
          replicas[group.channel()].insert(group.voters().begin(),
                                           group.voters().end());
        }
      }
      for (int id = 1; id <= options_.nodes; ++id) {
        absl::StatusOr<ClusterStatusResponse> status = cluster_->Status(id);
        if (!status.ok()) {
          why = absl::StrCat("node ", id, ": ", status.status().ToString());
          done = false;
          continue;
        }
        std::map<std::string, uint64_t> held;
        for (const GroupStatus& group : status->groups()) {
          if (!group.channel().empty()) {
            held[group.channel()] = group.last_sequence();
          }
        }
        for (const auto& [channel, last] : held) {
          target.emplace(channel, last);  // first sight sets the target
        }
        for (const auto& [channel, want] : target) {
          if (replicas[channel].count(id) == 0) continue;
          if (held[channel] < want) {
            why = absl::StrCat("node ", id, " holds ", channel, " up to #",
                               held[channel], " of #", want);
            done = false;
          }
        }
      }
      if (done && !target.empty()) return absl::OkStatus();
      absl::SleepFor(absl::Milliseconds(200));
    }
    return absl::DeadlineExceededError(
        absl::StrCat("a node did not catch up: ", why));
  }

  // Waits until every node hosts every channel with one leader and the
  // same last sequence; fills `lasts` with what the nodes report.
  absl::Status Settle(LastSequences* lasts, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    std::string why;
    while (true) {
      lasts->clear();
      why.clear();
      for (int id = 1; id <= options_.nodes && why.empty(); ++id) {
        absl::StatusOr<ClusterStatusResponse> status = cluster_->Status(id);
        if (!status.ok()) {
          why = absl::StrCat("node ", id, ": ", status.status().ToString());
          break;
        }
        for (const GroupStatus& group : status->groups()) {
          if (group.channel().empty()) continue;
          if (group.leader_id() == 0) {
            why =
                absl::StrCat("node ", id, ": no leader for ", group.channel());
          }
          (*lasts)[id][group.channel()] = group.last_sequence();
        }
      }
      if (why.empty()) {
        std::map<std::string, std::set<uint64_t>> values;
        for (const auto& [node, channels] : *lasts) {
          for (const auto& [channel, last] : channels) {
            values[channel].insert(last);
          }
        }
        for (const auto& [channel, set] : values) {
          if (set.size() > 1) why = absl::StrCat(channel, " differs");
        }
      }
      if (why.empty()) return absl::OkStatus();
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat("cluster did not settle: ", why));
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
  }

  // Reads `channel` from its first sequence through node `id` with a
  // plain subscription, resubscribing after retryable errors.
  std::map<uint64_t, std::string> ReadAll(int id, const std::string& channel,
                                          uint64_t last) {
    std::map<uint64_t, std::string> out;
    TestConnection conn(cluster_->client_address(id),
                        absl::StrCat("reader", id));
    if (!testing::Retry([&] { return conn.Connect(); }).ok()) return out;
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    // A raw connection must ping like a client, or the node drops it
    // (and its subscription) after ping_max_out intervals; an expired one
    // connects again.
    absl::Time next_ping = absl::Now() + kReaderPingInterval;
    auto keep_alive = [&] {
      if (absl::Now() < next_ping) return;
      next_ping = absl::Now() + kReaderPingInterval;
      if (!conn.Ping().ok()) conn.Connect().IgnoreError();  // retried next
    };
    while ((out.empty() || out.rbegin()->first < last) &&
           absl::Now() < deadline) {
      keep_alive();
      SubscriptionRequest request = conn.SubRequest(channel);
      request.set_start_position(SEQUENCE_START);
      request.set_start_sequence(out.empty() ? 1 : out.rbegin()->first + 1);
      request.set_max_in_flight(4096);
      TestSubscriber sub(conn.stub(), request);
      if (!sub.WaitStarted().ok()) {
        absl::SleepFor(absl::Milliseconds(100));
        continue;
      }
      while ((out.empty() || out.rbegin()->first < last) &&
             absl::Now() < deadline && !sub.ended()) {
        keep_alive();
        std::optional<MsgProto> msg = sub.Next(absl::Milliseconds(200));
        if (!msg) continue;
        out[msg->sequence()] = msg->data();
        sub.Ack(msg->sequence());
      }
      sub.Cancel();
    }
    conn.Close().IgnoreError();  // a reader's close is best-effort
    return out;
  }

  static absl::Status Context(const std::string& what,
                              const absl::Status& status) {
    return absl::Status(status.code(),
                        absl::StrCat(what, ": ", status.message()));
  }

  const RunOptions options_;
  RunReport report_;
  std::vector<std::string> channels_;
  bool lossy_ = false;
  bool clocks_ = false;
  std::unique_ptr<FaultCluster> cluster_;
  std::unique_ptr<Workload> workload_;
};

}  // namespace

std::string RunReport::Summary() const {
  int total = 0;
  for (const auto& [kind, count] : faults) {
    if (!absl::StartsWith(kind, "corrupt_")) total += count;
  }
  return absl::StrCat("seed=", options.seed, " nodes=", options.nodes,
                      " faults=", total, " ", check.Summary(),
                      error.ok() ? "" : " HARNESS_ERROR",
                      " elapsed=", absl::ToInt64Seconds(elapsed), "s");
}

std::string RunReport::ReplayCommand() const {
  std::vector<std::string> kinds;
  for (FaultKind kind : options.kinds) kinds.push_back(FaultKindName(kind));
  return absl::StrCat("tools/faults.sh --seed ", options.seed, " --nodes ",
                      options.nodes, " --seconds ",
                      absl::ToInt64Seconds(options.fault_phase), " --kinds ",
                      absl::StrJoin(kinds, ","));
}

std::string RunReport::Explain() const {
  std::string out =
      absl::StrCat(Summary(), "\nreplay: ", ReplayCommand(), "\n");
  if (!error.ok()) absl::StrAppend(&out, "error: ", error.ToString(), "\n");
  for (const std::string& line : timeline) {
    absl::StrAppend(&out, "  ", line, "\n");
  }
  for (const std::string& line : check.details) {
    absl::StrAppend(&out, "  check: ", line, "\n");
  }
  return out;
}

RunReport RunSchedule(const RunOptions& options) {
  return Runner(options).Run();
}

}  // namespace spate::faults
