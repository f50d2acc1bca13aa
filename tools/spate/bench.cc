#include "tools/spate/bench.h"

#include <ostream>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/ids.h"
#include "tools/spate/bench_config.h"
#include "tools/spate/bench_report.h"
#include "tools/spate/bench_runner.h"
#include "tools/spate/cluster_view.h"
#include "tools/spate/common.h"

// Shared with `spate sub` (defined in sub.cc).
ABSL_DECLARE_FLAG(bool, manual_ack);
ABSL_DECLARE_FLAG(int32_t, max_in_flight);
ABSL_DECLARE_FLAG(bool, all);

ABSL_FLAG(int32_t, pubs, 1, "number of publishers (one connection each)");
ABSL_FLAG(int32_t, subs, 0, "number of subscribers (one connection each)");
ABSL_FLAG(std::string, sub_kind, "plain",
          "subscriber kind: plain, durable, or queue (one queue group per "
          "channel)");
ABSL_FLAG(int64_t, size, 128, "payload bytes per message (at least 16)");
ABSL_FLAG(absl::Duration, duration, absl::ZeroDuration(),
          "publish for this long instead of --count messages");
ABSL_FLAG(bool, sync, false,
          "synchronous publishes: wait for each ack (one in flight)");
ABSL_FLAG(int32_t, window, 1000,
          "async publishes in flight per publisher (MaxPubAcksInFlight)");
ABSL_FLAG(double, rate, 0,
          "open loop: publish this many msgs/s in total on a fixed schedule "
          "(0: as fast as possible)");
ABSL_FLAG(int32_t, channels, 1,
          "channels CHANNEL.0 .. CHANNEL.N-1 (publisher/subscriber i uses "
          "channel i mod N); 1 uses CHANNEL itself");
ABSL_FLAG(std::string, server_pids, "",
          "comma-separated PIDs of server processes on this machine whose "
          "CPU time to report");
ABSL_FLAG(absl::Duration, progress, absl::Seconds(1),
          "print a progress line to stderr this often (0: never)");
ABSL_FLAG(absl::Duration, stall_timeout, absl::Seconds(30),
          "fail if nothing is acked or delivered for this long");
ABSL_FLAG(std::string, label, "", "label carried into the report");
ABSL_FLAG(bool, publish_to_leader, true,
          "sync publishes go straight to the channel's leader once known "
          "(ClientOptions::publish_to_leader); false: via the connected "
          "server");

namespace spate::cli {
namespace {

constexpr char kUsage[] =
    R"(usage: spate bench [CHANNEL] [--pubs N] [--subs M]
       [--sub_kind plain|durable|queue] [--size BYTES]
       [--count N | --duration D] [--sync | --window W] [--rate MSGS_PER_S]
       [--manual_ack] [--max_in_flight N] [--channels K] [--all]
       [--server_pids PID,PID,..] [--json] [--label TEXT]
       [--publish_to_leader=false]

Measures a Spate cluster. N publishers publish --count messages in total
(or for --duration) of --size bytes to CHANNEL (default "bench"; with
--channels K, to CHANNEL.0 .. CHANNEL.K-1), synchronously or with up to
--window unacknowledged async publishes each, optionally at a fixed total
--rate. M subscribers (subscriber i on channel i mod K) receive them; with
--pubs 0 and --all they read --count stored messages from the first one.
Prints, per role, msgs/s, MB/s and latency percentiles (publish->ack, and
end-to-end publish->delivery from a timestamp in the payload), plus the
CPU seconds each --server_pids process used during the run. --json prints
one JSON object instead. Exits non-zero on any failure or a stall.
--publish_to_leader=false sends sync publishes through the connected
server even once the channel's leader is known (for comparisons).

examples:
  spate bench --count 200000 --window 1000
  spate bench --sync --count 10000
  spate bench --subs 1 --sub_kind durable --manual_ack --count 100000
  spate bench --pubs 0 --subs 1 --all --count 200000
  spate bench --rate 10000 --duration 10s --subs 1)";

absl::StatusOr<SubKind> ParseSubKind(absl::string_view text) {
  if (text == "plain") return SubKind::kPlain;
  if (text == "durable") return SubKind::kDurable;
  if (text == "queue") return SubKind::kQueue;
  return absl::InvalidArgumentError(absl::StrCat(
      "--sub_kind must be plain, durable or queue, not '", text, "'"));
}

absl::StatusOr<std::vector<pid_t>> ParsePids(absl::string_view text) {
  std::vector<pid_t> pids;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int pid = 0;
    if (!absl::SimpleAtoi(part, &pid) || pid <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--server_pids: '", part, "' is not a PID"));
    }
    pids.push_back(pid);
  }
  return pids;
}

