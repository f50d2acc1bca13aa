// Checker: Raft's safety properties across the nodes of the simulated group
// (Raft paper §5.4, Figure 3), checked continuously: the hosts report every
// Ready, apply, snapshot install and restart (HostObserver), and the
// Simulator calls CheckStep after every event. The first violation sticks
// in status().
//
//   Election Safety      at most one leader per term.
//   Log Matching         two logs holding an entry with the same index and
//                        term hold the same entry, and the same entries
//                        before it. Checked inductively: every entry that
//                        enters any log must agree, for its (index, term),
//                        with every other copy on its content and on the term
//                        of its predecessor.
//   Committed entries    never change or disappear: each node's committed
//                        prefix (and every entry a node writes at or below
//                        its commit index) equals the first-seen committed
//                        entry at that index; a node's commit index never
//                        goes back while it runs.
//   Commit rule (§5.4.2) a leader's commit index moves, within its term,
//                        only onto an entry of its own term: older entries
//                        commit only together with one of the leader's.
//   Leader Completeness  a leader of term T holds every entry committed in
//                        a term below T (the term in which the checker first
//                        saw it committed, an upper bound of the real one).
//   State Machine Safety every node applies the same entry at each index,
//                        in order, and reaches the same state (AppState
//                        digest) at each index, also through snapshots and
//                        restarts; no command is applied at two indexes.
// Plus raft::CheckInvariants on every running replica.
//
// The Simulator checks liveness itself (every command seen committed is
// applied everywhere once the faults stop), from max_committed() and
// commands_committed().
// Threading: single-threaded.
#ifndef SPATE_TESTS_SIM_CHECKER_H_
#define SPATE_TESTS_SIM_CHECKER_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "proto/raft.pb.h"
#include "raft/replica.h"
#include "raft/types.h"
#include "tests/sim/app_state.h"
#include "tests/sim/node_host.h"

namespace spate::sim {

class Checker : public HostObserver {
 public:
  // Nodes are 1..nodes.
  explicit Checker(int nodes);

  // HostObserver.
  void OnStart(const raft::Replica& replica, const AppState& app) override;
  void OnReady(const raft::Replica& replica, const raft::Ready& ready) override;
  void OnApply(const raft::Replica& replica, const raft::Entry& entry,
               const AppState& after) override;
  void OnInstall(const raft::Replica& replica, const AppState& state) override;
  void OnViolation(const std::string& what) override { Fail(what); }

  // After every simulator step. replicas[i] is node i+1's replica, null
  // while it is crashed. Returns status().
  absl::Status CheckStep(absl::Span<const raft::Replica* const> replicas);

  // OK, or the first violation.
  const absl::Status& status() const { return status_; }

  // The highest index seen committed (the committed prefix is 1..this).
  raft::Index max_committed() const { return committed_.size(); }
  // Client commands (non-empty normal entries) seen applied, by data.
  const absl::flat_hash_map<std::string, raft::Index>& commands() const {
    return commands_;
  }
  // How many distinct terms had a leader.
  size_t leader_terms() const { return leaders_.size(); }

 private:
  struct Committed {
    raft::Entry entry;
    // The lowest term of a replica seen holding it committed.
    raft::Term commit_term;
  };
  // Per (index, term): what every copy of that entry must agree on.
  struct EntryFacts {
    raft::EntryType type;
    std::string data;
    // Term of the entry before it; kUnknownTerm when it was compacted away
    // in the log it was first seen in.
    raft::Term prev_term;
  };
  struct NodeTrack {
    raft::Index applied = 0;
    // Commit index already compared with the committed prefix.
    raft::Index seen_commit = 0;
    // The term this node was last seen leading, and its commit index when
    // first seen leading it.
    raft::Term leader_term = 0;
    raft::Index commit_as_new_leader = 0;
  };
  static constexpr raft::Term kUnknownTerm = ~raft::Term{0};

  void Fail(const std::string& what);
  NodeTrack& track(raft::NodeId id);
  // Entries (contiguous) that entered `replica`'s log.
  void CheckEntries(const raft::Replica& replica,
                    absl::Span<const raft::Entry> entries);
  void RecordCommitted(const raft::Replica& replica, const raft::Entry& e);
  void CheckCommitIndex(const raft::Replica& replica);
  void CheckLeader(const raft::Replica& replica);
  void CheckDigest(const raft::Replica& replica, const AppState& state);

  absl::Status status_;
  std::vector<NodeTrack> tracks_;
  absl::btree_map<raft::Term, raft::NodeId> leaders_;
  absl::flat_hash_map<std::pair<raft::Index, raft::Term>, EntryFacts> entries_;
  // committed_[i - 1] is the entry committed at index i.
  std::vector<Committed> committed_;
  // digests_[i - 1]: the state machine digest after applying index i, 0 when
  // no node has been seen at that exact index.
  std::vector<uint64_t> digests_;
  absl::flat_hash_map<std::string, raft::Index> commands_;
};

}  // namespace spate::sim

#endif  // SPATE_TESTS_SIM_CHECKER_H_
