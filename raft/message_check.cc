#include "raft/message_check.h"

#include "raft/conf_change.h"

namespace spate::raft {
namespace {

// Append entries must continue (index, log_term) contiguously, with terms
// non-decreasing and at most the message's term.
bool ValidAppend(const Message& m) {
  if (m.log_term() > m.term() || (m.index() == 0 && m.log_term() != 0)) {
    return false;
  }
  Term prev_term = m.log_term();
  for (int i = 0; i < m.entries_size(); ++i) {
    const Entry& e = m.entries(i);
    if (e.index() != m.index() + 1 + i || e.term() < prev_term ||
        e.term() > m.term() || !EntryType_IsValid(e.type())) {
      return false;
    }
    prev_term = e.term();
  }
  return true;
}

// The snapshot's membership need not contain the recipient: a new member
// may be sent a snapshot taken before the change that added it, and learns
// its addition from the entries after it.
bool ValidSnapshot(const Message& m) {
  const SnapshotMetadata& md = m.snapshot().metadata();
  const ConfState& cs = md.conf_state();
  return md.index() >= 1 && md.term() >= 1 && md.term() <= m.term() &&
         ValidateConfState(cs).ok() && !cs.voters().empty();
}

bool ValidFields(const Message& m) {
  switch (m.type()) {
    case MSG_APPEND:
      return ValidAppend(m);
    case MSG_APPEND_RESPONSE:
    case MSG_HEARTBEAT_RESPONSE:
      return !m.reject() || m.reject_hint() <= m.index();
    case MSG_VOTE:
    case MSG_PRE_VOTE:
      return m.log_term() <= m.term();
    case MSG_SNAPSHOT:
      return ValidSnapshot(m);
    case MSG_VOTE_RESPONSE:
    case MSG_PRE_VOTE_RESPONSE:
    case MSG_HEARTBEAT:
    case MSG_TIMEOUT_NOW:
    case MSG_READ_INDEX:
    case MSG_READ_INDEX_RESPONSE:
      return true;
    default:
      return false;  // MSG_UNKNOWN or a type from the future
  }
}

}  // namespace

DropReason CheckMessage(const Message& m, NodeId self, GroupId group,
                        const ProgressTracker& tracker) {
  if (m.group() != group) return DropReason::kWrongGroup;
  if (m.to() != self) return DropReason::kWrongRecipient;
  if (m.from() == kNoNode || m.from() == self || m.term() == 0) {
    return DropReason::kMalformed;
  }
  if (!ValidFields(m)) return DropReason::kMalformed;
  const ConfState& cs = tracker.conf_state();
  const bool joining = cs.voters().empty() && cs.learners().empty();
  if (!joining && !tracker.IsMember(m.from()) && !IsFromLeader(m.type()) &&
      !IsVoteRequest(m.type()) && m.type() != MSG_TIMEOUT_NOW) {
    return DropReason::kUnknownPeer;
  }
  return DropReason::kCount;
}

}  // namespace spate::raft
