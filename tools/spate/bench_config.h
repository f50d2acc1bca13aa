// BenchConfig: what one `spate bench` run does — how many publishers and
// subscribers, on how many channels, what they send and how they ack —
// independent of the command line (bench.cc fills it from flags; tests
// fill it directly). Validate() names the first bad field.
//
// Work split: publisher p publishes to channel p % channels and sends
// count / publishers messages (the first count % publishers send one
// more); subscriber s subscribes to channel s % channels. A plain or
// durable subscriber expects every message of its channel; the queue
// subscribers of a channel form one group (queue "bench") and expect each
// message once between them. With no publishers, each subscriber (or
// queue group) reads `count` stored messages from the first one (a
// catch-up read).
// Threading: a plain value.
#ifndef SPATE_TOOLS_SPATE_BENCH_CONFIG_H_
#define SPATE_TOOLS_SPATE_BENCH_CONFIG_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace spate::cli {

enum class SubKind { kPlain, kDurable, kQueue };

const char* SubKindName(SubKind kind);

struct BenchConfig {
  std::vector<std::string> servers;
  // Client ids are "<prefix>-pub-<i>" and "<prefix>-sub-<i>".
  std::string client_id_prefix = "bench";
  // Free text carried into the report (e.g. a suite's case name).
  std::string label;
  // The channel, or with channels > 1 the prefix of "<channel>.<i>".
  std::string channel = "bench";
  int channels = 1;
  int publishers = 1;
  int subscribers = 0;
  SubKind sub_kind = SubKind::kPlain;
  // Payload bytes per message; at least kStampBytes (the send timestamp).
  int64_t size_bytes = 128;
  // Messages to publish in total (or, with no publishers, to read per
  // subscriber); 0 with a duration.
  int64_t count = 100000;
  // Publish for this long instead of `count` messages.
  absl::Duration duration = absl::ZeroDuration();
  // Synchronous publishes (one in flight per publisher) instead of the
  // async window.
  bool sync = false;
  // MaxPubAcksInFlight of each publisher's connection.
  int window = 1000;
  // Open loop: publish at this many msgs/s in total (spread evenly over the
  // publishers) on a fixed schedule; latencies count from the scheduled
  // time, so a stall shows up in them (no coordinated omission). 0: as
  // fast as the window allows.
  double rate_msgs_per_s = 0;
  bool manual_ack = false;
  int max_in_flight = 1024;
  // Subscribers start at the first stored message instead of new ones.
  bool start_first = false;
  // Whose CPU time to report (server processes on this machine).
  std::vector<pid_t> server_pids;
  // Progress callback period; zero disables progress.
  absl::Duration progress_interval = absl::Seconds(1);
  // The run fails if neither acks nor deliveries advance for this long.
  absl::Duration stall_timeout = absl::Seconds(30);
  // How long clients reconnect on their own before the run fails.
  absl::Duration reconnect_wait = absl::Seconds(30);

  // Payload prefix: 8 bytes of magic, then the send time (steady clock,
  // nanoseconds, little-endian int64).
  static constexpr int64_t kStampBytes = 16;

  absl::Status Validate() const;
  // "1 pub x 200000 msgs, 128 B, async window 1000, 1 channel" and so on.
  std::string Describe() const;
  // Name of channel `index` (0-based).
  std::string ChannelName(int index) const;
};

}  // namespace spate::cli

#endif  // SPATE_TOOLS_SPATE_BENCH_CONFIG_H_
