#include "storage/kv.h"

#include <cstring>

#include "base/check.h"

namespace spate::storage {
namespace {

constexpr size_t kOpHeaderBytes = 1 + 1 + 4 + 4;

void AppendU32(uint32_t value, std::string* out) {
  char bytes[4];
  for (int i = 0; i < 4; ++i) bytes[i] = static_cast<char>(value >> (8 * i));
  out->append(bytes, 4);
}

uint32_t ReadU32(const char* in) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) {
    value |= static_cast<uint32_t>(static_cast<uint8_t>(in[i])) << (8 * i);
  }
  return value;
}

}  // namespace

absl::string_view SpaceName(Space space) {
  switch (space) {
    case Space::kRaftState:
      return "raft_state";
    case Space::kRaftLog:
      return "raft_log";
    case Space::kMessages:
      return "messages";
    case Space::kState:
      return "state";
  }
  CHECK(false) << "unknown space " << static_cast<int>(space);
  return "";
}

void WriteBatch::Put(Space space, absl::string_view key,
                     absl::string_view value) {
  AddOp(OpType::kPut, space, key, value);
}

void WriteBatch::Delete(Space space, absl::string_view key) {
  AddOp(OpType::kDelete, space, key, absl::string_view());
}

void WriteBatch::DeleteRange(Space space, absl::string_view begin,
                             absl::string_view end) {
  CHECK(begin <= end) << "DeleteRange with begin > end in " << SpaceName(space);
  // An empty range is dropped: RocksDB tolerates it, but it would still cost a
  // range tombstone that every later read has to consider.
  if (begin == end) return;
  AddOp(OpType::kDeleteRange, space, begin, end);
}

void WriteBatch::Append(const WriteBatch& other) {
  rep_.append(other.rep_);
  count_ += other.count_;
}

void WriteBatch::Clear() {
  rep_.clear();
  count_ = 0;
}

void WriteBatch::AddOp(OpType type, Space space, absl::string_view key,
                       absl::string_view value) {
  CHECK_LE(key.size(), UINT32_MAX);
  CHECK_LE(value.size(), UINT32_MAX);
  rep_.reserve(rep_.size() + kOpHeaderBytes + key.size() + value.size());
  rep_.push_back(static_cast<char>(type));
  rep_.push_back(static_cast<char>(space));
  AppendU32(static_cast<uint32_t>(key.size()), &rep_);
  AppendU32(static_cast<uint32_t>(value.size()), &rep_);
  rep_.append(key.data(), key.size());
  rep_.append(value.data(), value.size());
  ++count_;
}

void WriteBatch::ForEach(absl::FunctionRef<void(const Op&)> visit) const {
  size_t pos = 0;
  size_t seen = 0;
  while (pos < rep_.size()) {
    CHECK_LE(pos + kOpHeaderBytes, rep_.size()) << "WriteBatch corrupted";
    const char* header = rep_.data() + pos;
    Op op;
    op.type = static_cast<OpType>(header[0]);
    op.space = static_cast<Space>(header[1]);
    const uint32_t key_size = ReadU32(header + 2);
    const uint32_t value_size = ReadU32(header + 6);
    pos += kOpHeaderBytes;
    CHECK_LE(pos + key_size + value_size, rep_.size())
        << "WriteBatch corrupted";
    op.key = absl::string_view(rep_.data() + pos, key_size);
    op.value = absl::string_view(rep_.data() + pos + key_size, value_size);
    pos += key_size + value_size;
    visit(op);
    ++seen;
  }
  DCHECK_EQ(seen, count_);
}

}  // namespace spate::storage
