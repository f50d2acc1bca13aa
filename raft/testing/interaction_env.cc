#include "raft/testing/interaction_env.h"

#include <algorithm>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "raft/conf_change.h"
#include "raft/describe.h"
#include "raft/invariants.h"

namespace spate::raft::testing {
namespace {

uint64_t ToU64(const std::string& text) {
  uint64_t value = 0;
  EXPECT_TRUE(absl::SimpleAtoi(text, &value)) << "not a number: " << text;
  return value;
}

bool ToBool(const std::string& text) { return text == "true"; }

std::string Indent(const std::string& text) {
  std::string out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    absl::StrAppend(&out, "  ", line, "\n");
  }
  return out;
}

}  // namespace

std::string InteractionEnv::Handle(const TestCase& tc) {
  out_.clear();
  if (!HandleReplicaCommand(tc) && !HandleNetworkCommand(tc) &&
      !HandleInspectCommand(tc)) {
    ADD_FAILURE() << tc.position << ": unknown command " << tc.command;
  }
  CheckSafety();
  return out_;
}

NodeId InteractionEnv::IdAt(const TestCase& tc, size_t i) {
  const std::vector<std::string> words = tc.Positional();
  return i < words.size() ? ToU64(words[i]) : kNoNode;
}

bool InteractionEnv::HandleReplicaCommand(const TestCase& tc) {
  const std::string& cmd = tc.command;
  const NodeId id = IdAt(tc, 0);
  if (cmd == "campaign") {
    PrintStatus(Live(id).Campaign());
  } else if (cmd == "tick") {
    Tick(id, tc.Positional().size() > 1 ? static_cast<int>(IdAt(tc, 1)) : 1);
  } else if (cmd == "tick-election") {
    Replica& r = Live(id);
    const int timeout = r.role() == Role::kLeader
                            ? r.options().election_ticks
                            : r.randomized_election_timeout();
    Tick(id, std::max(1, timeout - r.election_elapsed()));
  } else if (cmd == "tick-heartbeat") {
    Tick(id, Live(id).options().heartbeat_ticks);
  } else if (cmd == "propose") {
    absl::StatusOr<Index> index = Live(id).Propose(tc.Positional().at(1));
    if (index.ok()) {
      Print(absl::StrCat("index ", *index));
    } else {
      PrintStatus(index.status());
    }
  } else if (cmd == "propose-conf-change") {
    ProposeConfChange(id, tc);
  } else if (cmd == "transfer-leadership") {
    PrintStatus(Live(ToU64(tc.Get("from", "0")))
                    .TransferLeadership(ToU64(tc.Get("to", "0"))));
  } else if (cmd == "read-index") {
    PrintStatus(Live(id).ReadIndex(tc.Positional().at(1)));
  } else if (cmd == "report-unreachable") {
    Live(ToU64(tc.Get("from", "0")))
        .ReportUnreachable(ToU64(tc.Get("to", "0")));
  } else if (cmd == "quiesce") {
    Replica& r = Live(id);
    const bool quiescent = r.Quiescent();
    if (quiescent) r.Quiesce();
    Print(quiescent ? "quiesced" : "not quiescent");
  } else {
    return false;
  }
  return true;
}

bool InteractionEnv::HandleNetworkCommand(const TestCase& tc) {
  const std::string& cmd = tc.command;
  if (cmd == "add-nodes") {
    AddNodes(tc);
  } else if (cmd == "advance-time") {
    // Every live node ticks, round by round, with no delivery in between.
    for (int i = 0; i < static_cast<int>(IdAt(tc, 0)); ++i) {
      for (NodeId id = 1; id <= nodes_.size(); ++id) {
        if (GetNode(id).replica != nullptr) Tick(id, 1);
      }
    }
  } else if (cmd == "process-ready") {
    for (NodeId id : Ids(tc)) ProcessReady(id);
  } else if (cmd == "deliver-msgs") {
    std::vector<NodeId> drop;
    for (const CmdArg& arg : tc.args) {
      if (arg.key != "drop") continue;
      for (const std::string& v : arg.values) drop.push_back(ToU64(v));
    }
    std::vector<NodeId> to = Ids(tc);
    if (tc.Positional().empty() && !drop.empty()) to = drop;
    for (NodeId id : to) DeliverMsgs(id, drop);
  } else if (cmd == "stabilize") {
    if (!Stabilize(Ids(tc))) Print("stabilize did not converge");
  } else if (cmd == "partition") {
    component_.clear();
    int component = 0;
    for (const CmdArg& arg : tc.args) {
      for (const std::string& v : arg.values) component_[ToU64(v)] = component;
      ++component;
    }
  } else if (cmd == "heal") {
    component_.clear();
  } else if (cmd == "crash") {
    GetNode(IdAt(tc, 0)).replica.reset();
  } else if (cmd == "restart") {
    Restart(IdAt(tc, 0));
  } else if (cmd == "wipe") {
    // Lost storage: the node restarts with only its bootstrap membership,
    // an empty log and an empty state machine.
    Node& node = GetNode(IdAt(tc, 0));
    node.replica.reset();
    node.log = std::make_unique<MemoryLog>(node.log->conf_state());
    node.state.clear();
    node.applied = 0;
    Restart(IdAt(tc, 0));
  } else if (cmd == "compact") {
    Compact(IdAt(tc, 0), IdAt(tc, 1));
  } else if (cmd == "set-log") {
    SetLog(IdAt(tc, 0), tc);
  } else if (cmd == "data-loss") {
    GetNode(IdAt(tc, 0)).log->InjectDataLoss(IdAt(tc, 1));
  } else {
    return false;
  }
  return true;
}

