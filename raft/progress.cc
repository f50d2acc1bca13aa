#include "raft/progress.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/check.h"

namespace spate::raft {

const char* ProgressStateName(ProgressState state) {
  switch (state) {
    case ProgressState::kProbe:
      return "probe";
    case ProgressState::kReplicate:
      return "replicate";
    case ProgressState::kSnapshot:
      return "snapshot";
  }
  return "?";
}

Progress::Progress(Index next, size_t inflight_msgs_max,
                   uint64_t inflight_bytes_max, bool learner)
    : next_(next),
      learner_(learner),
      inflights_(inflight_msgs_max, inflight_bytes_max) {
  CHECK_GE(next, 1u);
}

void Progress::ResetState(ProgressState state) {
  flow_paused_ = false;
  pending_snapshot_ = 0;
  state_ = state;
  inflights_.Reset();
}

void Progress::ResetTo(Index match, Index next) {
  CHECK_LT(match, next);
  match_ = match;
  next_ = next;
  sent_commit_ = 0;
}

void Progress::BecomeProbe() {
  // From snapshot, resume after whatever the follower is known to have, at
  // least the snapshot it was sent (it may have applied it; a rejection
  // will move next back if not).
  const Index floor =
      state_ == ProgressState::kSnapshot ? pending_snapshot_ : 0;
  ResetState(ProgressState::kProbe);
  next_ = std::max(match_ + 1, floor + 1);
  sent_commit_ = std::min(sent_commit_, next_ - 1);
}

void Progress::LostEntries(Index last_index) {
  CHECK_LT(last_index, match_);
  ResetState(ProgressState::kProbe);
  ResetTo(last_index, last_index + 1);
}

void Progress::BecomeReplicate() {
  ResetState(ProgressState::kReplicate);
  next_ = match_ + 1;
}

void Progress::BecomeSnapshot(Index snapshot_index) {
  CHECK_GT(snapshot_index, 0u);
  ResetState(ProgressState::kSnapshot);
  pending_snapshot_ = snapshot_index;
  next_ = snapshot_index + 1;
  sent_commit_ = snapshot_index;
}

void Progress::SnapshotFailed() {
  CHECK(state_ == ProgressState::kSnapshot);
  // Forget the snapshot first, or probing would resume after it.
  pending_snapshot_ = 0;
  BecomeProbe();
}

void Progress::SentEntries(size_t entries, uint64_t bytes) {
  switch (state_) {
    case ProgressState::kReplicate:
      if (entries > 0) {
        next_ += entries;
        inflights_.Add(next_ - 1, bytes);
      }
      flow_paused_ = inflights_.Full();
      break;
    case ProgressState::kProbe:
      // One probe at a time: wait for the answer (or the next heartbeat).
      if (entries > 0) flow_paused_ = true;
      break;
    case ProgressState::kSnapshot:
      CHECK(false) << "sending entries to a follower in snapshot state";
  }
}

bool Progress::MaybeUpdate(Index index) {
  if (index <= match_) return false;
  match_ = index;
  next_ = std::max(next_, index + 1);
  flow_paused_ = false;
  return true;
}

bool Progress::MaybeDecrTo(Index rejected, Index match_hint) {
  if (state_ == ProgressState::kReplicate) {
    // A rejection at or below match is stale (sent before a later ack).
    if (rejected <= match_) return false;
    next_ = match_ + 1;
    sent_commit_ = std::min(sent_commit_, next_ - 1);
    return true;
  }
  // Probes go one at a time, so a rejection of anything but next-1 is stale.
  if (next_ - 1 != rejected) return false;
  next_ = std::max(std::min(rejected, match_hint + 1), match_ + 1);
  sent_commit_ = std::min(sent_commit_, next_ - 1);
  flow_paused_ = false;
  return true;
}

bool Progress::IsPaused() const {
  switch (state_) {
    case ProgressState::kProbe:
    case ProgressState::kReplicate:
      return flow_paused_;
    case ProgressState::kSnapshot:
      return true;
  }
  return true;
}

std::string Progress::DebugString() const {
  std::string out = absl::StrCat(ProgressStateName(state_), " match=", match_,
                                 " next=", next_);
  if (learner_) absl::StrAppend(&out, " learner");
  if (flow_paused_) absl::StrAppend(&out, " paused");
  if (pending_snapshot_ > 0) {
    absl::StrAppend(&out, " pending_snap=", pending_snapshot_);
  }
  if (!recent_active_) absl::StrAppend(&out, " inactive");
  if (inflights_.count() > 0) {
    absl::StrAppend(&out, " inflight=", inflights_.count());
    if (inflights_.Full()) absl::StrAppend(&out, "[full]");
  }
  return out;
}

}  // namespace spate::raft
