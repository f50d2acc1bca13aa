// Workload: the clients of one fault-injection run (tests/faults/), built
// on the C++ client library (client/client.h), which reconnects and
// resubscribes by itself. Publishers publish unique payloads, synchronously
// (Publish) or pipelined (PublishAsync), and record every attempt's
// outcome (acked with its sequence, failed, unknown). Durable subscribers (one
// or more per channel, from the first sequence, manual acks) record every
// delivery with its sequence, redelivered flag and epoch, and ack some messages
// at once and others late (past the AckWait, so the server redelivers them).
//
// Lifecycle: Start() → [faults] → StopPublishing() → Drain() →
// CloseAndReopen() → TakeHistory(). A client whose connection is lost for
// good is connected again (same client id), so the workload outlives any
// fault; every wait is bounded.
// Threading: one thread per publisher, one acker thread per subscriber,
// plus the client library's threads; public methods from one thread.
#ifndef SPATE_TESTS_FAULTS_WORKLOAD_H_
#define SPATE_TESTS_FAULTS_WORKLOAD_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "tests/faults/history.h"

namespace spate::faults {

struct WorkloadOptions {
  std::vector<std::string> servers;  // client addresses of every node
  std::vector<std::string> channels;
  int publishers = 2;
  // Of those, this many publish with PublishAsync (a window of up to
  // async_window unacknowledged messages, resent with their guids after a
  // reconnection) instead of synchronous Publish.
  int async_publishers = 1;
  int async_window = 32;
  int subscribers_per_channel = 1;
  uint64_t seed = 1;
  // Each publisher pauses this long between publishes (bounds the volume
  // the drain has to deliver).
  absl::Duration publish_gap = absl::Milliseconds(2);
  absl::Duration pub_ack_wait = absl::Seconds(5);
  absl::Duration ack_wait = absl::Seconds(2);
  // Late acks are sent this long (uniform up to) after the delivery.
  absl::Duration late_ack_max = absl::Seconds(3);
};

class Workload {
 public:
  explicit Workload(WorkloadOptions options);
  ~Workload();
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  // Connects and subscribes every subscriber, then starts the publishers.
  absl::Status Start(absl::Duration timeout);
  void StopPublishing();
  // Waits until every subscriber has been delivered every sequence up to
  // `last[channel]` and its late acks were sent.
  absl::Status Drain(const std::map<std::string, uint64_t>& last,
                     absl::Duration timeout);
  // Acks everything delivered, closes each subscription, opens the durable
  // again for `listen` and records what it delivers then.
  void CloseAndReopen(absl::Duration listen);
  History TakeHistory();

  int64_t acked() const;
  std::string Progress() const;

 private:
  class Publisher;
  class Subscriber;

  const WorkloadOptions options_;
  std::vector<std::unique_ptr<Publisher>> publishers_;
  std::vector<std::unique_ptr<Subscriber>> subscribers_;
};

}  // namespace spate::faults

#endif  // SPATE_TESTS_FAULTS_WORKLOAD_H_
