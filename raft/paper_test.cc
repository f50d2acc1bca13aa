// One test per rule of the Raft paper (Ongaro & Ousterhout, "In Search of an
// Understandable Consensus Algorithm", 2014) and of Ongaro's thesis for the
// extensions, named after the section that states the rule. Each test drives
// a few Replicas by hand through a tiny in-memory network.
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "raft/describe.h"
#include "raft/invariants.h"
#include "raft/replica.h"
#include "raft/testing/memory_log.h"

namespace spate::raft {
namespace {

using testing::MemoryLog;

Entry E(Index index, Term term, std::string data = "x") {
  Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(std::move(data));
  return e;
}

// A group of replicas with synchronous storage and a message queue.
class Cluster {
 public:
  explicit Cluster(int n, bool pre_vote = false, bool check_quorum = false) {
    ConfState cs;
    for (int i = 1; i <= n; ++i) cs.add_voters(i);
    for (int i = 1; i <= n; ++i) {
      logs_[i] = std::make_unique<MemoryLog>(cs);
      options_[i].id = i;
      options_[i].group = 1;
      options_[i].pre_vote = pre_vote;
      options_[i].check_quorum = check_quorum;
      options_[i].seed = 7;
      Start(i);
    }
  }

  void Start(NodeId id) {
    auto replica = Replica::Create(options_[id], logs_[id].get());
    ASSERT_TRUE(replica.ok()) << replica.status();
    replicas_[id] = std::move(*replica);
  }

  // Replaces `id`'s persisted log and term (for constructing scenarios).
  void SetLog(NodeId id, std::vector<Entry> entries, Term term) {
    auto log = std::make_unique<MemoryLog>(logs_[id]->conf_state());
    ASSERT_TRUE(log->Append(entries).ok());
    HardState hs;
    hs.set_term(term);
    log->SetHardState(hs);
    logs_[id] = std::move(log);
    Start(id);
  }

  Replica& r(NodeId id) { return *replicas_.at(id); }
  MemoryLog& log(NodeId id) { return *logs_.at(id); }
  const std::vector<Entry>& applied(NodeId id) { return applied_[id]; }

  // Persist, queue messages, apply, advance.
  void Process(NodeId id) {
    Replica& replica = r(id);
    while (replica.HasReady()) {
      Ready ready = replica.TakeReady();
      ASSERT_TRUE(log(id).Persist(ready).ok());
      // Figure 2: the vote is on stable storage before the response leaves.
      for (const Message& m : ready.messages) {
        if (m.type() != MSG_VOTE_RESPONSE || m.reject()) continue;
        const HardState& hs = log(id).hard_state();
        EXPECT_TRUE(hs.term() > m.term() ||
                    (hs.term() == m.term() && hs.vote() == m.to()))
            << DescribeMessage(m) << " sent with persisted "
            << DescribeHardState(hs);
      }
      for (Message& m : ready.messages) queue_.push_back(std::move(m));
      for (const Entry& e : ready.committed_entries) {
        if (e.type() == ENTRY_CONF_CHANGE) {
          ConfChange cc;
          ASSERT_TRUE(cc.ParseFromString(e.data()));
          auto cs = replica.ApplyConfChange(cc);
          if (cs.ok()) log(id).SetConfState(*cs);
        }
        applied_[id].push_back(e);
      }
      replica.Advance(ready);
      ASSERT_TRUE(CheckInvariants(replica).ok()) << CheckInvariants(replica);
    }
  }

  // Takes the queued messages (after processing every Ready).
  std::vector<Message> Drain() {
    for (auto& [id, replica] : replicas_) Process(id);
    std::vector<Message> out;
    out.swap(queue_);
    return out;
  }

  // A node that joins with an empty configuration.
  void AddEmpty(NodeId id) {
    logs_[id] = std::make_unique<MemoryLog>();
    options_[id] = options_.begin()->second;
    options_[id].id = id;
    Start(id);
  }

  void Deliver(const Message& m) {
    if (isolated_.count(m.to()) > 0 || isolated_.count(m.from()) > 0) return;
    const absl::Status s = r(m.to()).Step(m);
    // Only messages from nodes removed from the group may be refused.
    EXPECT_TRUE(s.ok() || !r(m.to()).tracker().IsMember(m.from()))
        << DescribeMessage(m) << ": " << s;
    ASSERT_TRUE(CheckInvariants(r(m.to())).ok());
  }

  // Delivers everything until the network is quiet.
  void Stabilize() {
    for (int i = 0; i < 100; ++i) {
      std::vector<Message> msgs = Drain();
      if (msgs.empty()) return;
      for (const Message& m : msgs) Deliver(m);
    }
    ADD_FAILURE() << "did not stabilize";
  }

