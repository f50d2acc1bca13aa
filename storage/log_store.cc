#include "storage/log_store.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/status_macros.h"
#include "storage/keys.h"
#include "storage/record_codec.h"

namespace spate::storage {
namespace {

using raft::Entry;
using raft::Index;
using raft::Term;

// Prefixes a record error with the key that held it.
absl::Status WithKey(const absl::Status& status, Space space,
                     absl::string_view key) {
  return absl::Status(status.code(), absl::StrCat(DescribeKey(space, key), ": ",
                                                  status.message()));
}

// Reads and decodes one record; NotFound if absent.
absl::Status LoadRecord(const Kv& kv, Space space, const std::string& key,
                        google::protobuf::MessageLite* message) {
  absl::StatusOr<std::string> value = kv.Get(space, key);
  if (!value.ok()) return value.status();
  absl::Status decoded = DecodeRecord(*value, message);
  if (!decoded.ok()) return WithKey(decoded, space, key);
  return absl::OkStatus();
}

// Like LoadRecord, but an absent record leaves `message` at its default.
absl::Status LoadOptionalRecord(const Kv& kv, Space space,
                                const std::string& key,
                                google::protobuf::MessageLite* message) {
  absl::Status status = LoadRecord(kv, space, key, message);
  if (absl::IsNotFound(status)) return absl::OkStatus();
  return status;
}

// Decodes a log record stored under `index` and checks it is that entry.
absl::Status DecodeEntry(raft::GroupId group, Index index,
                         absl::string_view value, Entry* entry) {
  absl::Status status = DecodeRecord(value, entry);
  if (!status.ok()) {
    return WithKey(status, Space::kRaftLog, RaftLogKey(group, index));
  }
  if (entry->index() != index) {
    return absl::DataLossError(
        absl::StrCat(DescribeKey(Space::kRaftLog, RaftLogKey(group, index)),
                     ": holds entry with index ", entry->index()));
  }
  return absl::OkStatus();
}

absl::Status MissingEntry(raft::GroupId group, Index index) {
  return absl::DataLossError(
      absl::StrCat(DescribeKey(Space::kRaftLog, RaftLogKey(group, index)),
                   ": missing (hole in the log)"));
}

}  // namespace

LogStore::LogStore(Kv* kv, raft::GroupId group, const LogStoreOptions& options)
    : kv_(kv), group_(group), options_(options) {}

absl::StatusOr<std::unique_ptr<LogStore>> LogStore::Open(
    Kv* kv, raft::GroupId group, const LogStoreOptions& options) {
  CHECK(kv != nullptr);
  std::unique_ptr<LogStore> store(new LogStore(kv, group, options));
  RETURN_IF_ERROR(store->Load());
  return store;
}

absl::Status LogStore::Load() {
  View& view = visible_;
  RETURN_IF_ERROR(LoadOptionalRecord(
      *kv_, Space::kRaftState, RaftStateKey(group_, RaftStateKind::kHardState),
      &view.hard_state));
  RETURN_IF_ERROR(LoadOptionalRecord(
      *kv_, Space::kRaftState, RaftStateKey(group_, RaftStateKind::kConfState),
      &view.conf_state));
  RETURN_IF_ERROR(LoadOptionalRecord(
      *kv_, Space::kRaftState,
      RaftStateKey(group_, RaftStateKind::kSnapshotMetadata), &view.snapshot));
  RETURN_IF_ERROR(LoadLogBounds());
  if (view.hard_state.commit() > view.last_index) {
    return absl::DataLossError(
        absl::StrCat("group ", group_, ": stored commit index ",
                     view.hard_state.commit(), " is beyond the last log entry ",
                     view.last_index, " (committed entries were lost)"));
  }
  staged_ = visible_;
  return absl::OkStatus();
}

// Finds the last index and checks that the log starts right after the
// snapshot. Reads (and caches) the last entry, which also verifies it.
absl::Status LogStore::LoadLogBounds() {
  const KeyRange range = RaftLogRange(group_);
  std::string first_key;
  std::string last_key;
  std::string last_value;
  RETURN_IF_ERROR(kv_->Scan(Space::kRaftLog, range.begin, range.end, false,
                            [&](absl::string_view key, absl::string_view) {
                              first_key = std::string(key);
                              return false;
                            }));
  const Index first = visible_.first_index();
  visible_.last_index = first - 1;
  if (first_key.empty()) return absl::OkStatus();
  raft::GroupId parsed_group = 0;
  Index first_stored = 0;
  CHECK(ParseRaftLogKey(first_key, &parsed_group, &first_stored));
  if (first_stored != first) {
    return absl::DataLossError(absl::StrCat(
        "group ", group_, ": log starts at index ", first_stored,
        " but the snapshot ends at ", first - 1,
        first_stored > first ? " (hole in the log)" : " (stale entries)"));
  }
  RETURN_IF_ERROR(
      kv_->Scan(Space::kRaftLog, range.begin, range.end, true,
                [&](absl::string_view key, absl::string_view value) {
                  last_key = std::string(key);
                  last_value = std::string(value);
                  return false;
                }));
  CHECK(ParseRaftLogKey(last_key, &parsed_group, &visible_.last_index));
  Entry last;
  RETURN_IF_ERROR(DecodeEntry(group_, visible_.last_index, last_value, &last));
  CacheAppend({std::move(last)});
  return absl::OkStatus();
}

void LogStore::Bootstrap(raft::GroupId group, const raft::ConfState& conf_state,
                         WriteBatch* batch) {
  CHECK_GT(conf_state.voters_size(), 0) << "group " << group;
  batch->Put(Space::kRaftState, RaftStateKey(group, RaftStateKind::kConfState),
             EncodeRecord(conf_state));
}

absl::StatusOr<std::vector<raft::GroupId>> LogStore::ListGroups(const Kv& kv) {
  std::vector<raft::GroupId> groups;
  // Raft-state keys are 9 bytes, all below ten 0xff bytes.
  RETURN_IF_ERROR(kv.Scan(Space::kRaftState, "", std::string(10, '\xff'), false,
                          [&](absl::string_view key, absl::string_view) {
                            raft::GroupId group = 0;
                            RaftStateKind kind;
                            if (ParseRaftStateKey(key, &group, &kind) &&
                                (groups.empty() || groups.back() != group)) {
                              groups.push_back(group);
                            }
                            return true;
                          }));
  return groups;
}

// --- LogReader ---

absl::StatusOr<raft::InitialState> LogStore::LoadInitialState() const {
  raft::InitialState state;
  state.hard_state = visible_.hard_state;
  state.conf_state = visible_.conf_state;
  return state;
}

Index LogStore::FirstIndex() const { return visible_.first_index(); }

Index LogStore::LastIndex() const { return visible_.last_index; }

absl::StatusOr<Term> LogStore::TermAt(Index i) const {
  const Index first = visible_.first_index();
  if (i + 1 == first) return visible_.snapshot.term();
  if (i < first) {
    return absl::OutOfRangeError(absl::StrCat(
        "group ", group_, ": index ", i, " is compacted (first ", first, ")"));
  }
  if (i > visible_.last_index) {
    return absl::NotFoundError(absl::StrCat("group ", group_, ": index ", i,
                                            " is beyond the last index ",
                                            visible_.last_index));
  }
  if (!cache_.empty() && i >= cache_.front().index()) {
    ++cache_hits_;
    return cache_[i - cache_.front().index()].term();
  }
  ASSIGN_OR_RETURN(Entry entry, ReadEntry(i));
  return entry.term();
}

absl::StatusOr<Entry> LogStore::ReadEntry(Index index) const {
  ++kv_reads_;
  const std::string key = RaftLogKey(group_, index);
  absl::StatusOr<std::string> value = kv_->Get(Space::kRaftLog, key);
  if (absl::IsNotFound(value.status())) return MissingEntry(group_, index);
  if (!value.ok()) return value.status();
  Entry entry;
  RETURN_IF_ERROR(DecodeEntry(group_, index, *value, &entry));
  return entry;
}

absl::StatusOr<std::vector<Entry>> LogStore::Entries(Index lo, Index hi,
                                                     uint64_t max_bytes) const {
  const Index first = visible_.first_index();
  if (lo < first) {
    return absl::OutOfRangeError(absl::StrCat(
        "group ", group_, ": index ", lo, " is compacted (first ", first, ")"));
  }
  if (hi > visible_.last_index + 1) {
    return absl::NotFoundError(
        absl::StrCat("group ", group_, ": entries up to ", hi,
                     " requested, last index ", visible_.last_index));
  }
  if (lo > hi) {
    return absl::InvalidArgumentError(
        absl::StrCat("Entries(", lo, ", ", hi, "): lo > hi"));
  }
  std::vector<Entry> out;
  uint64_t bytes = 0;
  const Index cache_first =
      cache_.empty() ? visible_.last_index + 1 : cache_.front().index();
  if (lo < cache_first) {
    const Index kv_hi = std::min(hi, cache_first);
    RETURN_IF_ERROR(ReadEntriesFromKv(lo, kv_hi, max_bytes, &bytes, &out));
    if (out.size() < kv_hi - lo) return out;  // the size limit was reached
  }
  for (Index i = std::max(lo, cache_first); i < hi; ++i) {
    const Entry& entry = cache_[i - cache_first];
    const uint64_t size = entry.data().size();
    if (!out.empty() && bytes + size > max_bytes) break;
    bytes += size;
    out.push_back(entry);
    ++cache_hits_;
  }
  return out;
}

// Appends entries [lo, hi) from the Kv to `out` while `*bytes` stays within
// max_bytes (at least one entry in `out`). A missing or damaged entry is
// DataLoss.
absl::Status LogStore::ReadEntriesFromKv(Index lo, Index hi, uint64_t max_bytes,
                                         uint64_t* bytes,
                                         std::vector<Entry>* out) const {
  const KeyRange range = RaftLogIndexRange(group_, lo, hi);
  Index expected = lo;
  bool full = false;
  absl::Status error;
  RETURN_IF_ERROR(
      kv_->Scan(Space::kRaftLog, range.begin, range.end, false,
                [&](absl::string_view key, absl::string_view value) {
                  raft::GroupId group = 0;
                  Index index = 0;
                  CHECK(ParseRaftLogKey(key, &group, &index));
                  if (index != expected) {
                    error = MissingEntry(group_, expected);
                    return false;
                  }
                  Entry entry;
                  error = DecodeEntry(group_, index, value, &entry);
                  if (!error.ok()) return false;
                  ++kv_reads_;
                  const uint64_t size = entry.data().size();
                  if (!out->empty() && *bytes + size > max_bytes) {
                    full = true;
                    return false;
                  }
                  *bytes += size;
                  out->push_back(std::move(entry));
                  ++expected;
                  return true;
                }));
  RETURN_IF_ERROR(error);
  if (!full && expected != hi) return MissingEntry(group_, expected);
  return absl::OkStatus();
}

absl::StatusOr<raft::Snapshot> LogStore::GetSnapshot() const {
  raft::Snapshot snapshot;
  if (visible_.snapshot.index() == 0) return snapshot;
  const std::string key = RaftStateKey(group_, RaftStateKind::kSnapshotData);
  absl::Status status = LoadRecord(*kv_, Space::kRaftState, key, &snapshot);
  if (absl::IsNotFound(status)) {
    return absl::DataLossError(absl::StrCat(DescribeKey(Space::kRaftState, key),
                                            ": missing for snapshot at index ",
                                            visible_.snapshot.index()));
  }
  RETURN_IF_ERROR(status);
  if (snapshot.metadata().index() != visible_.snapshot.index() ||
      snapshot.metadata().term() != visible_.snapshot.term()) {
    return absl::DataLossError(absl::StrCat(
        DescribeKey(Space::kRaftState, key), ": holds index ",
        snapshot.metadata().index(), " term ", snapshot.metadata().term(),
        ", metadata says index ", visible_.snapshot.index(), " term ",
        visible_.snapshot.term()));
  }
  return snapshot;
}

// --- Staging ---

absl::Status LogStore::Stage(const std::optional<raft::HardState>& hard_state,
                             const std::vector<Entry>& entries,
                             const std::optional<raft::Snapshot>& snapshot,
                             WriteBatch* batch) {
  CHECK(!destroyed_) << "group " << group_ << " staged after Destroy";
  View next = staged_;
  if (snapshot.has_value()) {
    const raft::SnapshotMetadata& meta = snapshot->metadata();
    if (meta.index() <= next.snapshot.index() ||
        meta.index() < next.hard_state.commit()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "group ", group_, ": snapshot at index ", meta.index(),
          " is not newer than the current snapshot ", next.snapshot.index(),
          " and the commit index ", next.hard_state.commit()));
    }
    next.snapshot = meta;
    next.conf_state = meta.conf_state();
    next.last_index = meta.index();
  }
  // Entries the snapshot (or an earlier compaction) already covers.
  size_t skip = 0;
  while (skip < entries.size() && entries[skip].index() < next.first_index()) {
    ++skip;
  }
  View after_entries = next;
  if (skip < entries.size()) {
    RETURN_IF_ERROR(StageEntries(entries, skip, &after_entries, nullptr));
  }
  if (hard_state.has_value()) {
    RETURN_IF_ERROR(ValidateHardState(*hard_state, after_entries));
  }
  // Validated: emit the writes.
  if (snapshot.has_value()) StageSnapshotInstall(*snapshot, &next, batch);
  if (skip < entries.size()) {
    CHECK_OK(StageEntries(entries, skip, &next, batch));
  }
  if (hard_state.has_value()) {
    batch->Put(Space::kRaftState,
               RaftStateKey(group_, RaftStateKind::kHardState),
               EncodeRecord(*hard_state));
    next.hard_state = *hard_state;
  }
  has_staged_ |=
      snapshot.has_value() || skip < entries.size() || hard_state.has_value();
  staged_ = std::move(next);
  return absl::OkStatus();
}

