#include "raft/replica.h"

#include <algorithm>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/types/optional.h"
#include "base/check.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "raft/conf_change.h"
#include "raft/message_check.h"

namespace spate::raft {
namespace {

// Bound on ReadIndex requests a leader holds (STYLE.md: every queue has a
// _max); beyond it ReadIndex returns ResourceExhausted.
constexpr size_t kPendingReadsMax = 4096;

absl::Status NotLeaderError(NodeId leader, Role role) {
  absl::Status status = absl::FailedPreconditionError(absl::StrCat(
      "not the leader (", RoleName(role), ", leader ", leader, ")"));
  if (leader != kNoNode) {
    status.SetPayload(kLeaderHintPayload, absl::Cord(absl::StrCat(leader)));
  }
  return status;
}

bool SameHardState(const HardState& a, const HardState& b) {
  return a.term() == b.term() && a.vote() == b.vote() &&
         a.commit() == b.commit();
}

uint64_t PrngSeed(const ReplicaOptions& options) {
  // Distinct streams per (seed, group, id): equal seeds must not give equal
  // election timeouts, or split votes would repeat forever.
  return options.seed ^ (options.group * 0x9e3779b97f4a7c15ULL) ^
         (options.id * 0xc2b2ae3d27d4eb4fULL);
}

}  // namespace

std::optional<NodeId> LeaderHint(const absl::Status& status) {
  const absl::optional<absl::Cord> payload =
      status.GetPayload(kLeaderHintPayload);
  NodeId id = kNoNode;
  if (!payload.has_value() || !absl::SimpleAtoi(std::string(*payload), &id)) {
    return std::nullopt;
  }
  return id;
}

// ---------------------------------------------------------------------------
// Construction

absl::StatusOr<std::unique_ptr<Replica>> Replica::Create(
    const ReplicaOptions& options, const LogReader* reader) {
  RETURN_IF_ERROR(options.Validate());
  if (reader == nullptr) {
    return absl::InvalidArgumentError("Replica::Create needs a LogReader");
  }
  std::unique_ptr<Replica> replica(new Replica(options, reader));
  RETURN_IF_ERROR(replica->Load());
  return replica;
}

Replica::Replica(const ReplicaOptions& options, const LogReader* reader)
    : options_(options),
      reader_(reader),
      log_(reader),
      tracker_(options.inflight_msgs_max, options.inflight_bytes_max),
      outbox_(options.id, options.group, &term_),
      replicator_(&options_, &log_, &tracker_, &outbox_, &stats_),
      prng_(PrngSeed(options)),
      votes_withheld_left_(options.votes_withheld_ticks),
      rebuilding_(options.rebuilding) {}

absl::Status Replica::Load() {
  ASSIGN_OR_RETURN(InitialState initial, reader_->LoadInitialState());
  if (absl::Status s = ValidateConfState(initial.conf_state); !s.ok()) {
    return absl::DataLossError(
        absl::StrCat("persisted ConfState: ", s.message()));
  }
  const HardState& hs = initial.hard_state;
  if (hs.commit() > log_.LastIndex()) {
    return absl::DataLossError(
        absl::StrCat("persisted commit index ", hs.commit(),
                     " is beyond the last index ", log_.LastIndex()));
  }
  ASSIGN_OR_RETURN(const Term last_term, log_.LastTerm());
  if (last_term > hs.term()) {
    return absl::DataLossError(absl::StrCat("persisted term ", hs.term(),
                                            " is below the last entry's term ",
                                            last_term));
  }
  if (options_.applied > log_.LastIndex()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ReplicaOptions.applied ", options_.applied,
                     " is beyond the last index ", log_.LastIndex()));
  }
  term_ = hs.term();
  vote_ = hs.vote();
  log_.CommitTo(hs.commit());
  // What the host applied was committed, even if the commit index it
  // persisted (lazily, without fsync) is older.
  log_.CommitTo(options_.applied);
  if (options_.applied > log_.applied()) log_.AppliedTo(options_.applied);
  applying_ = log_.applied();
  tracker_.SetConfState(initial.conf_state, log_.LastIndex());
  BecomeFollower(term_, kNoNode);
  prev_hard_state_ = hs;
  prev_soft_state_ = CurrentSoftState();
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Role transitions

void Replica::Reset(Term term) {
  CHECK_GE(term, term_) << "the term never decreases";
  if (term != term_) {
    term_ = term;
    vote_ = kNoNode;
  }
  leader_ = kNoNode;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  ResetRandomizedElectionTimeout();
  lead_transferee_ = kNoNode;
  tracker_.ResetVotes();
  const Index self_match =
      log_.HasPendingSnapshot() ? 0 : log_.PersistedLastIndex();
  tracker_.ResetProgress(options_.id, self_match, log_.LastIndex() + 1);
  pending_conf_index_ = 0;
  term_start_index_ = 0;
  uncommitted_bytes_ = 0;
  append_pending_ = false;
  read_heartbeat_pending_ = false;
  read_only_.Clear();
  deferred_reads_.clear();
  quiesced_ = false;
}

void Replica::BecomeFollower(Term term, NodeId leader) {
  if (role_ == Role::kLeader) ++stats_.leader_step_downs;
  Reset(term);
  leader_ = leader;
  role_ = Role::kFollower;
}

void Replica::BecomePreCandidate() {
  CHECK(role_ != Role::kLeader) << "leader -> pre-candidate";
  // Pre-Vote changes neither the term nor the vote (thesis §9.6).
  tracker_.ResetVotes();
  leader_ = kNoNode;
  role_ = Role::kPreCandidate;
}

void Replica::BecomeCandidate() {
  CHECK(role_ != Role::kLeader) << "leader -> candidate";
  // Raft §5.2: increment the term and vote for yourself.
  Reset(term_ + 1);
  vote_ = options_.id;
  role_ = Role::kCandidate;
}

absl::Status Replica::BecomeLeader() {
  CHECK(role_ != Role::kFollower) << "follower -> leader";
  CHECK_EQ(vote_, options_.id);
  Reset(term_);
  leader_ = options_.id;
  role_ = Role::kLeader;
  ++stats_.elections_won;
  Progress* self = tracker_.Find(options_.id);
  CHECK(self != nullptr);
  self->BecomeReplicate();
  self->set_recent_active(true);
  // Raft §5.4.2 / §8: a new leader commits an empty entry of its own term
  // first; older entries commit with it. No conf change may be proposed
  // before it is applied (pending_conf_index_).
  Entry noop;
  noop.set_type(ENTRY_NORMAL);
  RETURN_IF_ERROR(AppendEntry(std::move(noop)));
  term_start_index_ = log_.LastIndex();
  pending_conf_index_ = term_start_index_;
  return replicator_.BcastAppend();
}