  void Elect(NodeId id) {
    ASSERT_TRUE(r(id).Campaign().ok());
    Stabilize();
    ASSERT_EQ(r(id).role(), Role::kLeader);
  }

  // `id` lost its store and restarts empty, knowing it (Spate's rebuild
  // after detected damage: ReplicaOptions.rebuilding).
  void Rebuild(NodeId id) {
    logs_[id] = std::make_unique<MemoryLog>(logs_[id]->conf_state());
    applied_[id].clear();
    options_[id].rebuilding = true;
    Start(id);
    options_[id].rebuilding = false;
  }

  // Ticks every replica not isolated once, then delivers until quiet.
  void TickAll(int rounds) {
    for (int i = 0; i < rounds; ++i) {
      for (auto& [id, replica] : replicas_) {
        if (isolated_.count(id) == 0) replica->Tick();
      }
      Stabilize();
    }
  }

  void Isolate(NodeId id) { isolated_.insert(id); }
  void Heal() { isolated_.clear(); }

  // Ticks until `id` starts an election in a new term (pre-vote off).
  void TickUntilCampaign(NodeId id) {
    const Term term = r(id).term();
    for (int i = 0; i < 100 && r(id).term() == term; ++i) r(id).Tick();
  }

 private:
  std::map<NodeId, ReplicaOptions> options_;
  std::map<NodeId, std::unique_ptr<MemoryLog>> logs_;
  std::map<NodeId, std::unique_ptr<Replica>> replicas_;
  std::map<NodeId, std::vector<Entry>> applied_;
  std::vector<Message> queue_;
  std::set<NodeId> isolated_;
};

std::vector<Message> OfType(const std::vector<Message>& msgs, MessageType t) {
  std::vector<Message> out;
  for (const Message& m : msgs) {
    if (m.type() == t) out.push_back(m);
  }
  return out;
}

// --- §5.1 Raft basics ----------------------------------------------------

// "If a server receives a request with a stale term number, it rejects the
// request."
TEST(PaperTest, Section5_1_StaleTermRequestIsRejected) {
  Cluster c(3);
  c.Elect(1);
  c.Elect(2);  // term 2
  Message stale;
  stale.set_type(MSG_APPEND);
  stale.set_group(1);
  stale.set_from(1);
  stale.set_to(3);
  stale.set_term(1);
  stale.set_index(1);
  stale.set_log_term(1);
  *stale.add_entries() = E(2, 1);
  const Index last = c.r(3).log().LastIndex();
  EXPECT_TRUE(c.r(3).Step(stale).ok());
  EXPECT_EQ(c.r(3).log().LastIndex(), last);
  EXPECT_EQ(c.r(3).stats().dropped_of(DropReason::kStaleTerm), 1u);
}

// "Current terms are exchanged whenever servers communicate": a stale
// RequestVote is rejected with the receiver's term (Figure 2, RequestVote
// results), so the candidate catches up. Dropping it silently (as etcd
// does without pre-vote) let a candidate with the only up-to-date log fall
// behind for good: tests/sim seed 1345 (3 nodes) never converged, the
// voter it needed campaigning in ever higher terms of its own.
TEST(PaperTest, Section5_1_StaleVoteRequestIsRejectedWithOurTerm) {
  Cluster c(3);
  c.Isolate(3);
  c.Elect(1);
  c.Elect(2);  // term 2; node 3 missed both elections
  c.Heal();
  c.TickUntilCampaign(3);
  ASSERT_EQ(c.r(3).role(), Role::kCandidate);
  ASSERT_EQ(c.r(3).term(), 1u);
  std::vector<Message> requests = OfType(c.Drain(), MSG_VOTE);
  ASSERT_EQ(requests.size(), 2u);
  for (const Message& m : requests) c.Deliver(m);
  std::vector<Message> replies = OfType(c.Drain(), MSG_VOTE_RESPONSE);
  ASSERT_EQ(replies.size(), 2u);
  for (const Message& m : replies) {
    EXPECT_TRUE(m.reject());
    EXPECT_EQ(m.term(), 2u);
    c.Deliver(m);
  }
  EXPECT_EQ(c.r(3).term(), 2u);
  EXPECT_EQ(c.r(3).role(), Role::kFollower);
}

// "If a candidate or leader discovers that its term is out of date, it
// immediately reverts to follower state."
TEST(PaperTest, Section5_1_LeaderSeeingHigherTermRevertsToFollower) {
  Cluster c(3);
  c.Elect(1);
  Message m;
  m.set_type(MSG_HEARTBEAT_RESPONSE);
  m.set_group(1);
  m.set_from(2);
  m.set_to(1);
  m.set_term(5);
  ASSERT_TRUE(c.r(1).Step(m).ok());
  EXPECT_EQ(c.r(1).role(), Role::kFollower);
  EXPECT_EQ(c.r(1).term(), 5u);
}

// --- §5.2 Leader election --------------------------------------------------

// "If a follower receives no communication over a period of time called the
// election timeout ... it increments its current term and transitions to
// candidate state. It then votes for itself and issues RequestVote RPCs."
TEST(PaperTest, Section5_2_FollowerCampaignsAfterElectionTimeout) {
  Cluster c(3);
  c.TickUntilCampaign(1);
  EXPECT_EQ(c.r(1).role(), Role::kCandidate);
  EXPECT_EQ(c.r(1).term(), 1u);
  EXPECT_EQ(c.r(1).vote(), 1u);
  const std::vector<Message> votes = OfType(c.Drain(), MSG_VOTE);
  ASSERT_EQ(votes.size(), 2u);
  EXPECT_EQ(votes[0].to(), 2u);
  EXPECT_EQ(votes[1].to(), 3u);
  EXPECT_EQ(votes[0].term(), 1u);
}

// "Raft uses randomized election timeouts ... chosen randomly from a fixed
// interval." Here [election_ticks, 2 * election_ticks).
TEST(PaperTest, Section5_2_ElectionTimeoutsAreRandomized) {
  std::set<int> seen;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    MemoryLog log(ConfState{});
    ReplicaOptions options;
    options.id = 1;
    options.seed = seed;
    auto r = *Replica::Create(options, &log);
    const int timeout = r->randomized_election_timeout();
    EXPECT_GE(timeout, options.election_ticks);
    EXPECT_LT(timeout, 2 * options.election_ticks);
    seen.insert(timeout);
  }
  EXPECT_EQ(seen.size(), 10u);  // every value in the range occurs
}

// "A candidate wins an election if it receives votes from a majority of the
// servers ... it then sends heartbeat messages to all of the other servers."
TEST(PaperTest, Section5_2_CandidateWinsWithMajorityAndAsserts) {
  Cluster c(5);
  ASSERT_TRUE(c.r(1).Campaign().ok());
  std::vector<Message> votes = OfType(c.Drain(), MSG_VOTE);
  // Votes from 2 and 3 only: with its own, a majority of 5.
  for (const Message& m : votes) {
    if (m.to() == 2 || m.to() == 3) c.Deliver(m);
  }
  for (const Message& m : OfType(c.Drain(), MSG_VOTE_RESPONSE)) c.Deliver(m);
  EXPECT_EQ(c.r(1).role(), Role::kLeader);
  EXPECT_EQ(OfType(c.Drain(), MSG_APPEND).size(), 4u);
}

// "Each server will vote for at most one candidate in a given term, on a
// first-come-first-served basis."
TEST(PaperTest, Section5_2_AtMostOneVotePerTerm) {
  Cluster c(3);
  ASSERT_TRUE(c.r(1).Campaign().ok());
  ASSERT_TRUE(c.r(2).Campaign().ok());
  for (const Message& m : c.Drain()) {
    if (m.to() == 3 && m.type() == MSG_VOTE) c.Deliver(m);
  }
  std::vector<Message> answers = OfType(c.Drain(), MSG_VOTE_RESPONSE);
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_FALSE(answers[0].reject());  // first come (1)
  EXPECT_EQ(answers[0].to(), 1u);
  EXPECT_TRUE(answers[1].reject());
  EXPECT_EQ(c.r(3).vote(), 1u);
}

// "If the leader's term is at least as large as the candidate's current
// term, then the candidate recognizes the leader as legitimate and returns
// to follower state."
TEST(PaperTest, Section5_2_CandidateStepsDownForLeaderOfSameTerm) {
  Cluster c(3);
  c.Elect(1);
  c.r(2).Tick();
  ASSERT_TRUE(c.r(3).Campaign().ok());  // candidate in term 2
  ASSERT_EQ(c.r(3).role(), Role::kCandidate);
  c.Drain();                            // its vote requests are lost
  ASSERT_TRUE(c.r(2).Campaign().ok());  // term 2 as well
  c.Stabilize();
  // 2 or 3 leads term 2 (1 votes for whoever asked first); the other follows.
  const NodeId leader = c.r(2).role() == Role::kLeader ? 2 : 3;
  const NodeId other = leader == 2 ? 3 : 2;
  EXPECT_EQ(c.r(leader).term(), 2u);
  EXPECT_EQ(c.r(other).role(), Role::kFollower);
  EXPECT_EQ(c.r(other).leader(), leader);
}

// "If many followers become candidates at the same time, votes could be
// split ... each candidate will time out and start a new election by
// incrementing its term."
TEST(PaperTest, Section5_2_SplitVoteLeadsToANewTerm) {
  Cluster c(4);
  ASSERT_TRUE(c.r(1).Campaign().ok());
  ASSERT_TRUE(c.r(2).Campaign().ok());
  for (const Message& m : c.Drain()) {
    if ((m.from() == 1 && m.to() == 3) || (m.from() == 2 && m.to() == 4)) {
      c.Deliver(m);
    }
  }
  for (const Message& m : c.Drain()) c.Deliver(m);
  EXPECT_EQ(c.r(1).role(), Role::kCandidate);
  EXPECT_EQ(c.r(2).role(), Role::kCandidate);
  c.Drain();
  c.TickUntilCampaign(1);
  EXPECT_EQ(c.r(1).term(), 2u);
  c.Stabilize();
  EXPECT_EQ(c.r(1).role(), Role::kLeader);
}

// --- §5.3 Log replication ---------------------------------------------------

// "The leader appends the command to its log as a new entry, then issues
// AppendEntries RPCs in parallel to each of the other servers."
TEST(PaperTest, Section5_3_LeaderAppendsAndReplicates) {
  Cluster c(3);
  c.Elect(1);
  const absl::StatusOr<Index> index = c.r(1).Propose("cmd");
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(*index, 2u);
  std::vector<Message> apps = OfType(c.Drain(), MSG_APPEND);
  ASSERT_EQ(apps.size(), 2u);
  for (const Message& m : apps) {
    ASSERT_EQ(m.entries_size(), 1);
    EXPECT_EQ(m.entries(0).data(), "cmd");
    EXPECT_EQ(m.index(), 1u);  // preceding entry (the no-op)
    EXPECT_EQ(m.log_term(), 1u);
  }
  EXPECT_EQ(c.log(1).LastIndex(), 2u);  // persisted before sending
}

// "A log entry is committed once the leader that created the entry has
// replicated it on a majority of the servers ... the leader includes the
// highest index it knows to be committed in future AppendEntries RPCs ...
// Once a follower learns that a log entry is committed, it applies it."
TEST(PaperTest, Section5_3_CommittedOnMajorityThenAppliedEverywhere) {
  Cluster c(5);
  c.Elect(1);
  ASSERT_TRUE(c.r(1).Propose("cmd").ok());
  for (const Message& m : c.Drain()) {
    if (m.to() == 2 || m.to() == 3) c.Deliver(m);
  }
  for (const Message& m : c.Drain()) {
    if (m.type() == MSG_APPEND_RESPONSE) c.Deliver(m);
  }
  EXPECT_EQ(c.r(1).log().committed(), 2u);  // 1, 2, 3 of 5
  c.Stabilize();
  for (NodeId id = 1; id <= 5; ++id) {
    ASSERT_FALSE(c.applied(id).empty());
    EXPECT_EQ(c.applied(id).back().data(), "cmd") << id;
  }
}

// "When sending an AppendEntries RPC, the leader includes the index and term
// of the entry in its log that immediately precedes the new entries. If the
// follower does not find an entry in its log with the same index and term,
// then it refuses the new entries."
TEST(PaperTest, Section5_3_ConsistencyCheckRefusesMismatchedPrev) {
  Cluster c(3);
  c.SetLog(2, {E(1, 1), E(2, 1)}, 2);
  Message m;
  m.set_type(MSG_APPEND);
  m.set_group(1);
  m.set_from(1);
  m.set_to(2);
  m.set_term(3);
  m.set_index(2);
  m.set_log_term(2);  // 2 has term 1 at index 2
  *m.add_entries() = E(3, 3);
  ASSERT_TRUE(c.r(2).Step(m).ok());
  EXPECT_EQ(c.r(2).log().LastIndex(), 2u);
  std::vector<Message> out = c.Drain();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].reject());
  EXPECT_EQ(out[0].index(), 2u);
}

