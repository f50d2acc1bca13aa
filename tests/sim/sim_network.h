// SimNetwork: the simulated network between the nodes of one group. Each
// message sent is, according to the current NetworkFaults and the seeded
// Prng, dropped, or delivered once or twice, each copy after its own random
// latency (so messages overtake each other: reordering). Partitions block
// directed links: a symmetric partition blocks both directions between two
// sides, an asymmetric one only some directions (A hears B, B does not
// hear A). Blocking is decided at delivery time, so a partition also loses
// the messages already in flight on the link.
//
// The network only decides fates; the Simulator's handlers carry them out
// (deliver to the recipient's host; tell the sender's host that a snapshot
// or a message to an unreachable node was lost, as a real transport would).
// Threading: single-threaded.
#ifndef SPATE_TESTS_SIM_SIM_NETWORK_H_
#define SPATE_TESTS_SIM_SIM_NETWORK_H_

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <utility>

#include "base/prng.h"
#include "proto/raft.pb.h"
#include "raft/types.h"
#include "tests/sim/event_queue.h"
#include "tests/sim/trace.h"

namespace spate::sim {

// A message in flight, with the incarnation of the host that sent it (so a
// report about it never reaches a restarted sender that did not send it).
struct Envelope {
  raft::Message message;
  uint64_t sender_incarnation = 0;
};

// How badly the network behaves. Probabilities are per mille per message.
struct NetworkFaults {
  uint64_t drop_per_mille = 0;
  uint64_t duplicate_per_mille = 0;
  // Latency of every copy, uniform in [latency_min_ms, latency_max_ms].
  SimTime latency_min_ms = 1;
  SimTime latency_max_ms = 5;
  // Occasional long delays (a stalled connection): reorders a message
  // behind many later ones.
  uint64_t spike_per_mille = 0;
  SimTime spike_max_ms = 0;

  std::string DebugString() const;
};

struct NetworkStats {
  uint64_t sent = 0;
  uint64_t delivered = 0;
  uint64_t dropped = 0;     // random loss
  uint64_t blocked = 0;     // lost to a partition
  uint64_t duplicated = 0;  // extra copies made
};

class SimNetwork {
 public:
  // Why a message did not arrive.
  enum class Loss { kDropped, kBlocked };
  struct Handlers {
    std::function<void(const Envelope&)> deliver;
    std::function<void(const Envelope&, Loss)> lost;
  };

  SimNetwork(EventQueue* queue, base::Prng* prng, const Trace* trace,
             Handlers handlers);

  void Send(Envelope envelope);

  void set_faults(const NetworkFaults& faults) { faults_ = faults; }
  const NetworkFaults& faults() const { return faults_; }

  // Blocks messages from `from` to `to` (one direction).
  void Block(raft::NodeId from, raft::NodeId to) {
    blocked_.insert({from, to});
  }
  // Blocks both directions between every node of `a` and every node of `b`.
  void Partition(const std::set<raft::NodeId>& a,
                 const std::set<raft::NodeId>& b);
  // Removes every partition.
  void Heal() { blocked_.clear(); }
  bool IsBlocked(raft::NodeId from, raft::NodeId to) const {
    return blocked_.count({from, to}) > 0;
  }
  // "1->2 1->3 3->1" (empty when healed).
  std::string BlockedLinks() const;

  const NetworkStats& stats() const { return stats_; }

 private:
  SimTime Latency();
  void Arrive(const Envelope& envelope);

  EventQueue* queue_;
  base::Prng* prng_;
  const Trace* trace_;
  Handlers handlers_;
  NetworkFaults faults_;
  std::set<std::pair<raft::NodeId, raft::NodeId>> blocked_;
  NetworkStats stats_;
};

}  // namespace spate::sim

#endif  // SPATE_TESTS_SIM_SIM_NETWORK_H_
