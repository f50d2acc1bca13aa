#include "storage/mem_kv.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "storage/keys.h"

namespace spate::storage {
namespace {

// Pairs copied per lock acquisition during a Scan.
constexpr size_t kScanChunk = 64;

using Pair = std::pair<std::string, std::string>;

}  // namespace

absl::StatusOr<std::string> MemKv::Get(Space space,
                                       absl::string_view key) const {
  std::lock_guard<std::mutex> lock(mu_);
  const Map& map = visible_[static_cast<size_t>(space)];
  auto it = map.find(key);
  if (it == map.end()) {
    return absl::NotFoundError(
        absl::StrCat(DescribeKey(space, key), " not found"));
  }
  return it->second;
}

absl::Status MemKv::Scan(
    Space space, absl::string_view begin, absl::string_view end, bool reverse,
    absl::FunctionRef<bool(absl::string_view, absl::string_view)> visit) const {
  // The remaining range shrinks from the front (forward) or back (reverse)
  // after every chunk.
  std::string lo(begin);
  std::string hi(end);
  std::vector<Pair> chunk;
  while (lo < hi) {
    chunk.clear();
    {
      std::lock_guard<std::mutex> lock(mu_);
      const Map& map = visible_[static_cast<size_t>(space)];
      if (!reverse) {
        for (auto it = map.lower_bound(lo);
             it != map.end() && it->first < hi && chunk.size() < kScanChunk;
             ++it) {
          chunk.emplace_back(it->first, it->second);
        }
      } else {
        auto it = map.lower_bound(hi);
        while (it != map.begin() && chunk.size() < kScanChunk) {
          --it;
          if (it->first < lo) break;
          chunk.emplace_back(it->first, it->second);
        }
      }
    }
    if (chunk.empty()) return absl::OkStatus();
    for (const Pair& pair : chunk) {
      if (!visit(pair.first, pair.second)) return absl::OkStatus();
    }
    if (!reverse) {
      lo = chunk.back().first;
      lo.push_back('\0');  // the smallest key after the last one visited
    } else {
      hi = chunk.back().first;
    }
  }
  return absl::OkStatus();
}

void MemKv::Apply(const WriteBatch& batch, Image* image) {
  batch.ForEach([image](const WriteBatch::Op& op) {
    Map& map = (*image)[static_cast<size_t>(op.space)];
    switch (op.type) {
      case WriteBatch::OpType::kPut: {
        auto it = map.find(op.key);
        if (it == map.end()) {
          map.emplace(std::string(op.key), std::string(op.value));
        } else {
          it->second.assign(op.value.data(), op.value.size());
        }
        break;
      }
      case WriteBatch::OpType::kDelete: {
        auto it = map.find(op.key);
        if (it != map.end()) map.erase(it);
        break;
      }
      case WriteBatch::OpType::kDeleteRange:
        map.erase(map.lower_bound(op.key), map.lower_bound(op.value));
        break;
    }
  });
}

absl::Status MemKv::Write(const WriteBatch& batch, bool sync) {
  std::lock_guard<std::mutex> lock(mu_);
  if (read_only_) {
    return absl::FailedPreconditionError("a Kv snapshot is read-only");
  }
  if (!write_error_.ok()) return write_error_;
  Apply(batch, &visible_);
  ++write_count_;
  if (!sync) {
    unsynced_.push_back(batch);
    return absl::OkStatus();
  }
  // An fsync of the WAL makes every earlier write durable too.
  for (const WriteBatch& earlier : unsynced_) Apply(earlier, &durable_);
  unsynced_.clear();
  Apply(batch, &durable_);
  ++sync_count_;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Kv>> MemKv::NewSnapshot() const {
  auto copy = std::make_unique<MemKv>();
  std::lock_guard<std::mutex> lock(mu_);
  copy->visible_ = visible_;
  copy->durable_ = visible_;
  copy->read_only_ = true;
  return std::unique_ptr<Kv>(std::move(copy));
}

absl::StatusOr<KvStats> MemKv::GetStats() const {
  std::lock_guard<std::mutex> lock(mu_);
  KvStats stats;
  for (size_t i = 0; i < kSpaceCount; ++i) {
    SpaceStats& space = stats.spaces[i];
    space.keys_approx = visible_[i].size();
    for (const auto& [key, value] : visible_[i]) {
      space.memory_bytes += key.size() + value.size();
    }
  }
  return stats;
}

void MemKv::SimulateCrash(size_t unsynced_batches_kept) {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t kept = std::min(unsynced_batches_kept, unsynced_.size());
  for (size_t i = 0; i < kept; ++i) Apply(unsynced_[i], &durable_);
  unsynced_.clear();
  visible_ = durable_;
}

absl::Status MemKv::CorruptValue(Space space, absl::string_view key,
                                 size_t byte_offset, int bit) {
  CHECK(bit >= 0 && bit < 8) << "bit " << bit;
  std::lock_guard<std::mutex> lock(mu_);
  Map& visible = visible_[static_cast<size_t>(space)];
  auto it = visible.find(key);
  if (it == visible.end()) {
    return absl::NotFoundError(
        absl::StrCat(DescribeKey(space, key), " not found"));
  }
  if (byte_offset >= it->second.size()) {
    return absl::OutOfRangeError(absl::StrCat(
        DescribeKey(space, key), " has only ", it->second.size(), " bytes"));
  }
  const char mask = static_cast<char>(1 << bit);
  it->second[byte_offset] ^= mask;
  // Damage the durable image too, so that it survives SimulateCrash.
  Map& durable = durable_[static_cast<size_t>(space)];
  auto durable_it = durable.find(key);
  if (durable_it != durable.end() && byte_offset < durable_it->second.size()) {
    durable_it->second[byte_offset] ^= mask;
  }
  return absl::OkStatus();
}

void MemKv::set_write_error(absl::Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  write_error_ = std::move(status);
}

uint64_t MemKv::write_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return write_count_;
}

uint64_t MemKv::sync_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sync_count_;
}

size_t MemKv::unsynced_batch_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return unsynced_.size();
}

}  // namespace spate::storage