// "If an existing entry conflicts with a new one (same index but different
// terms), delete the existing entry and all that follow it."
TEST(PaperTest, Section5_3_FollowerDeletesConflictingSuffix) {
  Cluster c(3);
  c.SetLog(2, {E(1, 1), E(2, 1), E(3, 1)}, 2);
  Message m;
  m.set_type(MSG_APPEND);
  m.set_group(1);
  m.set_from(1);
  m.set_to(2);
  m.set_term(2);
  m.set_index(1);
  m.set_log_term(1);
  *m.add_entries() = E(2, 2, "new");
  ASSERT_TRUE(c.r(2).Step(m).ok());
  c.Drain();
  const std::vector<Entry> log = c.log(2).AllEntries();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1].term(), 2u);
  EXPECT_EQ(log[1].data(), "new");
}

// "After a rejection, the leader decrements nextIndex and retries the
// AppendEntries RPC. Eventually nextIndex will reach a point where the
// leader and follower logs match."
TEST(PaperTest, Section5_3_LeaderBacksOffUntilLogsMatch) {
  Cluster c(3);
  c.SetLog(1, {E(1, 1), E(2, 1), E(3, 2), E(4, 2)}, 2);
  c.SetLog(2, {E(1, 1), E(2, 1), E(3, 2), E(4, 2)}, 2);
  c.SetLog(3, {E(1, 1), E(2, 1), E(3, 1), E(4, 1), E(5, 1)}, 1);
  c.Elect(1);
  EXPECT_EQ(c.r(3).log().LastIndex(), 5u);  // 1..4 + the term-3 no-op
  const std::vector<Entry> a = c.log(1).AllEntries();
  const std::vector<Entry> b = c.log(3).AllEntries();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].term(), b[i].term());
}

