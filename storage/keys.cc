#include "storage/keys.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/check.h"

namespace spate::storage {
namespace {

constexpr size_t kU64Bytes = 8;
constexpr char kChannelTag = 'C';
constexpr char kSubscriptionTag = 'S';
constexpr char kClientTag = 'L';
constexpr char kNodeTag = 'N';
constexpr char kMetaTag = 'M';
constexpr char kDirectoryTag = 'D';
constexpr char kRebuildingTag = 'R';

void AppendU64(uint64_t value, std::string* out) {
  char bytes[kU64Bytes];
  for (size_t i = 0; i < kU64Bytes; ++i) {
    bytes[i] = static_cast<char>(value >> (8 * (kU64Bytes - 1 - i)));
  }
  out->append(bytes, kU64Bytes);
}

uint64_t ReadU64(absl::string_view in) {
  DCHECK_GE(in.size(), kU64Bytes);
  uint64_t value = 0;
  for (size_t i = 0; i < kU64Bytes; ++i) {
    value = (value << 8) | static_cast<uint8_t>(in[i]);
  }
  return value;
}

std::string U64Key(uint64_t a) {
  std::string key;
  key.reserve(kU64Bytes);
  AppendU64(a, &key);
  return key;
}

std::string U64PairKey(uint64_t a, uint64_t b) {
  std::string key;
  key.reserve(2 * kU64Bytes);
  AppendU64(a, &key);
  AppendU64(b, &key);
  return key;
}

std::string TagKey(char tag) { return std::string(1, tag); }

KeyRange PrefixRange(std::string prefix) {
  std::string end = PrefixEnd(prefix);
  return KeyRange{std::move(prefix), std::move(end)};
}

std::string DescribeStateKey(absl::string_view key) {
  const char tag = key.empty() ? '\0' : key[0];
  const absl::string_view rest = key.substr(key.empty() ? 0 : 1);
  switch (tag) {
    case kChannelTag:
      if (rest.size() == kU64Bytes) {
        return absl::StrCat("state channel=", ReadU64(rest));
      }
      break;
    case kSubscriptionTag:
      if (rest.size() == 2 * kU64Bytes) {
        return absl::StrCat("state subscription channel=", ReadU64(rest),
                            " sub=", ReadU64(rest.substr(kU64Bytes)));
      }
      break;
    case kClientTag:
      return absl::StrCat("state client=\"", absl::CHexEscape(rest), "\"");
    case kMetaTag:
      if (rest.empty()) return "state meta";
      break;
    case kRebuildingTag:
      if (rest.empty()) return "state rebuilding";
      break;
    case kNodeTag:
      if (rest.size() == kU64Bytes) {
        return absl::StrCat("state node=", ReadU64(rest));
      }
      break;
    case kDirectoryTag:
      return absl::StrCat("state directory name=\"", absl::CHexEscape(rest),
                          "\"");
  }
  return absl::StrCat("state key=\"", absl::CHexEscape(key), "\"");
}

}  // namespace

std::string PrefixEnd(absl::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    const uint8_t last = static_cast<uint8_t>(end.back());
    if (last != 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  CHECK(false) << "no key range above prefix \"" << absl::CHexEscape(prefix)
               << "\"";
  return end;
}

std::string RaftStateKey(raft::GroupId group, RaftStateKind kind) {
  std::string key = U64Key(group);
  key.push_back(static_cast<char>(kind));
  return key;
}

KeyRange RaftStateRange(raft::GroupId group) {
  return PrefixRange(U64Key(group));
}

bool ParseRaftStateKey(absl::string_view key, raft::GroupId* group,
                       RaftStateKind* kind) {
  if (key.size() != kU64Bytes + 1) return false;
  const uint8_t kind_byte = static_cast<uint8_t>(key[kU64Bytes]);
  if (kind_byte < static_cast<uint8_t>(RaftStateKind::kHardState) ||
      kind_byte > static_cast<uint8_t>(RaftStateKind::kSnapshotData)) {
    return false;
  }
  *group = ReadU64(key);
  *kind = static_cast<RaftStateKind>(kind_byte);
  return true;
}

std::string RaftLogKey(raft::GroupId group, raft::Index index) {
  return U64PairKey(group, index);
}

KeyRange RaftLogRange(raft::GroupId group) {
  return PrefixRange(U64Key(group));
}

KeyRange RaftLogIndexRange(raft::GroupId group, raft::Index lo,
                           raft::Index hi) {
  if (hi < lo) hi = lo;
  return KeyRange{RaftLogKey(group, lo), RaftLogKey(group, hi)};
}

bool ParseRaftLogKey(absl::string_view key, raft::GroupId* group,
                     raft::Index* index) {
  if (key.size() != 2 * kU64Bytes) return false;
  *group = ReadU64(key);
  *index = ReadU64(key.substr(kU64Bytes));
  return true;
}

std::string MessageKey(uint64_t channel_id, uint64_t sequence) {
  return U64PairKey(channel_id, sequence);
}

KeyRange MessageRange(uint64_t channel_id) {
  return PrefixRange(U64Key(channel_id));
}

KeyRange MessageSequenceRange(uint64_t channel_id, uint64_t from_seq,
                              uint64_t to_seq) {
  std::string begin = MessageKey(channel_id, from_seq);
  if (from_seq > to_seq) return KeyRange{begin, begin};
  // Keys have a fixed length, so key + '\0' is the smallest key after it.
  std::string end = MessageKey(channel_id, to_seq);
  end.push_back('\0');
  return KeyRange{std::move(begin), std::move(end)};
}

bool ParseMessageKey(absl::string_view key, uint64_t* channel_id,
                     uint64_t* sequence) {
  if (key.size() != 2 * kU64Bytes) return false;
  *channel_id = ReadU64(key);
  *sequence = ReadU64(key.substr(kU64Bytes));
  return true;
}

std::string ChannelRecordKey(uint64_t channel_id) {
  std::string key = TagKey(kChannelTag);
  AppendU64(channel_id, &key);
  return key;
}

KeyRange ChannelRecordRange() { return PrefixRange(TagKey(kChannelTag)); }

std::string SubscriptionKey(uint64_t channel_id, uint64_t sub_id) {
  std::string key = TagKey(kSubscriptionTag);
  AppendU64(channel_id, &key);
  AppendU64(sub_id, &key);
  return key;
}

KeyRange SubscriptionRange(uint64_t channel_id) {
  std::string prefix = TagKey(kSubscriptionTag);
  AppendU64(channel_id, &prefix);
  return PrefixRange(std::move(prefix));
}

std::string ClientKey(absl::string_view client_id) {
  return absl::StrCat(TagKey(kClientTag), client_id);
}

KeyRange ClientRange() { return PrefixRange(TagKey(kClientTag)); }

std::string MetaKey() { return TagKey(kMetaTag); }

std::string RebuildingKey() { return TagKey(kRebuildingTag); }

std::string NodeKey(uint64_t node_id) {
  std::string key = TagKey(kNodeTag);
  AppendU64(node_id, &key);
  return key;
}

KeyRange NodeRange() { return PrefixRange(TagKey(kNodeTag)); }

std::string DirectoryKey(absl::string_view channel_name) {
  return absl::StrCat(TagKey(kDirectoryTag), channel_name);
}

KeyRange DirectoryRange() { return PrefixRange(TagKey(kDirectoryTag)); }

std::string DescribeKey(Space space, absl::string_view key) {
  uint64_t a = 0;
  uint64_t b = 0;
  RaftStateKind kind;
  switch (space) {
    case Space::kRaftState:
      if (ParseRaftStateKey(key, &a, &kind)) {
        static constexpr const char* kKindNames[] = {
            "", "hard_state", "conf_state", "snapshot_metadata",
            "snapshot_data"};
        return absl::StrCat("raft_state group=", a, " ",
                            kKindNames[static_cast<int>(kind)]);
      }
      break;
    case Space::kRaftLog:
      if (ParseRaftLogKey(key, &a, &b)) {
        return absl::StrCat("raft_log group=", a, " index=", b);
      }
      break;
    case Space::kMessages:
      if (ParseMessageKey(key, &a, &b)) {
        return absl::StrCat("messages channel=", a, " sequence=", b);
      }
      break;
    case Space::kState:
      return DescribeStateKey(key);
  }
  return absl::StrCat(SpaceName(space), " key=\"", absl::CHexEscape(key), "\"");
}

}  // namespace spate::storage