// Validates entries[skip..] against `*next` and, with a batch, stages them.
// Updates next->last_index either way.
absl::Status LogStore::StageEntries(const std::vector<Entry>& entries,
                                    size_t skip, View* next,
                                    WriteBatch* batch) {
  const Index first = entries[skip].index();
  if (first > next->last_index + 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("group ", group_, ": entries start at ", first,
                     ", after a gap (last index ", next->last_index, ")"));
  }
  for (size_t i = skip; i < entries.size(); ++i) {
    const Entry& entry = entries[i];
    if (entry.index() != first + (i - skip) || entry.term() == 0 ||
        (i > skip && entry.term() < entries[i - 1].term())) {
      return absl::InvalidArgumentError(
          absl::StrCat("group ", group_, ": entry ", i, " has index ",
                       entry.index(), " term ", entry.term(),
                       ": entries must be contiguous with "
                       "non-decreasing terms >= 1"));
    }
  }
  const Index last = entries.back().index();
  if (batch != nullptr) {
    std::string record;
    for (size_t i = skip; i < entries.size(); ++i) {
      EncodeRecordTo(entries[i], &record);
      batch->Put(Space::kRaftLog, RaftLogKey(group_, entries[i].index()),
                 record);
    }
    if (last < next->last_index) {  // a conflicting suffix goes away
      const KeyRange stale =
          RaftLogIndexRange(group_, last + 1, next->last_index + 1);
      batch->DeleteRange(Space::kRaftLog, stale.begin, stale.end);
    }
    PendingOp op(PendingOp::Kind::kAppend);
    op.entries.assign(entries.begin() + skip, entries.end());
    pending_.push_back(std::move(op));
  }
  next->last_index = last;
  return absl::OkStatus();
}