absl::StatusOr<BenchConfig> ConfigFromFlags(
    const std::vector<std::string>& args) {
  BenchConfig config;
  config.servers = ServersFromFlags();
  const std::string id = absl::GetFlag(FLAGS_client_id);
  // A fresh prefix per run: a client id of a run that just ended may still
  // count as alive on the server for a moment.
  config.client_id_prefix = id.empty() ? "bench-" + client::RandomAlnum(6) : id;
  config.label = absl::GetFlag(FLAGS_label);
  if (!args.empty()) config.channel = args[0];
  config.channels = absl::GetFlag(FLAGS_channels);
  config.publishers = absl::GetFlag(FLAGS_pubs);
  config.subscribers = absl::GetFlag(FLAGS_subs);
  absl::StatusOr<SubKind> kind = ParseSubKind(absl::GetFlag(FLAGS_sub_kind));
  if (!kind.ok()) return kind.status();
  config.sub_kind = *kind;
  config.size_bytes = absl::GetFlag(FLAGS_size);
  config.duration = absl::GetFlag(FLAGS_duration);
  config.count = absl::GetFlag(FLAGS_count);
  // Neither given: a default run of 100,000 messages.
  if (config.count == 0 && config.duration == absl::ZeroDuration()) {
    config.count = 100000;
  }
  config.sync = absl::GetFlag(FLAGS_sync);
  config.window = absl::GetFlag(FLAGS_window);
  config.rate_msgs_per_s = absl::GetFlag(FLAGS_rate);
  config.manual_ack = absl::GetFlag(FLAGS_manual_ack);
  config.max_in_flight = absl::GetFlag(FLAGS_max_in_flight);
  config.start_first = absl::GetFlag(FLAGS_all);
  absl::StatusOr<std::vector<pid_t>> pids =
      ParsePids(absl::GetFlag(FLAGS_server_pids));
  if (!pids.ok()) return pids.status();
  config.server_pids = *std::move(pids);
  config.progress_interval = absl::GetFlag(FLAGS_progress);
  config.stall_timeout = absl::GetFlag(FLAGS_stall_timeout);
  config.reconnect_wait = absl::GetFlag(FLAGS_reconnect_wait);
  if (absl::Status valid = config.Validate(); !valid.ok()) return valid;
  return config;
}

int RunBench(const std::vector<std::string>& args, const Io& io) {
  if (args.size() > 1) return UsageError(io, "bench", "expected [CHANNEL]");
  absl::StatusOr<BenchConfig> config = ConfigFromFlags(args);
  if (!config.ok()) return UsageError(io, "bench", config.status().message());
  const bool json = absl::GetFlag(FLAGS_json);
  if (!json) *io.err << "spate bench: " << config->Describe() << std::endl;
  BenchRunner runner(
      *config, [&io](const std::string& line) { *io.err << line << std::endl; },
      io.interrupted);
  client::ClientOptions security;
  SecurityFromFlags(&security);
  security.publish_to_leader = absl::GetFlag(FLAGS_publish_to_leader);
  runner.set_security(std::move(security));
  absl::StatusOr<BenchResult> result = runner.Run();
  if (!result.ok()) return PrintError(io, "bench", result.status());
  *io.out << (json ? FormatJson(*result) + "\n" : FormatText(*result));
  io.out->flush();
  return kExitOk;
}

}  // namespace

Command BenchCommand() {
  return Command{"bench",
                 "measure throughput and latency (publishers, subscribers)",
                 kUsage,
                 {"pubs", "subs", "sub_kind", "size", "count", "duration",
                  "sync", "window", "rate", "manual_ack", "max_in_flight",
                  "channels", "all", "server_pids", "progress", "stall_timeout",
                  "json", "label", "publish_to_leader"},
                 RunBench};
}

}  // namespace spate::cli
