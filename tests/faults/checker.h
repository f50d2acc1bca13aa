// Checker: judges one fault-injection run's History (history.h) against
// Spate's delivery contract (DESIGN.md §4–5): at-least-once delivery of
// every acknowledged publish, in sequence order, with no gaps and one
// agreed log per channel. Counts, over the whole run:
//
//   lost        acked publishes missing from a node's final read of the
//               channel or never delivered to one of its durable
//               subscribers (each publish counted once)
//   unexpected  payloads read or delivered that no publisher attempted, or
//               whose publish definitely failed
//   duplicated  deliveries of a sequence the subscriber already had;
//               allowed when flagged redelivered or in a later epoch
//               (after a reconnect/failover); dup_unflagged counts the
//               others, which are violations
//   reordered   first deliveries (not redelivered) whose sequence is not
//               above the previous first delivery's in the same epoch
//   holes       sequences missing below a node's last read sequence, or
//               below the last sequence a replica reports holding
//   divergent   one (channel, sequence) seen with two payloads: acks,
//               deliveries and every node's read are compared
//   backwards   after the drain: sequences redelivered by a reopened
//               durable although acked before it was closed
//   lagging     replicas whose last sequence stayed below the channel's
//               (reported, not a safety violation)
//   stored_twice payloads stored at two sequences (the guid dedup window
//               should prevent it; reported)
// A run is valid when lost, unexpected, dup_unflagged, reordered, holes,
// divergent and backwards are all zero.
// Threading: stateless functions over values.
#ifndef SPATE_TESTS_FAULTS_CHECKER_H_
#define SPATE_TESTS_FAULTS_CHECKER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "tests/faults/history.h"

namespace spate::faults {

struct CheckResult {
  int64_t attempted = 0;
  int64_t acked = 0;
  int64_t failed = 0;
  int64_t unknown = 0;
  int64_t unknown_stored = 0;  // unknown outcome, found stored
  int64_t delivered = 0;
  int64_t redelivered = 0;
  int64_t lost = 0;
  int64_t unexpected = 0;
  int64_t duplicated = 0;
  int64_t dup_unflagged = 0;
  int64_t reordered = 0;
  int64_t holes = 0;
  int64_t divergent = 0;
  int64_t backwards = 0;
  int64_t lagging = 0;
  int64_t stored_twice = 0;
  // The first violations in words (at most kDetailsMax).
  std::vector<std::string> details;

  static constexpr size_t kDetailsMax = 20;

  bool valid() const {
    return lost == 0 && unexpected == 0 && dup_unflagged == 0 &&
           reordered == 0 && holes == 0 && divergent == 0 && backwards == 0;
  }
  // One line with every count.
  std::string Summary() const;
};

CheckResult Check(const History& history);

}  // namespace spate::faults

#endif  // SPATE_TESTS_FAULTS_CHECKER_H_
