// Unit tests of Replica: single-voter groups end to end, the Ready/Advance
// contract, input validation, storage errors, proposals limits and
// quiescence. Multi-replica behaviour is covered by paper_test.cc and the
// data-driven interaction tests.
#include "raft/replica.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "raft/conf_change.h"
#include "raft/describe.h"
#include "raft/invariants.h"
#include "raft/testing/memory_log.h"

namespace spate::raft {
namespace {

using testing::MemoryLog;

ConfState Voters(std::vector<NodeId> ids) {
  ConfState cs;
  for (NodeId id : ids) cs.add_voters(id);
  return cs;
}

ReplicaOptions Options(NodeId id) {
  ReplicaOptions options;
  options.id = id;
  options.group = 7;
  options.seed = 42;
  return options;
}

// One replica with its storage; Process() plays the host's Ready loop.
struct Host {
  explicit Host(NodeId id, ConfState cs, Index applied = 0) : log(cs) {
    ReplicaOptions options = Options(id);
    options.applied = applied;
    replica = *Replica::Create(options, &log);
  }
  Host(const ReplicaOptions& options, ConfState cs) : log(cs) {
    replica = *Replica::Create(options, &log);
  }

  // Persists, applies and advances one Ready; returns it.
  Ready Process() {
    EXPECT_TRUE(replica->HasReady());
    Ready ready = replica->TakeReady();
    EXPECT_TRUE(log.Persist(ready).ok());
    for (const Entry& e : ready.committed_entries) {
      if (e.type() == ENTRY_CONF_CHANGE) {
        ConfChange cc;
        EXPECT_TRUE(cc.ParseFromString(e.data()));
        absl::StatusOr<ConfState> cs = replica->ApplyConfChange(cc);
        if (cs.ok()) log.SetConfState(*cs);
      }
      applied.push_back(e);
    }
    replica->Advance(ready);
    EXPECT_TRUE(CheckInvariants(*replica).ok()) << CheckInvariants(*replica);
    return ready;
  }

  void ProcessAll() {
    while (replica->HasReady()) Process();
  }