void LogStore::StageSnapshotInstall(const raft::Snapshot& snapshot, View* next,
                                    WriteBatch* batch) {
  const KeyRange log = RaftLogRange(group_);
  batch->DeleteRange(Space::kRaftLog, log.begin, log.end);
  batch->Put(Space::kRaftState,
             RaftStateKey(group_, RaftStateKind::kSnapshotMetadata),
             EncodeRecord(snapshot.metadata()));
  batch->Put(Space::kRaftState,
             RaftStateKey(group_, RaftStateKind::kSnapshotData),
             EncodeRecord(snapshot));
  batch->Put(Space::kRaftState, RaftStateKey(group_, RaftStateKind::kConfState),
             EncodeRecord(snapshot.metadata().conf_state()));
  DCHECK_EQ(next->last_index, snapshot.metadata().index());
  PendingOp op(PendingOp::Kind::kReplaceLog);
  op.index = snapshot.metadata().index();
  op.term = snapshot.metadata().term();
  pending_.push_back(std::move(op));
}

absl::Status LogStore::ValidateHardState(const raft::HardState& hard_state,
                                         const View& next) const {
  const raft::HardState& old = next.hard_state;
  absl::string_view problem;
  if (hard_state.term() < old.term()) {
    problem = "term goes back";
  } else if (hard_state.term() == old.term() && old.vote() != raft::kNoNode &&
             hard_state.vote() != old.vote()) {
    problem = "vote changed within a term";
  } else if (hard_state.commit() < old.commit()) {
    problem = "commit index goes back";
  } else if (hard_state.commit() > next.last_index) {
    problem = "commit index beyond the last index";
  }
  if (problem.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "group ", group_, ": hard state {term ", hard_state.term(), " vote ",
      hard_state.vote(), " commit ", hard_state.commit(), "} after {term ",
      old.term(), " vote ", old.vote(), " commit ", old.commit(),
      "} with last index ", next.last_index, ": ", problem));
}

