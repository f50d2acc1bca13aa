#include "tests/client/recorder.h"

#include <algorithm>

#include "absl/time/clock.h"

namespace spate::testing {

bool Eventually(const std::function<bool()>& condition,
                absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

client::MessageHandler Deliveries::Handler() {
  return [this](const client::Message& message) {
    absl::MutexLock lock(&mu_);
    deliveries_.push_back(Delivery{message.sequence(), message.data(),
                                   message.redelivered(), deliveries_.size()});
    threads_.insert(std::this_thread::get_id());
  };
}

size_t Deliveries::size() const {
  absl::MutexLock lock(&mu_);
  return deliveries_.size();
}

std::vector<Deliveries::Delivery> Deliveries::all() const {
  absl::MutexLock lock(&mu_);
  return deliveries_;
}

std::vector<uint64_t> Deliveries::sequences() const {
  absl::MutexLock lock(&mu_);
  std::vector<uint64_t> sequences;
  for (const Delivery& delivery : deliveries_) {
    sequences.push_back(delivery.sequence);
  }
  return sequences;
}

std::set<uint64_t> Deliveries::distinct() const {
  absl::MutexLock lock(&mu_);
  std::set<uint64_t> sequences;
  for (const Delivery& delivery : deliveries_) {
    sequences.insert(delivery.sequence);
  }
  return sequences;
}

uint64_t Deliveries::max_sequence() const {
  absl::MutexLock lock(&mu_);
  uint64_t max = 0;
  for (const Delivery& delivery : deliveries_) {
    max = std::max(max, delivery.sequence);
  }
  return max;
}

bool Deliveries::WaitFor(uint64_t sequence, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto seen = [this, sequence]() {
    return std::any_of(
        deliveries_.begin(), deliveries_.end(),
        [sequence](const Delivery& d) { return d.sequence == sequence; });
  };
  return mu_.AwaitWithTimeout(absl::Condition(&seen), timeout);
}

std::set<std::thread::id> Deliveries::threads() const {
  absl::MutexLock lock(&mu_);
  return threads_;
}

client::AckHandler AckResults::Handler(int index) {
  return [this, index](const std::string&,
                       const absl::StatusOr<uint64_t>& result) {
    absl::MutexLock lock(&mu_);
    results_.emplace(index, result);
    if (result.ok()) ++acked_;
  };
}

size_t AckResults::size() const {
  absl::MutexLock lock(&mu_);
  return results_.size();
}

size_t AckResults::acked() const {
  absl::MutexLock lock(&mu_);
  return acked_;
}

std::map<int, absl::StatusOr<uint64_t>> AckResults::all() const {
  absl::MutexLock lock(&mu_);
  return results_;
}

}  // namespace spate::testing
