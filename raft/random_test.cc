// A small randomized test of the core (the full deterministic simulator with
// workloads lives in tests/sim): 3 or 5 replicas under random ticks,
// message loss, duplication and reordering, partitions, crashes and
// restarts, compactions (so followers catch up by snapshot), proposals,
// leadership transfers and membership changes (removal, demotion to
// learner, re-addition), for 300 seeds of 10,000 steps. After every step:
// CheckInvariants on every replica, at most one leader per term, and no two
// replicas ever applied different entries at one index. At the end the
// faults stop and the group must elect one leader and converge. A failure
// names its seed and prints every replica's status.
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/prng.h"
#include "gtest/gtest.h"
#include "raft/describe.h"
#include "raft/invariants.h"
#include "raft/replica.h"
#include "raft/testing/memory_log.h"

namespace spate::raft {
namespace {

using testing::MemoryLog;

class RandomCluster {
 public:
  RandomCluster(uint64_t seed, int n) : prng_(seed), n_(n) {
    ConfState cs;
    for (int i = 1; i <= n; ++i) cs.add_voters(i);
    const bool pre_vote = prng_.Chance(1, 2);
    const bool check_quorum = prng_.Chance(1, 2);
    for (NodeId id = 1; id <= static_cast<NodeId>(n); ++id) {
      Node& node = nodes_[id];
      node.log = std::make_unique<MemoryLog>(cs);
      node.options.id = id;
      node.options.group = 1;
      node.options.seed = seed;
      node.options.pre_vote = pre_vote;
      node.options.check_quorum = check_quorum;
      node.options.inflight_msgs_max = 4;
      node.options.append_bytes_max = 64;
      Start(id);
    }
  }

  // One random step (faults only when `faults`); failures are gtest ones.
  void Step(bool faults) {
    const uint64_t dice = prng_.Uniform(1000);
    const NodeId id = 1 + prng_.Uniform(n_);
    Node& node = nodes_[id];
    if (dice < 100) {
      if (node.replica) node.replica->Tick();
    } else if (dice < 600) {
      DeliverOne(faults);
    } else if (dice < 850) {
      Process(id);
    } else if (dice < 950) {
      if (node.replica && node.replica->role() == Role::kLeader) {
        node.replica->Propose(absl::StrCat("v", ++proposals_)).IgnoreError();
      }
    } else if (!faults) {
      return;
    } else if (dice < 955) {
      if (node.replica) {
        node.replica.reset();  // crash: the unprocessed Ready is lost
      } else {
        Start(id);
      }
    } else if (dice < 960) {
      partition_.clear();
      for (NodeId i = 1; i <= static_cast<NodeId>(n_); ++i) {
        partition_[i] = static_cast<int>(prng_.Uniform(2));
      }
    } else if (dice < 970) {
      partition_.clear();
    } else if (dice < 985) {
      if (node.applied > node.log->FirstIndex()) {
        EXPECT_TRUE(node.log
                        ->Compact(node.applied, absl::StrJoin(node.state, ","),
                                  node.log->conf_state())
                        .ok());
      }
    } else if (dice < 990 && node.replica &&
               node.replica->role() == Role::kLeader) {
      node.replica->TransferLeadership(1 + prng_.Uniform(n_)).IgnoreError();
    } else if (dice < 995 && node.replica &&
               node.replica->role() == Role::kLeader) {
      ChangeMembership(*node.replica);
    }
    Check();
  }

  // Heals everything and runs until all replicas applied the same entries.
  bool Converge() {
    partition_.clear();
    for (auto& [id, node] : nodes_) {
      if (!node.replica) Start(id);
    }
    for (int round = 0; round < 20000; ++round) {
      for (auto& [id, node] : nodes_) {
        node.replica->Tick();
        Process(id);
      }
      while (!network_.empty()) DeliverOne(false);
      for (auto& [id, node] : nodes_) Process(id);
      Check();
      if (round % 50 == 49 && Converged()) return true;
    }
    return false;
  }

  std::string Summary() const {
    std::string out;
    for (const auto& [id, node] : nodes_) {
      absl::StrAppend(&out, id, ": ",
                      node.replica ? node.replica->Status().DebugString()
                                   : std::string("crashed"),
                      "\n");
    }
    return out;
  }

 private:
  struct Node {
    ReplicaOptions options;
    std::unique_ptr<MemoryLog> log;
    std::unique_ptr<Replica> replica;
    std::vector<std::string> state;
    Index applied = 0;
  };

  void Start(NodeId id) {
    Node& node = nodes_[id];
    ReplicaOptions options = node.options;
    options.applied = node.applied;
    auto replica = Replica::Create(options, node.log.get());
    ASSERT_TRUE(replica.ok()) << replica.status();
    node.replica = std::move(*replica);
  }