// "If followers crash or run slowly, or if network packets are lost, the
// leader retries AppendEntries RPCs indefinitely."
TEST(PaperTest, Section5_3_LostAppendsAreRetried) {
  Cluster c(3);
  c.Elect(1);
  ASSERT_TRUE(c.r(1).Propose("cmd").ok());
  for (const Message& m : c.Drain()) {
    if (m.to() == 2) c.Deliver(m);  // 3 loses it
  }
  c.Stabilize();
  c.r(1).ReportUnreachable(3);
  for (int i = 0; i < 3; ++i) {
    c.r(1).Tick();  // heartbeats; 3's answer triggers a resend
    c.Stabilize();
  }
  EXPECT_EQ(c.r(3).log().LastIndex(), 2u);
  EXPECT_EQ(c.applied(3).back().data(), "cmd");
}

// --- §5.4 Safety -------------------------------------------------------------

// §5.4.1: "the voter denies its vote if its own log is more up-to-date than
// that of the candidate ... If the logs have last entries with different
// terms, then the log with the later term is more up-to-date. If the logs
// end with the same term, then whichever log is longer is more up-to-date."
TEST(PaperTest, Section5_4_1_VoteDeniedToLessUpToDateCandidate) {
  struct Case {
    Index index;
    Term log_term;
    bool granted;
  };
  // The voter's log ends at index 3, term 2.
  const Case cases[] = {
      {3, 1, false}, {9, 1, false},  // lower last term loses
      {2, 2, false},                 // same term, shorter
      {3, 2, true},  {4, 2, true},   // same term, at least as long
      {1, 3, true},                  // later last term wins
  };
  for (const Case& k : cases) {
    Cluster c(3);
    c.SetLog(2, {E(1, 1), E(2, 2), E(3, 2)}, 2);
    Message vote;
    vote.set_type(MSG_VOTE);
    vote.set_group(1);
    vote.set_from(1);
    vote.set_to(2);
    vote.set_term(5);
    vote.set_index(k.index);
    vote.set_log_term(k.log_term);
    ASSERT_TRUE(c.r(2).Step(vote).ok());
    std::vector<Message> out = c.Drain();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(!out[0].reject(), k.granted) << k.index << "/" << k.log_term;
  }
}