void LogStore::StageConfState(const raft::ConfState& conf_state,
                              WriteBatch* batch) {
  CHECK(!destroyed_) << "group " << group_ << " staged after Destroy";
  batch->Put(Space::kRaftState, RaftStateKey(group_, RaftStateKind::kConfState),
             EncodeRecord(conf_state));
  staged_.conf_state = conf_state;
  has_staged_ = true;
}

absl::Status LogStore::StageCompaction(const raft::Snapshot& snapshot,
                                       WriteBatch* batch) {
  CHECK(!destroyed_) << "group " << group_ << " staged after Destroy";
  const Index index = snapshot.metadata().index();
  if (index <= staged_.snapshot.index() ||
      index > std::min(staged_.hard_state.commit(), staged_.last_index)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "group ", group_, ": cannot compact to index ", index, " (snapshot at ",
        staged_.snapshot.index(), ", commit ", staged_.hard_state.commit(),
        ", last ", staged_.last_index, ")"));
  }
  ASSIGN_OR_RETURN(const Term term, StagedTermAt(index));
  if (term != snapshot.metadata().term()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "group ", group_, ": snapshot at index ", index, " has term ",
        snapshot.metadata().term(), " but the entry has term ", term));
  }
  const KeyRange prefix =
      RaftLogIndexRange(group_, staged_.first_index(), index + 1);
  batch->DeleteRange(Space::kRaftLog, prefix.begin, prefix.end);
  batch->Put(Space::kRaftState,
             RaftStateKey(group_, RaftStateKind::kSnapshotMetadata),
             EncodeRecord(snapshot.metadata()));
  batch->Put(Space::kRaftState,
             RaftStateKey(group_, RaftStateKind::kSnapshotData),
             EncodeRecord(snapshot));
  staged_.snapshot = snapshot.metadata();
  has_staged_ = true;
  PendingOp op(PendingOp::Kind::kCompact);
  op.index = index;
  op.term = term;
  pending_.push_back(std::move(op));
  return absl::OkStatus();
}