bool InteractionEnv::HandleInspectCommand(const TestCase& tc) {
  const std::string& cmd = tc.command;
  if (cmd == "status") {
    Print(Live(IdAt(tc, 0)).Status().DebugString());
  } else if (cmd == "raft-state") {
    for (NodeId id = 1; id <= nodes_.size(); ++id) Print(StateLine(id));
  } else if (cmd == "raft-log") {
    const MemoryLog& log = *GetNode(IdAt(tc, 0)).log;
    if (log.FirstIndex() > 1) {
      Print(absl::StrCat("snapshot ", log.FirstIndex() - 1, "/",
                         *log.TermAt(log.FirstIndex() - 1)));
    }
    for (const Entry& e : log.AllEntries()) Print(DescribeEntry(e));
    Print(DescribeHardState(log.hard_state()));
  } else if (cmd == "applied") {
    const Node& node = GetNode(IdAt(tc, 0));
    Print(absl::StrCat("applied=", node.applied, " state=[",
                       absl::StrJoin(node.state, ","), "]"));
  } else {
    return false;
  }
  return true;
}

void InteractionEnv::AddNodes(const TestCase& tc) {
  const int count = static_cast<int>(ToU64(tc.Positional().at(0)));
  ConfState cs;
  for (const CmdArg& arg : tc.args) {
    for (const std::string& v : arg.values) {
      if (arg.key == "voters") cs.add_voters(ToU64(v));
      if (arg.key == "learners") cs.add_learners(ToU64(v));
    }
  }
  for (int i = 0; i < count; ++i) {
    Node node;
    node.options.id = nodes_.size() + 1;
    node.options.group = 1;
    node.options.pre_vote = ToBool(tc.Get("prevote", "true"));
    node.options.check_quorum = ToBool(tc.Get("checkquorum", "true"));
    node.options.election_ticks =
        static_cast<int>(ToU64(tc.Get("election", "10")));
    node.options.heartbeat_ticks =
        static_cast<int>(ToU64(tc.Get("heartbeat", "1")));
    node.options.inflight_msgs_max = ToU64(tc.Get("inflight", "256"));
    node.options.append_bytes_max = ToU64(tc.Get("append-bytes", "1048576"));
    node.options.seed = ToU64(tc.Get("seed", "0"));
    node.log = std::make_unique<MemoryLog>(cs);
    absl::StatusOr<std::unique_ptr<Replica>> replica =
        Replica::Create(node.options, node.log.get());
    ASSERT_TRUE(replica.ok()) << replica.status();
    node.replica = std::move(*replica);
    nodes_.push_back(std::move(node));
    Print(StateLine(nodes_.size()));
  }
}

void InteractionEnv::Tick(NodeId id, int ticks) {
  Replica& r = Live(id);
  for (int i = 0; i < ticks; ++i) {
    r.Tick();
    const absl::Status invariants = CheckInvariants(r);
    EXPECT_TRUE(invariants.ok()) << invariants;
  }
}

void InteractionEnv::ProcessReady(NodeId id) {
  Node& node = GetNode(id);
  if (node.replica == nullptr || !node.replica->HasReady()) return;
  Ready ready = node.replica->TakeReady();
  Print(absl::StrCat("> ", id, " handling Ready"));
  out_ += Indent(DescribeReady(ready));
  // Host order: persist, send, apply, advance.
  const absl::Status persisted = node.log->Persist(ready);
  EXPECT_TRUE(persisted.ok()) << persisted;
  for (Message& m : ready.messages) network_.push_back(m);
  if (ready.snapshot.has_value()) {
    node.state.clear();
    const std::string& data = ready.snapshot->data();
    if (!data.empty()) node.state = absl::StrSplit(data, ',');
    node.applied = ready.snapshot->metadata().index();
  }
  for (const Entry& e : ready.committed_entries) Apply(node, e);
  node.replica->Advance(ready);
}