// §5.4.2: "Raft never commits log entries from previous terms by counting
// replicas. Only log entries from the leader's current term are committed by
// counting replicas."
TEST(PaperTest, Section5_4_2_PriorTermEntryNotCommittedByCounting) {
  Cluster c(3);
  // All three hold entry 2 of term 1 (uncommitted); 1 becomes leader of
  // term 3, and 2 acknowledges index 2 before the no-op.
  c.SetLog(1, {E(1, 1), E(2, 1)}, 2);
  c.SetLog(2, {E(1, 1), E(2, 1)}, 2);
  c.SetLog(3, {E(1, 1)}, 2);
  ASSERT_TRUE(c.r(1).Campaign().ok());
  for (int i = 0; i < 2; ++i) {
    for (const Message& m : c.Drain()) {
      if (m.to() != 3 && m.from() != 3) c.Deliver(m);
    }
  }
  ASSERT_EQ(c.r(1).role(), Role::kLeader);
  ASSERT_EQ(c.r(1).term(), 3u);
  // The no-op (index 3) was sent; pretend 2 only acknowledged index 2.
  Message ack;
  ack.set_type(MSG_APPEND_RESPONSE);
  ack.set_group(1);
  ack.set_from(2);
  ack.set_to(1);
  ack.set_term(3);
  ack.set_index(2);
  ASSERT_TRUE(c.r(1).Step(ack).ok());
  // Index 2 is on a majority (1, 2) but has term 1: not committed.
  EXPECT_EQ(c.r(1).log().committed(), 0u);
}

// §5.4.2: "once an entry from the current term has been committed in this
// way, then all prior entries are committed indirectly because of the Log
// Matching Property."
TEST(PaperTest, Section5_4_2_PriorTermEntryCommitsWithCurrentTermEntry) {
  Cluster c(3);
  c.SetLog(1, {E(1, 1), E(2, 1)}, 2);
  c.SetLog(2, {E(1, 1), E(2, 1)}, 2);
  c.SetLog(3, {E(1, 1)}, 2);
  c.Elect(1);
  EXPECT_EQ(c.r(1).log().committed(), 3u);
  ASSERT_EQ(c.applied(3).size(), 3u);
  EXPECT_EQ(c.applied(3)[1].term(), 1u);  // the prior-term entry
}

