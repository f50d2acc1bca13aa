#include "tools/spate/pub.h"

#include <algorithm>
#include <istream>
#include <ostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "tools/spate/common.h"

ABSL_FLAG(bool, async, false,
          "publish through the pipelined stream (PublishAsync) instead of "
          "waiting for each ack");

namespace spate::cli {
namespace {

constexpr char kUsage[] =
    R"(usage: spate pub CHANNEL [MESSAGE] [--count N] [--async]

Publishes MESSAGE to CHANNEL or, without MESSAGE, each line of stdin, and
waits for the acks. --count N publishes each message N times (default 1).
Prints "published CHANNEL seq=N" per message, or with --count above 1 one
summary line with the rate.)";

// Outcomes of the publishes; async ack handlers write it from a client
// thread.
class Tally {
 public:
  void Record(const absl::StatusOr<uint64_t>& result, bool print,
              const std::string& channel, std::ostream& out) {
    absl::MutexLock lock(&mu_);
    if (result.ok()) {
      ++acked_;
      last_sequence_ = std::max(last_sequence_, *result);
      if (print) out << "published " << channel << " seq=" << *result << "\n";
    } else {
      if (failed_ == 0) first_error_ = result.status();
      ++failed_;
    }
  }
  int64_t acked() const {
    absl::MutexLock lock(&mu_);
    return acked_;
  }
  int64_t failed() const {
    absl::MutexLock lock(&mu_);
    return failed_;
  }
  uint64_t last_sequence() const {
    absl::MutexLock lock(&mu_);
    return last_sequence_;
  }
  absl::Status first_error() const {
    absl::MutexLock lock(&mu_);
    return first_error_;
  }

 private:
  mutable absl::Mutex mu_;
  int64_t acked_ = 0;
  int64_t failed_ = 0;
  uint64_t last_sequence_ = 0;
  absl::Status first_error_;
};

// Prints the summary (for --count above 1) and the first error; returns
// the exit code.
int Report(const Tally& tally, const std::string& channel, bool per_message,
           absl::Duration elapsed, const absl::Status& closed, const Io& io) {
  if (!per_message && tally.acked() > 0) {
    const double seconds = absl::ToDoubleSeconds(elapsed);
    *io.out << absl::StrFormat(
        "published %d messages to %s in %.3fs (%.0f msgs/s), last seq=%d\n",
        tally.acked(), channel, seconds,
        tally.acked() / std::max(seconds, 1e-9), tally.last_sequence());
  }
  io.out->flush();
  if (tally.failed() > 0) {
    const absl::Status error = tally.first_error();
    return PrintError(
        io, "pub",
        absl::Status(
            error.code(),
            absl::StrFormat("%d publish(es) failed, the first with: %s",
                            tally.failed(), error.message())));
  }
  if (!closed.ok()) return PrintError(io, "pub", closed);
  return kExitOk;
}

int RunPub(const std::vector<std::string>& args, const Io& io) {
  if (args.empty() || args.size() > 2) {
    return UsageError(io, "pub", "expected CHANNEL [MESSAGE]");
  }
  const std::string& channel = args[0];
  const int64_t count = absl::GetFlag(FLAGS_count);
  if (count < 0) return UsageError(io, "pub", "--count must not be negative");
  const int64_t repeat = std::max<int64_t>(count, 1);
  const bool per_message = repeat == 1;
  const bool async = absl::GetFlag(FLAGS_async);

  auto connection = ConnectFromFlags(nullptr);
  if (!connection.ok()) return PrintError(io, "pub", connection.status());
  client::Connection& conn = **connection;

  Tally tally;
  const absl::Time start = absl::Now();
  // Returns false when publishing must stop (a publish could not even be
  // attempted, or a sync publish failed).
  auto publish = [&](const std::string& data) {
    for (int64_t i = 0; i < repeat; ++i) {
      if (async) {
        const absl::Status queued = conn.PublishAsync(
            channel, data,
            [&](const std::string&, const absl::StatusOr<uint64_t>& result) {
              tally.Record(result, per_message, channel, *io.out);
            });
        if (!queued.ok()) {
          tally.Record(queued, false, channel, *io.out);
          return false;
        }
      } else {
        const absl::StatusOr<uint64_t> sequence = conn.Publish(channel, data);
        tally.Record(sequence, per_message, channel, *io.out);
        if (!sequence.ok()) return false;
      }
    }
    return true;
  };
  if (args.size() == 2) {
    publish(args[1]);
  } else {
    std::string line;
    while (!io.interrupted->load() && std::getline(*io.in, line)) {
      if (!publish(line)) break;
    }
  }
  if (async) {
    const absl::Status flushed = conn.Flush(absl::Seconds(60));
    if (!flushed.ok()) tally.Record(flushed, false, channel, *io.out);
  }
  const absl::Duration elapsed = absl::Now() - start;
  const absl::Status closed = conn.Close();
  return Report(tally, channel, per_message, elapsed, closed, io);
}
}  // namespace

Command PubCommand() {
  return Command{"pub",
                 "publish a message (or each stdin line) to a channel",
                 kUsage,
                 {"async", "count"},
                 RunPub};
}

}  // namespace spate::cli
