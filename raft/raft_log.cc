#include "raft/raft_log.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/status_macros.h"

namespace spate::raft {

RaftLog::RaftLog(const LogReader* reader)
    : reader_(reader),
      unstable_(reader->LastIndex() + 1),
      committed_(reader->FirstIndex() - 1),
      applied_(reader->FirstIndex() - 1) {
  CHECK_GE(reader->FirstIndex(), 1u);
  CHECK_GE(reader->LastIndex() + 1, reader->FirstIndex());
}

Index RaftLog::FirstIndex() const {
  if (auto first = unstable_.MaybeFirstIndex()) return *first;
  return reader_->FirstIndex();
}

Index RaftLog::LastIndex() const {
  if (auto last = unstable_.MaybeLastIndex()) return *last;
  return reader_->LastIndex();
}

Index RaftLog::PersistedLastIndex() const {
  CHECK(!HasPendingSnapshot());
  return unstable_.offset() - 1;
}

absl::StatusOr<Term> RaftLog::TermAt(Index i) const {
  const Index dummy = FirstIndex() - 1;
  if (i < dummy) {
    return absl::OutOfRangeError(absl::StrCat(
        "index ", i, " is compacted (first index ", dummy + 1, ")"));
  }
  if (i > LastIndex()) {
    return absl::NotFoundError(
        absl::StrCat("index ", i, " is beyond the last index ", LastIndex()));
  }
  if (auto term = unstable_.MaybeTerm(i)) return *term;
  return reader_->TermAt(i);
}

absl::StatusOr<Term> RaftLog::LastTerm() const {
  auto term = TermAt(LastIndex());
  // The last entry always exists; failing to read it is a storage fault.
  if (!term.ok() && IsBenignLogError(term.status())) {
    return absl::DataLossError(absl::StrCat(
        "term of the last index is unreadable: ", term.status().message()));
  }
  return term;
}

absl::StatusOr<bool> RaftLog::MatchTerm(Index i, Term t) const {
  auto term = TermAt(i);
  if (!term.ok()) {
    if (IsBenignLogError(term.status())) return false;
    return term.status();
  }
  return *term == t;
}

absl::StatusOr<bool> RaftLog::IsUpToDate(Index index, Term term) const {
  ASSIGN_OR_RETURN(const Term last_term, LastTerm());
  return term > last_term || (term == last_term && index >= LastIndex());
}

absl::StatusOr<std::optional<Index>> RaftLog::MaybeAppend(
    Index prev_index, Term prev_term, Index commit, const EntryList& entries) {
  ASSIGN_OR_RETURN(const bool match, MatchTerm(prev_index, prev_term));
  if (!match) return std::optional<Index>();
  const Index last_new = prev_index + entries.size();
  ASSIGN_OR_RETURN(const Index conflict, FindConflict(entries));
  if (conflict != 0) {
    // Raft §5.3: delete the conflicting entry and all that follow it. A
    // committed entry never conflicts (Log Matching + Leader Completeness).
    CHECK_GT(conflict, committed_) << "conflict with a committed entry";
    Append(entries, static_cast<int>(conflict - (prev_index + 1)));
  }
  CommitTo(std::min(commit, last_new));
  return std::optional<Index>(last_new);
}

Index RaftLog::Append(const EntryList& entries, int start) {
  if (start >= entries.size()) return LastIndex();
  CHECK_GT(entries[start].index(), committed_)
      << "appending over committed entries";
  CHECK_LE(entries[start].index(), LastIndex() + 1);
  unstable_.TruncateAndAppend(entries, start);
  return LastIndex();
}

void RaftLog::AppendOne(Entry&& entry) {
  CHECK_EQ(entry.index(), LastIndex() + 1);
  unstable_.PushBack(std::move(entry));
}

absl::StatusOr<Index> RaftLog::FindConflict(const EntryList& entries) const {
  for (const Entry& entry : entries) {
    ASSIGN_OR_RETURN(const bool match, MatchTerm(entry.index(), entry.term()));
    if (!match) return entry.index();
  }
  return 0;
}

absl::StatusOr<std::pair<Index, Term>> RaftLog::FindConflictByTerm(
    Index index, Term term) const {
  for (; index > 0; --index) {
    auto our_term = TermAt(index);
    if (!our_term.ok()) {
      // Compacted: the match is possible but its term is unknown.
      if (IsBenignLogError(our_term.status())) return std::make_pair(index, 0);
      return our_term.status();
    }
    if (*our_term <= term) return std::make_pair(index, *our_term);
  }
  return std::make_pair(Index{0}, Term{0});
}

absl::Status RaftLog::Slice(Index lo, Index hi, uint64_t max_bytes,
                            std::vector<Entry>* out) const {
  CHECK_LE(lo, hi);
  if (lo < FirstIndex()) {
    return absl::OutOfRangeError(absl::StrCat(
        "index ", lo, " is compacted (first index ", FirstIndex(), ")"));
  }
  CHECK_LE(hi, LastIndex() + 1);
  if (lo == hi) return absl::OkStatus();
  uint64_t bytes = 0;
  bool any = false;
  const Index offset = unstable_.offset();
  if (lo < offset) {
    const Index stored_hi = std::min(hi, offset);
    ASSIGN_OR_RETURN(std::vector<Entry> stored,
                     reader_->Entries(lo, stored_hi, max_bytes));
    // Storage is outside the core: verify what it hands back.
    if (stored.empty() || stored.size() > stored_hi - lo) {
      return absl::DataLossError(absl::StrCat("LogReader returned ",
                                              stored.size(), " entries for [",
                                              lo, ", ", stored_hi, ")"));
    }
    for (size_t i = 0; i < stored.size(); ++i) {
      if (stored[i].index() != lo + i) {
        return absl::DataLossError(absl::StrCat(
            "LogReader returned index ", stored[i].index(), " at ", lo + i));
      }
      bytes += EntryBytes(stored[i]);
      out->push_back(std::move(stored[i]));
    }
    any = true;
    // Storage stopped at the byte limit.
    if (stored.size() < stored_hi - lo) return absl::OkStatus();
  }
  if (hi > offset) {
    for (const Entry& entry : unstable_.Slice(std::max(lo, offset), hi)) {
      if (any && bytes + EntryBytes(entry) > max_bytes) break;
      bytes += EntryBytes(entry);
      out->push_back(entry);
      any = true;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> RaftLog::MaybeCommit(Index index, Term term) {
  if (index <= committed_) return false;
  ASSIGN_OR_RETURN(const bool match, MatchTerm(index, term));
  if (!match) return false;
  CommitTo(index);
  return true;
}

void RaftLog::CommitTo(Index index) {
  if (index <= committed_) return;
  CHECK_LE(index, LastIndex()) << "commit beyond the last index";
  committed_ = index;
}

void RaftLog::AppliedTo(Index index) {
  CHECK_LE(applied_, index);
  CHECK_LE(index, committed_) << "applied beyond the commit index";
  applied_ = index;
}

bool RaftLog::HasCommittedAfter(Index after) const {
  if (HasPendingSnapshot()) return false;
  const Index lo = std::max(after + 1, FirstIndex());
  return committed_ + 1 > lo;
}

absl::Status RaftLog::CommittedAfter(Index after, uint64_t max_bytes,
                                     std::vector<Entry>* out) const {
  if (!HasCommittedAfter(after)) return absl::OkStatus();
  const Index lo = std::max(after + 1, FirstIndex());
  return Slice(lo, committed_ + 1, max_bytes, out);
}

void RaftLog::Restore(const Snapshot& snapshot) {
  CHECK_GT(snapshot.metadata().index(), committed_);
  committed_ = snapshot.metadata().index();
  unstable_.Restore(snapshot);
}

absl::StatusOr<Snapshot> RaftLog::GetSnapshot() const {
  if (unstable_.snapshot().has_value()) return *unstable_.snapshot();
  return reader_->GetSnapshot();
}

}  // namespace spate::raft
