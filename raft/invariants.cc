#include "raft/invariants.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace spate::raft {
namespace {

class Violations {
 public:
  void Expect(bool ok, const std::string& what) {
    if (!ok) list_.push_back(what);
  }
  absl::Status ToStatus(const Replica& r) const {
    if (list_.empty()) return absl::OkStatus();
    return absl::InternalError(absl::StrCat(
        "raft invariants violated on node ", r.id(), " group ", r.group(), " (",
        r.Status().DebugString(), "): ", absl::StrJoin(list_, "; ")));
  }

 private:
  std::vector<std::string> list_;
};

void CheckLog(const Replica& r, Violations* v) {
  const RaftLog& log = r.log();
  const Index last = log.LastIndex();
  v->Expect(log.applied() <= log.committed(),
            absl::StrCat("applied ", log.applied(), " > committed ",
                         log.committed()));
  v->Expect(log.committed() <= last, absl::StrCat("committed ", log.committed(),
                                                  " > last index ", last));
  v->Expect(r.applying() >= log.applied() && r.applying() <= log.committed(),
            absl::StrCat("applying ", r.applying(), " outside [applied ",
                         log.applied(), ", committed ", log.committed(), "]"));
  v->Expect(log.FirstIndex() >= 1 && log.FirstIndex() <= last + 1,
            absl::StrCat("first index ", log.FirstIndex(), " vs last ", last));
  const Unstable& unstable = log.unstable();
  for (size_t i = 0; i < unstable.entries().size(); ++i) {
    const Entry& e = unstable.entries()[i];
    v->Expect(e.index() == unstable.offset() + i,
              absl::StrCat("unstable entry ", i, " has index ", e.index()));
    v->Expect(e.term() <= r.term(),
              absl::StrCat("entry ", e.index(), " has term ", e.term(),
                           " above the current term ", r.term()));
  }
}

void CheckRole(const Replica& r, Violations* v) {
  switch (r.role()) {
    case Role::kLeader:
      v->Expect(r.leader() == r.id(), "leader does not lead itself");
      v->Expect(r.vote() == r.id(), "leader did not vote for itself");
      v->Expect(r.tracker().IsVoter(r.id()), "leader is not a voter");
      v->Expect(r.term() >= 1, "leader at term 0");
      v->Expect(r.pending_conf_index() <= r.log().LastIndex(),
                "pending conf index beyond the log");
      v->Expect(r.term_start_index() >= 1 &&
                    r.term_start_index() <= r.log().LastIndex(),
                "leader without its term's first entry");
      break;
    case Role::kCandidate:
      v->Expect(r.vote() == r.id(), "candidate did not vote for itself");
      v->Expect(r.leader() == kNoNode, "candidate knows a leader");
      break;
    case Role::kPreCandidate:
      v->Expect(r.leader() == kNoNode, "pre-candidate knows a leader");
      break;
    case Role::kFollower:
      v->Expect(r.leader() != r.id(), "follower leads itself");
      break;
  }
  if (r.role() != Role::kLeader) {
    v->Expect(r.lead_transferee() == kNoNode, "transfer outside leadership");
    v->Expect(r.term_start_index() == 0, "term start outside leadership");
  }
  if (r.halted()) {
    v->Expect(r.role() == Role::kFollower && r.leader() == kNoNode,
              "halted replica is not a leaderless follower");
  }
}

void CheckProgress(const Replica& r, Violations* v) {
  if (r.role() != Role::kLeader) return;
  const Index last = r.log().LastIndex();
  for (const auto& [id, pr] : r.tracker().progress()) {
    const std::string who =
        absl::StrCat("progress of ", id, " (", pr.DebugString(), ")");
    v->Expect(pr.match() < pr.next(), who + ": match >= next");
    v->Expect(pr.next() <= last + 1, who + ": next beyond last index + 1");
    v->Expect(pr.inflights().count() <= pr.inflights().count_max(),
              who + ": inflight window overflow");
    if (pr.state() == ProgressState::kSnapshot) {
      v->Expect(pr.pending_snapshot() > 0, who + ": no pending snapshot");
    }
    if (pr.state() != ProgressState::kReplicate) {
      v->Expect(pr.inflights().count() == 0,
                who + ": inflights outside replicate");
    }
  }
}

}  // namespace

absl::Status CheckInvariants(const Replica& replica) {
  Violations violations;
  CheckLog(replica, &violations);
  CheckRole(replica, &violations);
  CheckProgress(replica, &violations);
  return violations.ToStatus(replica);
}

}  // namespace spate::raft