// The term of `index` in the staged view: the newest pending op that covers
// it, else the visible log. Requires staged first - 1 <= index <= last.
absl::StatusOr<Term> LogStore::StagedTermAt(Index index) const {
  for (auto it = pending_.rbegin(); it != pending_.rend(); ++it) {
    switch (it->kind) {
      case PendingOp::Kind::kAppend: {
        const Index first = it->entries.front().index();
        if (index < first) continue;
        CHECK_LE(index, it->entries.back().index())
            << "group " << group_ << ": index truncated but staged";
        return it->entries[index - first].term();
      }
      case PendingOp::Kind::kReplaceLog:
      case PendingOp::Kind::kCompact:
        CHECK_GE(index, it->index) << "group " << group_;
        if (index == it->index) return it->term;
        // Covered by an older op or the visible log: a compaction does not
        // change later entries; a snapshot install has none before it.
        if (it->kind == PendingOp::Kind::kReplaceLog) {
          CHECK(false) << "group " << group_ << ": index " << index
                       << " above an installed snapshot but not staged";
        }
        continue;
      case PendingOp::Kind::kDestroy:
        CHECK(false) << "group " << group_ << " destroyed";
    }
  }
  return TermAt(index);
}

void LogStore::Destroy(WriteBatch* batch) {
  CHECK(!destroyed_) << "group " << group_ << " destroyed twice";
  const KeyRange log = RaftLogRange(group_);
  batch->DeleteRange(Space::kRaftLog, log.begin, log.end);
  const KeyRange state = RaftStateRange(group_);
  batch->DeleteRange(Space::kRaftState, state.begin, state.end);
  staged_ = View();
  pending_.emplace_back(PendingOp::Kind::kDestroy);
  destroyed_ = true;
  has_staged_ = true;
}