  // Removes a random voter (keeping at least three), or adds back a node
  // that is not a voter, as a learner or a voter.
  void ChangeMembership(Replica& leader) {
    const NodeId target = 1 + prng_.Uniform(n_);
    const ConfState& cs = leader.tracker().conf_state();
    ConfChange cc;
    cc.set_node_id(target);
    if (leader.tracker().IsVoter(target)) {
      if (cs.voters_size() <= 3 || target == leader.id()) return;
      cc.set_type(prng_.Chance(1, 2) ? ConfChange::REMOVE_VOTER
                                     : ConfChange::ADD_LEARNER);
    } else {
      cc.set_type(leader.tracker().IsMember(target) || prng_.Chance(1, 2)
                      ? ConfChange::ADD_VOTER
                      : ConfChange::ADD_LEARNER);
    }
    leader.ProposeConfChange(cc).IgnoreError();  // may be refused: pending
  }

  void Process(NodeId id) {
    Node& node = nodes_[id];
    if (!node.replica || !node.replica->HasReady()) return;
    Ready ready = node.replica->TakeReady();
    ASSERT_TRUE(node.log->Persist(ready).ok());
    for (Message& m : ready.messages) network_.push_back(std::move(m));
    if (ready.snapshot.has_value()) {
      node.state.clear();
      if (!ready.snapshot->data().empty()) {
        node.state = absl::StrSplit(ready.snapshot->data(), ',');
      }
      node.applied = ready.snapshot->metadata().index();
    }
    for (const Entry& e : ready.committed_entries) {
      auto [it, inserted] = applied_.emplace(e.index(), e);
      ASSERT_TRUE(inserted || (it->second.term() == e.term() &&
                               it->second.data() == e.data()))
          << "node " << id << " applied " << DescribeEntry(e)
          << " where another applied " << DescribeEntry(it->second);
      node.applied = e.index();
      if (e.type() == ENTRY_CONF_CHANGE) {
        ConfChange cc;
        ASSERT_TRUE(cc.ParseFromString(e.data()));
        absl::StatusOr<ConfState> cs = node.replica->ApplyConfChange(cc);
        if (cs.ok()) node.log->SetConfState(*cs);
      } else if (!e.data().empty()) {
        node.state.push_back(e.data());
      }
    }
    node.replica->Advance(ready);
  }

  void DeliverOne(bool faults) {
    if (network_.empty()) return;
    // Reordering: any queued message may go next.
    const size_t i = faults ? prng_.Uniform(network_.size()) : 0;
    Message m = network_[i];
    if (faults && prng_.Chance(1, 50)) {
      // Duplicate: leave a copy behind.
    } else {
      network_.erase(network_.begin() + i);
    }
    Node& to = nodes_[m.to()];
    const bool lost =
        (faults && prng_.Chance(1, 20)) ||
        (!partition_.empty() && partition_[m.from()] != partition_[m.to()]) ||
        !to.replica;
    if (m.type() == MSG_SNAPSHOT) {
      // The host's contract: report every snapshot's fate to its sender.
      Node& from = nodes_[m.from()];
      if (from.replica) from.replica->ReportSnapshot(m.to(), !lost);
    }
    if (lost) return;
    const absl::Status s = to.replica->Step(m);
    // Only messages from nodes removed from the group may be refused.
    EXPECT_TRUE(s.ok() || !to.replica->tracker().IsMember(m.from()))
        << DescribeMessage(m) << ": " << s;
  }

  void Check() {
    for (auto& [id, node] : nodes_) {
      if (!node.replica) continue;
      const absl::Status s = CheckInvariants(*node.replica);
      ASSERT_TRUE(s.ok()) << s;
      if (node.replica->role() != Role::kLeader) continue;
      auto [it, inserted] = leaders_.emplace(node.replica->term(), id);
      ASSERT_TRUE(inserted || it->second == id)
          << "two leaders in term " << node.replica->term();
    }
  }

  // One leader, and every member of its group applied its whole log.
  bool Converged() const {
    const Replica* leader = nullptr;
    for (const auto& [id, node] : nodes_) {
      if (node.replica->role() != Role::kLeader) continue;
      if (leader != nullptr) return false;
      leader = node.replica.get();
    }
    if (leader == nullptr) return false;
    const Index last = leader->log().LastIndex();
    for (const auto& [id, pr] : leader->tracker().progress()) {
      const Node& node = nodes_.at(id);
      if (node.applied != last || node.replica->log().LastIndex() != last) {
        return false;
      }
    }
    return true;
  }

  base::Prng prng_;
  int n_;
  std::map<NodeId, Node> nodes_;
  std::vector<Message> network_;
  std::map<NodeId, int> partition_;
  std::map<Term, NodeId> leaders_;
  std::map<Index, Entry> applied_;
  uint64_t proposals_ = 0;
};

TEST(RandomTest, SafeUnderFaultsAndConvergesAfter) {
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    RandomCluster cluster(seed, seed % 2 == 0 ? 3 : 5);
    for (int step = 0; step < 10000 && !::testing::Test::HasFailure(); ++step) {
      cluster.Step(/*faults=*/true);
    }
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << cluster.Summary();
      return;
    }
    ASSERT_TRUE(cluster.Converge()) << cluster.Summary();
  }
}

}  // namespace
}  // namespace spate::raft
