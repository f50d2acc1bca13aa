#include "tests/faults/workload.h"

#include <algorithm>
#include <deque>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "base/prng.h"
#include "client/client.h"

namespace spate::faults {
namespace {

using client::ClientOptions;
using client::Connection;

// The servers starting at `first`, so clients spread over the nodes.
std::vector<std::string> Rotated(std::vector<std::string> servers,
                                 size_t first) {
  std::rotate(servers.begin(), servers.begin() + first % servers.size(),
              servers.end());
  return servers;
}

// Connects (retrying while no node answers) until `deadline`.
std::unique_ptr<Connection> ConnectUntil(ClientOptions options,
                                         absl::Time deadline,
                                         const std::atomic<bool>* stop) {
  while (absl::Now() < deadline && !(stop && *stop)) {
    absl::StatusOr<std::unique_ptr<Connection>> conn =
        Connection::Connect(options);
    if (conn.ok()) return *std::move(conn);
    absl::SleepFor(absl::Milliseconds(100));
  }
  return nullptr;
}

ClientOptions BaseOptions(const WorkloadOptions& options, std::string id,
                          size_t first) {
  ClientOptions client;
  client.servers = Rotated(options.servers, first);
  client.client_id = std::move(id);
  client.connect_timeout = absl::Seconds(2);
  client.pub_ack_wait = options.pub_ack_wait;
  client.reconnect_wait = absl::Seconds(60);
  return client;
}

}  // namespace

class Workload::Publisher {
 public:
  Publisher(const WorkloadOptions& options, int index)
      : options_(options), index_(index), prng_(options.seed * 7919 + index) {}
  ~Publisher() { Stop(); }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<PublishAttempt> Take() {
    absl::MutexLock lock(&mu_);
    return std::move(attempts_);
  }
  int64_t acked() const { return acked_; }

 private:
  bool async() const { return index_ < options_.async_publishers; }

  void Run() {
    std::unique_ptr<Connection> conn;
    int64_t n = 0;
    while (!stop_) {
      if (!conn) {
        ClientOptions client =
            BaseOptions(options_, absl::StrCat("pub", index_), index_);
        client.max_pub_acks_in_flight = options_.async_window;
        conn = ConnectUntil(client, absl::Now() + absl::Seconds(5), &stop_);
        live_ = true;
        continue;
      }
      PublishAttempt attempt;
      attempt.channel =
          options_.channels[prng_.Uniform(options_.channels.size())];
      attempt.payload =
          absl::StrCat("s", options_.seed, "-p", index_, "-", n++);
      if (async()) {
        PublishAsync(conn.get(), std::move(attempt));
      } else {
        absl::StatusOr<uint64_t> result =
            conn->Publish(attempt.channel, attempt.payload);
        Record(std::move(attempt), result);
      }
      if (!live_) conn.reset();  // lost for good: connect again
      absl::SleepFor(options_.publish_gap);
    }
    if (conn) {
      // Unacknowledged async publishes stay unknown after this.
      conn->Flush(absl::Seconds(10)).IgnoreError();
      conn->Close().IgnoreError();  // the run is over either way
    }
    absl::MutexLock lock(&mu_);
    for (auto& [payload, attempt] : pending_) {
      attempts_.push_back(std::move(attempt));
    }
    pending_.clear();
  }

  void PublishAsync(Connection* conn, PublishAttempt attempt) {
    const std::string payload = attempt.payload;
    const std::string channel = attempt.channel;
    {
      absl::MutexLock lock(&mu_);
      pending_.emplace(payload, std::move(attempt));
    }
    absl::Status queued = conn->PublishAsync(
        channel, payload,
        [this, payload](const std::string&,
                        const absl::StatusOr<uint64_t>& result) {
          absl::MutexLock lock(&mu_);
          auto it = pending_.find(payload);
          if (it == pending_.end()) return;
          PublishAttempt done = std::move(it->second);
          pending_.erase(it);
          RecordLocked(std::move(done), result);
        });
    if (!queued.ok()) {
      // Never on the wire, but count it unknown all the same.
      if (absl::IsFailedPrecondition(queued)) live_ = false;
      absl::MutexLock lock(&mu_);
      auto it = pending_.find(payload);
      if (it != pending_.end()) {
        attempts_.push_back(std::move(it->second));
        pending_.erase(it);
      }
    }
  }

  void Record(PublishAttempt attempt, const absl::StatusOr<uint64_t>& result) {
    if (!result.ok() && absl::IsFailedPrecondition(result.status())) {
      live_ = false;
    }
    absl::MutexLock lock(&mu_);
    RecordLocked(std::move(attempt), result);
  }

  void RecordLocked(PublishAttempt attempt,
                    const absl::StatusOr<uint64_t>& result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (result.ok()) {
      attempt.outcome = PublishOutcome::kAcked;
      attempt.sequence = *result;
      ++acked_;
    } else if (absl::IsInvalidArgument(result.status())) {
      attempt.outcome = PublishOutcome::kFailed;
    } else {
      // Timeouts and broken connections: the message may be stored.
      attempt.outcome = PublishOutcome::kUnknown;
    }
    attempts_.push_back(std::move(attempt));
  }

