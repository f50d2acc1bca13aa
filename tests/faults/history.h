// History: everything the fault-injection workload observed during one run
// (tests/faults/), as plain values. Publishers record every publish attempt
// and its outcome, subscribers every delivery, and after the faults are
// healed the runner adds what each node serves for every channel. The
// Checker (checker.h) judges a History; nothing in it is interpreted here.
// Threading: plain values; the Workload fills them under its own locks.
#ifndef SPATE_TESTS_FAULTS_HISTORY_H_
#define SPATE_TESTS_FAULTS_HISTORY_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace spate::faults {

enum class PublishOutcome {
  kAcked,    // a PubAck with a sequence: must never be lost
  kFailed,   // a definite refusal: the message must never appear
  kUnknown,  // timeout, broken stream, UNAVAILABLE: may or may not appear
};

struct PublishAttempt {
  std::string channel;
  std::string payload;  // unique over the run
  PublishOutcome outcome = PublishOutcome::kUnknown;
  uint64_t sequence = 0;  // kAcked only
};

struct Delivery {
  uint64_t sequence = 0;
  std::string payload;
  bool redelivered = false;
  // Incremented by the subscriber each time its stream was re-established
  // (reconnect, resubscribe, leader change): order and duplicate rules
  // apply within one epoch; across epochs a durable resumes at its first
  // unacked message, so repeats are allowed there.
  int64_t epoch = 0;
};

// One durable subscriber (from the first sequence) on one channel.
struct SubscriberHistory {
  std::string name;
  std::string channel;
  std::vector<Delivery> deliveries;
  // After the drain every delivered message was acked, the subscription
  // closed, and the durable opened again: what it then delivered. Any
  // sequence here that had been acked before the close means the durable
  // position went backwards past a committed ack.
  std::vector<Delivery> after_reopen;
  std::vector<uint64_t> acked_before_close;
};

struct History {
  std::vector<PublishAttempt> publishes;
  std::vector<SubscriberHistory> subscribers;
  // Final reads after healing: node id -> channel -> sequence -> payload.
  std::map<int, std::map<std::string, std::map<uint64_t, std::string>>> reads;
  // Per node, per channel: the last sequence the node's replica holds
  // (Admin.ClusterStatus) after the cluster settled.
  std::map<int, std::map<std::string, uint64_t>> last_sequences;
};

}  // namespace spate::faults

#endif  // SPATE_TESTS_FAULTS_HISTORY_H_