void InteractionEnv::Apply(Node& node, const Entry& entry) {
  // State machine safety: every node applies the same entry at an index.
  auto [it, inserted] = applied_.emplace(entry.index(), entry);
  if (!inserted && (it->second.term() != entry.term() ||
                    it->second.data() != entry.data())) {
    Print(absl::StrCat("VIOLATION: node ", node.options.id, " applied ",
                       DescribeEntry(entry), " but another applied ",
                       DescribeEntry(it->second)));
    ADD_FAILURE() << out_;
  }
  node.applied = entry.index();
  if (entry.type() == ENTRY_CONF_CHANGE) {
    ConfChange cc;
    EXPECT_TRUE(cc.ParseFromString(entry.data()));
    absl::StatusOr<ConfState> cs = node.replica->ApplyConfChange(cc);
    if (cs.ok()) {
      node.log->SetConfState(*cs);
      Print(absl::StrCat("  ", node.options.id, " applied ",
                         ConfChangeString(cc), ": ", ConfStateString(*cs)));
    } else {
      Print(absl::StrCat("  ", node.options.id, " refused ",
                         ConfChangeString(cc), ": ", cs.status().ToString()));
    }
  } else if (!entry.data().empty()) {
    node.state.push_back(entry.data());
  }
}

void InteractionEnv::DeliverMsgs(NodeId to, const std::vector<NodeId>& drop) {
  std::vector<Message> batch;
  auto keep =
      std::stable_partition(network_.begin(), network_.end(),
                            [to](const Message& m) { return m.to() != to; });
  batch.assign(std::make_move_iterator(keep),
               std::make_move_iterator(network_.end()));
  network_.erase(keep, network_.end());
  if (batch.empty()) return;
  Print(absl::StrCat("> ", to, " receiving messages"));
  const bool dropped_all =
      std::find(drop.begin(), drop.end(), to) != drop.end();
  for (const Message& m : batch) {
    const std::string line = "  " + DescribeMessage(m);
    if (dropped_all) {
      Print(line + " DROPPED");
    } else if (GetNode(to).replica == nullptr) {
      Print(line + " DROPPED (crashed)");
    } else if (!Connected(m.from(), to)) {
      Print(line + " DROPPED (partition)");
    } else {
      Print(line);
      const ReplicaStats before = GetNode(to).replica->stats();
      const absl::Status s = GetNode(to).replica->Step(m);
      if (!s.ok()) Print("  ERROR " + s.ToString());
      const ReplicaStats& after = GetNode(to).replica->stats();
      for (size_t r = 0; r < before.dropped.size(); ++r) {
        if (after.dropped[r] != before.dropped[r]) {
          Print(absl::StrCat("    ignored: ",
                             DropReasonName(static_cast<DropReason>(r))));
        }
      }
      const absl::Status invariants = CheckInvariants(*GetNode(to).replica);
      EXPECT_TRUE(invariants.ok()) << invariants;
    }
  }
}

bool InteractionEnv::Stabilize(const std::vector<NodeId>& ids) {
  for (int round = 0; round < 1000; ++round) {
    bool busy = false;
    for (NodeId id : ids) {
      Node& node = GetNode(id);
      if (node.replica != nullptr && node.replica->HasReady()) {
        ProcessReady(id);
        busy = true;
      }
    }
    for (NodeId id : ids) {
      const bool queued =
          std::any_of(network_.begin(), network_.end(),
                      [id](const Message& m) { return m.to() == id; });
      if (queued) {
        DeliverMsgs(id, {});
        busy = true;
      }
    }
    if (!busy) return true;
  }
  return false;
}

void InteractionEnv::Compact(NodeId id, Index index) {
  Node& node = GetNode(id);
  if (index != node.applied) {
    Print(absl::StrCat("can only compact at the applied index ", node.applied));
    return;
  }
  PrintStatus(node.log->Compact(index, absl::StrJoin(node.state, ","),
                                node.log->conf_state()));
}

void InteractionEnv::Restart(NodeId id) {
  Node& node = GetNode(id);
  ReplicaOptions options = node.options;
  // The state machine survives with its applied index (persisted together).
  options.applied = node.applied;
  absl::StatusOr<std::unique_ptr<Replica>> replica =
      Replica::Create(options, node.log.get());
  if (!replica.ok()) {
    PrintStatus(replica.status());
    return;
  }
  node.replica = std::move(*replica);
  Print(StateLine(id));
}