void LogStore::OnPersisted() {
  for (PendingOp& op : pending_) {
    switch (op.kind) {
      case PendingOp::Kind::kAppend:
        CacheAppend(std::move(op.entries));
        break;
      case PendingOp::Kind::kReplaceLog:
      case PendingOp::Kind::kDestroy:
        CacheClear();
        break;
      case PendingOp::Kind::kCompact:
        CacheDropThrough(op.index);
        break;
    }
  }
  pending_.clear();
  visible_ = staged_;
  has_staged_ = false;
  DCHECK(cache_.empty() || (cache_.back().index() == visible_.last_index &&
                            cache_.front().index() >= visible_.first_index()));
}

void LogStore::DiscardStaged() {
  pending_.clear();
  staged_ = visible_;
  destroyed_ = false;
  has_staged_ = false;
}

LogStoreStats LogStore::stats() const {
  LogStoreStats stats;
  stats.cache_entries = cache_.size();
  stats.cache_bytes = cache_bytes_;
  stats.cache_hits = cache_hits_;
  stats.kv_reads = kv_reads_;
  return stats;
}

// --- Cache ---

void LogStore::CacheAppend(std::vector<Entry> entries) {
  if (entries.empty()) return;
  const Index first = entries.front().index();
  while (!cache_.empty() && cache_.back().index() >= first) {
    cache_bytes_ -= cache_.back().ByteSizeLong();
    cache_.pop_back();
  }
  if (!cache_.empty() && cache_.back().index() + 1 != first) CacheClear();
  for (Entry& entry : entries) {
    cache_bytes_ += entry.ByteSizeLong();
    cache_.push_back(std::move(entry));
  }
  while (cache_.size() > 1 && cache_bytes_ > options_.cache_bytes_max) {
    cache_bytes_ -= cache_.front().ByteSizeLong();
    cache_.pop_front();
  }
}

void LogStore::CacheDropThrough(Index index) {
  while (!cache_.empty() && cache_.front().index() <= index) {
    cache_bytes_ -= cache_.front().ByteSizeLong();
    cache_.pop_front();
  }
}

void LogStore::CacheClear() {
  cache_.clear();
  cache_bytes_ = 0;
}

}  // namespace spate::storage
