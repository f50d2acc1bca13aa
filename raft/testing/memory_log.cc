#include "raft/testing/memory_log.h"

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/status_macros.h"

namespace spate::raft::testing {

MemoryLog::MemoryLog() : entries_(1) {}

MemoryLog::MemoryLog(const ConfState& bootstrap) : MemoryLog() {
  conf_state_ = bootstrap;
}

absl::StatusOr<InitialState> MemoryLog::LoadInitialState() const {
  return InitialState{hard_state_, conf_state_};
}

absl::Status MemoryLog::CheckCorrupt(Index lo, Index hi) const {
  if (corrupt_index_.has_value() && *corrupt_index_ >= lo &&
      *corrupt_index_ < hi) {
    return absl::DataLossError(
        absl::StrCat("entry ", *corrupt_index_, " fails its checksum"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Entry>> MemoryLog::Entries(
    Index lo, Index hi, uint64_t max_bytes) const {
  const Index offset = entries_[0].index();
  if (lo <= offset) {
    return absl::OutOfRangeError(absl::StrCat("index ", lo, " is compacted"));
  }
  if (hi > LastIndex() + 1 || lo > hi) {
    return absl::NotFoundError(absl::StrCat(
        "entries [", lo, ", ", hi, ") beyond the last index ", LastIndex()));
  }
  RETURN_IF_ERROR(CheckCorrupt(lo, hi));
  std::vector<Entry> out;
  uint64_t bytes = 0;
  for (Index i = lo; i < hi; ++i) {
    const Entry& e = entries_[i - offset];
    if (!out.empty() && bytes + e.data().size() > max_bytes) break;
    bytes += e.data().size();
    out.push_back(e);
  }
  return out;
}

absl::StatusOr<Term> MemoryLog::TermAt(Index i) const {
  const Index offset = entries_[0].index();
  if (i < offset) {
    return absl::OutOfRangeError(absl::StrCat("index ", i, " is compacted"));
  }
  if (i > LastIndex()) {
    return absl::NotFoundError(
        absl::StrCat("index ", i, " beyond the last index ", LastIndex()));
  }
  RETURN_IF_ERROR(CheckCorrupt(i, i + 1));
  return entries_[i - offset].term();
}

Index MemoryLog::FirstIndex() const { return entries_[0].index() + 1; }

Index MemoryLog::LastIndex() const {
  return entries_[0].index() + entries_.size() - 1;
}

absl::StatusOr<Snapshot> MemoryLog::GetSnapshot() const { return snapshot_; }

absl::Status MemoryLog::Append(const std::vector<Entry>& entries) {
  if (entries.empty()) return absl::OkStatus();
  for (size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].index() != entries[0].index() + i) {
      return absl::InvalidArgumentError("appended entries are not contiguous");
    }
  }
  const Index first = FirstIndex();
  if (entries.back().index() < first) return absl::OkStatus();
  size_t skip = 0;
  if (entries[0].index() < first) skip = first - entries[0].index();
  const Index from = entries[skip].index();
  if (from > LastIndex() + 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("append at ", from, " leaves a gap after ", LastIndex()));
  }
  entries_.resize(from - entries_[0].index());
  entries_.insert(entries_.end(), entries.begin() + skip, entries.end());
  return absl::OkStatus();
}

absl::Status MemoryLog::ApplySnapshot(const Snapshot& snapshot) {
  const SnapshotMetadata& md = snapshot.metadata();
  if (md.index() <= snapshot_.metadata().index()) {
    return absl::OutOfRangeError(absl::StrCat("snapshot at ", md.index(),
                                              " is not newer than the one at ",
                                              snapshot_.metadata().index()));
  }
  snapshot_ = snapshot;
  entries_.assign(1, Entry());
  entries_[0].set_index(md.index());
  entries_[0].set_term(md.term());
  conf_state_ = md.conf_state();
  return absl::OkStatus();
}

absl::Status MemoryLog::Compact(Index index, std::string data,
                                const ConfState& cs) {
  const Index offset = entries_[0].index();
  if (index <= offset) {
    return absl::OutOfRangeError(
        absl::StrCat("index ", index, " is already compacted"));
  }
  if (index > LastIndex()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot compact at ", index, " beyond the last index ", LastIndex()));
  }
  const Term term = entries_[index - offset].term();
  snapshot_.mutable_metadata()->set_index(index);
  snapshot_.mutable_metadata()->set_term(term);
  *snapshot_.mutable_metadata()->mutable_conf_state() = cs;
  snapshot_.set_data(std::move(data));
  entries_.erase(entries_.begin(), entries_.begin() + (index - offset));
  entries_[0] = Entry();
  entries_[0].set_index(index);
  entries_[0].set_term(term);
  return absl::OkStatus();
}

absl::Status MemoryLog::Persist(const Ready& ready) {
  if (ready.snapshot.has_value()) {
    RETURN_IF_ERROR(ApplySnapshot(*ready.snapshot));
  }
  RETURN_IF_ERROR(Append(ready.entries));
  if (ready.hard_state.has_value()) hard_state_ = *ready.hard_state;
  return absl::OkStatus();
}

std::vector<Entry> MemoryLog::AllEntries() const {
  return std::vector<Entry>(entries_.begin() + 1, entries_.end());
}

}  // namespace spate::raft::testing
