#include "tools/spate/bench_runner.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/client.h"
#include "tools/spate/proc_stats.h"

namespace spate::cli {
namespace {

constexpr char kMagic[8] = {'s', 'p', 'a', 't', 'e', 'b', 'n', '1'};
// Durable name and queue group of the bench's subscriptions.
constexpr char kSubscriptionName[] = "bench";
// How often the waiting thread looks at the counters.
constexpr absl::Duration kPollInterval = absl::Milliseconds(10);
// Bound on a publisher's final Flush; a stall or failure ends the run
// earlier (Shutdown closes the connection, which ends the Flush).
constexpr absl::Duration kFlushTimeout = absl::Minutes(10);
// Backoff between Subscribe attempts answered UNAVAILABLE.
constexpr absl::Duration kSubscribeRetryMin = absl::Milliseconds(20);
constexpr absl::Duration kSubscribeRetryMax = absl::Milliseconds(500);

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void StampPayload(std::string* payload, int64_t send_nanos) {
  std::memcpy(payload->data() + sizeof(kMagic), &send_nanos,
              sizeof(send_nanos));
}

double Seconds(int64_t nanos) { return static_cast<double>(nanos) / 1e9; }

}  // namespace

struct BenchRunner::Publisher {
  int index = 0;
  int channel = 0;
  // Messages to send (count mode).
  int64_t quota = 0;
  std::unique_ptr<client::Connection> connection;
  // Written by the publishing thread (sync) or the ack handlers (async),
  // read after the thread is joined.
  LatencyHistogram latency;
  std::atomic<int64_t> acked{0};
  std::atomic<int64_t> failed{0};
  std::atomic<int64_t> last_ack_nanos{0};
  std::atomic<bool> finished{false};
  std::thread thread;
};

struct BenchRunner::Subscriber {
  int index = 0;
  int channel = 0;
  // Subscribers of one group share the messages (a queue group); others
  // are a group of their own.
  int group = 0;
  std::unique_ptr<client::Connection> connection;
  std::unique_ptr<client::Subscription> subscription;
  // Written by the subscription's handler only; read after it closed.
  LatencyHistogram latency;
  std::atomic<int64_t> received{0};
  std::atomic<int64_t> redelivered{0};
  std::atomic<int64_t> last_nanos{0};
};

BenchRunner::BenchRunner(BenchConfig config, BenchProgress progress,
                         const std::atomic<bool>* interrupted)
    : config_(std::move(config)),
      progress_(std::move(progress)),
      interrupted_(interrupted) {}

BenchRunner::~BenchRunner() { Shutdown(); }

std::string BenchRunner::MakePayload(int64_t size_bytes, int64_t send_nanos) {
  std::string payload(std::max<int64_t>(size_bytes, BenchConfig::kStampBytes),
                      'x');
  std::memcpy(payload.data(), kMagic, sizeof(kMagic));
  StampPayload(&payload, send_nanos);
  return payload;
}

std::optional<int64_t> BenchRunner::PayloadSendNanos(
    const std::string& payload) {
  if (payload.size() < static_cast<size_t>(BenchConfig::kStampBytes) ||
      std::memcmp(payload.data(), kMagic, sizeof(kMagic)) != 0) {
    return std::nullopt;
  }
  int64_t send_nanos = 0;
  std::memcpy(&send_nanos, payload.data() + sizeof(kMagic), sizeof(send_nanos));
  return send_nanos;
}

void BenchRunner::Fail(const absl::Status& status) {
  absl::MutexLock lock(&failure_mu_);
  if (failure_.ok()) failure_ = status;
  stop_.store(true);
}

absl::Status BenchRunner::failure() const {
  absl::MutexLock lock(&failure_mu_);
  return failure_;
}

absl::Status BenchRunner::Connect() {
  auto connect = [&](const std::string& id)
      -> absl::StatusOr<std::unique_ptr<client::Connection>> {
    client::ClientOptions options;
    options.token = security_.token;
    options.user = security_.user;
    options.password = security_.password;
    options.tls_ca_file = security_.tls_ca_file;
    options.tls_cert_file = security_.tls_cert_file;
    options.tls_key_file = security_.tls_key_file;
    options.tls_server_name_override = security_.tls_server_name_override;
    options.publish_to_leader = security_.publish_to_leader;
    options.servers = config_.servers;
    options.client_id = id;
    options.max_pub_acks_in_flight = config_.window;
    options.reconnect_wait = config_.reconnect_wait;
    options.connection_lost_handler = [this, id](const absl::Status& reason) {
      Fail(absl::UnavailableError(
          absl::StrCat("connection ", id, " lost: ", reason.ToString())));
    };
    return client::Connection::Connect(std::move(options));
  };
  for (int i = 0; i < config_.publishers; ++i) {
    auto publisher = std::make_unique<Publisher>();
    publisher->index = i;
    publisher->channel = i % config_.channels;
    publisher->quota = config_.count / config_.publishers +
                       (i < config_.count % config_.publishers ? 1 : 0);
    auto connection =
        connect(absl::StrCat(config_.client_id_prefix, "-pub-", i));
    if (!connection.ok()) return connection.status();
    publisher->connection = *std::move(connection);
    publishers_.push_back(std::move(publisher));
  }
  for (int i = 0; i < config_.subscribers; ++i) {
    auto subscriber = std::make_unique<Subscriber>();
    subscriber->index = i;
    subscriber->channel = i % config_.channels;
    subscriber->group =
        config_.sub_kind == SubKind::kQueue ? subscriber->channel : i;
    auto connection =
        connect(absl::StrCat(config_.client_id_prefix, "-sub-", i));
    if (!connection.ok()) return connection.status();
    subscriber->connection = *std::move(connection);
    subscribers_.push_back(std::move(subscriber));
  }
  return absl::OkStatus();
}

absl::Status BenchRunner::WarmUp() {
  const std::string payload = MakePayload(config_.size_bytes, 0);
  for (const auto& publisher : publishers_) {
    const std::string channel = config_.ChannelName(publisher->channel);
    absl::StatusOr<uint64_t> sequence =
        publisher->connection->Publish(channel, payload);
    if (!sequence.ok()) {
      return absl::Status(sequence.status().code(),
                          absl::StrCat("warm-up publish to ", channel, ": ",
                                       sequence.status().message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<client::Subscription>>
BenchRunner::SubscribeWithRetry(client::Connection& connection,
                                const std::string& channel,
                                const client::SubscribeOptions& options,
                                const client::MessageHandler& handler) {
  // A new channel may still be electing its leader, or its leadership may
  // be moving (leaders are balanced across nodes): the server then answers
  // UNAVAILABLE, which is worth retrying, as the client does for publishes.
  const absl::Time deadline = absl::Now() + config_.reconnect_wait;
  absl::Duration backoff = kSubscribeRetryMin;
  while (true) {
    auto subscription = connection.Subscribe(channel, options, handler);
    if (subscription.ok() ||
        subscription.status().code() != absl::StatusCode::kUnavailable ||
        absl::Now() + backoff > deadline || stop_.load()) {
      return subscription;
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, kSubscribeRetryMax);
  }
}

absl::Status BenchRunner::Subscribe() {
  for (const auto& subscriber : subscribers_) {
    client::SubscribeOptions options;
    options.max_in_flight = config_.max_in_flight;
    options.manual_acks = config_.manual_ack;
    options.start = config_.start_first ? client::StartPosition::First()
                                        : client::StartPosition::NewOnly();
    if (config_.sub_kind == SubKind::kDurable) {
      options.durable_name = kSubscriptionName;
    }
    if (config_.sub_kind == SubKind::kQueue) {
      options.q_group = kSubscriptionName;
    }
    const std::string channel = config_.ChannelName(subscriber->channel);
    options.lost_handler = [this, channel](const absl::Status& reason) {
      Fail(absl::UnavailableError(absl::StrCat("subscription to ", channel,
                                               " lost: ", reason.ToString())));
    };
    Subscriber* self = subscriber.get();
    const bool manual = config_.manual_ack;
    auto handler = [this, self, manual](const client::Message& message) {
      const int64_t now = SteadyNanos();
      const std::optional<int64_t> sent = PayloadSendNanos(message.data());
      if (message.redelivered()) {
        self->redelivered.fetch_add(1);
      } else if (!sent.has_value() || *sent != 0) {  // 0: a warm-up message
        if (sent.has_value()) self->latency.RecordNanos(now - *sent);
        self->last_nanos.store(now);
        self->received.fetch_add(1);
      }
      if (manual) {
        const absl::Status acked = message.Ack();
        if (!acked.ok() && !stop_.load()) Fail(acked);
      }
    };
    auto subscription =
        SubscribeWithRetry(*subscriber->connection, channel, options, handler);
    if (!subscription.ok()) return subscription.status();
    subscriber->subscription = *std::move(subscription);
  }
  return absl::OkStatus();
}

void BenchRunner::PublishSync(Publisher* publisher, const std::string& channel,
                              std::string* payload, int64_t stamp_nanos) {
  absl::StatusOr<uint64_t> sequence =
      publisher->connection->Publish(channel, *payload);
  const int64_t now = SteadyNanos();
  if (!sequence.ok()) {
    publisher->failed.fetch_add(1);
    Fail(absl::Status(sequence.status().code(),
                      absl::StrCat("publish to ", channel, ": ",
                                   sequence.status().message())));
    return;
  }
  publisher->latency.RecordNanos(now - stamp_nanos);
  publisher->last_ack_nanos.store(now);
  publisher->acked.fetch_add(1);
}

void BenchRunner::PublishAsync(Publisher* publisher, const std::string& channel,
                               std::string* payload, int64_t stamp_nanos) {
  // Handlers of one connection run one at a time, so the histogram needs
  // no lock.
  const absl::Status queued = publisher->connection->PublishAsync(
      channel, *payload,
      [publisher, stamp_nanos](const std::string&,
                               const absl::StatusOr<uint64_t>& result) {
        const int64_t now = SteadyNanos();
        if (result.ok()) {
          publisher->latency.RecordNanos(now - stamp_nanos);
          publisher->acked.fetch_add(1);
        } else {
          publisher->failed.fetch_add(1);
        }
        publisher->last_ack_nanos.store(now);
      });
  if (!queued.ok()) {
    Fail(absl::Status(queued.code(), absl::StrCat("publish to ", channel, ": ",
                                                  queued.message())));
  }
}

void BenchRunner::Publish(Publisher* publisher) {
  const std::string channel = config_.ChannelName(publisher->channel);
  std::string payload = MakePayload(config_.size_bytes, 0);
  // Open loop: each publisher keeps its share of the rate, its schedule
  // offset so that the publishers interleave.
  const double rate = config_.rate_msgs_per_s / config_.publishers;
  const int64_t period_nanos = rate > 0 ? static_cast<int64_t>(1e9 / rate) : 0;
  const int64_t offset_nanos =
      period_nanos * publisher->index / config_.publishers;
  const int64_t end_nanos =
      config_.duration > absl::ZeroDuration()
          ? start_nanos_ + absl::ToInt64Nanoseconds(config_.duration)
          : std::numeric_limits<int64_t>::max();
  for (int64_t i = 0; !stop_.load(); ++i) {
    if (config_.count > 0 && i >= publisher->quota) break;
    int64_t stamp = SteadyNanos();
    if (period_nanos > 0) {
      const int64_t scheduled = start_nanos_ + offset_nanos + i * period_nanos;
      if (scheduled > stamp) {
        std::this_thread::sleep_for(
            std::chrono::nanoseconds(scheduled - stamp));
      }
      stamp = scheduled;
    }
    if (stamp >= end_nanos) break;
    StampPayload(&payload, stamp);
    if (config_.sync) {
      PublishSync(publisher, channel, &payload, stamp);
    } else {
      PublishAsync(publisher, channel, &payload, stamp);
    }
  }
  if (!config_.sync) {
    const absl::Status flushed = publisher->connection->Flush(kFlushTimeout);
    if (!flushed.ok() && !stop_.load()) Fail(flushed);
  }
  publisher->finished.store(true);
}

bool BenchRunner::PublishersDone() const {
  return std::all_of(publishers_.begin(), publishers_.end(),
                     [](const auto& p) { return p->finished.load(); });
}

bool BenchRunner::SubscribersDone() const {
  // What each channel holds for the subscribers: the acked publishes, or
  // (no publishers) `count` stored messages per group.
  std::vector<int64_t> expected(config_.channels, config_.count);
  if (!publishers_.empty()) {
    std::fill(expected.begin(), expected.end(), 0);
    for (const auto& publisher : publishers_) {
      expected[publisher->channel] += publisher->acked.load();
    }
  }
  std::vector<int64_t> group_received(subscribers_.size(), 0);
  for (const auto& subscriber : subscribers_) {
    group_received[subscriber->group] += subscriber->received.load();
  }
  for (const auto& subscriber : subscribers_) {
    if (group_received[subscriber->group] < expected[subscriber->channel]) {
      return false;
    }
  }
  return true;
}

BenchRunner::Totals BenchRunner::CurrentTotals() const {
  Totals totals;
  for (const auto& publisher : publishers_) {
    totals.acked += publisher->acked.load() + publisher->failed.load();
  }
  for (const auto& subscriber : subscribers_) {
    totals.delivered += subscriber->received.load();
  }
  return totals;
}

std::string BenchRunner::ProgressLine(int64_t now_nanos, const Totals& now,
                                      int64_t before_nanos,
                                      const Totals& before) const {
  const double interval = std::max(Seconds(now_nanos - before_nanos), 1e-9);
  std::string line =
      absl::StrFormat("[%6.1fs]", Seconds(now_nanos - start_nanos_));
  if (!publishers_.empty()) {
    absl::StrAppend(&line, absl::StrFormat(" pub %d", now.acked),
                    config_.count > 0 ? absl::StrCat("/", config_.count) : "",
                    absl::StrFormat(" acked (%.0f msgs/s)",
                                    (now.acked - before.acked) / interval));
  }
  if (!subscribers_.empty()) {
    absl::StrAppend(
        &line, absl::StrFormat(" sub %d delivered (%.0f msgs/s)", now.delivered,
                               (now.delivered - before.delivered) / interval));
  }
  return line;
}

absl::Status BenchRunner::Wait() {
  const int64_t stall_nanos = absl::ToInt64Nanoseconds(config_.stall_timeout);
  const int64_t progress_nanos =
      absl::ToInt64Nanoseconds(config_.progress_interval);
  Totals last = CurrentTotals();
  int64_t last_change_nanos = SteadyNanos();
  Totals reported = last;
  int64_t reported_nanos = start_nanos_;
  while (true) {
    absl::SleepFor(kPollInterval);
    if (interrupted_ != nullptr && interrupted_->load()) {
      return absl::CancelledError("interrupted");
    }
    if (absl::Status failed = failure(); !failed.ok()) return failed;
    const int64_t now_nanos = SteadyNanos();
    const Totals now = CurrentTotals();
    if (now.acked != last.acked || now.delivered != last.delivered) {
      last = now;
      last_change_nanos = now_nanos;
    }
    if (PublishersDone() && SubscribersDone()) return absl::OkStatus();
    if (now_nanos - last_change_nanos > stall_nanos) {
      return absl::DeadlineExceededError(absl::StrCat(
          "no progress for ", absl::FormatDuration(config_.stall_timeout), ": ",
          now.acked, " publishes completed, ", now.delivered,
          " messages delivered"));
    }
    if (progress_ && progress_nanos > 0 &&
        now_nanos - reported_nanos >= progress_nanos) {
      progress_(ProgressLine(now_nanos, now, reported_nanos, reported));
      reported = now;
      reported_nanos = now_nanos;
    }
  }
}

void BenchRunner::Shutdown() {
  stop_.store(true);
  // Publishers first: closing a connection ends a publisher blocked on a
  // full window or in Flush. Statuses are ignored: the run's outcome is
  // already decided, this only releases resources.
  for (const auto& publisher : publishers_) {
    if (!publisher->finished.load() && publisher->connection != nullptr) {
      publisher->connection->Close().IgnoreError();
    }
    if (publisher->thread.joinable()) publisher->thread.join();
  }
  for (const auto& subscriber : subscribers_) {
    if (subscriber->subscription == nullptr) continue;
    // A durable is deleted so that runs leave nothing behind.
    if (config_.sub_kind == SubKind::kDurable) {
      subscriber->subscription->Unsubscribe().IgnoreError();
    } else {
      subscriber->subscription->Close().IgnoreError();
    }
    subscriber->subscription.reset();
  }
  for (const auto& publisher : publishers_) {
    if (publisher->connection) publisher->connection->Close().IgnoreError();
  }
  for (const auto& subscriber : subscribers_) {
    if (subscriber->connection) subscriber->connection->Close().IgnoreError();
  }
}

BenchRunner::Samples BenchRunner::Sample() const {
  Samples samples;
  samples.nanos = SteadyNanos();
  for (pid_t pid : config_.server_pids) {
    const absl::StatusOr<double> cpu = ProcessCpuSeconds(pid);
    samples.server_cpu_seconds.push_back(cpu.ok() ? *cpu : -1);
  }
  samples.self_cpu_seconds = ProcessCpuSeconds(getpid()).value_or(0);
  samples.load_1m = LoadAverage1m().value_or(0);
  return samples;
}

BenchResult BenchRunner::Collect(const Samples& before,
                                 const Samples& after) const {
  BenchResult result;
  result.config = config_;
  result.elapsed_seconds = Seconds(after.nanos - start_nanos_);
  result.load_1m_start = before.load_1m;
  result.load_1m_end = after.load_1m;
  result.bench_cpu_seconds = after.self_cpu_seconds - before.self_cpu_seconds;
  for (size_t i = 0; i < config_.server_pids.size(); ++i) {
    const double end = after.server_cpu_seconds[i];
    result.servers.push_back(
        {config_.server_pids[i],
         end < 0 ? -1 : end - before.server_cpu_seconds[i]});
  }
  if (!publishers_.empty()) {
    RoleResult& pub = result.pub.emplace();
    pub.clients = static_cast<int>(publishers_.size());
    int64_t last = start_nanos_;
    for (const auto& publisher : publishers_) {
      pub.msgs += publisher->acked.load();
      pub.errors += publisher->failed.load();
      pub.latency.Merge(publisher->latency);
      const int64_t end = publisher->last_ack_nanos.load();
      last = std::max(last, end);
      pub.client_msgs_per_s.push_back(end > start_nanos_
                                          ? publisher->acked.load() /
                                                Seconds(end - start_nanos_)
                                          : 0);
    }
    pub.seconds = Seconds(last - start_nanos_);
  }
  if (!subscribers_.empty()) {
    RoleResult& sub = result.sub.emplace();
    sub.clients = static_cast<int>(subscribers_.size());
    int64_t last = sub_start_nanos_;
    for (const auto& subscriber : subscribers_) {
      sub.msgs += subscriber->received.load();
      sub.errors += subscriber->redelivered.load();
      sub.latency.Merge(subscriber->latency);
      const int64_t end = subscriber->last_nanos.load();
      last = std::max(last, end);
      sub.client_msgs_per_s.push_back(end > sub_start_nanos_
                                          ? subscriber->received.load() /
                                                Seconds(end - sub_start_nanos_)
                                          : 0);
    }
    sub.seconds = Seconds(last - sub_start_nanos_);
  }
  return result;
}

absl::StatusOr<BenchResult> BenchRunner::Run() {
  if (absl::Status valid = config_.Validate(); !valid.ok()) return valid;
  for (pid_t pid : config_.server_pids) {
    absl::StatusOr<double> cpu = ProcessCpuSeconds(pid);
    if (!cpu.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("server pid ", pid, ": ", cpu.status().message()));
    }
  }
  if (absl::Status status = Connect(); !status.ok()) return status;
  if (absl::Status status = WarmUp(); !status.ok()) return status;
  // Subscribers reading stored messages are timed from their Subscribe;
  // those waiting for new ones from the publishers' start.
  if (publishers_.empty()) sub_start_nanos_ = SteadyNanos();
  if (absl::Status status = Subscribe(); !status.ok()) return status;

  const Samples before = Sample();
  start_nanos_ = before.nanos;
  if (!publishers_.empty()) sub_start_nanos_ = start_nanos_;
  for (const auto& publisher : publishers_) {
    publisher->thread =
        std::thread([this, p = publisher.get()] { Publish(p); });
  }
  const absl::Status waited = Wait();
  const Samples after = Sample();
  // Joins the publishers and ends the subscriptions: every handler has
  // returned afterwards, so the histograms can be read.
  Shutdown();
  if (!waited.ok()) return waited;
  return Collect(before, after);
}

}  // namespace spate::cli
