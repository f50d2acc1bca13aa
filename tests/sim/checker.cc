#include "tests/sim/checker.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "raft/describe.h"
#include "raft/invariants.h"

namespace spate::sim {
namespace {

bool SameEntry(const raft::Entry& a, const raft::Entry& b) {
  return a.index() == b.index() && a.term() == b.term() &&
         a.type() == b.type() && a.data() == b.data();
}

std::string Who(const raft::Replica& r) {
  return absl::StrCat("node ", r.id(), " (term ", r.term(), ", ",
                      raft::RoleName(r.role()), ")");
}

}  // namespace

Checker::Checker(int nodes) : tracks_(nodes) {}

void Checker::Fail(const std::string& what) {
  if (status_.ok()) status_ = absl::InternalError(what);
}

Checker::NodeTrack& Checker::track(raft::NodeId id) {
  return tracks_.at(id - 1);
}

void Checker::OnStart(const raft::Replica& replica, const AppState& app) {
  NodeTrack& t = track(replica.id());
  t.applied = app.applied;
  // Compare the whole committed prefix it restarted with.
  t.seen_commit = 0;
  t.leader_term = 0;
  if (app.applied > 0) CheckDigest(replica, app);
}

void Checker::OnReady(const raft::Replica& replica, const raft::Ready& ready) {
  CheckEntries(replica, ready.entries);
}

void Checker::OnApply(const raft::Replica& replica, const raft::Entry& entry,
                      const AppState& after) {
  NodeTrack& t = track(replica.id());
  if (entry.index() != t.applied + 1) {
    Fail(absl::StrCat(Who(replica), " applied ", raft::DescribeEntry(entry),
                      " after index ", t.applied));
  }
  t.applied = entry.index();
  RecordCommitted(replica, entry);
  CheckDigest(replica, after);
  if (entry.type() == raft::ENTRY_NORMAL && !entry.data().empty()) {
    auto [it, inserted] = commands_.emplace(entry.data(), entry.index());
    if (!inserted && it->second != entry.index()) {
      Fail(absl::StrCat(Who(replica), " applied command \"", entry.data(),
                        "\" at index ", entry.index(),
                        " but it was applied at index ", it->second));
    }
  }
}

void Checker::OnInstall(const raft::Replica& replica, const AppState& state) {
  NodeTrack& t = track(replica.id());
  if (state.applied <= t.applied) {
    Fail(absl::StrCat(Who(replica), " installed a snapshot at ", state.applied,
                      " not beyond its applied index ", t.applied));
  }
  t.applied = state.applied;
  if (state.applied > committed_.size()) {
    Fail(absl::StrCat(Who(replica), " installed a snapshot at ", state.applied,
                      " beyond every commit seen (", committed_.size(), ")"));
  }
  CheckDigest(replica, state);
}

void Checker::CheckDigest(const raft::Replica& replica, const AppState& state) {
  const raft::Index i = state.applied;
  if (digests_.size() < i) digests_.resize(i, 0);
  uint64_t& known = digests_[i - 1];
  if (known == 0) {
    known = state.digest;
  } else if (known != state.digest) {
    Fail(absl::StrCat("state machines diverged: ", Who(replica), " has digest ",
                      state.digest, " after index ", i, ", another node had ",
                      known));
  }
}

void Checker::CheckEntries(const raft::Replica& replica,
                           absl::Span<const raft::Entry> entries) {
  if (entries.empty()) return;
  raft::Term prev_term = kUnknownTerm;
  if (entries[0].index() > 1) {
    absl::StatusOr<raft::Term> t = replica.log().TermAt(entries[0].index() - 1);
    if (t.ok()) prev_term = *t;
  } else {
    prev_term = 0;
  }
  const raft::Index commit = replica.log().committed();
  for (const raft::Entry& e : entries) {
    auto [it, inserted] =
        entries_.try_emplace(std::make_pair(e.index(), e.term()),
                             EntryFacts{e.type(), e.data(), prev_term});
    EntryFacts& facts = it->second;
    if (!inserted) {
      if (facts.type != e.type() || facts.data != e.data()) {
        Fail(absl::StrCat("log matching: ", Who(replica), " holds ",
                          raft::DescribeEntry(e),
                          " but another log holds different data at the same "
                          "index and term"));
      }
      if (facts.prev_term == kUnknownTerm) {
        facts.prev_term = prev_term;
      } else if (prev_term != kUnknownTerm && prev_term != facts.prev_term) {
        Fail(absl::StrCat("log matching: ", Who(replica), " holds ",
                          raft::DescribeEntry(e), " after an entry of term ",
                          prev_term, "; another log holds it after term ",
                          facts.prev_term));
      }
    }
    if (e.index() <= commit && e.index() <= committed_.size() &&
        !SameEntry(committed_[e.index() - 1].entry, e)) {
      Fail(absl::StrCat(Who(replica), " wrote ", raft::DescribeEntry(e),
                        " at or below its commit index ", commit,
                        " over the committed ",
                        raft::DescribeEntry(committed_[e.index() - 1].entry)));
    }
    prev_term = e.term();
  }
}

void Checker::RecordCommitted(const raft::Replica& replica,
                              const raft::Entry& e) {
  const raft::Index i = e.index();
  if (i <= committed_.size()) {
    Committed& c = committed_[i - 1];
    if (!SameEntry(c.entry, e)) {
      Fail(absl::StrCat("committed entry changed: ", Who(replica), " has ",
                        raft::DescribeEntry(e), " committed where ",
                        raft::DescribeEntry(c.entry), " was committed"));
    }
    c.commit_term = std::min(c.commit_term, replica.term());
  } else if (i == committed_.size() + 1) {
    committed_.push_back(Committed{e, replica.term()});
  } else {
    Fail(absl::StrCat(Who(replica), " committed ", raft::DescribeEntry(e),
                      " but only 1..", committed_.size(),
                      " were ever seen committed"));
  }
}

void Checker::CheckCommitIndex(const raft::Replica& replica) {
  NodeTrack& t = track(replica.id());
  const raft::RaftLog& log = replica.log();
  const raft::Index commit = log.committed();
  if (commit < t.seen_commit) {
    Fail(absl::StrCat(Who(replica), " commit index went back from ",
                      t.seen_commit, " to ", commit));
    return;
  }
  if (commit == t.seen_commit) return;
  raft::Index lo = t.seen_commit + 1;
  if (lo < log.FirstIndex()) {
    // Covered by its snapshot: must be a committed prefix we already know.
    if (log.FirstIndex() - 1 > committed_.size()) {
      Fail(absl::StrCat(Who(replica), " holds a snapshot through ",
                        log.FirstIndex() - 1, " beyond every commit seen (",
                        committed_.size(), ")"));
      return;
    }
    lo = log.FirstIndex();
  }
  while (lo <= commit) {
    std::vector<raft::Entry> page;
    const absl::Status s = log.Slice(lo, commit + 1, 1 << 20, &page);
    if (!s.ok()) {
      Fail(absl::StrCat(Who(replica), " cannot read its committed entries ", lo,
                        "..", commit, ": ", s.ToString()));
      return;
    }
    for (const raft::Entry& e : page) RecordCommitted(replica, e);
    lo = page.back().index() + 1;
  }
  t.seen_commit = commit;
}

void Checker::CheckLeader(const raft::Replica& replica) {
  auto [it, inserted] = leaders_.emplace(replica.term(), replica.id());
  if (!inserted && it->second != replica.id()) {
    Fail(absl::StrCat("election safety: nodes ", it->second, " and ",
                      replica.id(), " both lead term ", replica.term()));
    return;
  }
  const raft::RaftLog& log = replica.log();
  NodeTrack& t = track(replica.id());
  if (t.leader_term != replica.term()) {
    t.leader_term = replica.term();
    t.commit_as_new_leader = log.committed();
  } else if (log.committed() > t.commit_as_new_leader) {
    absl::StatusOr<raft::Term> term = log.TermAt(log.committed());
    if (term.ok() && *term != replica.term()) {
      Fail(absl::StrCat("commit rule (§5.4.2): ", Who(replica),
                        " moved its commit index to ", log.committed(),
                        ", an entry of term ", *term));
      return;
    }
  }
  // Leader Completeness (§5.4.3), for the part of the committed prefix the
  // leader has not compacted into its snapshot.
  for (raft::Index i = std::max<raft::Index>(1, log.FirstIndex());
       i <= committed_.size(); ++i) {
    const Committed& c = committed_[i - 1];
    if (c.commit_term >= replica.term()) continue;
    absl::StatusOr<raft::Term> term = log.TermAt(i);
    if (!term.ok() || *term != c.entry.term()) {
      Fail(absl::StrCat(
          "leader completeness: ", Who(replica), " lacks ",
          raft::DescribeEntry(c.entry), " committed by term ", c.commit_term,
          term.ok() ? absl::StrCat(" (it holds term ", *term, " there)")
                    : absl::StrCat(" (", term.status().ToString(), ")")));
      return;
    }
  }
}

absl::Status Checker::CheckStep(
    absl::Span<const raft::Replica* const> replicas) {
  for (const raft::Replica* r : replicas) {
    if (r == nullptr) continue;
    if (absl::Status s = raft::CheckInvariants(*r); !s.ok()) {
      Fail(std::string(s.message()));
    }
    CheckEntries(*r, r->log().unstable().entries());
    CheckCommitIndex(*r);
    if (r->role() == raft::Role::kLeader) CheckLeader(*r);
  }
  return status_;
}

}  // namespace spate::sim
