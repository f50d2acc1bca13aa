#include "tools/spate/sub.h"

#include <ostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tools/spate/common.h"

ABSL_FLAG(std::string, durable, "",
          "durable name: the subscription survives closes and restarts");
ABSL_FLAG(std::string, queue, "", "queue group: members share the messages");
ABSL_FLAG(bool, new, false, "start with new messages only (the default)");
ABSL_FLAG(bool, last, false, "start with the last stored message");
ABSL_FLAG(bool, all, false, "start with the first stored message");
ABSL_FLAG(uint64_t, seq, 0, "start at this sequence");
ABSL_FLAG(absl::Duration, since, absl::ZeroDuration(),
          "start with messages stored in the last DURATION (e.g. 10s, 5m)");
ABSL_FLAG(bool, manual_ack, false,
          "manual-ack mode: each message is acked explicitly once printed");
ABSL_FLAG(int32_t, max_in_flight, 1024,
          "most unacknowledged messages the server sends at once");
ABSL_FLAG(absl::Duration, ack_wait, absl::Seconds(30),
          "redelivery after this long without an ack (whole seconds)");
ABSL_FLAG(bool, unsubscribe, false,
          "unsubscribe on exit instead of closing (deletes a durable)");

namespace spate::cli {
namespace {

constexpr char kUsage[] =
    R"(usage: spate sub CHANNEL [--durable NAME] [--queue GROUP]
       [--new | --last | --all | --seq N | --since DURATION]
       [--manual_ack] [--max_in_flight N] [--ack_wait DURATION]
       [--count N] [--unsubscribe]

Subscribes to CHANNEL and prints each message as "[#SEQ] DATA", with
"[redelivered]" before DATA for a redelivery. Runs until --count N messages
were printed (0: forever) or Ctrl-C, then closes the subscription: a durable
one keeps its position and resumes after the last printed message when the
same --client_id subscribes with the same --durable name again.
With --count, only the printed messages are acked (the rest are redelivered
later). --unsubscribe deletes the subscription on exit instead.)";

// How often the main thread checks for Ctrl-C while waiting.
constexpr absl::Duration kPollInterval = absl::Milliseconds(50);

absl::StatusOr<client::StartPosition> StartFromFlags() {
  int chosen = 0;
  client::StartPosition start = client::StartPosition::NewOnly();
  if (absl::GetFlag(FLAGS_new)) ++chosen;
  if (absl::GetFlag(FLAGS_last)) {
    ++chosen;
    start = client::StartPosition::LastReceived();
  }
  if (absl::GetFlag(FLAGS_all)) {
    ++chosen;
    start = client::StartPosition::First();
  }
  if (absl::GetFlag(FLAGS_seq) > 0) {
    ++chosen;
    start = client::StartPosition::AtSequence(absl::GetFlag(FLAGS_seq));
  }
  if (absl::GetFlag(FLAGS_since) > absl::ZeroDuration()) {
    ++chosen;
    start = client::StartPosition::AtTimeDelta(absl::GetFlag(FLAGS_since));
  }
  if (chosen > 1) {
    return absl::InvalidArgumentError(
        "choose one of --new, --last, --all, --seq, --since");
  }
  return start;
}

// State shared by the message handler, the lost handlers and the waiting
// main thread.
class Progress {
 public:
  explicit Progress(int64_t count) : count_(count) {}

  // Claims the next message; false once --count messages were claimed.
  bool Claim() {
    absl::MutexLock lock(&mu_);
    if (count_ > 0 && printed_ >= count_) return false;
    ++printed_;
    return true;
  }
  void Lose(const absl::Status& reason) {
    absl::MutexLock lock(&mu_);
    if (lost_.ok()) lost_ = reason;
  }
  // Waits up to `timeout` for --count messages or a loss; true if either.
  bool WaitDone(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto done = [this]() {
      return (count_ > 0 && printed_ >= count_) || !lost_.ok();
    };
    return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  }
  absl::Status lost() const {
    absl::MutexLock lock(&mu_);
    return lost_;
  }
  int64_t printed() const {
    absl::MutexLock lock(&mu_);
    return printed_;
  }