// §5.4.3 Leader Completeness: a committed entry is in the log of every later
// leader; a node missing it cannot win.
TEST(PaperTest, Section5_4_3_NodeMissingCommittedEntriesCannotLead) {
  Cluster c(3);
  c.Elect(1);
  c.Isolate(3);
  ASSERT_TRUE(c.r(1).Propose("committed").ok());
  c.Stabilize();
  ASSERT_EQ(c.r(1).log().committed(), 2u);
  c.Heal();
  c.Isolate(1);
  ASSERT_TRUE(c.r(3).Campaign().ok());
  c.Stabilize();
  EXPECT_NE(c.r(3).role(), Role::kLeader);
  ASSERT_TRUE(c.r(2).Campaign().ok());
  c.Stabilize();
  EXPECT_EQ(c.r(2).role(), Role::kLeader);
}

// --- §5.5 Follower and candidate crashes, §5.2 persistence -------------------

// Figure 2: currentTerm and votedFor are persistent state, "updated on
// stable storage before responding to RPCs".
TEST(PaperTest, Section5_5_VoteSurvivesRestart) {
  Cluster c(3);
  ASSERT_TRUE(c.r(1).Campaign().ok());
  for (const Message& m : c.Drain()) {
    if (m.to() == 2) c.Deliver(m);
  }
  std::vector<Message> out = c.Drain();
  ASSERT_EQ(out.size(), 1u);
  ASSERT_FALSE(out[0].reject());
  EXPECT_EQ(c.log(2).hard_state().vote(), 1u);  // on disk before sending
  c.Start(2);                                   // crash and restart
  EXPECT_EQ(c.r(2).vote(), 1u);
  EXPECT_EQ(c.r(2).term(), 1u);
}

// --- Rebuilding a lost store (Spate: raft/options.h, `rebuilding`) ----------

bool Holds(const std::vector<Entry>& applied, const std::string& data) {
  for (const Entry& e : applied) {
    if (e.data() == data) return true;
  }
  return false;
}

// Soak seed 3064: two of three nodes lost their stores; the two empty voters
// must not elect each other (a leader without the committed entries). Once
// the node holding the data is back it leads, and the others catch up and
// vote again.
TEST(PaperTest, Rebuild_TwoRebuiltVotersWaitForTheNodeWithTheData) {
  Cluster c(3, /*pre_vote=*/true, /*check_quorum=*/true);
  c.Elect(1);
  ASSERT_TRUE(c.r(1).Propose("acked-1").ok());
  ASSERT_TRUE(c.r(1).Propose("acked-2").ok());
  c.Stabilize();
  ASSERT_TRUE(Holds(c.applied(3), "acked-2"));
  c.Isolate(3);
  c.Rebuild(1);
  c.Rebuild(2);
  EXPECT_TRUE(c.r(1).rebuilding());
  c.TickAll(100);  // five election timeouts and more
  for (NodeId id : {1, 2}) {
    EXPECT_NE(c.r(id).role(), Role::kLeader) << id;
    EXPECT_EQ(c.r(id).stats().campaigns + c.r(id).stats().pre_campaigns, 0u);
    EXPECT_EQ(c.r(id).vote(), kNoNode);
    EXPECT_GT(c.r(id).stats().votes_rebuilding, 0u) << id;
    EXPECT_TRUE(c.r(id).rebuilding());
  }
  c.Heal();
  c.TickAll(60);
  ASSERT_EQ(c.r(3).role(), Role::kLeader);
  EXPECT_GE(c.r(3).stats().elections_won_rebuilding, 1u);
  ASSERT_TRUE(c.r(3).Propose("after").ok());
  c.Stabilize();
  for (NodeId id : {1, 2, 3}) {
    EXPECT_FALSE(c.r(id).rebuilding()) << id;
    EXPECT_TRUE(Holds(c.applied(id), "acked-1")) << id;
    EXPECT_TRUE(Holds(c.applied(id), "acked-2")) << id;
    EXPECT_TRUE(Holds(c.applied(id), "after")) << id;
  }
  // Caught up, the rebuilt nodes vote like any other again: without node 3
  // the other two elect a leader.
  c.Isolate(3);
  c.TickAll(60);
  EXPECT_TRUE(c.r(1).role() == Role::kLeader || c.r(2).role() == Role::kLeader);
}

