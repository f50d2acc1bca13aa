#include "server/raft_group.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/check.h"

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
                     std::unique_ptr<raft::Replica> replica)
    : log_(std::move(log)), replica_(std::move(replica)) {}

absl::StatusOr<std::unique_ptr<RaftGroup>> RaftGroup::Open(
    storage::Kv* kv, const raft::ReplicaOptions& options) {
  absl::StatusOr<std::unique_ptr<storage::LogStore>> log =
      storage::LogStore::Open(kv, options.group);
  if (!log.ok()) return log.status();
  absl::StatusOr<std::unique_ptr<raft::Replica>> replica =
      raft::Replica::Create(options, log->get());
  if (!replica.ok()) return replica.status();
  std::unique_ptr<RaftGroup> group(
      new RaftGroup(*std::move(log), *std::move(replica)));
  group->applied_index_ = options.applied;
  return group;
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
}

void RaftGroup::OnSoftState(const raft::SoftState& state) {
  if (state.role == raft::Role::kLeader) {
    // The leader's no-op for its term is the last entry right now.
    term_start_index_ = replica_->log().LastIndex();
  } else {
    term_start_index_ = 0;
    FailAll(absl::UnavailableError("leadership changed; retry"));
  }
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

void RaftGroup::MaybeStartServing() {
  if (serving_waiters_.empty() || !serving()) return;
  std::vector<ServingWaiter> ready;
  ready.swap(serving_waiters_);
  for (ServingWaiter& waiter : ready) waiter.done(absl::OkStatus());
}

void RaftGroup::ExpireServingWaiters(int64_t now_ns) {
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
}

}  // namespace spate::server
