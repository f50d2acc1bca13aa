// InteractionEnv: a small cluster of Replicas driven command by command from
// data-driven scripts (raft/testdata/*.txt), after etcd's rafttest
// InteractionEnv. Each node is a Replica with a MemoryLog; the env plays
// every host role by hand: it persists Readys synchronously, applies
// committed entries to a trivial state machine (the list of applied data),
// queues messages in one network queue and delivers them on command, with
// partitions, drops, crashes and restarts.
//
// Commands (ids are node ids, 1-based, in creation order):
//   add-nodes <n> [voters=(..)] [learners=(..)] [prevote=<bool>]
//       [checkquorum=<bool>] [election=<ticks>] [heartbeat=<ticks>]
//       [inflight=<msgs>] [append-bytes=<n>] [seed=<n>]
//       n new nodes; without voters/learners they start empty (joining).
//   campaign <id> | tick <id> [n] | tick-election <id> | tick-heartbeat <id>
//   advance-time <n>               every live node ticks n times
//   propose <id> <data> | propose-conf-change <id> <add-voter|remove-voter|
//       add-learner>=<node> | transfer-leadership from=<id> to=<id>
//   read-index <id> <context>
//   process-ready [<id>...]        take, persist, apply, advance
//   deliver-msgs [<id>...] [drop=(<id>...)]  deliver queued messages to ids
//   stabilize [<id>...]            repeat process-ready/deliver-msgs
//   partition (<ids>) (<ids>)...   | heal
//   crash <id> | restart <id>      restart keeps what was persisted
//   compact <id> <index>           snapshot the state machine and compact
//   set-log <id> terms=(<t>...) [term=<t>]  replace a crashed node's log
//       (entry i gets data "t<term>i<i>") and its hard state term
//   report-unreachable from=<id> to=<id> | quiesce <id> | data-loss <id> <i>
//   status <id> | raft-log <id> | raft-state | applied <id>
// After every command the env checks CheckInvariants on every live node,
// at most one leader per term, and that no two nodes ever applied different
// entries at the same index; violations are printed and fail the test.
// Threading: single-threaded test code.
#ifndef SPATE_RAFT_TESTING_INTERACTION_ENV_H_
#define SPATE_RAFT_TESTING_INTERACTION_ENV_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "proto/raft.pb.h"
#include "raft/options.h"
#include "raft/replica.h"
#include "raft/testing/datadriven.h"
#include "raft/testing/memory_log.h"

namespace spate::raft::testing {

class InteractionEnv {
 public:
  // Runs one command; returns its output.
  std::string Handle(const TestCase& tc);

 private:
  struct Node {
    ReplicaOptions options;
    std::unique_ptr<MemoryLog> log;
    std::unique_ptr<Replica> replica;  // null while crashed
    // The state machine: data of applied normal entries, and the index.
    std::vector<std::string> state;
    Index applied = 0;
  };

  // Command groups; each returns false for a command it does not know.
  bool HandleReplicaCommand(const TestCase& tc);
  bool HandleNetworkCommand(const TestCase& tc);
  bool HandleInspectCommand(const TestCase& tc);
  // The i-th bare word of the command as a node id (kNoNode if absent).
  static NodeId IdAt(const TestCase& tc, size_t i);

  // Commands.
  void AddNodes(const TestCase& tc);
  void Tick(NodeId id, int ticks);
  void ProcessReady(NodeId id);
  void DeliverMsgs(NodeId to, const std::vector<NodeId>& drop);
  bool Stabilize(const std::vector<NodeId>& ids);
  void Compact(NodeId id, Index index);
  void Restart(NodeId id);
  void ProposeConfChange(NodeId id, const TestCase& tc);
  void SetLog(NodeId id, const TestCase& tc);

  // Helpers.
  Node& GetNode(NodeId id);
  Replica& Live(NodeId id);
  std::vector<NodeId> Ids(const TestCase& tc);
  std::string StateLine(NodeId id);
  void Apply(Node& node, const Entry& entry);
  bool Connected(NodeId a, NodeId b) const;
  void CheckSafety();
  void Print(const std::string& line) { out_ += line + "\n"; }
  void PrintStatus(const absl::Status& status);

  std::vector<Node> nodes_;
  std::vector<Message> network_;
  // node -> partition component (absent: fully connected).
  std::map<NodeId, int> component_;
  // Safety bookkeeping: term -> leader seen; index -> applied entry.
  std::map<Term, NodeId> leaders_;
  std::map<Index, Entry> applied_;
  std::string out_;
};

}  // namespace spate::raft::testing

#endif  // SPATE_RAFT_TESTING_INTERACTION_ENV_H_