void InteractionEnv::SetLog(NodeId id, const TestCase& tc) {
  Node& node = GetNode(id);
  if (node.replica != nullptr) {
    Print("set-log needs a crashed node");
    return;
  }
  auto log = std::make_unique<MemoryLog>(node.log->conf_state());
  std::vector<Entry> entries;
  for (const CmdArg& arg : tc.args) {
    if (arg.key != "terms") continue;
    for (const std::string& v : arg.values) {
      Entry e;
      e.set_index(entries.size() + 1);
      e.set_term(ToU64(v));
      e.set_data(absl::StrCat("t", v, "i", e.index()));
      entries.push_back(e);
    }
  }
  EXPECT_TRUE(log->Append(entries).ok());
  HardState hs;
  hs.set_term(ToU64(tc.Get(
      "term", entries.empty() ? "0" : std::to_string(entries.back().term()))));
  log->SetHardState(hs);
  node.log = std::move(log);
  node.state.clear();
  node.applied = 0;
}

void InteractionEnv::ProposeConfChange(NodeId id, const TestCase& tc) {
  ConfChange cc;
  bool found = false;
  for (const CmdArg& arg : tc.args) {
    if (arg.values.size() != 1) continue;
    ConfChange::Type type;
    if (arg.key == "add-voter") {
      type = ConfChange::ADD_VOTER;
    } else if (arg.key == "remove-voter") {
      type = ConfChange::REMOVE_VOTER;
    } else if (arg.key == "add-learner") {
      type = ConfChange::ADD_LEARNER;
    } else {
      continue;
    }
    cc.set_type(type);
    cc.set_node_id(ToU64(arg.values[0]));
    found = true;
  }
  EXPECT_TRUE(found) << tc.position << ": no change given";
  absl::StatusOr<Index> index = Live(id).ProposeConfChange(cc);
  if (index.ok()) {
    Print(absl::StrCat("index ", *index));
  } else {
    PrintStatus(index.status());
  }
}

InteractionEnv::Node& InteractionEnv::GetNode(NodeId id) {
  EXPECT_TRUE(id >= 1 && id <= nodes_.size()) << "no node " << id;
  return nodes_.at(id - 1);
}

Replica& InteractionEnv::Live(NodeId id) {
  Node& node = GetNode(id);
  EXPECT_NE(node.replica, nullptr) << "node " << id << " is crashed";
  return *node.replica;
}

std::vector<NodeId> InteractionEnv::Ids(const TestCase& tc) {
  std::vector<NodeId> ids;
  for (const std::string& word : tc.Positional()) ids.push_back(ToU64(word));
  if (ids.empty()) {
    for (NodeId id = 1; id <= nodes_.size(); ++id) ids.push_back(id);
  }
  return ids;
}

std::string InteractionEnv::StateLine(NodeId id) {
  const Node& node = GetNode(id);
  if (node.replica == nullptr) return absl::StrCat(id, ": crashed");
  const Replica& r = *node.replica;
  std::string line = absl::StrCat(
      id, ": ", RoleName(r.role()), " term=", r.term(), " lead=", r.leader(),
      " commit=", r.log().committed(), " applied=", r.log().applied(),
      " last=", r.log().LastIndex(), " ",
      ConfStateString(r.tracker().conf_state()));
  if (r.quiesced()) absl::StrAppend(&line, " quiesced");
  if (r.halted()) absl::StrAppend(&line, " halted");
  return line;
}

bool InteractionEnv::Connected(NodeId a, NodeId b) const {
  if (component_.empty()) return true;
  auto ia = component_.find(a);
  auto ib = component_.find(b);
  // Nodes not named in the partition are isolated from everyone.
  return ia != component_.end() && ib != component_.end() &&
         ia->second == ib->second;
}

void InteractionEnv::PrintStatus(const absl::Status& status) {
  if (status.ok()) {
    Print("ok");
  } else {
    Print("error: " + status.ToString());
  }
}

void InteractionEnv::CheckSafety() {
  for (Node& node : nodes_) {
    if (node.replica == nullptr) continue;
    const Replica& r = *node.replica;
    const absl::Status invariants = CheckInvariants(r);
    if (!invariants.ok()) {
      Print("VIOLATION: " + invariants.ToString());
      ADD_FAILURE() << invariants;
    }
    if (r.role() != Role::kLeader) continue;
    // Election Safety (Raft §5.2): at most one leader per term.
    auto [it, inserted] = leaders_.emplace(r.term(), r.id());
    if (!inserted && it->second != r.id()) {
      Print(absl::StrCat("VIOLATION: two leaders in term ", r.term(), ": ",
                         it->second, " and ", r.id()));
      ADD_FAILURE() << out_;
    }
  }
}

}  // namespace spate::raft::testing