// ---------------------------------------------------------------------------
// Elections

absl::StatusOr<bool> Replica::CanCampaign() const {
  if (halted() || !tracker_.IsVoter(options_.id) || log_.HasPendingSnapshot() ||
      votes_withheld_left_ > 0 || rebuilding_) {
    return false;
  }
  // A committed but unapplied conf change may change who votes: campaign
  // only once the host applied it (etcd's hasUnappliedConfChanges).
  Index lo = log_.applied() + 1;
  const Index hi = log_.committed() + 1;
  while (lo < hi) {
    std::vector<Entry> page;
    RETURN_IF_ERROR(log_.Slice(lo, hi, options_.committed_bytes_max, &page));
    for (const Entry& e : page) {
      if (e.type() == ENTRY_CONF_CHANGE) return false;
    }
    lo = page.back().index() + 1;
  }
  return true;
}

absl::Status Replica::Hup(CampaignType type) {
  if (role_ == Role::kLeader) return absl::OkStatus();
  ASSIGN_OR_RETURN(const bool can, CanCampaign());
  if (!can) return absl::OkStatus();
  return StartCampaign(type);
}

absl::Status Replica::StartCampaign(CampaignType type) {
  ASSIGN_OR_RETURN(const Term last_term, log_.LastTerm());
  const Index last_index = log_.LastIndex();
  MessageType request;
  Term vote_term;
  if (type == CampaignType::kPreElection) {
    BecomePreCandidate();
    request = MSG_PRE_VOTE;
    // Pre-votes ask for the term we would campaign in, without taking it.
    vote_term = term_ + 1;
    ++stats_.pre_campaigns;
  } else {
    BecomeCandidate();
    request = MSG_VOTE;
    vote_term = term_;
    ++stats_.campaigns;
  }
  rebuilding_voters_.clear();
  tracker_.RecordVote(options_.id, true);
  if (tracker_.TallyVotes(nullptr, nullptr) == VoteResult::kWon) {
    // A single voter wins alone.
    if (type == CampaignType::kPreElection) {
      return StartCampaign(CampaignType::kElection);
    }
    return BecomeLeader();
  }
  for (NodeId voter : tracker_.voters()) {
    if (voter == options_.id) continue;
    Message m;
    m.set_type(request);
    m.set_to(voter);
    m.set_term(vote_term);
    m.set_index(last_index);
    m.set_log_term(last_term);
    m.set_leader_transfer(type == CampaignType::kTransfer);
    outbox_.Send(std::move(m));
  }
  return absl::OkStatus();
}

bool Replica::InLease() const {
  // CheckQuorum's leader stickiness: while we heard from a leader within the
  // election timeout, a vote request comes from a disruptive node.
  return options_.check_quorum && leader_ != kNoNode &&
         election_elapsed_ < options_.election_ticks;
}

absl::Status Replica::HandleVoteRequest(const Message& m) {
  if (rebuilding_) {
    // Our log says nothing about what was committed: neither grant nor
    // refuse (see ReplicaOptions.rebuilding). A pre-vote answer carries the
    // term asked for, as a grant would, so the pre-candidate counts it.
    Message reply;
    reply.set_type(m.type() == MSG_VOTE ? MSG_VOTE_RESPONSE
                                        : MSG_PRE_VOTE_RESPONSE);
    reply.set_to(m.from());
    reply.set_term(m.type() == MSG_VOTE ? term_ : m.term());
    reply.set_reject(true);
    reply.set_rebuilding(true);
    ++stats_.votes_rebuilding;
    outbox_.Send(std::move(reply));
    return absl::OkStatus();
  }
  // We can vote for m.from if we already did in this term, or have not
  // voted and know no leader, or it is a pre-vote for a later term.
  const bool withheld = m.type() == MSG_VOTE && votes_withheld_left_ > 0;
  const bool can_vote =
      !withheld &&
      (vote_ == m.from() || (vote_ == kNoNode && leader_ == kNoNode) ||
       (m.type() == MSG_PRE_VOTE && m.term() > term_));
  if (withheld) ++stats_.votes_withheld;
  // Raft §5.4.1: only for a candidate whose log is at least as up-to-date.
  ASSIGN_OR_RETURN(const bool up_to_date,
                   log_.IsUpToDate(m.index(), m.log_term()));
  const MessageType response =
      m.type() == MSG_VOTE ? MSG_VOTE_RESPONSE : MSG_PRE_VOTE_RESPONSE;
  Message reply;
  reply.set_type(response);
  reply.set_to(m.from());
  if (can_vote && up_to_date) {
    // Answer with the request's term: a pre-vote's is in our future.
    reply.set_term(m.term());
    if (m.type() == MSG_VOTE) {
      election_elapsed_ = 0;
      vote_ = m.from();  // persisted (Ready.hard_state) before reply leaves
    }
  } else {
    reply.set_term(term_);
    reply.set_reject(true);
  }
  outbox_.Send(std::move(reply));
  return absl::OkStatus();
}