  const WorkloadOptions& options_;
  const int index_;
  base::Prng prng_;  // publisher thread only
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> acked_{0};
  std::thread thread_;
  absl::Mutex mu_;
  std::vector<PublishAttempt> attempts_ ABSL_GUARDED_BY(mu_);
  // Async publishes not completed yet, by payload.
  std::map<std::string, PublishAttempt> pending_ ABSL_GUARDED_BY(mu_);
  // False once the connection reported itself lost (FailedPrecondition).
  std::atomic<bool> live_{true};
};

class Workload::Subscriber {
 public:
  Subscriber(const WorkloadOptions& options, int index, std::string channel)
      : options_(options),
        index_(index),
        channel_(std::move(channel)),
        prng_(options.seed * 104729 + index) {
    history_.name = absl::StrCat("sub", index_, "@", channel_);
    history_.channel = channel_;
  }
  ~Subscriber() {
    stop_ = true;
    if (acker_.joinable()) acker_.join();
    Drop();
  }

  absl::Status Start(absl::Duration timeout) {
    absl::Status opened = Open(absl::Now() + timeout);
    if (!opened.ok()) return opened;
    acker_ = std::thread([this] { AckLoop(); });
    return absl::OkStatus();
  }

  // Every sequence 1..last delivered and no late ack left.
  bool Drained(uint64_t last) {
    absl::MutexLock lock(&mu_);
    ack_all_ = true;
    if (!late_.empty()) return false;
    return delivered_.size() >= last &&
           (last == 0 || *std::next(delivered_.begin(), last - 1) == last);
  }

  const std::string& channel() const { return channel_; }

  absl::Time last_delivery() {
    absl::MutexLock lock(&mu_);
    return last_delivery_;
  }

  // Closes the subscription (its queued acks written first), then opens
  // the durable again and records what it delivers for `listen`.
  void CloseAndReopen(absl::Duration listen) {
    stop_ = true;
    if (acker_.joinable()) acker_.join();
    std::unique_ptr<client::Subscription> sub;
    {
      absl::MutexLock lock(&mu_);
      sub = std::move(sub_);
    }
    if (!sub) return;
    const bool closed = sub->Close().ok();
    sub.reset();
    {
      absl::MutexLock lock(&mu_);
      if (closed) {
        history_.acked_before_close.assign(acked_.begin(), acked_.end());
      }
      reopened_ = true;
    }
    if (!Open(absl::Now() + absl::Seconds(10)).ok()) return;
    absl::SleepFor(listen);
    Drop();
  }

  SubscriberHistory Take() {
    absl::MutexLock lock(&mu_);
    return std::move(history_);
  }
  std::string Progress() {
    absl::MutexLock lock(&mu_);
    return absl::StrCat(history_.name, " delivered=", delivered_.size(),
                        " late=", late_.size());
  }

 private:
  struct LateAck {
    absl::Time due;
    client::Message message;
  };

  absl::Status Open(absl::Time deadline) {
    absl::Status last = absl::DeadlineExceededError("no attempt");
    while (absl::Now() < deadline) {
      if (!conn_) {
        ClientOptions options =
            BaseOptions(options_, absl::StrCat("sub", index_), index_ + 1);
        options.connection_lost_handler = [this](const absl::Status&) {
          broken_ = true;
        };
        conn_ = ConnectUntil(options, deadline, nullptr);
        if (!conn_) return absl::UnavailableError("cannot connect");
      }
      client::SubscribeOptions sub_options;
      sub_options.durable_name = "durable";
      sub_options.manual_acks = true;
      sub_options.max_in_flight = 64;
      sub_options.ack_wait = options_.ack_wait;
      sub_options.start = client::StartPosition::First();
      sub_options.lost_handler = [this](const absl::Status&) {
        broken_ = true;
      };
      absl::StatusOr<std::unique_ptr<client::Subscription>> sub =
          conn_->Subscribe(
              channel_, sub_options,
              [this](const client::Message& message) { OnMessage(message); });
      if (sub.ok()) {
        absl::MutexLock lock(&mu_);
        sub_ = *std::move(sub);
        broken_ = false;
        return absl::OkStatus();
      }
      last = sub.status();
      absl::SleepFor(absl::Milliseconds(100));
    }
    return last;
  }

  // Ends the subscription and the connection (not from a client thread).
  void Drop() {
    std::unique_ptr<client::Subscription> sub;
    {
      absl::MutexLock lock(&mu_);
      sub = std::move(sub_);
      epoch_base_ += 1000;
    }
    sub.reset();
    conn_.reset();
  }

  int64_t EpochLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    int64_t epoch = epoch_base_;
    if (sub_) epoch += sub_->resubscribes();
    if (conn_) epoch += conn_->reconnects();
    return epoch;
  }

