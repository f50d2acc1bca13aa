#include "server/raft_group.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/log.h"

namespace spate::server {
namespace {

absl::Status NotLeaderStatus(const absl::Status& status) {
  std::optional<raft::NodeId> hint = raft::LeaderHint(status);
  return absl::UnavailableError(absl::StrCat(
      "not the leader",
      hint ? absl::StrCat(" (leader is node ", *hint, ")") : "", "; retry"));
}

}  // namespace

RaftGroup::RaftGroup(std::unique_ptr<storage::LogStore> log,
                     std::unique_ptr<GroupLogReader> reader)
    : log_(std::move(log)), reader_(std::move(reader)) {}

absl::StatusOr<std::unique_ptr<RaftGroup>> RaftGroup::Open(
    storage::Kv* kv, const raft::ReplicaOptions& options,
    SnapshotMaker snapshot_maker) {
  absl::StatusOr<std::unique_ptr<storage::LogStore>> log =
      storage::LogStore::Open(kv, options.group);
  if (!log.ok()) return log.status();
  auto reader =
      std::make_unique<GroupLogReader>(log->get(), std::move(snapshot_maker));
  std::unique_ptr<RaftGroup> group(
      new RaftGroup(*std::move(log), std::move(reader)));
  absl::StatusOr<std::unique_ptr<raft::Replica>> replica =
      raft::Replica::Create(options, group->reader_.get());
  if (!replica.ok()) return replica.status();
  group->replica_ = *std::move(replica);
  group->applied_index_ = options.applied;
  return group;
}

void RaftGroup::Tick(int quiesce_after_ticks) {
  if (replica_->quiesced()) return;
  // Checked before ticking: the last Ready round drained the outbox, while
  // a tick may queue a heartbeat that would make the leader look busy.
  if (replica_->Quiescent()) {
    if (++quiescent_ticks_ >= quiesce_after_ticks) {
      replica_->Quiesce();
      quiescent_ticks_ = 0;
      return;
    }
  } else {
    quiescent_ticks_ = 0;
  }
  replica_->Tick();
}

void RaftGroup::WakeIfLedBy(raft::NodeId node) {
  if (replica_->quiesced() && replica_->leader() == node) replica_->Tick();
}

void RaftGroup::AppliedSnapshot(raft::Index index) {
  applied_index_ = std::max(applied_index_, index);
  while (!waiters_.empty() && waiters_.begin()->first <= index) {
    auto node = waiters_.extract(waiters_.begin());
    node.mapped().done(ApplyOutcome{absl::UnavailableError(
        "replaced by a snapshot before the outcome was known; retry")});
  }
  MaybeStartServing();
  if (!read_waiters_.empty()) RunReadWaiters();
}

void RaftGroup::Propose(std::string data, ProposalDone done) {
  absl::StatusOr<raft::Index> index = replica_->Propose(std::move(data));
  if (!index.ok()) {
    absl::Status status = index.status();
    if (absl::IsFailedPrecondition(status)) status = NotLeaderStatus(status);
    done(ApplyOutcome{status});
    return;
  }
  CHECK(!waiters_.contains(*index)) << "index proposed twice: " << *index;
  waiters_.emplace(*index, Waiter{replica_->term(), std::move(done)});
}

void RaftGroup::Applied(raft::Index index, raft::Term term,
                        const ApplyOutcome& outcome) {
  CHECK_GT(index, applied_index_);
  applied_index_ = index;
  while (!waiters_.empty() && waiters_.begin()->first <= index) {
    auto node = waiters_.extract(waiters_.begin());
    Waiter& waiter = node.mapped();
    if (node.key() == index && waiter.term == term) {
      waiter.done(outcome);
    } else {
      waiter.done(ApplyOutcome{absl::UnavailableError(
          "leadership changed before the command committed; retry")});
    }
  }
  MaybeStartServing();
  if (!read_waiters_.empty()) RunReadWaiters();
}

void RaftGroup::OnSoftState(const raft::SoftState& state) {
  LOG(INFO) << "raft role changed group=" << id()
            << " role=" << raft::RoleName(state.role)
            << " leader=" << state.leader << " term=" << replica_->term();
  known_leader_ = state.leader;
  known_role_ = state.role;
  if (state.role == raft::Role::kLeader) {
    // The leader's no-op for its term is the last entry right now.
    term_start_index_ = replica_->log().LastIndex();
  } else {
    term_start_index_ = 0;
    // Proposals of the lost term may never commit; serving waiters and
    // read barriers carry on (they can be forwarded or confirmed).
    absl::btree_map<raft::Index, Waiter> waiters;
    waiters.swap(waiters_);
    for (auto& [index, waiter] : waiters) {
      waiter.done(
          ApplyOutcome{absl::UnavailableError("leadership changed; retry")});
    }
  }
  MaybeStartServing();
}

bool RaftGroup::serving() const {
  return leader() && term_start_index_ > 0 &&
         applied_index_ >= term_start_index_;
}

void RaftGroup::WhenServing(int64_t deadline_ns, ServingDone done) {
  if (serving()) {
    done(absl::OkStatus());
    return;
  }
  serving_waiters_.push_back({deadline_ns, std::move(done)});
}

void RaftGroup::WhenRoutable(int64_t deadline_ns, ServingDone done) {
  const raft::NodeId leader = replica_->leader();
  if (serving() || (leader != raft::kNoNode && leader != replica_->id())) {
    done(absl::OkStatus());
    return;
  }
  serving_waiters_.push_back({deadline_ns, std::move(done), true});
}

void RaftGroup::MaybeStartServing() {
  if (serving_waiters_.empty()) return;
  const raft::NodeId leader = replica_->leader();
  const bool remote = leader != raft::kNoNode && leader != replica_->id();
  const bool serving_now = serving();
  if (!serving_now && !remote) return;
  std::vector<ServingWaiter> ready;
  std::vector<ServingWaiter> keep;
  for (ServingWaiter& waiter : serving_waiters_) {
    (serving_now || waiter.routable ? ready : keep)
        .push_back(std::move(waiter));
  }
  serving_waiters_.swap(keep);
  for (ServingWaiter& waiter : ready) waiter.done(absl::OkStatus());
}

void RaftGroup::ReadBarrier(int64_t deadline_ns, ServingDone done) {
  const uint64_t context = next_read_context_++;
  absl::Status status = replica_->ReadIndex(absl::StrCat(context));
  if (!status.ok()) {
    done(absl::UnavailableError(absl::StrCat("group ", id(),
                                             " cannot confirm its state now (",
                                             status.message(), "); retry")));
    return;
  }
  read_waiters_.emplace(context, ReadWaiter{deadline_ns, 0, std::move(done)});
}

void RaftGroup::OnReadStates(const std::vector<raft::ReadState>& states) {
  for (const raft::ReadState& state : states) {
    uint64_t context = 0;
    if (!absl::SimpleAtoi(state.context, &context)) continue;
    auto it = read_waiters_.find(context);
    if (it != read_waiters_.end()) it->second.index = state.index;
  }
  RunReadWaiters();
}

void RaftGroup::RunReadWaiters() {
  for (auto it = read_waiters_.begin(); it != read_waiters_.end();) {
    if (it->second.index != 0 && applied_index_ >= it->second.index) {
      ServingDone done = std::move(it->second.done);
      it = read_waiters_.erase(it);
      done(absl::OkStatus());
    } else {
      ++it;
    }
  }
}

void RaftGroup::ExpireServingWaiters(int64_t now_ns) {
  for (auto it = read_waiters_.begin(); it != read_waiters_.end();) {
    if (it->second.deadline_ns <= now_ns) {
      ServingDone done = std::move(it->second.done);
      it = read_waiters_.erase(it);
      done(absl::UnavailableError(absl::StrCat(
          "group ", id(), " could not confirm its state in time; retry")));
    } else {
      ++it;
    }
  }
  if (serving_waiters_.empty()) return;
  std::vector<ServingWaiter> keep;
  std::vector<ServingWaiter> expired;
  for (ServingWaiter& waiter : serving_waiters_) {
    (waiter.deadline_ns <= now_ns ? expired : keep)
        .push_back(std::move(waiter));
  }
  serving_waiters_.swap(keep);
  for (ServingWaiter& waiter : expired) {
    waiter.done(absl::UnavailableError(absl::StrCat(
        "group ", id(), " has no leader serving yet (no quorum?); retry")));
  }
}

void RaftGroup::FailAll(const absl::Status& status) {
  absl::btree_map<raft::Index, Waiter> waiters;
  waiters.swap(waiters_);
  for (auto& [index, waiter] : waiters) waiter.done(ApplyOutcome{status});
  std::vector<ServingWaiter> serving;
  serving.swap(serving_waiters_);
  for (ServingWaiter& waiter : serving) waiter.done(status);
  absl::btree_map<uint64_t, ReadWaiter> reads;
  reads.swap(read_waiters_);
  for (auto& [context, waiter] : reads) waiter.done(status);
}

}  // namespace spate::server