absl::Status Replica::HandleVoteResponse(const Message& m) {
  if (m.reject() && m.rebuilding() && tracker_.IsVoter(m.from()) &&
      std::find(rebuilding_voters_.begin(), rebuilding_voters_.end(),
                m.from()) == rebuilding_voters_.end()) {
    size_t granted = 0;
    size_t rejected = 0;
    tracker_.TallyVotes(&granted, &rejected);
    tracker_.RecordVote(m.from(), false);
    size_t granted_after = 0;
    size_t rejected_after = 0;
    tracker_.TallyVotes(&granted_after, &rejected_after);
    // Only the first answer of a voter counts.
    if (rejected_after > rejected) rebuilding_voters_.push_back(m.from());
  }
  tracker_.RecordVote(m.from(), !m.reject());
  VoteResult result = tracker_.TallyVotes(nullptr, nullptr);
  if (result != VoteResult::kWon && WonOverRebuildingVoters()) {
    ++stats_.elections_won_rebuilding;
    result = VoteResult::kWon;
  } else if (result == VoteResult::kLost && !rebuilding_voters_.empty()) {
    // Refusals from rebuilding voters alone do not lose: once every voter
    // answered, WonOverRebuildingVoters may still decide.
    size_t granted = 0;
    size_t rejected = 0;
    tracker_.TallyVotes(&granted, &rejected);
    if (rejected == rebuilding_voters_.size()) result = VoteResult::kPending;
  }
  switch (result) {
    case VoteResult::kWon:
      if (role_ == Role::kPreCandidate) {
        return StartCampaign(CampaignType::kElection);
      }
      return BecomeLeader();
    case VoteResult::kLost:
      // A pre-vote response carries a future term; stay in ours.
      BecomeFollower(term_, kNoNode);
      return absl::OkStatus();
    case VoteResult::kPending:
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

bool Replica::WonOverRebuildingVoters() const {
  // Every voter answered, and every refusal came from a voter rebuilding a
  // lost store. Each other voter granted, so (Raft §5.4.1) our log is at
  // least as up-to-date as each of theirs: an entry committed on a majority
  // survives only on voters that are not rebuilding, so we hold every
  // committed entry that still exists anywhere, and no leader can do
  // better. Election Safety holds: any two candidates winning this way in
  // one term would each need the other's grant. Without this rule a group
  // where a majority lost its stores could never elect a leader again.
  if (rebuilding_voters_.empty()) return false;
  size_t granted = 0;
  size_t rejected = 0;
  tracker_.TallyVotes(&granted, &rejected);
  return granted >= 1 && rejected == rebuilding_voters_.size() &&
         granted + rejected == tracker_.voters().size();
}

void Replica::LearnLeaderCommit(Index commit) {
  if (!rebuilding_) return;
  rebuild_commit_ = std::max(rebuild_commit_, commit);
  MaybeFinishRebuild();
}

void Replica::MaybeFinishRebuild() {
  if (!rebuilding_ || rebuild_commit_ == 0 ||
      log_.applied() < rebuild_commit_) {
    return;
  }
  // We hold and applied everything the group had committed when a leader
  // first reached us (and so everything committed before our store was
  // lost): from now on our log votes like any other.
  rebuilding_ = false;
  LOG(INFO) << "raft group=" << options_.group << " node=" << options_.id
            << " rebuilt up to index " << rebuild_commit_ << "; voting again";
}

void Replica::ProbeForLeader() {
  absl::StatusOr<Term> last_term = log_.LastTerm();
  if (!last_term.ok()) {
    MaybeHalt(last_term.status()).IgnoreError();
    return;
  }
  for (NodeId voter : tracker_.voters()) {
    if (voter == options_.id) continue;
    Message m;
    m.set_type(MSG_PRE_VOTE);
    m.set_to(voter);
    m.set_term(term_ + 1);
    m.set_index(log_.LastIndex());
    m.set_log_term(*last_term);
    outbox_.Send(std::move(m));
  }
}

// ---------------------------------------------------------------------------
// Step

absl::Status Replica::Drop(DropReason reason, const Message& m) {
  ++stats_.dropped[static_cast<size_t>(reason)];
  switch (reason) {
    case DropReason::kStaleTerm:
    case DropReason::kLeaseActive:
      return absl::OkStatus();  // normal weather
    case DropReason::kHalted:
      return absl::FailedPreconditionError(
          absl::StrCat("replica halted: ", halt_status_.ToString()));
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "dropped ", MessageType_Name(m.type()), " from ", m.from(), " to ",
          m.to(), " (group ", m.group(), "): ", DropReasonName(reason)));
  }
}

absl::Status Replica::Step(const Message& message) {
  if (halted()) return Drop(DropReason::kHalted, message);
  const DropReason reason =
      CheckMessage(message, options_.id, options_.group, tracker_);
  if (reason != DropReason::kCount) return Drop(reason, message);
  const bool keeps_quiet =
      (message.type() == MSG_HEARTBEAT && message.quiesce()) ||
      message.type() == MSG_HEARTBEAT_RESPONSE;
  if (!keeps_quiet) Wake();
  return MaybeHalt(StepChecked(message));
}

absl::Status Replica::StepChecked(const Message& m) {
  bool done = false;
  RETURN_IF_ERROR(StepByTerm(m, &done));
  if (done) return absl::OkStatus();
  if (IsVoteRequest(m.type())) return HandleVoteRequest(m);
  switch (role_) {
    case Role::kLeader:
      return StepLeader(m);
    case Role::kCandidate:
    case Role::kPreCandidate:
      return StepCandidate(m);
    case Role::kFollower:
      return StepFollower(m);
  }
  return absl::OkStatus();
}

absl::Status Replica::StepByTerm(const Message& m, bool* done) {
  if (m.term() > term_) {
    if (IsVoteRequest(m.type())) {
      const bool forced = m.type() == MSG_VOTE && m.leader_transfer();
      if (!forced && InLease()) {
        // Thesis §4.2.3: a server that hears from a current leader does not
        // update its term or grant its vote.
        *done = true;
        return Drop(DropReason::kLeaseActive, m);
      }
    }
    if (m.type() == MSG_PRE_VOTE || (m.type() == MSG_PRE_VOTE_RESPONSE &&
                                     (!m.reject() || m.rebuilding()))) {
      // Pre-votes never change our term; a granted (or "rebuilding")
      // pre-vote response carries the term we asked for.
    } else {
      // Raft §5.1: a higher term makes us a follower in that term.
      BecomeFollower(m.term(), IsFromLeader(m.type()) ? m.from() : kNoNode);
    }
    return absl::OkStatus();
  }
  if (m.term() < term_) {
    *done = true;
    if ((options_.check_quorum || options_.pre_vote) &&
        (m.type() == MSG_HEARTBEAT || m.type() == MSG_APPEND)) {
      // A deposed leader, or one this node out-termed while partitioned:
      // tell it our term. (With CheckQuorum or Pre-Vote, this node may
      // otherwise never learn the leader's lower term is the live one.)
      Message reply;
      reply.set_type(MSG_APPEND_RESPONSE);
      reply.set_to(m.from());
      outbox_.Send(std::move(reply));
    } else if (IsVoteRequest(m.type())) {
      // Reject explicitly so the candidate learns our term (Figure 2:
      // RequestVote returns currentTerm). Dropped silently, a candidate
      // whose log the group needs may never catch up with the term of a
      // voter that keeps campaigning on its own.
      Message reply;
      reply.set_type(m.type() == MSG_VOTE ? MSG_VOTE_RESPONSE
                                          : MSG_PRE_VOTE_RESPONSE);
      reply.set_to(m.from());
      reply.set_reject(true);
      outbox_.Send(std::move(reply));
    }
    return Drop(DropReason::kStaleTerm, m);
  }
  return absl::OkStatus();
}

