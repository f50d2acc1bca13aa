// What end-to-end client tests observe: Deliveries records every message a
// subscription's MessageHandler saw; AckResults records the outcome of each
// PublishAsync by publish index; Eventually polls a condition with a
// deadline. Thread-safe: handlers run on client threads while the test
// thread reads.
#ifndef SPATE_TESTS_CLIENT_RECORDER_H_
#define SPATE_TESTS_CLIENT_RECORDER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/client.h"

namespace spate::testing {

// Polls `condition` every 5 ms until it holds (true) or `timeout` passes.
bool Eventually(const std::function<bool()>& condition,
                absl::Duration timeout = absl::Seconds(30));

class Deliveries {
 public:
  struct Delivery {
    uint64_t sequence = 0;
    std::string data;
    bool redelivered = false;
    // Deliveries recorded before it (its position in the log).
    size_t index = 0;
  };

  // Records each message; acks are left to the subscription (auto acks).
  client::MessageHandler Handler();

  size_t size() const;
  std::vector<Delivery> all() const;
  std::vector<uint64_t> sequences() const;
  // Distinct sequences seen so far.
  std::set<uint64_t> distinct() const;
  uint64_t max_sequence() const;
  // Waits until `sequence` was delivered at least once.
  bool WaitFor(uint64_t sequence, absl::Duration timeout = absl::Seconds(30));
  // Threads the handler ran on.
  std::set<std::thread::id> threads() const;

 private:
  mutable absl::Mutex mu_;
  std::vector<Delivery> deliveries_ ABSL_GUARDED_BY(mu_);
  std::set<std::thread::id> threads_ ABSL_GUARDED_BY(mu_);
};

class AckResults {
 public:
  // The handler of the publish with index `index`.
  client::AckHandler Handler(int index);

  size_t size() const;
  // Publishes acknowledged with a sequence.
  size_t acked() const;
  std::map<int, absl::StatusOr<uint64_t>> all() const;

 private:
  mutable absl::Mutex mu_;
  std::map<int, absl::StatusOr<uint64_t>> results_ ABSL_GUARDED_BY(mu_);
  size_t acked_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace spate::testing

#endif  // SPATE_TESTS_CLIENT_RECORDER_H_
