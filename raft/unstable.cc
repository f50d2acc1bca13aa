#include "raft/unstable.h"

#include "base/check.h"

namespace spate::raft {

std::optional<Index> Unstable::MaybeFirstIndex() const {
  if (snapshot_.has_value()) return snapshot_->metadata().index() + 1;
  return std::nullopt;
}

std::optional<Index> Unstable::MaybeLastIndex() const {
  if (!entries_.empty()) return offset_ + entries_.size() - 1;
  if (snapshot_.has_value()) return snapshot_->metadata().index();
  return std::nullopt;
}

std::optional<Term> Unstable::MaybeTerm(Index i) const {
  if (i < offset_) {
    if (snapshot_.has_value() && snapshot_->metadata().index() == i) {
      return snapshot_->metadata().term();
    }
    return std::nullopt;
  }
  const std::optional<Index> last = MaybeLastIndex();
  if (!last.has_value() || i > *last) return std::nullopt;
  return entries_[i - offset_].term();
}

void Unstable::StableTo(Index i, Term t) {
  const std::optional<Term> term = MaybeTerm(i);
  // Only drop what was persisted: if index i now holds another term, the
  // persisted entry was superseded and ours still has to be written.
  if (!term.has_value() || *term != t || i < offset_) return;
  const size_t n = i - offset_ + 1;
  if (n == entries_.size()) {
    entries_.clear();  // keeps the capacity for the next batch
  } else {
    entries_.erase(entries_.begin(), entries_.begin() + n);
  }
  offset_ = i + 1;
}

void Unstable::StableSnapTo(Index i) {
  if (snapshot_.has_value() && snapshot_->metadata().index() == i) {
    snapshot_.reset();
  }
}

void Unstable::Restore(const Snapshot& snapshot) {
  offset_ = snapshot.metadata().index() + 1;
  entries_.clear();
  snapshot_ = snapshot;
}

void Unstable::TruncateAndAppend(const EntryList& entries, int start) {
  if (start >= entries.size()) return;
  const Index from = entries[start].index();
  if (from == offset_ + entries_.size()) {
    // The common case: a plain append.
  } else if (from <= offset_) {
    // Replaces everything here and a suffix of the persisted log.
    entries_.clear();
    offset_ = from;
  } else {
    // Truncates our own suffix from `from`.
    entries_.resize(from - offset_);
  }
  entries_.insert(entries_.end(), entries.begin() + start, entries.end());
  DCHECK_EQ(entries_.back().index(), offset_ + entries_.size() - 1);
}

void Unstable::PushBack(Entry&& entry) {
  CHECK_EQ(entry.index(), offset_ + entries_.size());
  entries_.push_back(std::move(entry));
}

absl::Span<const Entry> Unstable::Slice(Index lo, Index hi) const {
  CHECK_LE(lo, hi);
  CHECK_GE(lo, offset_);
  CHECK_LE(hi, offset_ + entries_.size());
  return absl::MakeConstSpan(entries_).subspan(lo - offset_, hi - lo);
}

}  // namespace spate::raft