absl::Status Replica::StepLeader(const Message& m) {
  Progress* pr = tracker_.Find(m.from());
  switch (m.type()) {
    case MSG_APPEND_RESPONSE:
      if (pr == nullptr || m.index() > log_.LastIndex()) {
        return Drop(
            pr == nullptr ? DropReason::kUnknownPeer : DropReason::kMalformed,
            m);
      }
      return HandleAppendResponse(m, pr);
    case MSG_HEARTBEAT_RESPONSE:
      if (pr == nullptr) return Drop(DropReason::kUnknownPeer, m);
      return HandleHeartbeatResponse(m, pr);
    case MSG_READ_INDEX:
      return HandleReadIndexRequest(m.from(), m.context());
    case MSG_APPEND:
    case MSG_HEARTBEAT:
    case MSG_SNAPSHOT:
      // Another leader in our term would violate Election Safety; only a
      // peer that lost its persisted vote can cause it. Refuse, loudly.
      LOG(ERROR) << "second leader in the same term group=" << options_.group
                 << " term=" << term_ << " from=" << m.from();
      return Drop(DropReason::kMalformed, m);
    default:
      return absl::OkStatus();  // stale responses of an earlier role
  }
}

absl::Status Replica::StepCandidate(const Message& m) {
  const MessageType my_response =
      role_ == Role::kPreCandidate ? MSG_PRE_VOTE_RESPONSE : MSG_VOTE_RESPONSE;
  switch (m.type()) {
    case MSG_APPEND:
      BecomeFollower(m.term(), m.from());  // m.term() == term_: a leader won
      return HandleAppend(m);
    case MSG_HEARTBEAT:
      BecomeFollower(m.term(), m.from());
      return HandleHeartbeat(m);
    case MSG_SNAPSHOT:
      BecomeFollower(m.term(), m.from());
      return HandleSnapshot(m);
    default:
      if (m.type() == my_response) return HandleVoteResponse(m);
      return absl::OkStatus();
  }
}

absl::Status Replica::StepFollower(const Message& m) {
  switch (m.type()) {
    case MSG_APPEND: {
      election_elapsed_ = 0;
      leader_ = m.from();
      RETURN_IF_ERROR(HandleAppend(m));
      LearnLeaderCommit(m.commit());
      return absl::OkStatus();
    }
    case MSG_HEARTBEAT:
      election_elapsed_ = 0;
      leader_ = m.from();
      return HandleHeartbeat(m);
    case MSG_SNAPSHOT: {
      election_elapsed_ = 0;
      leader_ = m.from();
      RETURN_IF_ERROR(HandleSnapshot(m));
      LearnLeaderCommit(m.snapshot().metadata().index());
      return absl::OkStatus();
    }
    case MSG_TIMEOUT_NOW:
      // Thesis §3.10: the leader hands over; campaign now, skipping
      // pre-vote (we know the leader is not partitioned from us).
      return Hup(CampaignType::kTransfer);
    case MSG_READ_INDEX_RESPONSE:
      read_states_.push_back(ReadState{m.index(), m.context()});
      return absl::OkStatus();
    default:
      return absl::OkStatus();
  }
}

// ---------------------------------------------------------------------------
// Follower side

