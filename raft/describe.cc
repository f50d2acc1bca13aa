#include "raft/describe.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "raft/conf_change.h"

namespace spate::raft {

const char* MessageTypeShortName(MessageType type) {
  switch (type) {
    case MSG_APPEND:
      return "MsgApp";
    case MSG_APPEND_RESPONSE:
      return "MsgAppResp";
    case MSG_VOTE:
      return "MsgVote";
    case MSG_VOTE_RESPONSE:
      return "MsgVoteResp";
    case MSG_PRE_VOTE:
      return "MsgPreVote";
    case MSG_PRE_VOTE_RESPONSE:
      return "MsgPreVoteResp";
    case MSG_HEARTBEAT:
      return "MsgHeartbeat";
    case MSG_HEARTBEAT_RESPONSE:
      return "MsgHeartbeatResp";
    case MSG_SNAPSHOT:
      return "MsgSnap";
    case MSG_TIMEOUT_NOW:
      return "MsgTimeoutNow";
    case MSG_READ_INDEX:
      return "MsgReadIndex";
    case MSG_READ_INDEX_RESPONSE:
      return "MsgReadIndexResp";
    default:
      return "MsgUnknown";
  }
}

std::string DescribeEntry(const Entry& entry) {
  std::string out = absl::StrCat(entry.term(), "/", entry.index());
  if (entry.type() == ENTRY_CONF_CHANGE) {
    ConfChange cc;
    if (cc.ParseFromString(entry.data())) {
      absl::StrAppend(&out, " EntryConfChange ", ConfChangeString(cc));
    } else {
      absl::StrAppend(&out, " EntryConfChange <unparsable>");
    }
    return out;
  }
  absl::StrAppend(&out, " EntryNormal");
  if (!entry.data().empty()) {
    absl::StrAppend(&out, " \"", absl::CHexEscape(entry.data()), "\"");
  }
  return out;
}

std::string DescribeHardState(const HardState& hs) {
  return absl::StrCat("Term:", hs.term(), " Vote:", hs.vote(),
                      " Commit:", hs.commit());
}

std::string DescribeSnapshot(const Snapshot& snapshot) {
  const SnapshotMetadata& md = snapshot.metadata();
  std::string out = absl::StrCat("Index:", md.index(), " Term:", md.term(), " ",
                                 ConfStateString(md.conf_state()));
  if (!snapshot.data().empty()) {
    absl::StrAppend(&out, " Data:\"", absl::CHexEscape(snapshot.data()), "\"");
  }
  return out;
}

std::string DescribeMessage(const Message& m) {
  std::string out =
      absl::StrCat(m.from(), "->", m.to(), " ", MessageTypeShortName(m.type()),
                   " Term:", m.term());
  switch (m.type()) {
    case MSG_APPEND:
      absl::StrAppend(&out, " Log:", m.log_term(), "/", m.index(),
                      " Commit:", m.commit());
      break;
    case MSG_APPEND_RESPONSE:
      absl::StrAppend(&out, " Index:", m.index());
      if (m.reject()) {
        absl::StrAppend(&out, " Rejected (Hint: ", m.reject_hint(),
                        " Term: ", m.log_term(), ")");
      }
      break;
    case MSG_VOTE:
    case MSG_PRE_VOTE:
      absl::StrAppend(&out, " Log:", m.log_term(), "/", m.index());
      if (m.leader_transfer()) absl::StrAppend(&out, " Transfer");
      break;
    case MSG_VOTE_RESPONSE:
    case MSG_PRE_VOTE_RESPONSE:
      if (m.reject()) absl::StrAppend(&out, " Rejected");
      break;
    case MSG_HEARTBEAT:
      absl::StrAppend(&out, " Commit:", m.commit());
      if (m.quiesce()) absl::StrAppend(&out, " Quiesce");
      break;
    case MSG_SNAPSHOT:
      absl::StrAppend(&out, " Snapshot[", DescribeSnapshot(m.snapshot()), "]");
      break;
    case MSG_READ_INDEX_RESPONSE:
      absl::StrAppend(&out, " Index:", m.index());
      break;
    default:
      break;
  }
  if (!m.context().empty()) {
    absl::StrAppend(&out, " Context:\"", absl::CHexEscape(m.context()), "\"");
  }
  if (m.entries_size() > 0) {
    absl::StrAppend(&out, " Entries:[");
    for (int i = 0; i < m.entries_size(); ++i) {
      if (i > 0) absl::StrAppend(&out, ", ");
      absl::StrAppend(&out, DescribeEntry(m.entries(i)));
    }
    absl::StrAppend(&out, "]");
  }
  return out;
}

std::string DescribeReady(const Ready& ready) {
  std::string out;
  if (ready.soft_state.has_value()) {
    absl::StrAppend(&out, "Lead:", ready.soft_state->leader,
                    " State:", RoleName(ready.soft_state->role), "\n");
  }
  if (ready.hard_state.has_value()) {
    absl::StrAppend(&out, "HardState ", DescribeHardState(*ready.hard_state),
                    "\n");
  }
  if (ready.snapshot.has_value()) {
    absl::StrAppend(&out, "Snapshot ", DescribeSnapshot(*ready.snapshot), "\n");
  }
  if (!ready.entries.empty()) {
    absl::StrAppend(&out, "Entries:\n");
    for (const Entry& e : ready.entries) {
      absl::StrAppend(&out, "  ", DescribeEntry(e), "\n");
    }
  }
  if (!ready.committed_entries.empty()) {
    absl::StrAppend(&out, "CommittedEntries:\n");
    for (const Entry& e : ready.committed_entries) {
      absl::StrAppend(&out, "  ", DescribeEntry(e), "\n");
    }
  }
  if (!ready.messages.empty()) {
    absl::StrAppend(&out, "Messages:\n");
    for (const Message& m : ready.messages) {
      absl::StrAppend(&out, "  ", DescribeMessage(m), "\n");
    }
  }
  if (!ready.read_states.empty()) {
    absl::StrAppend(&out, "ReadStates:\n");
    for (const ReadState& rs : ready.read_states) {
      absl::StrAppend(&out, "  Index:", rs.index, " Context:\"",
                      absl::CHexEscape(rs.context), "\"\n");
    }
  }
  if (!out.empty() && ready.must_sync) absl::StrAppend(&out, "MustSync\n");
  return out;
}

}  // namespace spate::raft