 private:
  mutable absl::Mutex mu_;
  const int64_t count_;
  int64_t printed_ = 0;
  absl::Status lost_;
};

int RunSub(const std::vector<std::string>& args, const Io& io) {
  if (args.size() != 1) return UsageError(io, "sub", "expected CHANNEL");
  const std::string& channel = args[0];
  const int64_t count = absl::GetFlag(FLAGS_count);
  if (count < 0) return UsageError(io, "sub", "--count must not be negative");
  absl::StatusOr<client::StartPosition> start = StartFromFlags();
  if (!start.ok()) return UsageError(io, "sub", start.status().message());

  Progress progress(count);
  client::SubscribeOptions options;
  options.durable_name = absl::GetFlag(FLAGS_durable);
  options.q_group = absl::GetFlag(FLAGS_queue);
  options.max_in_flight = absl::GetFlag(FLAGS_max_in_flight);
  options.ack_wait = absl::GetFlag(FLAGS_ack_wait);
  options.start = *start;
  // With --count, messages beyond it must stay unacked so that a durable
  // resumes right after the printed ones; auto-ack cannot skip them.
  options.manual_acks = absl::GetFlag(FLAGS_manual_ack) || count > 0;
  options.lost_handler = [&](const absl::Status& reason) {
    progress.Lose(reason);
  };

  auto connection = ConnectFromFlags(
      [&](const absl::Status& reason) { progress.Lose(reason); });
  if (!connection.ok()) return PrintError(io, "sub", connection.status());
  client::Connection& conn = **connection;

  // Runs on the subscription's dispatch thread, one message at a time.
  auto handler = [&, manual =
                         options.manual_acks](const client::Message& message) {
    if (!progress.Claim()) return;
    *io.out << "[#" << message.sequence() << "] "
            << (message.redelivered() ? "[redelivered] " : "") << message.data()
            << std::endl;
    if (manual) {
      const absl::Status acked = message.Ack();
      if (!acked.ok()) *io.err << "spate sub: " << acked << std::endl;
    }
  };
  auto subscription = conn.Subscribe(channel, options, handler);
  if (!subscription.ok()) return PrintError(io, "sub", subscription.status());
  *io.err << "subscribed to " << channel << " (id " << (*subscription)->id()
          << ", from seq " << (*subscription)->start_sequence()
          << "); Ctrl-C to stop" << std::endl;

  // With --count, a progress line on stderr once a second while waiting
  // (stdout carries only the messages, for pipes).
  absl::Time next_report = absl::Now() + absl::Seconds(1);
  int64_t reported = 0;
  while (!progress.WaitDone(kPollInterval) && !io.interrupted->load()) {
    if (count > 0 && absl::Now() >= next_report) {
      next_report = absl::Now() + absl::Seconds(1);
      const int64_t received = progress.printed();
      if (received != reported) {
        *io.err << "received " << received << " of " << count << std::endl;
        reported = received;
      }
    }
  }
  const absl::Status ended = absl::GetFlag(FLAGS_unsubscribe)
                                 ? (*subscription)->Unsubscribe()
                                 : (*subscription)->Close();
  const absl::Status closed = conn.Close();
  if (!progress.lost().ok()) return PrintError(io, "sub", progress.lost());
  if (!ended.ok()) return PrintError(io, "sub", ended);
  if (!closed.ok()) return PrintError(io, "sub", closed);
  return kExitOk;
}

}  // namespace

Command SubCommand() {
  return Command{
      "sub",
      "subscribe to a channel and print its messages",
      kUsage,
      {"durable", "queue", "new", "last", "all", "seq", "since", "manual_ack",
       "max_in_flight", "ack_wait", "count", "unsubscribe"},
      RunSub};
}

}  // namespace spate::cli