absl::Status Replica::HandleAppend(const Message& m) {
  Message reply;
  reply.set_type(MSG_APPEND_RESPONSE);
  reply.set_to(m.from());
  if (m.index() < log_.committed()) {
    // Everything up to our commit index matches already.
    reply.set_index(log_.committed());
    outbox_.Send(std::move(reply));
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(
      const std::optional<Index> last_new,
      log_.MaybeAppend(m.index(), m.log_term(), m.commit(), m.entries()));
  if (last_new.has_value()) {
    reply.set_index(*last_new);
    outbox_.Send(std::move(reply));
    return absl::OkStatus();
  }
  // Raft §5.3 consistency check failed. Hint the largest (index, term) at
  // which our logs may match: skip our entries with terms above the
  // leader's term at m.index() (fast back-off).
  const Index hint_index = std::min(m.index(), log_.LastIndex());
  ASSIGN_OR_RETURN(const auto hint,
                   log_.FindConflictByTerm(hint_index, m.log_term()));
  reply.set_index(m.index());
  reply.set_reject(true);
  reply.set_reject_hint(hint.first);
  reply.set_log_term(hint.second);
  ++stats_.append_rejects_sent;
  outbox_.Send(std::move(reply));
  return absl::OkStatus();
}

absl::Status Replica::HandleHeartbeat(const Message& m) {
  // The leader sends min(match, commit): never beyond what we hold, unless
  // we lost entries we once acknowledged (wiped or repaired storage). Then
  // say so, so the leader probes us instead of believing its match index.
  const bool lost_entries = m.commit() > log_.LastIndex();
  log_.CommitTo(std::min(m.commit(), log_.LastIndex()));
  if (m.quiesce()) {
    if (log_.committed() == m.commit() &&
        log_.LastIndex() == log_.committed()) {
      quiesced_ = true;
    } else {
      Wake();
    }
  }
  Message reply;
  reply.set_type(MSG_HEARTBEAT_RESPONSE);
  reply.set_to(m.from());
  reply.set_context(m.context());
  if (lost_entries) {
    reply.set_reject(true);
    reply.set_reject_hint(log_.LastIndex());
    reply.set_index(log_.LastIndex());
  }
  outbox_.Send(std::move(reply));
  return absl::OkStatus();
}

absl::Status Replica::HandleSnapshot(const Message& m) {
  ASSIGN_OR_RETURN(const bool restored, Restore(m.snapshot()));
  Message reply;
  reply.set_type(MSG_APPEND_RESPONSE);
  reply.set_to(m.from());
  if (restored) {
    ++stats_.snapshots_restored;
    reply.set_index(log_.LastIndex());
  } else {
    reply.set_index(log_.committed());
  }
  outbox_.Send(std::move(reply));
  return absl::OkStatus();
}

absl::StatusOr<bool> Replica::Restore(const Snapshot& snapshot) {
  CHECK(role_ == Role::kFollower);
  const SnapshotMetadata& md = snapshot.metadata();
  if (md.index() <= log_.committed()) return false;  // old news
  ASSIGN_OR_RETURN(const bool match, log_.MatchTerm(md.index(), md.term()));
  if (match) {
    // We hold the snapshot's last entry: just learn that it is committed.
    log_.CommitTo(md.index());
    return false;
  }
  if (applying_ > log_.applied()) {
    // The host is still applying committed entries of the Ready in flight;
    // their conf changes were proposed against the membership before the
    // snapshot's. Switching now would apply them to the wrong one. Refuse:
    // our reply carries our commit index and the leader sends again.
    return false;
  }
  // Raft §7: discard the log and take the snapshot's state and membership.
  log_.Restore(snapshot);
  tracker_.SetConfState(md.conf_state(), log_.LastIndex());
  return true;
}

// ---------------------------------------------------------------------------
// Leader side

absl::Status Replica::HandleAppendResponse(const Message& m, Progress* pr) {
  pr->set_recent_active(true);
  if (m.reject()) {
    Index next_probe = m.reject_hint();
    if (m.log_term() > 0) {
      // Skip every index where our term is above the follower's term at the
      // hint: a probe there must fail too (see etcd's stepLeader).
      ASSIGN_OR_RETURN(const auto conflict,
                       log_.FindConflictByTerm(m.reject_hint(), m.log_term()));
      next_probe = conflict.first;
    }
    if (pr->MaybeDecrTo(m.index(), next_probe)) {
      if (pr->state() == ProgressState::kReplicate) pr->BecomeProbe();
      return replicator_.SendAppend(m.from());
    }
    return absl::OkStatus();
  }
  const bool updated = pr->MaybeUpdate(m.index());
  if (!updated &&
      !(pr->match() == m.index() && pr->state() == ProgressState::kProbe)) {
    return absl::OkStatus();  // stale
  }
  switch (pr->state()) {
    case ProgressState::kProbe:
      pr->BecomeReplicate();
      break;
    case ProgressState::kSnapshot:
      if (pr->match() + 1 >= log_.FirstIndex()) {
        // The follower can continue from the log (snapshot applied).
        pr->BecomeProbe();
        pr->BecomeReplicate();
      }
      break;
    case ProgressState::kReplicate:
      pr->inflights().FreeLE(m.index());
      break;
  }
  ASSIGN_OR_RETURN(const bool committed, MaybeCommit());
  if (committed) {
    RETURN_IF_ERROR(ReleasePendingReads());
    RETURN_IF_ERROR(SendAfterCommit());
  } else if (!options_.lazy_commit_broadcast &&
             pr->CanBumpCommit(log_.committed())) {
    RETURN_IF_ERROR(replicator_.SendAppend(m.from()));
  }
  // The window may have opened: send what we can without empty messages.
  for (;;) {
    ASSIGN_OR_RETURN(const bool sent,
                     replicator_.MaybeSendAppend(m.from(), false));
    if (!sent) break;
  }
  if (m.from() == lead_transferee_ && pr->match() == log_.LastIndex()) {
    SendTimeoutNow(m.from());
  }
  return absl::OkStatus();
}

absl::Status Replica::HandleHeartbeatResponse(const Message& m, Progress* pr) {
  pr->set_recent_active(true);
  pr->set_flow_paused(false);
  if (m.reject() && m.reject_hint() < pr->match()) {
    // The follower lost entries it had acknowledged: catch it up again.
    ++stats_.followers_lost_entries;
    pr->LostEntries(m.reject_hint());
  }
  // Retry a lost append (or a full window whose messages were all lost).
  if (pr->match() < log_.LastIndex() || pr->state() == ProgressState::kProbe) {
    Wake();
    RETURN_IF_ERROR(replicator_.SendAppend(m.from()));
  }
  if (m.context().empty()) return absl::OkStatus();
  const std::optional<uint64_t> read_id = ReadOnly::DecodeId(m.context());
  if (!read_id.has_value()) return absl::OkStatus();
  const absl::btree_set<NodeId>* acks = read_only_.RecvAck(*read_id, m.from());
  if (acks == nullptr || !tracker_.HasQuorum(*acks)) return absl::OkStatus();
  for (ReadOnly::Request& request : read_only_.Release(*read_id)) {
    AnswerRead(request.from, request.index, std::move(request.context));
  }
  return absl::OkStatus();
}

absl::Status Replica::HandleReadIndexRequest(NodeId from, std::string context) {
  if (read_only_.size() + deferred_reads_.size() >= kPendingReadsMax) {
    return absl::ResourceExhaustedError(
        absl::StrCat(kPendingReadsMax, " ReadIndex requests pending"));
  }
  if (!CommittedEntryInCurrentTerm()) {
    // Thesis §6.4: our commit index is only known to be current once an
    // entry of our term committed.
    deferred_reads_.push_back(DeferredRead{from, std::move(context)});
    return absl::OkStatus();
  }
  if (tracker_.IsSingleton()) {
    AnswerRead(from, log_.committed(), std::move(context));
    return absl::OkStatus();
  }
  const uint64_t read_id =
      read_only_.Add(log_.committed(), from, std::move(context));
  read_only_.RecvAck(read_id, options_.id);
  // One heartbeat round at the next TakeReady confirms every read queued
  // until then.
  read_heartbeat_pending_ = true;
  return absl::OkStatus();
}

void Replica::AnswerRead(NodeId from, Index index, std::string context) {
  ++stats_.read_indexes_served;
  if (from == options_.id) {
    read_states_.push_back(ReadState{index, std::move(context)});
    return;
  }
  Message m;
  m.set_type(MSG_READ_INDEX_RESPONSE);
  m.set_to(from);
  m.set_index(index);
  m.set_context(std::move(context));
  outbox_.Send(std::move(m));
}

absl::Status Replica::ReleasePendingReads() {
  if (deferred_reads_.empty() || !CommittedEntryInCurrentTerm()) {
    return absl::OkStatus();
  }
  std::vector<DeferredRead> reads;
  reads.swap(deferred_reads_);
  for (DeferredRead& read : reads) {
    RETURN_IF_ERROR(HandleReadIndexRequest(read.from, std::move(read.context)));
  }
  return absl::OkStatus();
}

absl::Status Replica::AppendEntry(Entry&& entry) {
  const uint64_t bytes = EntryBytes(entry);
  // An empty uncommitted tail accepts any single entry, so one oversized
  // proposal cannot wedge the group.
  if (uncommitted_bytes_ > 0 && bytes > 0 &&
      uncommitted_bytes_ + bytes > options_.uncommitted_bytes_max) {
    return absl::ResourceExhaustedError(
        absl::StrCat("uncommitted log tail would exceed ",
                     options_.uncommitted_bytes_max, " bytes"));
  }
  uncommitted_bytes_ += bytes;
  entry.set_term(term_);
  entry.set_index(log_.LastIndex() + 1);
  log_.AppendOne(std::move(entry));
  // The leader counts its own copy only once persisted (Advance), and
  // replicates at the next TakeReady, batching a burst of proposals.
  append_pending_ = true;
  return absl::OkStatus();
}

absl::Status Replica::SendAfterCommit() {
  if (!options_.lazy_commit_broadcast) return replicator_.BcastAppend();
  for (const auto& [id, pr] : tracker_.progress()) {
    if (id == options_.id) continue;
    RETURN_IF_ERROR(
        replicator_.MaybeSendAppend(id, /*send_if_empty=*/false).status());
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> Replica::MaybeCommit() {
  // Raft §5.4.2: only an entry of the current term commits by counting
  // replicas; earlier entries commit with it (Log Matching).
  return log_.MaybeCommit(tracker_.Committed(), term_);
}

void Replica::SendTimeoutNow(NodeId to) {
  Message m;
  m.set_type(MSG_TIMEOUT_NOW);
  m.set_to(to);
  outbox_.Send(std::move(m));
}

bool Replica::CommittedEntryInCurrentTerm() const {
  return role_ == Role::kLeader && term_start_index_ > 0 &&
         log_.committed() >= term_start_index_;
}

// ---------------------------------------------------------------------------
// Host API

absl::Status Replica::CheckProposable(bool conf_change) const {
  if (halted()) {
    return absl::FailedPreconditionError(
        absl::StrCat("replica halted: ", halt_status_.ToString()));
  }
  if (role_ != Role::kLeader) return NotLeaderError(leader_, role_);
  if (!tracker_.IsMember(options_.id)) {
    return absl::FailedPreconditionError("this replica left the group");
  }
  if (lead_transferee_ != kNoNode) {
    return absl::UnavailableError(absl::StrCat(
        "leadership transfer to ", lead_transferee_, " in progress"));
  }
  if (conf_change && pending_conf_index_ > log_.applied()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "a configuration change or this leader's first entry (index ",
        pending_conf_index_, ") is not applied yet (applied ", log_.applied(),
        ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Index> Replica::Propose(std::string data) {
  if (absl::Status s = CheckProposable(false); !s.ok()) {
    ++stats_.proposals_refused;
    return s;
  }
  if (data.empty()) {
    ++stats_.proposals_refused;
    return absl::InvalidArgumentError(
        "empty proposals are reserved for leader no-ops");
  }
  Wake();
  Entry entry;
  entry.set_type(ENTRY_NORMAL);
  entry.set_data(std::move(data));
  if (absl::Status s = AppendEntry(std::move(entry)); !s.ok()) {
    ++stats_.proposals_refused;
    return s;
  }
  ++stats_.proposals;
  return log_.LastIndex();
}

absl::StatusOr<Index> Replica::ProposeConfChange(const ConfChange& change) {
  absl::Status s = CheckProposable(true);
  absl::StatusOr<ConfState> next =
      s.ok() ? ApplyConfChangeTo(tracker_.conf_state(), change)
             : absl::StatusOr<ConfState>(s);
  if (!next.ok()) {
    ++stats_.proposals_refused;
    return next.status();
  }
  Wake();
  // Stamp the resulting membership: every replica applies this entry on the
  // same previous membership (one change pending at a time), except a new
  // member replaying the log with none, which adopts it.
  ConfChange stamped = change;
  *stamped.mutable_conf_state() = *std::move(next);
  Entry entry;
  entry.set_type(ENTRY_CONF_CHANGE);
  entry.set_data(stamped.SerializeAsString());
  if (s = AppendEntry(std::move(entry)); !s.ok()) {
    ++stats_.proposals_refused;
    return s;
  }
  pending_conf_index_ = log_.LastIndex();
  ++stats_.proposals;
  return pending_conf_index_;
}

absl::StatusOr<ConfState> Replica::ApplyConfChange(const ConfChange& change) {
  if (halted()) {
    return absl::FailedPreconditionError(
        absl::StrCat("replica halted: ", halt_status_.ToString()));
  }
  const ConfState& current = tracker_.conf_state();
  ConfState next;
  if (current.voters().empty() && current.learners().empty() &&
      change.has_conf_state()) {
    // A new member replaying the log: it never saw the bootstrap membership.
    next = NormalizeConfState(change.conf_state());
    if (absl::Status s = ValidateConfState(next);
        !s.ok() || next.voters().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "conf change carries an invalid membership ", ConfStateString(next)));
    }
  } else {
    ASSIGN_OR_RETURN(next, ApplyConfChangeTo(current, change));
    if (change.has_conf_state()) {
      const ConfState stamped = NormalizeConfState(change.conf_state());
      CHECK(ConfStateString(stamped) == ConfStateString(next))
          << "conf change " << ConfChangeString(change) << " applied to "
          << ConfStateString(current) << " gives " << ConfStateString(next)
          << " but the leader computed " << ConfStateString(stamped);
    }
  }
  RETURN_IF_ERROR(MaybeHalt(SwitchToConfig(next)));
  return next;
}

absl::Status Replica::SwitchToConfig(const ConfState& cs) {
  tracker_.SetConfState(cs, log_.LastIndex());
  const Progress* self = tracker_.Find(options_.id);
  if (role_ != Role::kLeader) return absl::OkStatus();
  if (self == nullptr || self->learner()) {
    // Removed or demoted: stop leading; the remaining voters elect anew.
    BecomeFollower(term_, kNoNode);
    return absl::OkStatus();
  }
  if (lead_transferee_ != kNoNode && !tracker_.IsVoter(lead_transferee_)) {
    lead_transferee_ = kNoNode;
  }
  // The quorum changed: more may be committed now.
  ASSIGN_OR_RETURN(const bool committed, MaybeCommit());
  if (committed) {
    RETURN_IF_ERROR(ReleasePendingReads());
    return SendAfterCommit();
  }
  for (const auto& [id, pr] : tracker_.progress()) {
    if (id == options_.id) continue;
    RETURN_IF_ERROR(
        replicator_.MaybeSendAppend(id, false).status());  // probe new ones
  }
  return absl::OkStatus();
}

absl::Status Replica::TransferLeadership(NodeId to) {
  if (halted()) {
    return absl::FailedPreconditionError(
        absl::StrCat("replica halted: ", halt_status_.ToString()));
  }
  if (role_ != Role::kLeader) return NotLeaderError(leader_, role_);
  if (to == options_.id || to == lead_transferee_) return absl::OkStatus();
  if (!tracker_.IsVoter(to)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot transfer leadership to ", to, ": not a voter of the group"));
  }
  Wake();
  ++stats_.transfers_started;
  // The transfer must finish within an election timeout (TickHeartbeat).
  election_elapsed_ = 0;
  lead_transferee_ = to;
  if (tracker_.Find(to)->match() == log_.LastIndex()) {
    SendTimeoutNow(to);
    return absl::OkStatus();
  }
  return MaybeHalt(replicator_.SendAppend(to));
}

absl::Status Replica::ReadIndex(std::string context) {
  if (halted()) {
    return absl::FailedPreconditionError(
        absl::StrCat("replica halted: ", halt_status_.ToString()));
  }
  Wake();
  if (role_ == Role::kLeader) {
    return MaybeHalt(HandleReadIndexRequest(options_.id, std::move(context)));
  }
  if (leader_ == kNoNode) return NotLeaderError(leader_, role_);
  Message m;
  m.set_type(MSG_READ_INDEX);
  m.set_to(leader_);
  m.set_context(std::move(context));
  outbox_.Send(std::move(m));
  return absl::OkStatus();
}

absl::Status Replica::Campaign() {
  if (halted()) {
    return absl::FailedPreconditionError(
        absl::StrCat("replica halted: ", halt_status_.ToString()));
  }
  if (role_ == Role::kLeader) {
    return absl::FailedPreconditionError("already the leader");
  }
  Wake();
  absl::StatusOr<bool> can = CanCampaign();
  if (!can.ok()) return MaybeHalt(can.status());
  if (!*can) {
    return absl::FailedPreconditionError(
        "cannot campaign: not a voter, snapshot pending, votes withheld "
        "after a start without state, or committed configuration changes "
        "not applied yet");
  }
  return MaybeHalt(StartCampaign(options_.pre_vote ? CampaignType::kPreElection
                                                   : CampaignType::kElection));
}

void Replica::ReportUnreachable(NodeId node) {
  if (role_ != Role::kLeader) return;
  Progress* pr = tracker_.Find(node);
  // Pipelined appends were probably lost: probe until it answers.
  if (pr != nullptr && pr->state() == ProgressState::kReplicate) {
    pr->BecomeProbe();
  }
}

void Replica::ReportSnapshot(NodeId node, bool ok) {
  if (role_ != Role::kLeader) return;
  Progress* pr = tracker_.Find(node);
  if (pr == nullptr || pr->state() != ProgressState::kSnapshot) return;
  if (ok) {
    pr->BecomeProbe();
  } else {
    pr->SnapshotFailed();
  }
  // Wait for the follower's answer (or a heartbeat) before sending more.
  pr->set_flow_paused(true);
}

// ---------------------------------------------------------------------------
// Ticks and quiescence

void Replica::Tick() {
  if (halted()) return;
  Wake();
  if (votes_withheld_left_ > 0) --votes_withheld_left_;
  if (role_ == Role::kLeader) {
    TickHeartbeat();
  } else {
    TickElection();
  }
}

void Replica::TickElection() {
  ++election_elapsed_;
  const bool promotable =
      tracker_.IsVoter(options_.id) && !log_.HasPendingSnapshot();
  if (!promotable || election_elapsed_ < randomized_election_timeout_) return;
  election_elapsed_ = 0;
  if (rebuilding_) {
    ProbeForLeader();
    return;
  }
  // A storage error halts the replica; the host sees halted().
  MaybeHalt(Hup(options_.pre_vote ? CampaignType::kPreElection
                                  : CampaignType::kElection))
      .IgnoreError();
}

void Replica::TickHeartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= options_.election_ticks) {
    election_elapsed_ = 0;
    if (options_.check_quorum) {
      if (!tracker_.QuorumActive()) {
        // Thesis §6.2: a leader that cannot reach a quorum steps down, so
        // clients look for the leader elsewhere.
        ++stats_.check_quorum_step_downs;
        BecomeFollower(term_, kNoNode);
        return;
      }
      for (auto& [id, pr] : tracker_.mutable_progress()) {
        if (id != options_.id) pr.set_recent_active(false);
      }
    }
    // A transfer that did not finish within an election timeout is dropped.
    lead_transferee_ = kNoNode;
  }
  if (heartbeat_elapsed_ >= options_.heartbeat_ticks) {
    heartbeat_elapsed_ = 0;
    replicator_.BcastHeartbeat(read_only_.empty()
                                   ? std::string()
                                   : ReadOnly::EncodeId(read_only_.last_id()),
                               /*quiesce=*/false);
  }
}

void Replica::ResetRandomizedElectionTimeout() {
  randomized_election_timeout_ =
      options_.election_ticks +
      static_cast<int>(prng_.Uniform(options_.election_ticks));
}

bool Replica::Quiescent() const {
  if (role_ != Role::kLeader || halted() || lead_transferee_ != kNoNode ||
      !read_only_.empty() || !deferred_reads_.empty() || append_pending_ ||
      !outbox_.empty() || ready_in_flight_ ||
      !log_.unstable().entries().empty()) {
    return false;
  }
  const Index last = log_.LastIndex();
  if (log_.committed() != last || log_.applied() != last ||
      !CommittedEntryInCurrentTerm() || pending_conf_index_ > log_.applied()) {
    return false;
  }
  for (const auto& [id, pr] : tracker_.progress()) {
    if (pr.match() != last) return false;
    if (id != options_.id && pr.state() != ProgressState::kReplicate) {
      return false;
    }
  }
  return true;
}

void Replica::Quiesce() {
  CHECK(Quiescent()) << "Quiesce on a replica that is not quiescent";
  quiesced_ = true;
  // Tell followers; they stop being ticked once caught up.
  replicator_.BcastHeartbeat(std::string(), /*quiesce=*/true);
}

void Replica::Wake() {
  if (!quiesced_) return;
  quiesced_ = false;
  // Restart the timers: a follower waits a full election timeout for the
  // leader to speak, and a leader does not blame followers for the silence.
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  if (role_ == Role::kLeader) {
    for (auto& [id, pr] : tracker_.mutable_progress()) {
      pr.set_recent_active(true);
    }
  }
}

// ---------------------------------------------------------------------------
// Ready

HardState Replica::CurrentHardState() const {
  HardState hs;
  hs.set_term(term_);
  hs.set_vote(vote_);
  hs.set_commit(log_.committed());
  return hs;
}

bool Replica::HasReady() const {
  if (ready_in_flight_) return false;
  const Unstable& unstable = log_.unstable();
  return append_pending_ || read_heartbeat_pending_ || !outbox_.empty() ||
         !read_states_.empty() || !unstable.entries().empty() ||
         unstable.snapshot().has_value() ||
         !SameHardState(CurrentHardState(), prev_hard_state_) ||
         CurrentSoftState() != prev_soft_state_ ||
         (!halted() && log_.HasCommittedAfter(applying_));
}

Ready Replica::TakeReady() {
  CHECK(!ready_in_flight_) << "TakeReady before Advance of the previous one";
  if (append_pending_) {
    append_pending_ = false;
    // A storage error halts the replica; the host sees halted().
    if (role_ == Role::kLeader) {
      MaybeHalt(replicator_.BcastAppend()).IgnoreError();
    }
  }
  if (read_heartbeat_pending_) {
    read_heartbeat_pending_ = false;
    if (role_ == Role::kLeader && !read_only_.empty()) {
      replicator_.BcastHeartbeat(ReadOnly::EncodeId(read_only_.last_id()),
                                 /*quiesce=*/false);
    }
  }
  Ready ready;
  const Unstable& unstable = log_.unstable();
  ready.entries.assign(unstable.entries().begin(), unstable.entries().end());
  if (unstable.snapshot().has_value()) ready.snapshot = *unstable.snapshot();
  const HardState hs = CurrentHardState();
  CHECK_LE(hs.commit(), log_.LastIndex()) << "commit beyond the last index";
  const bool vote_changed = hs.term() != prev_hard_state_.term() ||
                            hs.vote() != prev_hard_state_.vote();
  if (!SameHardState(hs, prev_hard_state_)) ready.hard_state = hs;
  if (CurrentSoftState() != prev_soft_state_) {
    ready.soft_state = CurrentSoftState();
  }
  outbox_.TakeAll(&ready.messages);
  ready.read_states.swap(read_states_);
  if (!halted() && log_.HasCommittedAfter(applying_)) {
    // Every unstable entry is in this Ready, so what commits here is
    // persisted before the host applies it.
    absl::Status s = log_.CommittedAfter(
        applying_, options_.committed_bytes_max, &ready.committed_entries);
    if (!s.ok()) {
      MaybeHalt(s).IgnoreError();  // halted(): the host stops the group
      ready.committed_entries.clear();
    }
  }
  ready.must_sync =
      !ready.entries.empty() || ready.snapshot.has_value() || vote_changed;
  verify_vote_on_advance_ = vote_changed;
  prev_hard_state_ = hs;
  prev_soft_state_ = CurrentSoftState();
  CheckVotesPersisted(ready);
  if (!ready.committed_entries.empty()) {
    applying_ = ready.committed_entries.back().index();
  }
  ready_in_flight_ = true;
  return ready;
}

void Replica::CheckVotesPersisted(const Ready& ready) const {
  // Raft §5.2 / thesis §3.8: a vote leaves only with (or after) the term and
  // vote that back it; after a crash the node cannot vote again in that term.
  // prev_hard_state_ is what the host holds once this Ready is persisted.
  const HardState& durable = prev_hard_state_;
  for (const Message& m : ready.messages) {
    NodeId voted_for = kNoNode;
    if (m.type() == MSG_VOTE) {
      voted_for = options_.id;
    } else if (m.type() == MSG_VOTE_RESPONSE && !m.reject()) {
      voted_for = m.to();
    } else {
      continue;
    }
    CHECK(durable.term() > m.term() ||
          (durable.term() == m.term() && durable.vote() == voted_for))
        << "vote for " << voted_for << " in term " << m.term()
        << " sent without persisting it (persisted term " << durable.term()
        << " vote " << durable.vote() << ")";
  }
}

void Replica::Advance(const Ready& ready) {
  CHECK(ready_in_flight_) << "Advance without TakeReady";
  ready_in_flight_ = false;
  if (ready.snapshot.has_value()) {
    const Index index = ready.snapshot->metadata().index();
    log_.StableSnapTo(index);
    if (index > log_.applied()) log_.AppliedTo(index);
    applying_ = std::max(applying_, index);
  }
  if (!ready.entries.empty()) {
    const Entry& last = ready.entries.back();
    CHECK_GE(reader_->LastIndex(), last.index())
        << "Advance before the Ready's entries were persisted";
    log_.StableTo(last.index(), last.term());
  }
  if (!ready.committed_entries.empty()) {
    log_.AppliedTo(ready.committed_entries.back().index());
    if (role_ == Role::kLeader) {
      uint64_t bytes = 0;
      for (const Entry& e : ready.committed_entries) bytes += EntryBytes(e);
      uncommitted_bytes_ -= std::min(bytes, uncommitted_bytes_);
    }
  }
  MaybeFinishRebuild();
  if (verify_vote_on_advance_) {
    verify_vote_on_advance_ = false;
    // Cheap enough on elections only: the vote must be on disk by now.
    absl::StatusOr<InitialState> persisted = reader_->LoadInitialState();
    if (!persisted.ok()) {
      MaybeHalt(persisted.status()).IgnoreError();
      return;
    }
    CHECK(persisted->hard_state.term() == ready.hard_state->term() &&
          persisted->hard_state.vote() == ready.hard_state->vote())
        << "Advance before the Ready's hard state was persisted";
  }
  if (role_ == Role::kLeader && !log_.HasPendingSnapshot()) {
    // The leader counts itself only after its own durable write (DESIGN §6).
    Progress* self = tracker_.Find(options_.id);
    if (self != nullptr && self->MaybeUpdate(log_.PersistedLastIndex())) {
      absl::StatusOr<bool> committed = MaybeCommit();
      absl::Status s = committed.status();
      if (s.ok() && *committed) {
        s = ReleasePendingReads();
        if (s.ok()) s = SendAfterCommit();
      }
      MaybeHalt(s).IgnoreError();  // halted(): the host stops the group
    }
  }
}

// ---------------------------------------------------------------------------
// Plumbing

absl::Status Replica::MaybeHalt(absl::Status status) {
  if (status.ok() || halted()) return status;
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kResourceExhausted:
      return status;  // answers about the input, not about our storage
    default:
      break;
  }
  LOG(ERROR) << "raft replica halted group=" << options_.group
             << " node=" << options_.id << " term=" << term_ << ": " << status;
  halt_status_ = status;
  BecomeFollower(term_, kNoNode);
  return status;
}

ReplicaStatus Replica::Status() const {
  ReplicaStatus status;
  status.id = options_.id;
  status.group = options_.group;
  status.role = role_;
  status.term = term_;
  status.vote = vote_;
  status.leader = leader_;
  status.commit = log_.committed();
  status.applied = log_.applied();
  status.first_index = log_.FirstIndex();
  status.last_index = log_.LastIndex();
  status.lead_transferee = lead_transferee_;
  status.quiesced = quiesced_;
  status.halted = halted();
  status.halt_status = halt_status_;
  status.conf_state = tracker_.conf_state();
  if (role_ == Role::kLeader) {
    for (const auto& [id, pr] : tracker_.progress()) {
      if (id == options_.id) continue;
      status.peers.push_back(PeerStatus{id, pr.match(), pr.next(), pr.state(),
                                        pr.learner(), pr.recent_active(),
                                        pr.inflights().count()});
    }
  }
  return status;
}

}  // namespace spate::raft