  MemoryLog log;
  std::unique_ptr<Replica> replica;
  std::vector<Entry> applied;
};

TEST(ReplicaTest, CreateRejectsBadOptions) {
  MemoryLog log(Voters({1}));
  ReplicaOptions options = Options(1);
  options.id = kNoNode;
  EXPECT_EQ(Replica::Create(options, &log).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Replica::Create(Options(1), nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ReplicaTest, CreateRejectsCommitBeyondLog) {
  MemoryLog log(Voters({1}));
  HardState hs;
  hs.set_term(1);
  hs.set_commit(5);
  log.SetHardState(hs);
  EXPECT_EQ(Replica::Create(Options(1), &log).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(ReplicaTest, SingleVoterElectsItselfAfterElectionTimeout) {
  Host host(1, Voters({1}));
  EXPECT_EQ(host.replica->role(), Role::kFollower);
  for (int i = 0; i < 2 * host.replica->options().election_ticks; ++i) {
    host.replica->Tick();
    ASSERT_TRUE(CheckInvariants(*host.replica).ok());
  }
  EXPECT_EQ(host.replica->role(), Role::kLeader);
  EXPECT_EQ(host.replica->term(), 1u);
  EXPECT_EQ(host.replica->leader(), 1u);
}

TEST(ReplicaTest, SingleVoterCommitsProposalsAfterPersisting) {
  Host host(1, Voters({1}));
  ASSERT_TRUE(host.replica->Campaign().ok());
  EXPECT_EQ(host.replica->role(), Role::kLeader);
  EXPECT_EQ(host.replica->term_start_index(), 1u);

  // First Ready: the new term's vote and no-op to persist; nothing to apply
  // yet (the leader counts itself only once its write is durable).
  Ready first = host.Process();
  ASSERT_TRUE(first.hard_state.has_value());
  EXPECT_EQ(first.hard_state->term(), 1u);
  EXPECT_EQ(first.hard_state->vote(), 1u);
  EXPECT_TRUE(first.must_sync);
  ASSERT_EQ(first.entries.size(), 1u);
  EXPECT_TRUE(first.entries[0].data().empty());  // the no-op
  EXPECT_TRUE(first.committed_entries.empty());
  ASSERT_TRUE(first.soft_state.has_value());
  EXPECT_EQ(first.soft_state->role, Role::kLeader);

  // Second Ready: the no-op commits.
  Ready second = host.Process();
  ASSERT_EQ(second.committed_entries.size(), 1u);
  EXPECT_EQ(second.hard_state->commit(), 1u);
  EXPECT_FALSE(second.must_sync);  // commit alone need not be synced

  absl::StatusOr<Index> index = host.replica->Propose("hello");
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(*index, 2u);
  Ready third = host.Process();
  ASSERT_EQ(third.entries.size(), 1u);
  EXPECT_EQ(third.entries[0].data(), "hello");
  EXPECT_TRUE(third.committed_entries.empty());
  Ready fourth = host.Process();
  ASSERT_EQ(fourth.committed_entries.size(), 1u);
  EXPECT_EQ(fourth.committed_entries[0].index(), 2u);
  EXPECT_EQ(fourth.committed_entries[0].term(), 1u);
  EXPECT_EQ(fourth.committed_entries[0].data(), "hello");
  EXPECT_FALSE(host.replica->HasReady());
  EXPECT_EQ(host.replica->log().applied(), 2u);
  EXPECT_TRUE(host.replica->Quiescent());
}

TEST(ReplicaTest, SingleVoterBatchesManyProposals) {
  Host host(1, Voters({1}));
  ASSERT_TRUE(host.replica->Campaign().ok());
  host.ProcessAll();
  for (int i = 0; i < 64; ++i) {
    ASSERT_TRUE(host.replica->Propose("x" + std::to_string(i)).ok());
  }
  Ready ready = host.Process();
  EXPECT_EQ(ready.entries.size(), 64u);
  ready = host.Process();
  EXPECT_EQ(ready.committed_entries.size(), 64u);
  EXPECT_EQ(host.applied.back().data(), "x63");
}

TEST(ReplicaTest, SingleVoterRestartKeepsLogAndReelects) {
  Host host(1, Voters({1}));
  ASSERT_TRUE(host.replica->Campaign().ok());
  host.ProcessAll();
  ASSERT_TRUE(host.replica->Propose("a").ok());
  ASSERT_TRUE(host.replica->Propose("b").ok());
  host.ProcessAll();
  ASSERT_EQ(host.applied.size(), 3u);

  // Restart from the same storage with the host's applied index.
  ReplicaOptions options = Options(1);
  options.applied = 3;
  auto restarted = Replica::Create(options, &host.log);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  host.replica = std::move(*restarted);
  EXPECT_EQ(host.replica->term(), 1u);
  EXPECT_EQ(host.replica->log().LastIndex(), 3u);
  EXPECT_EQ(host.replica->log().committed(), 3u);
  EXPECT_FALSE(host.replica->HasReady());  // nothing to re-apply
  ASSERT_TRUE(host.replica->Campaign().ok());
  EXPECT_EQ(host.replica->term(), 2u);
  EXPECT_EQ(host.replica->term_start_index(), 4u);  // term 2's no-op
  host.ProcessAll();
  ASSERT_TRUE(host.replica->Propose("c").ok());
  host.ProcessAll();
  EXPECT_EQ(host.applied.back().data(), "c");
  EXPECT_EQ(host.applied.back().index(), 5u);  // after term 2's no-op
}

TEST(ReplicaTest, RestartWithoutAppliedReappliesCommittedEntries) {
  Host host(1, Voters({1}));
  ASSERT_TRUE(host.replica->Campaign().ok());
  host.ProcessAll();
  ASSERT_TRUE(host.replica->Propose("a").ok());
  host.ProcessAll();
  host.replica = *Replica::Create(Options(1), &host.log);
  ASSERT_TRUE(host.replica->HasReady());
  Ready ready = host.replica->TakeReady();
  ASSERT_EQ(ready.committed_entries.size(), 2u);
  EXPECT_EQ(ready.committed_entries[1].data(), "a");
}

TEST(ReplicaTest, ProposeOnFollowerFailsWithLeaderHint) {
  Host host(2, Voters({1, 2, 3}));
  absl::StatusOr<Index> index = host.replica->Propose("x");
  EXPECT_EQ(index.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(LeaderHint(index.status()).has_value());

  // Learn leader 1 from its heartbeat.
  Message hb;
  hb.set_type(MSG_HEARTBEAT);
  hb.set_group(7);
  hb.set_from(1);
  hb.set_to(2);
  hb.set_term(3);
  ASSERT_TRUE(host.replica->Step(hb).ok());
  index = host.replica->Propose("x");
  EXPECT_EQ(index.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(LeaderHint(index.status()), std::optional<NodeId>(1));
  EXPECT_EQ(host.replica->stats().proposals_refused, 2u);
}

TEST(ReplicaTest, ProposeRejectsEmptyData) {
  Host host(1, Voters({1}));
  ASSERT_TRUE(host.replica->Campaign().ok());
  EXPECT_EQ(host.replica->Propose("").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ReplicaTest, ProposeBeyondUncommittedBytesIsResourceExhausted) {
  MemoryLog log(Voters({1, 2, 3}));
  ReplicaOptions options = Options(1);
  options.uncommitted_bytes_max = 10;
  auto replica = *Replica::Create(options, &log);
  ASSERT_TRUE(replica->Campaign().ok());
  // Win the election with a vote from 2.
  Ready rd = replica->TakeReady();
  ASSERT_TRUE(log.Persist(rd).ok());
  replica->Advance(rd);
  Message vote;
  vote.set_type(MSG_PRE_VOTE_RESPONSE);
  vote.set_group(7);
  vote.set_from(2);
  vote.set_to(1);
  vote.set_term(1);
  ASSERT_TRUE(replica->Step(vote).ok());
  vote.set_type(MSG_VOTE_RESPONSE);
  ASSERT_TRUE(replica->Step(vote).ok());
  ASSERT_EQ(replica->role(), Role::kLeader);
  EXPECT_TRUE(replica->Propose("12345678").ok());  // an empty tail takes any
  EXPECT_EQ(replica->Propose("123").status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(replica->Propose("12").ok());
}

Message Valid(MessageType type) {
  Message m;
  m.set_type(type);
  m.set_group(7);
  m.set_from(2);
  m.set_to(1);
  m.set_term(1);
  return m;
}

TEST(ReplicaTest, StepRefusesInvalidMessagesAndCountsThem) {
  Host host(1, Voters({1, 2, 3}));
  struct Case {
    Message m;
    DropReason reason;
  };
  std::vector<Case> cases;
  Message m = Valid(MSG_HEARTBEAT);
  m.set_group(8);
  cases.push_back({m, DropReason::kWrongGroup});
  m = Valid(MSG_HEARTBEAT);
  m.set_to(3);
  cases.push_back({m, DropReason::kWrongRecipient});
  m = Valid(MSG_HEARTBEAT);
  m.set_term(0);
  cases.push_back({m, DropReason::kMalformed});
  m = Valid(MSG_HEARTBEAT);
  m.set_from(1);
  cases.push_back({m, DropReason::kMalformed});
  m = Valid(MSG_UNKNOWN);
  cases.push_back({m, DropReason::kMalformed});
  m = Valid(MSG_APPEND);  // entries not contiguous after index
  m.set_index(0);
  m.add_entries()->set_index(2);
  cases.push_back({m, DropReason::kMalformed});
  m = Valid(MSG_APPEND);  // entry term above the message term
  m.add_entries()->set_index(1);
  m.mutable_entries(0)->set_term(2);
  cases.push_back({m, DropReason::kMalformed});
  m = Valid(MSG_APPEND_RESPONSE);
  m.set_reject(true);
  m.set_index(3);
  m.set_reject_hint(4);
  cases.push_back({m, DropReason::kMalformed});
  m = Valid(MSG_SNAPSHOT);  // snapshot without metadata
  cases.push_back({m, DropReason::kMalformed});
  m = Valid(MSG_HEARTBEAT_RESPONSE);
  m.set_from(9);  // not a member
  cases.push_back({m, DropReason::kUnknownPeer});

  const Term term = host.replica->term();
  for (const Case& c : cases) {
    SCOPED_TRACE(DescribeMessage(c.m));
    const uint64_t before = host.replica->stats().dropped_of(c.reason);
    EXPECT_EQ(host.replica->Step(c.m).code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(host.replica->stats().dropped_of(c.reason), before + 1);
    EXPECT_EQ(host.replica->term(), term);
    EXPECT_FALSE(host.replica->HasReady());
  }
}

// Raft §5.2 / thesis §3.8: a granted vote, and a candidate's vote for
// itself, leave in a Ready that carries the term and vote and asks for an
// fsync even when it has no entries; otherwise a crash could lose the vote
// after it was sent and the node could vote again in the same term.
TEST(ReplicaTest, VotesAreSentOnlyWithASyncedHardState) {
  Host voter(1, Voters({1, 2, 3}));
  Message request = Valid(MSG_VOTE);
  request.set_from(2);
  request.set_term(3);
  ASSERT_TRUE(voter.replica->Step(request).ok());
  Ready granted = voter.Process();
  ASSERT_EQ(granted.messages.size(), 1u);
  EXPECT_EQ(granted.messages[0].type(), MSG_VOTE_RESPONSE);
  EXPECT_FALSE(granted.messages[0].reject());
  EXPECT_EQ(granted.messages[0].to(), 2u);
  ASSERT_TRUE(granted.hard_state.has_value());
  EXPECT_EQ(granted.hard_state->term(), 3u);
  EXPECT_EQ(granted.hard_state->vote(), 2u);
  EXPECT_TRUE(granted.entries.empty());
  EXPECT_TRUE(granted.must_sync);

  ReplicaOptions options = Options(1);
  options.pre_vote = false;
  Host candidate(options, Voters({1, 2, 3}));
  ASSERT_TRUE(candidate.replica->Campaign().ok());
  Ready campaign = candidate.Process();
  EXPECT_EQ(campaign.messages.size(), 2u);
  for (const Message& m : campaign.messages) EXPECT_EQ(m.type(), MSG_VOTE);
  ASSERT_TRUE(campaign.hard_state.has_value());
  EXPECT_EQ(campaign.hard_state->term(), 1u);
  EXPECT_EQ(campaign.hard_state->vote(), 1u);
  EXPECT_TRUE(campaign.entries.empty());
  EXPECT_TRUE(campaign.must_sync);
}

TEST(ReplicaTest, StartWithoutStateWithholdsVotesForTheConfiguredTicks) {
  // A node whose data directory was wiped may already have voted in the
  // current term; granting again could elect two leaders in one term.
  MemoryLog log(Voters({1, 2, 3}));
  ReplicaOptions options = Options(1);
  options.votes_withheld_ticks = 2 * options.election_ticks;
  std::unique_ptr<Replica> replica = *Replica::Create(options, &log);
  Message vote = Valid(MSG_VOTE);
  vote.set_from(2);
  vote.set_term(1);
  auto answer = [&](const Message& request) {
    EXPECT_TRUE(replica->Step(request).ok());
    Ready ready = replica->TakeReady();
    EXPECT_TRUE(log.Persist(ready).ok());
    replica->Advance(ready);
    for (const Message& m : ready.messages) {
      if (m.type() == MSG_VOTE_RESPONSE) return !m.reject();
    }
    ADD_FAILURE() << "no vote response";
    return false;
  };
  EXPECT_FALSE(answer(vote));
  EXPECT_EQ(replica->stats().votes_withheld, 1u);
  EXPECT_EQ(replica->vote(), kNoNode);
  EXPECT_EQ(replica->Campaign().code(), absl::StatusCode::kFailedPrecondition);
  // Nor does it campaign by itself while its election timer runs out.
  for (int i = 1; i < options.votes_withheld_ticks; ++i) replica->Tick();
  EXPECT_EQ(replica->stats().pre_campaigns + replica->stats().campaigns, 0u);
  EXPECT_FALSE(answer(vote));
  // Once the window is over it votes normally.
  replica->Tick();
  vote.set_term(replica->term() + 1);
  EXPECT_TRUE(answer(vote));
  EXPECT_EQ(replica->vote(), 2u);
  EXPECT_EQ(replica->stats().votes_withheld, 2u);
}

TEST(ReplicaTest, StaleTermIsIgnoredAndCounted) {
  Host host(1, Voters({1, 2, 3}));
  Message hb = Valid(MSG_HEARTBEAT);
  hb.set_term(5);
  ASSERT_TRUE(host.replica->Step(hb).ok());
  host.ProcessAll();
  hb.set_term(4);
  EXPECT_TRUE(host.replica->Step(hb).ok());
  EXPECT_EQ(host.replica->stats().dropped_of(DropReason::kStaleTerm), 1u);
  EXPECT_EQ(host.replica->term(), 5u);
  // The stale leader learns the newer term.
  Ready rd = host.Process();
  ASSERT_EQ(rd.messages.size(), 1u);
  EXPECT_EQ(rd.messages[0].type(), MSG_APPEND_RESPONSE);
  EXPECT_EQ(rd.messages[0].term(), 5u);
}

TEST(ReplicaTest, DataLossHaltsInsteadOfCrashing) {
  Host host(1, Voters({1, 2, 3}));
  // Persist a few entries from leader 2.
  Message app = Valid(MSG_APPEND);
  for (Index i = 1; i <= 3; ++i) {
    Entry* e = app.add_entries();
    e->set_index(i);
    e->set_term(1);
    e->set_data("e");
  }
  ASSERT_TRUE(host.replica->Step(app).ok());
  host.ProcessAll();
  host.log.InjectDataLoss(3);
  // A vote request needs our last term: the read fails.
  Message vote = Valid(MSG_VOTE);
  vote.set_from(3);
  vote.set_term(2);
  vote.set_index(3);
  vote.set_log_term(1);
  // Let the lease expire so the vote is considered.
  for (int i = 0; i < 30 && !host.replica->halted(); ++i) host.replica->Tick();
  if (!host.replica->halted()) {
    EXPECT_EQ(host.replica->Step(vote).code(), absl::StatusCode::kDataLoss);
  }
  EXPECT_TRUE(host.replica->halted());
  ReplicaStatus status = host.replica->Status();
  EXPECT_TRUE(status.halted);
  EXPECT_EQ(status.halt_status.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(host.replica->role(), Role::kFollower);
  // From now on: no votes, no campaigns, no proposals.
  EXPECT_EQ(host.replica->Step(vote).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(host.replica->Campaign().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(CheckInvariants(*host.replica).ok());
  for (int i = 0; i < 50; ++i) host.replica->Tick();
  EXPECT_EQ(host.replica->role(), Role::kFollower);
  EXPECT_EQ(host.replica->stats().dropped_of(DropReason::kHalted), 1u);
}

TEST(ReplicaTest, DataLossWhileHandingOutCommittedEntriesHalts) {
  Host host(1, Voters({1, 2, 3}));
  Message app = Valid(MSG_APPEND);
  for (Index i = 1; i <= 3; ++i) {
    Entry* e = app.add_entries();
    e->set_index(i);
    e->set_term(1);
    e->set_data("e");
  }
  ASSERT_TRUE(host.replica->Step(app).ok());
  host.ProcessAll();
  host.log.InjectDataLoss(2);
  // The leader says 1..3 are committed; reading them back fails.
  Message hb = Valid(MSG_HEARTBEAT);
  hb.set_commit(3);
  ASSERT_TRUE(host.replica->Step(hb).ok());
  ASSERT_TRUE(host.replica->HasReady());
  Ready ready = host.replica->TakeReady();
  EXPECT_TRUE(ready.committed_entries.empty());
  EXPECT_TRUE(host.replica->halted());
  EXPECT_EQ(host.replica->Status().halt_status.code(),
            absl::StatusCode::kDataLoss);
  ASSERT_TRUE(host.log.Persist(ready).ok());
  host.replica->Advance(ready);
  EXPECT_TRUE(CheckInvariants(*host.replica).ok());
  EXPECT_EQ(host.replica->log().applied(), 0u);
}

TEST(ReplicaTest, ReadIndexQueueIsBounded) {
  Host host(1, Voters({1, 2, 3}));
  ASSERT_TRUE(host.replica->Campaign().ok());
  host.ProcessAll();
  Message vote = Valid(MSG_PRE_VOTE_RESPONSE);
  ASSERT_TRUE(host.replica->Step(vote).ok());
  host.ProcessAll();
  vote.set_type(MSG_VOTE_RESPONSE);
  ASSERT_TRUE(host.replica->Step(vote).ok());
  ASSERT_EQ(host.replica->role(), Role::kLeader);
  // Until the no-op commits, reads wait; the queue has a bound.
  absl::Status status;
  int accepted = 0;
  for (; accepted < 10000; ++accepted) {
    status = host.replica->ReadIndex("r");
    if (!status.ok()) break;
  }
  EXPECT_EQ(accepted, 4096);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
}

TEST(ReplicaTest, LeaderQuiescesAndWakesOnTick) {
  Host host(1, Voters({1}));
  ASSERT_TRUE(host.replica->Campaign().ok());
  EXPECT_FALSE(host.replica->Quiescent());  // no-op not committed yet
  host.ProcessAll();
  ASSERT_TRUE(host.replica->Quiescent());
  host.replica->Quiesce();
  EXPECT_TRUE(host.replica->quiesced());
  host.replica->Tick();
  EXPECT_FALSE(host.replica->quiesced());
  EXPECT_EQ(host.replica->role(), Role::kLeader);
}

// Three replicas wired together: the leader's empty "commit" appends are
// counted, messages are delivered until nothing moves.
struct Trio {
  explicit Trio(bool lazy) {
    for (NodeId id = 1; id <= 3; ++id) {
      ReplicaOptions options = Options(id);
      options.lazy_commit_broadcast = lazy;
      hosts.push_back(std::make_unique<Host>(options, Voters({1, 2, 3})));
    }
  }
  Host& at(NodeId id) { return *hosts[id - 1]; }
  // Node 1 campaigns and wins; the counter starts from there.
  void ElectNode1() {
    ASSERT_TRUE(at(1).replica->Campaign().ok());
    Settle();
    ASSERT_EQ(at(1).replica->role(), Role::kLeader);
    empty_appends = 0;
  }
  void Settle() {
    for (bool moved = true; moved;) {
      moved = false;
      for (auto& host : hosts) {
        while (host->replica->HasReady()) {
          moved = true;
          Ready ready = host->Process();
          for (const Message& m : ready.messages) {
            if (m.type() == MSG_APPEND && m.entries_size() == 0) {
              ++empty_appends;
            }
            EXPECT_TRUE(at(m.to()).replica->Step(m).ok());
          }
        }
      }
    }
  }
  std::vector<std::unique_ptr<Host>> hosts;
  int empty_appends = 0;
};

TEST(ReplicaTest, EagerCommitSendsEmptyAppendsToFollowers) {
  Trio trio(/*lazy=*/false);
  ASSERT_NO_FATAL_FAILURE(trio.ElectNode1());
  ASSERT_TRUE(trio.at(1).replica->Propose("x").ok());
  trio.Settle();
  EXPECT_EQ(trio.empty_appends, 2);  // one per follower, with the commit
  EXPECT_EQ(trio.at(2).replica->log().committed(),
            trio.at(1).replica->log().committed());
}

TEST(ReplicaTest, LazyCommitReachesFollowersWithTheNextMessage) {
  Trio trio(/*lazy=*/true);
  ASSERT_NO_FATAL_FAILURE(trio.ElectNode1());
  ASSERT_TRUE(trio.at(1).replica->Propose("x").ok());
  trio.Settle();
  const Index x = trio.at(1).replica->log().LastIndex();
  // Committed and applied on the leader; nothing extra sent for it.
  EXPECT_EQ(trio.at(1).replica->log().committed(), x);
  EXPECT_EQ(trio.at(1).applied.back().data(), "x");
  EXPECT_EQ(trio.empty_appends, 0);
  EXPECT_LT(trio.at(2).replica->log().committed(), x);
  EXPECT_LT(trio.at(3).replica->log().committed(), x);

  // The next append carries it.
  ASSERT_TRUE(trio.at(1).replica->Propose("y").ok());
  trio.Settle();
  EXPECT_GE(trio.at(2).replica->log().committed(), x);
  EXPECT_EQ(trio.at(2).applied.back().data(), "x");

  // With no further proposal, the heartbeat carries the last commit.
  const Index y = trio.at(1).replica->log().LastIndex();
  EXPECT_LT(trio.at(3).replica->log().committed(), y);
  for (int i = 0; i < trio.at(1).replica->options().heartbeat_ticks; ++i) {
    trio.at(1).replica->Tick();
  }
  trio.Settle();
  EXPECT_EQ(trio.at(2).replica->log().committed(), y);
  EXPECT_EQ(trio.at(3).replica->log().committed(), y);
  EXPECT_EQ(trio.at(3).applied.back().data(), "y");
  EXPECT_EQ(trio.empty_appends, 0);
}

// Regression (found by tests/sim: seed 86, 5 nodes). The host may Step
// messages between TakeReady and Advance. A snapshot arriving while the
// host still applies committed entries of the Ready in flight must not
// switch the membership under them: the conf changes among those entries
// were proposed against the older membership, and applying one to the
// snapshot's membership failed the stamped-membership CHECK (or, without
// the stamp, computed a wrong membership). The replica refuses such a
// snapshot; the leader sends it again.
TEST(ReplicaTest, SnapshotWaitsForHandedOutEntriesToBeApplied) {
  Host follower(2, Voters({1, 2, 3}));
  ConfChange cc;
  cc.set_type(ConfChange::REMOVE_VOTER);
  cc.set_node_id(3);
  *cc.mutable_conf_state() = Voters({1, 2});
  Message append;
  append.set_type(MSG_APPEND);
  append.set_group(7);
  append.set_from(1);
  append.set_to(2);
  append.set_term(1);
  Entry* noop = append.add_entries();
  noop->set_term(1);
  noop->set_index(1);
  Entry* change = append.add_entries();
  change->set_term(1);
  change->set_index(2);
  change->set_type(ENTRY_CONF_CHANGE);
  change->set_data(cc.SerializeAsString());
  append.set_commit(2);
  ASSERT_TRUE(follower.replica->Step(append).ok());
  Ready ready = follower.replica->TakeReady();
  ASSERT_EQ(ready.committed_entries.size(), 2u);

  // Before the host applied them: a snapshot whose membership includes a
  // later change (3 back as a learner).
  Message snap;
  snap.set_type(MSG_SNAPSHOT);
  snap.set_group(7);
  snap.set_from(1);
  snap.set_to(2);
  snap.set_term(1);
  SnapshotMetadata* md = snap.mutable_snapshot()->mutable_metadata();
  md->set_index(5);
  md->set_term(1);
  *md->mutable_conf_state() = Voters({1, 2});
  md->mutable_conf_state()->add_learners(3);
  ASSERT_TRUE(follower.replica->Step(snap).ok());
  EXPECT_FALSE(follower.replica->log().HasPendingSnapshot());

  // The host finishes the Ready: the change applies to the membership it
  // was proposed against.
  ASSERT_TRUE(follower.log.Persist(ready).ok());
  ASSERT_TRUE(cc.ParseFromString(ready.committed_entries[1].data()));
  absl::StatusOr<ConfState> cs = follower.replica->ApplyConfChange(cc);
  ASSERT_TRUE(cs.ok()) << cs.status();
  EXPECT_EQ(ConfStateString(*cs), "voters=(1,2)");
  follower.replica->Advance(ready);
  ASSERT_TRUE(CheckInvariants(*follower.replica).ok());

  // The leader's next attempt is restored.
  ASSERT_TRUE(follower.replica->Step(snap).ok());
  EXPECT_TRUE(follower.replica->log().HasPendingSnapshot());
  follower.ProcessAll();
  EXPECT_EQ(ConfStateString(follower.replica->tracker().conf_state()),
            "voters=(1,2) learners=(3)");
  EXPECT_EQ(follower.replica->log().committed(), 5u);
}

}  // namespace
}  // namespace spate::raft
