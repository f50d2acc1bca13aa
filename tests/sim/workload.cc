#include "tests/sim/workload.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "raft/conf_change.h"

namespace spate::sim {

Workload::Workload(std::vector<NodeHost*> hosts, base::Prng* prng,
                   const Trace* trace)
    : hosts_(std::move(hosts)), prng_(prng), trace_(trace) {}

NodeHost* Workload::RandomHost() {
  return hosts_[prng_->Uniform(hosts_.size())];
}

void Workload::Act() {
  const uint64_t dice = prng_->Uniform(100);
  if (dice < 80) {
    ProposeCommands();
    return;
  }
  NodeHost* leader = FindLeader(hosts_);
  if (leader == nullptr) return;
  if (dice < 90) {
    TransferLeadership(leader);
  } else {
    ChangeMembership(leader);
  }
}

void Workload::ProposeCommands() {
  NodeHost* host = RandomHost();
  if (!host->up()) return;
  const raft::Replica* r = host->replica();
  if (r->role() != raft::Role::kLeader && r->leader() != raft::kNoNode) {
    // Redirected by the node's leader hint.
    host = hosts_[r->leader() - 1];
    if (!host->up()) return;
  }
  const uint64_t count = prng_->Range(1, 3);
  for (uint64_t i = 0; i < count; ++i) {
    const std::string command = absl::StrCat("c", next_command_++);
    absl::StatusOr<raft::Index> index = host->Propose(command);
    if (index.ok()) {
      ++stats_.proposed;
    } else {
      ++stats_.refused;
    }
    if (trace_->enabled()) {
      trace_->Add("client",
                  absl::StrCat("propose ", command, " to n", host->id(), ": ",
                               index.ok() ? absl::StrCat("index ", *index)
                                          : index.status().ToString()));
    }
  }
}

void Workload::TransferLeadership(NodeHost* leader) {
  const raft::NodeId to = prng_->Range(1, hosts_.size());
  const absl::Status s = leader->TransferLeadership(to);
  if (s.ok()) ++stats_.transfers;
  if (trace_->enabled()) {
    trace_->Add("client", absl::StrCat("transfer leadership n", leader->id(),
                                       " -> n", to, ": ", s.ToString()));
  }
}

void Workload::ChangeMembership(NodeHost* leader) {
  const raft::ConfState& cs = leader->replica()->tracker().conf_state();
  const raft::NodeId target = prng_->Range(1, hosts_.size());
  // Keep a majority of the nodes voting, so that faults on a minority of
  // them cannot stop the group for good.
  const int voters_min = static_cast<int>(hosts_.size() / 2 + 1);
  raft::ConfChange cc;
  cc.set_node_id(target);
  if (raft::IsVoter(cs, target)) {
    if (cs.voters_size() <= voters_min) return;
    cc.set_type(prng_->Chance(1, 2) ? raft::ConfChange::REMOVE_VOTER
                                    : raft::ConfChange::ADD_LEARNER);
  } else if (raft::IsLearner(cs, target)) {
    cc.set_type(prng_->Chance(3, 4) ? raft::ConfChange::ADD_VOTER
                                    : raft::ConfChange::REMOVE_VOTER);
  } else {
    cc.set_type(prng_->Chance(1, 2) ? raft::ConfChange::ADD_VOTER
                                    : raft::ConfChange::ADD_LEARNER);
  }
  ProposeConfChange(leader, cc);
}

void Workload::ProposeConfChange(NodeHost* leader, const raft::ConfChange& cc) {
  absl::StatusOr<raft::Index> index = leader->ProposeConfChange(cc);
  if (index.ok()) ++stats_.conf_changes;
  if (trace_->enabled()) {
    trace_->Add("client",
                absl::StrCat("conf change ", raft::ConfChangeString(cc),
                             " via n", leader->id(), ": ",
                             index.ok() ? absl::StrCat("index ", *index)
                                        : index.status().ToString()));
  }
}

bool Workload::Repair() {
  NodeHost* leader = FindLeader(hosts_);
  if (leader == nullptr) return false;
  const raft::ConfState& cs = leader->replica()->tracker().conf_state();
  for (NodeHost* h : hosts_) {
    if (raft::IsVoter(cs, h->id())) continue;
    raft::ConfChange cc;
    cc.set_type(raft::ConfChange::ADD_VOTER);
    cc.set_node_id(h->id());
    // Refused while another change is pending; the next Repair retries.
    ProposeConfChange(leader, cc);
    return false;
  }
  return true;
}

}  // namespace spate::sim
