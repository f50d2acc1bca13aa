// Key encoding for every record Spate stores (pure functions, no I/O).
// LogStore and ChannelStore build their keys here; tools that read a node's
// RocksDB offline decode them here. Integers are big-endian fixed 8 bytes so
// that byte order (RocksDB's comparator) equals numeric order: a group's log
// is one contiguous, index-ordered key range, a channel's messages one
// sequence-ordered range.
//
//   Space        key                                   value (framed, see
//                                                      record_codec.h)
//   -----------  ------------------------------------  ----------------------
//   kRaftState   group u64 | kind u8 (1 hard state)    raft::HardState
//                group u64 | kind u8 (2 conf state)    raft::ConfState
//                group u64 | kind u8 (3 snapshot meta) raft::SnapshotMetadata
//                group u64 | kind u8 (4 snapshot data) raft::Snapshot (+data)
//   kRaftLog     group u64 | index u64                 raft::Entry
//   kMessages    channel_id u64 | sequence u64         StoredMessage
//   kState       'C' | channel_id u64                  ChannelRecord
//                'S' | channel_id u64 | sub_id u64     SubscriptionRecord
//                'L' | client_id bytes                 ClientRecord
//                'M'                                   MetaRecord
//                'D' | channel name bytes              ChannelDirectoryEntry
//                'N' | node_id u64                     NodeRecord
//                'R'                                   rebuilding marker
//                                                      (plain text: why)
//
// A channel's group id is its channel id; group 0 is the metadata group.
// Ids of groups and channels must be < 2^64 - 1, so that every prefix has a
// finite successor (PrefixEnd). Client ids and channel names are the last
// key component, so one being a prefix of another cannot confuse a lookup.
//
// Ranges are half-open [begin, end), as Kv::Scan and WriteBatch::DeleteRange
// take them. Functions taking several integers name them in their
// parameters: GroupId, Index and channel ids are all uint64_t.
//
// Threading: pure functions, any thread.
#ifndef SPATE_STORAGE_KEYS_H_
#define SPATE_STORAGE_KEYS_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "raft/types.h"
#include "storage/kv.h"

namespace spate::storage {

// Record kinds of one group in Space::kRaftState. Stored as one byte: never
// renumber.
enum class RaftStateKind : uint8_t {
  kHardState = 1,
  kConfState = 2,
  kSnapshotMetadata = 3,
  // Kept apart from the metadata so that opening a group (which reads the
  // metadata) never reads a possibly large snapshot image.
  kSnapshotData = 4,
};

// A half-open key range [begin, end).
struct KeyRange {
  std::string begin;
  std::string end;
};

// The smallest key greater than every key that starts with `prefix`.
// Crashes on an empty or all-0xff prefix (no such key).
std::string PrefixEnd(absl::string_view prefix);

// --- Space::kRaftState ---
std::string RaftStateKey(raft::GroupId group, RaftStateKind kind);
// Every raft-state record of `group`.
KeyRange RaftStateRange(raft::GroupId group);
bool ParseRaftStateKey(absl::string_view key, raft::GroupId* group,
                       RaftStateKind* kind);

// --- Space::kRaftLog ---
std::string RaftLogKey(raft::GroupId group, raft::Index index);
// The whole log of `group`.
KeyRange RaftLogRange(raft::GroupId group);
// Entries lo <= index < hi of `group`.
KeyRange RaftLogIndexRange(raft::GroupId group, raft::Index lo, raft::Index hi);
bool ParseRaftLogKey(absl::string_view key, raft::GroupId* group,
                     raft::Index* index);

// --- Space::kMessages ---
std::string MessageKey(uint64_t channel_id, uint64_t sequence);
// Every message of a channel.
KeyRange MessageRange(uint64_t channel_id);
// Messages from_seq <= sequence <= to_seq (inclusive, so that to_seq may be
// UINT64_MAX). Empty when from_seq > to_seq.
KeyRange MessageSequenceRange(uint64_t channel_id, uint64_t from_seq,
                              uint64_t to_seq);
bool ParseMessageKey(absl::string_view key, uint64_t* channel_id,
                     uint64_t* sequence);

// --- Space::kState ---
std::string ChannelRecordKey(uint64_t channel_id);
KeyRange ChannelRecordRange();  // every channel record
std::string SubscriptionKey(uint64_t channel_id, uint64_t sub_id);
KeyRange SubscriptionRange(uint64_t channel_id);  // one channel's subs
std::string ClientKey(absl::string_view client_id);
KeyRange ClientRange();  // every client record

std::string NodeKey(uint64_t node_id);
KeyRange NodeRange();  // every node record
std::string MetaKey();
// Present while the node rebuilds a store it found damaged (server/node.h).
std::string RebuildingKey();
std::string DirectoryKey(absl::string_view channel_name);
KeyRange DirectoryRange();  // every directory entry

// A readable name for a key, for error messages and dump tools, e.g.
// "raft_log group=7 index=42" or "state subscription channel=7 sub=3".
std::string DescribeKey(Space space, absl::string_view key);

}  // namespace spate::storage

#endif  // SPATE_STORAGE_KEYS_H_
