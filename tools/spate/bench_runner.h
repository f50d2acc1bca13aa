// BenchRunner: runs one `spate bench` workload (bench_config.h) against a
// cluster and measures it (bench_report.h).
//
// Each publisher and each subscriber has its own Connection. A run goes:
//   connect everyone → one synchronous warm-up publish per publisher (it
//   creates the channel, waits for its leader and warms the connection;
//   its payload carries timestamp 0, so subscribers skip it) → subscribe
//   (new only, or from the first message) → sample the servers' CPU and
//   the load → start the publisher threads and wait, reporting progress,
//   until every publisher finished (sync: each publish acked; async: Flush)
//   and every subscriber (or queue group) received what it expects → sample
//   again → unsubscribe durables (so runs leave no state behind), close
//   the rest.
// Latency: publish → ack is measured per message by the publisher (async:
// in the ack handler, which captures the send time); end to end is the
// delivery time minus the send time carried in the payload (steady clock;
// publisher and subscriber share this process, so the clocks agree).
// Progress: the waiting thread calls `progress` every progress_interval
// with a one-line summary. The run fails (status) on a stall (nothing
// acked or delivered for stall_timeout), on the first failed synchronous
// publish, on a lost connection or subscription, or when `interrupted`
// is set; failed async publishes are counted, not fatal.
// Threading: Run() once, from one thread; it starts and joins its own
// publisher threads; the handlers run on client threads and touch only
// their own client's state (atomics for what the waiting thread reads).
#ifndef SPATE_TOOLS_SPATE_BENCH_RUNNER_H_
#define SPATE_TOOLS_SPATE_BENCH_RUNNER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "client/client.h"
#include "tools/spate/bench_config.h"
#include "tools/spate/bench_report.h"

namespace spate::cli {

using BenchProgress = std::function<void(const std::string& line)>;

class BenchRunner {
 public:
  // `interrupted` (may be null) is polled; `progress` may be empty.
  BenchRunner(BenchConfig config, BenchProgress progress,
              const std::atomic<bool>* interrupted);
  ~BenchRunner();
  BenchRunner(const BenchRunner&) = delete;
  BenchRunner& operator=(const BenchRunner&) = delete;

  // Credentials, TLS (token, user, password, tls_*) and publish_to_leader
  // every connection of the run uses; servers, client ids, the window and the
  // handlers come from the config. Call before Run().
  void set_security(client::ClientOptions security) {
    security_ = std::move(security);
  }

  absl::StatusOr<BenchResult> Run();

  // The payload of a message sent at `send_nanos` (steady clock; 0 marks
  // a warm-up message), `size_bytes` long.
  static std::string MakePayload(int64_t size_bytes, int64_t send_nanos);
  // The send time in a payload made by MakePayload; nullopt for another
  // payload (a message not published by a bench).
  static std::optional<int64_t> PayloadSendNanos(const std::string& payload);

 private:
  struct Publisher;
  struct Subscriber;

  absl::Status Connect();
  absl::Status WarmUp();
  absl::Status Subscribe();
  // Connection::Subscribe, retried while the server answers UNAVAILABLE
  // (for up to reconnect_wait).
  absl::StatusOr<std::unique_ptr<client::Subscription>> SubscribeWithRetry(
      client::Connection& connection, const std::string& channel,
      const client::SubscribeOptions& options,
      const client::MessageHandler& handler);
  void Publish(Publisher* publisher);
  void PublishSync(Publisher* publisher, const std::string& channel,
                   std::string* payload, int64_t stamp_nanos);
  void PublishAsync(Publisher* publisher, const std::string& channel,
                    std::string* payload, int64_t stamp_nanos);
  // Waits for the publishers and subscribers to finish.
  absl::Status Wait();
  bool PublishersDone() const;
  // Whether every subscriber (queue group) got what it expects; call once
  // the publishers are done (their ack counts are final).
  bool SubscribersDone() const;
  // Records the first fatal failure (from any thread).
  void Fail(const absl::Status& status);
  absl::Status failure() const;
  // Totals the waiting thread watches.
  struct Totals {
    int64_t acked = 0;  // acked + failed publishes
    int64_t delivered = 0;
  };
  Totals CurrentTotals() const;
  std::string ProgressLine(int64_t now_nanos, const Totals& now,
                           int64_t before_nanos, const Totals& before) const;
  // Stops the publishers (if running), closes everything.
  void Shutdown();
  // CPU and load figures taken right before and after the measured part.
  struct Samples {
    int64_t nanos = 0;
    std::vector<double> server_cpu_seconds;  // -1: unreadable
    double self_cpu_seconds = 0;
    double load_1m = 0;
  };
  Samples Sample() const;
  // Call after Shutdown() (the handlers are done).
  BenchResult Collect(const Samples& before, const Samples& after) const;

  const BenchConfig config_;
  client::ClientOptions security_;
  const BenchProgress progress_;
  const std::atomic<bool>* const interrupted_;
  std::vector<std::unique_ptr<Publisher>> publishers_;
  std::vector<std::unique_ptr<Subscriber>> subscribers_;
  // Set to stop the publisher threads early (a failure or an interrupt).
  std::atomic<bool> stop_{false};
  mutable absl::Mutex failure_mu_;
  absl::Status failure_ ABSL_GUARDED_BY(failure_mu_);
  int64_t start_nanos_ = 0;
  int64_t sub_start_nanos_ = 0;
};

}  // namespace spate::cli

#endif  // SPATE_TOOLS_SPATE_BENCH_RUNNER_H_