// One rebuilt voter must not help a lagging candidate past the voter that
// holds the committed entry (it would vote for any log, being empty).
TEST(PaperTest, Rebuild_RebuiltVoterDoesNotElectALaggingCandidate) {
  Cluster c(3, /*pre_vote=*/true, /*check_quorum=*/true);
  c.Elect(1);
  c.Isolate(3);
  ASSERT_TRUE(c.r(1).Propose("acked").ok());
  c.Stabilize();
  ASSERT_TRUE(Holds(c.applied(2), "acked"));
  c.Heal();
  c.Rebuild(1);
  c.Isolate(2);  // the only other copy is away
  c.TickAll(100);
  EXPECT_NE(c.r(3).role(), Role::kLeader);
  EXPECT_NE(c.r(1).role(), Role::kLeader);
  c.Heal();
  c.TickAll(60);
  ASSERT_EQ(c.r(2).role(), Role::kLeader);
  c.Stabilize();
  for (NodeId id : {1, 2, 3}) {
    EXPECT_TRUE(Holds(c.applied(id), "acked")) << id;
  }
  EXPECT_FALSE(c.r(1).rebuilding());
}

// A rebuilt voter whose leader went quiet (quiesced) still gets caught up:
// instead of campaigning it asks for pre-votes, which wakes the leader.
TEST(PaperTest, Rebuild_RebuiltVoterWakesAQuiescedLeader) {
  Cluster c(3, /*pre_vote=*/true, /*check_quorum=*/true);
  c.Elect(1);
  ASSERT_TRUE(c.r(1).Propose("acked").ok());
  c.Stabilize();
  ASSERT_TRUE(c.r(1).Quiescent());
  c.r(1).Quiesce();
  c.Stabilize();
  ASSERT_TRUE(c.r(2).quiesced());
  c.Rebuild(3);
  // Only the rebuilt replica is ticked: the others are quiesced.
  for (int i = 0; i < 40 && c.r(3).rebuilding(); ++i) {
    c.r(3).Tick();
    c.Stabilize();
    if (!c.r(1).quiesced()) c.r(1).Tick();
  }
  EXPECT_FALSE(c.r(3).rebuilding());
  EXPECT_TRUE(Holds(c.applied(3), "acked"));
  EXPECT_EQ(c.r(1).role(), Role::kLeader);
}

// --- §6 Cluster membership changes (thesis §4) -------------------------------

// Thesis §4.1: changes are applied one server at a time, and only one may be
// pending.
TEST(PaperTest, Section6_OneMembershipChangeAtATime) {
  Cluster c(3);
  c.Elect(1);
  ConfChange remove;
  remove.set_type(ConfChange::REMOVE_VOTER);
  remove.set_node_id(3);
  ASSERT_TRUE(c.r(1).ProposeConfChange(remove).ok());
  ConfChange other = remove;
  other.set_node_id(2);
  EXPECT_EQ(c.r(1).ProposeConfChange(other).status().code(),
            absl::StatusCode::kFailedPrecondition);
  c.Stabilize();
  EXPECT_EQ(c.r(1).tracker().voters().size(), 2u);
  EXPECT_TRUE(c.r(1).ProposeConfChange(other).ok());
}

// Thesis §4.1 (and the 2015 raft-dev correction): a new leader may not
// propose a change before it committed an entry of its own term.
TEST(PaperTest, Section6_NoChangeBeforeLeaderCommitsInItsTerm) {
  Cluster c(3);
  ASSERT_TRUE(c.r(1).Campaign().ok());
  for (int i = 0; i < 2; ++i) {
    for (const Message& m : c.Drain()) c.Deliver(m);
  }
  ASSERT_EQ(c.r(1).role(), Role::kLeader);
  ConfChange add;
  add.set_type(ConfChange::ADD_LEARNER);
  add.set_node_id(4);
  EXPECT_EQ(c.r(1).ProposeConfChange(add).status().code(),
            absl::StatusCode::kFailedPrecondition);
  c.Stabilize();
  EXPECT_TRUE(c.r(1).ProposeConfChange(add).ok());
}

// Thesis §4.2.1: learners replicate but do not count towards commitment.
TEST(PaperTest, Section6_LearnersDoNotCountForCommit) {
  Cluster c(2);
  c.AddEmpty(3);
  c.Elect(1);
  ConfChange add;
  add.set_type(ConfChange::ADD_LEARNER);
  add.set_node_id(3);
  ASSERT_TRUE(c.r(1).ProposeConfChange(add).ok());
  c.Stabilize();
  c.Isolate(2);
  ASSERT_TRUE(c.r(1).Propose("x").ok());
  c.Stabilize();
  EXPECT_EQ(c.r(3).tracker().conf_state().learners_size(), 1);
  EXPECT_EQ(c.r(3).log().LastIndex(), c.r(1).log().LastIndex());
  // 1 and the learner hold the entry; without 2 it does not commit.
  EXPECT_LT(c.r(1).log().committed(), c.r(1).log().LastIndex());
  EXPECT_EQ(c.r(3).Campaign().code(), absl::StatusCode::kFailedPrecondition);
}