  void OnMessage(const client::Message& message) {
    absl::MutexLock lock(&mu_);
    Delivery delivery;
    delivery.sequence = message.sequence();
    delivery.payload = message.data();
    delivery.redelivered = message.redelivered();
    delivery.epoch = EpochLocked();
    last_delivery_ = absl::Now();
    if (reopened_) {
      history_.after_reopen.push_back(std::move(delivery));
      message.Ack().IgnoreError();  // the subscription is about to close
      return;
    }
    history_.deliveries.push_back(std::move(delivery));
    delivered_.insert(message.sequence());
    if (ack_all_ || prng_.Chance(1, 2)) {
      if (message.Ack().ok()) acked_.insert(message.sequence());
      return;
    }
    late_.push_back(LateAck{
        absl::Now() + absl::Milliseconds(prng_.Uniform(
                          absl::ToInt64Milliseconds(options_.late_ack_max))),
        message});
  }

  // Sends due late acks; re-opens the subscription after it was lost.
  void AckLoop() {
    while (!stop_) {
      absl::SleepFor(absl::Milliseconds(20));
      if (broken_) {
        Drop();
        Open(absl::Now() + absl::Seconds(10)).IgnoreError();  // retried
        continue;
      }
      absl::MutexLock lock(&mu_);
      const absl::Time now = absl::Now();
      for (auto it = late_.begin(); it != late_.end();) {
        if (ack_all_ || it->due <= now) {
          if (it->message.Ack().ok()) acked_.insert(it->message.sequence());
          it = late_.erase(it);
        } else {
          ++it;
        }
      }
    }
  }

  const WorkloadOptions& options_;
  const int index_;
  const std::string channel_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> broken_{false};
  std::thread acker_;
  // Set in Open/Drop from the driving thread or the acker, never both at
  // once (the acker is joined before CloseAndReopen).
  std::unique_ptr<Connection> conn_;

  absl::Mutex mu_;
  base::Prng prng_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<client::Subscription> sub_ ABSL_GUARDED_BY(mu_);
  int64_t epoch_base_ ABSL_GUARDED_BY(mu_) = 0;
  bool ack_all_ ABSL_GUARDED_BY(mu_) = false;
  bool reopened_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_delivery_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::set<uint64_t> delivered_ ABSL_GUARDED_BY(mu_);
  std::set<uint64_t> acked_ ABSL_GUARDED_BY(mu_);
  std::deque<LateAck> late_ ABSL_GUARDED_BY(mu_);
  SubscriberHistory history_ ABSL_GUARDED_BY(mu_);
};

Workload::Workload(WorkloadOptions options) : options_(std::move(options)) {
  int index = 0;
  for (const std::string& channel : options_.channels) {
    for (int i = 0; i < options_.subscribers_per_channel; ++i) {
      subscribers_.push_back(
          std::make_unique<Subscriber>(options_, index++, channel));
    }
  }
  for (int i = 0; i < options_.publishers; ++i) {
    publishers_.push_back(std::make_unique<Publisher>(options_, i));
  }
}

Workload::~Workload() { StopPublishing(); }

absl::Status Workload::Start(absl::Duration timeout) {
  for (auto& subscriber : subscribers_) {
    if (absl::Status s = subscriber->Start(timeout); !s.ok()) {
      return absl::Status(s.code(),
                          absl::StrCat("subscriber start: ", s.message()));
    }
  }
  for (auto& publisher : publishers_) publisher->Start();
  return absl::OkStatus();
}

void Workload::StopPublishing() {
  for (auto& publisher : publishers_) publisher->Stop();
}

absl::Status Workload::Drain(const std::map<std::string, uint64_t>& last,
                             absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    bool done = true;
    for (auto& subscriber : subscribers_) {
      auto it = last.find(subscriber->channel());
      if (!subscriber->Drained(it == last.end() ? 0 : it->second)) {
        done = false;
      }
    }
    if (done) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("drain incomplete: ", Progress()));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
}

void Workload::CloseAndReopen(absl::Duration listen) {
  // Quiet first: once nothing was redelivered for longer than the AckWait,
  // every ack has reached the server.
  const absl::Duration quiet = options_.ack_wait + absl::Seconds(1);
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (absl::Now() < deadline) {
    absl::Time latest = absl::InfinitePast();
    for (auto& subscriber : subscribers_) {
      latest = std::max(latest, subscriber->last_delivery());
    }
    if (absl::Now() - latest > quiet) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  for (auto& subscriber : subscribers_) subscriber->CloseAndReopen(listen);
}

History Workload::TakeHistory() {
  History history;
  for (auto& publisher : publishers_) {
    for (PublishAttempt& attempt : publisher->Take()) {
      history.publishes.push_back(std::move(attempt));
    }
  }
  for (auto& subscriber : subscribers_) {
    history.subscribers.push_back(subscriber->Take());
  }
  return history;
}

int64_t Workload::acked() const {
  int64_t total = 0;
  for (const auto& publisher : publishers_) total += publisher->acked();
  return total;
}

std::string Workload::Progress() const {
  std::string out = absl::StrCat("acked=", acked());
  for (const auto& subscriber : subscribers_) {
    absl::StrAppend(&out, " ", subscriber->Progress());
  }
  return out;
}

}  // namespace spate::faults
