#include "raft/progress_tracker.h"

#include <algorithm>

#include "absl/container/inlined_vector.h"
#include "base/check.h"
#include "raft/conf_change.h"

namespace spate::raft {

ProgressTracker::ProgressTracker(size_t inflight_msgs_max,
                                 uint64_t inflight_bytes_max)
    : inflight_msgs_max_(inflight_msgs_max),
      inflight_bytes_max_(inflight_bytes_max) {}

void ProgressTracker::SetConfState(const ConfState& cs, Index last_index) {
  const Index next_index = std::max<Index>(last_index, 1);
  CHECK_OK(ValidateConfState(cs));
  conf_state_ = NormalizeConfState(cs);
  voters_.clear();
  voters_.insert(conf_state_.voters().begin(), conf_state_.voters().end());
  absl::btree_set<NodeId> learners(conf_state_.learners().begin(),
                                   conf_state_.learners().end());
  // Drop members that left.
  for (auto it = progress_.begin(); it != progress_.end();) {
    if (!voters_.contains(it->first) && !learners.contains(it->first)) {
      it = progress_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto* ids : {&voters_, &learners}) {
    const bool learner = ids == &learners;
    for (NodeId id : *ids) {
      auto it = progress_.find(id);
      if (it == progress_.end()) {
        it = progress_
                 .emplace(id, Progress(next_index, inflight_msgs_max_,
                                       inflight_bytes_max_, learner))
                 .first;
        it->second.set_recent_active(true);
      }
      it->second.set_learner(learner);
    }
  }
  for (auto it = votes_.begin(); it != votes_.end();) {
    it = voters_.contains(it->first) ? std::next(it) : votes_.erase(it);
  }
}

Progress* ProgressTracker::Find(NodeId id) {
  auto it = progress_.find(id);
  return it == progress_.end() ? nullptr : &it->second;
}

const Progress* ProgressTracker::Find(NodeId id) const {
  auto it = progress_.find(id);
  return it == progress_.end() ? nullptr : &it->second;
}

void ProgressTracker::ResetProgress(NodeId self, Index self_match,
                                    Index next_index) {
  for (auto& [id, pr] : progress_) {
    pr = Progress(next_index, inflight_msgs_max_, inflight_bytes_max_,
                  pr.learner());
    if (id == self) pr.ResetTo(self_match, next_index);
  }
}

Index ProgressTracker::Committed() const {
  absl::InlinedVector<Index, 7> matches;
  for (NodeId id : voters_) matches.push_back(progress_.at(id).match());
  return MajorityCommitted(matches);
}

bool ProgressTracker::QuorumActive() const {
  absl::btree_set<NodeId> active;
  for (NodeId id : voters_) {
    if (progress_.at(id).recent_active()) active.insert(id);
  }
  return HasQuorum(active);
}

bool ProgressTracker::HasQuorum(const absl::btree_set<NodeId>& acks) const {
  size_t granted = 0;
  for (NodeId id : voters_) granted += acks.contains(id) ? 1 : 0;
  return !voters_.empty() && granted >= MajoritySize(voters_.size());
}

void ProgressTracker::RecordVote(NodeId id, bool granted) {
  if (!voters_.contains(id)) return;
  // The first answer counts: a voter votes at most once per term (§5.2).
  votes_.emplace(id, granted);
}

VoteResult ProgressTracker::TallyVotes(size_t* granted,
                                       size_t* rejected) const {
  size_t yes = 0;
  size_t no = 0;
  for (const auto& [id, vote] : votes_) {
    DCHECK(voters_.contains(id));
    (vote ? yes : no) += 1;
  }
  if (granted != nullptr) *granted = yes;
  if (rejected != nullptr) *rejected = no;
  return MajorityVote(voters_.size(), yes, no);
}

}  // namespace spate::raft