// --- §7 Log compaction
// ---------------------------------------------------------

// "The leader uses a new RPC called InstallSnapshot to send snapshots to
// followers that are too far behind ... the follower discards its entire log;
// it is all superseded by the snapshot."
TEST(PaperTest, Section7_LaggingFollowerGetsSnapshotAndDiscardsLog) {
  Cluster c(3);
  c.Elect(1);
  c.Isolate(3);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.r(1).Propose("e").ok());
  c.Stabilize();
  ConfState cs = c.log(1).conf_state();
  ASSERT_TRUE(c.log(1).Compact(c.r(1).log().applied(), "state", cs).ok());
  c.Heal();
  c.r(1).Tick();  // heartbeat: 3 answers and is known active again
  c.Stabilize();
  EXPECT_EQ(c.r(1).stats().snapshots_sent, 1u);
  EXPECT_EQ(c.r(3).stats().snapshots_restored, 1u);
  EXPECT_EQ(c.log(3).FirstIndex(), 7u);
  EXPECT_EQ(c.log(3).GetSnapshot()->data(), "state");
  EXPECT_EQ(c.r(3).log().committed(), c.r(1).log().committed());
}

// --- §8 Client interaction (thesis §6.4)
// --------------------------------------

// "a leader must check whether it has been deposed before processing a
// read-only request": ReadIndex confirms leadership with a heartbeat round
// and writes nothing to the log.
TEST(PaperTest, Section8_ReadIndexConfirmsLeadershipWithoutLogWrite) {
  Cluster c(3);
  c.Elect(1);
  const Index last = c.r(1).log().LastIndex();
  ASSERT_TRUE(c.r(1).ReadIndex("r").ok());
  c.Isolate(2);
  c.Isolate(3);
  c.Stabilize();
  ASSERT_FALSE(c.r(1).HasReady());  // no quorum: no answer
  c.Heal();
  ASSERT_TRUE(c.r(1).ReadIndex("r2").ok());
  std::vector<ReadState> states;
  for (int i = 0; i < 10 && states.empty(); ++i) {
    for (const Message& m : c.Drain()) c.Deliver(m);
    if (c.r(1).HasReady()) {
      Ready rd = c.r(1).TakeReady();
      states = rd.read_states;
      ASSERT_TRUE(c.log(1).Persist(rd).ok());
      c.r(1).Advance(rd);
    }
  }
  ASSERT_EQ(states.size(), 2u);  // both confirmed by the second round
  EXPECT_EQ(states[1].context, "r2");
  EXPECT_EQ(states[1].index, c.r(1).log().committed());
  EXPECT_EQ(c.r(1).log().LastIndex(), last);
}

// --- Thesis extensions
// ---------------------------------------------------------

// Thesis §3.10: leadership transfer via TimeoutNow.
TEST(PaperTest, Thesis3_10_LeadershipTransfer) {
  Cluster c(3, /*pre_vote=*/true, /*check_quorum=*/true);
  c.Elect(1);
  ASSERT_TRUE(c.r(1).TransferLeadership(2).ok());
  c.Stabilize();
  EXPECT_EQ(c.r(2).role(), Role::kLeader);
  EXPECT_EQ(c.r(1).role(), Role::kFollower);
  EXPECT_EQ(c.r(1).leader(), 2u);
}

// Thesis §6.2 CheckQuorum: a leader that loses its quorum steps down.
TEST(PaperTest, Thesis6_2_CheckQuorumStepsDown) {
  Cluster c(3, /*pre_vote=*/true, /*check_quorum=*/true);
  c.Elect(1);
  c.Isolate(1);
  for (int i = 0; i < 2 * c.r(1).options().election_ticks; ++i) {
    c.r(1).Tick();
  }
  EXPECT_EQ(c.r(1).role(), Role::kFollower);
  EXPECT_EQ(c.r(1).stats().check_quorum_step_downs, 1u);
}

// Thesis §9.6 Pre-Vote: a partitioned node does not increase its term.
TEST(PaperTest, Thesis9_6_PreVoteKeepsPartitionedNodeTerm) {
  Cluster c(3, /*pre_vote=*/true, /*check_quorum=*/true);
  c.Elect(1);
  c.Isolate(3);
  for (int i = 0; i < 100; ++i) {
    c.r(3).Tick();
    c.Stabilize();
  }
  EXPECT_EQ(c.r(3).term(), 1u);
  EXPECT_GT(c.r(3).stats().pre_campaigns, 0u);
  EXPECT_EQ(c.r(3).stats().campaigns, 0u);
  c.Heal();
  c.r(1).Tick();
  c.Stabilize();
  EXPECT_EQ(c.r(1).role(), Role::kLeader);
  EXPECT_EQ(c.r(1).term(), 1u);
}

}  // namespace
}  // namespace spate::raft
