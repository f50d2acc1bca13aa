#include "tests/sim/sim_network.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "raft/describe.h"

namespace spate::sim {

std::string NetworkFaults::DebugString() const {
  return absl::StrCat(
      "drop=", drop_per_mille, "/1000 dup=", duplicate_per_mille,
      "/1000 latency=", latency_min_ms, "..", latency_max_ms,
      "ms spikes=", spike_per_mille, "/1000 up to ", spike_max_ms, "ms");
}

SimNetwork::SimNetwork(EventQueue* queue, base::Prng* prng, const Trace* trace,
                       Handlers handlers)
    : queue_(queue),
      prng_(prng),
      trace_(trace),
      handlers_(std::move(handlers)) {}

void SimNetwork::Partition(const std::set<raft::NodeId>& a,
                           const std::set<raft::NodeId>& b) {
  for (raft::NodeId x : a) {
    for (raft::NodeId y : b) {
      blocked_.insert({x, y});
      blocked_.insert({y, x});
    }
  }
}

std::string SimNetwork::BlockedLinks() const {
  std::vector<std::string> links;
  for (const auto& [from, to] : blocked_) {
    links.push_back(absl::StrCat(from, "->", to));
  }
  return absl::StrJoin(links, " ");
}

SimTime SimNetwork::Latency() {
  SimTime latency =
      prng_->Range(faults_.latency_min_ms, faults_.latency_max_ms);
  if (faults_.spike_per_mille > 0 &&
      prng_->Chance(faults_.spike_per_mille, 1000)) {
    latency += prng_->Range(0, faults_.spike_max_ms);
  }
  return latency;
}

void SimNetwork::Send(Envelope envelope) {
  ++stats_.sent;
  if (faults_.drop_per_mille > 0 &&
      prng_->Chance(faults_.drop_per_mille, 1000)) {
    ++stats_.dropped;
    if (trace_->enabled()) {
      trace_->Add("net", absl::StrCat("drop ",
                                      raft::DescribeMessage(envelope.message)));
    }
    // The sender's transport learns of the loss no sooner than a delivery.
    queue_->After(Latency(), [this, envelope] {
      handlers_.lost(envelope, Loss::kDropped);
    });
    return;
  }
  int copies = 1;
  if (faults_.duplicate_per_mille > 0 &&
      prng_->Chance(faults_.duplicate_per_mille, 1000)) {
    ++stats_.duplicated;
    copies = 2;
  }
  for (int i = 0; i < copies; ++i) {
    queue_->After(Latency(), [this, envelope] { Arrive(envelope); });
  }
}

void SimNetwork::Arrive(const Envelope& envelope) {
  const raft::Message& m = envelope.message;
  if (IsBlocked(m.from(), m.to())) {
    ++stats_.blocked;
    if (trace_->enabled()) {
      trace_->Add("net", absl::StrCat("blocked ", raft::DescribeMessage(m)));
    }
    handlers_.lost(envelope, Loss::kBlocked);
    return;
  }
  ++stats_.delivered;
  handlers_.deliver(envelope);
}

}  // namespace spate::sim
