#include "raft/replicator.h"

#include <algorithm>
#include <utility>

#include "base/check.h"
#include "base/status_macros.h"

namespace spate::raft {

void Outbox::Send(Message m) {
  CHECK(m.to() != kNoNode && m.to() != self_)
      << "message to " << m.to() << " from " << self_;
  m.set_group(group_);
  m.set_from(self_);
  if (m.term() == 0) m.set_term(*term_);
  messages_.push_back(std::move(m));
}

void Outbox::TakeAll(std::vector<Message>* out) {
  CHECK(out->empty());
  out->swap(messages_);
}

absl::StatusOr<bool> Replicator::MaybeSendAppend(NodeId to,
                                                 bool send_if_empty) {
  Progress* pr = tracker_->Find(to);
  CHECK(pr != nullptr);
  if (pr->IsPaused()) return false;
  const Index prev_index = pr->next() - 1;
  absl::StatusOr<Term> prev_term = log_->TermAt(prev_index);
  if (!prev_term.ok()) {
    if (!IsBenignLogError(prev_term.status())) return prev_term.status();
    return MaybeSendSnapshot(to, pr);  // compacted: catch up by snapshot
  }
  std::vector<Entry>& entries = scratch_;  // reused: no allocation per send
  entries.clear();
  // A full window in replicate still sends empty appends (commit updates),
  // so a window whose messages were all lost does not stall forever.
  if (pr->state() != ProgressState::kReplicate || !pr->inflights().Full()) {
    absl::Status s = log_->Slice(pr->next(), log_->LastIndex() + 1,
                                 options_->append_bytes_max, &entries);
    if (absl::IsOutOfRange(s)) return MaybeSendSnapshot(to, pr);
    RETURN_IF_ERROR(s);
  }
  if (entries.empty() && !send_if_empty) return false;
  Message m;
  m.set_type(MSG_APPEND);
  m.set_to(to);
  m.set_index(prev_index);
  m.set_log_term(*prev_term);
  m.set_commit(log_->committed());
  uint64_t bytes = 0;
  m.mutable_entries()->Reserve(static_cast<int>(entries.size()));
  for (Entry& e : entries) {
    bytes += EntryBytes(e);
    *m.add_entries() = std::move(e);
  }
  pr->SentEntries(entries.size(), bytes);
  entries.clear();
  pr->SentCommit(log_->committed());
  outbox_->Send(std::move(m));
  return true;
}

absl::StatusOr<bool> Replicator::MaybeSendSnapshot(NodeId to, Progress* pr) {
  // Do not ship a snapshot to a follower that may be down.
  if (!pr->recent_active()) return false;
  absl::StatusOr<Snapshot> snapshot = log_->GetSnapshot();
  if (!snapshot.ok()) {
    // The host may be building one: try again later.
    if (absl::IsUnavailable(snapshot.status())) return false;
    return snapshot.status();
  }
  const Index index = snapshot->metadata().index();
  if (index == 0) {
    return absl::DataLossError(
        "log is compacted but the LogReader has no snapshot");
  }
  pr->BecomeSnapshot(index);
  Message m;
  m.set_type(MSG_SNAPSHOT);
  m.set_to(to);
  *m.mutable_snapshot() = *std::move(snapshot);
  ++stats_->snapshots_sent;
  outbox_->Send(std::move(m));
  return true;
}

absl::Status Replicator::BcastAppend() {
  for (const auto& [id, pr] : tracker_->progress()) {
    if (id == options_->id) continue;
    RETURN_IF_ERROR(SendAppend(id));
  }
  return absl::OkStatus();
}

void Replicator::BcastHeartbeat(const std::string& context, bool quiesce) {
  for (auto& [id, pr] : tracker_->mutable_progress()) {
    if (id == options_->id) continue;
    const Index commit = std::min(pr.match(), log_->committed());
    Message m;
    m.set_type(MSG_HEARTBEAT);
    m.set_to(id);
    m.set_commit(commit);
    m.set_context(context);
    m.set_quiesce(quiesce);
    pr.SentCommit(commit);
    outbox_->Send(std::move(m));
  }
}

}  // namespace spate::raft
