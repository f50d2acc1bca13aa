// SyncWatermark: a tiny file next to the RocksDB files that remembers how far
// the write-ahead log was known to be synced (a RocksDB sequence number).
//
// Why: RocksDB cannot tell a write-ahead log that lost its synced tail (a
// file truncated or rolled back by a faulty disk, controller or copy) from
// one that simply ends: a clean cut at a record boundary, or a torn record
// that recovery takes for an interrupted unsynced write, replays as a
// shorter log and opens. For raft that is the worst failure: the node
// forgets entries and votes it acknowledged, and with one more crash a
// majority can elect a leader without committed entries. The watermark is
// the evidence kept outside the log: at open, a store whose recovered last
// sequence is below the recorded one has lost synced writes and must not
// serve (RocksKv::Open fails with DataLoss).
//
// The record is written after the synced write it covers (never ahead of
// the data), at most every `interval` and on close, so a loss confined to
// the last interval before a crash can go unnoticed; anything older cannot.
//
// Format: two 16-byte slots (value, magic, CRC-32) written alternately with
// pwrite + fdatasync, so a torn write leaves the other slot intact; the
// recorded value is the largest valid one. A missing file records 0 (a new
// store, or one restored from a backup).
// Threading: not thread-safe; RocksKv calls it from its single writer.
#ifndef SPATE_STORAGE_SYNC_WATERMARK_H_
#define SPATE_STORAGE_SYNC_WATERMARK_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace spate::storage {

class SyncWatermark {
 public:
  static constexpr const char* kFileName = "SYNCED";

  // Opens or creates `dir`/SYNCED (syncing `dir` when it creates it) and
  // reads the recorded value.
  static absl::StatusOr<std::unique_ptr<SyncWatermark>> Open(
      const std::string& dir);
  ~SyncWatermark();
  SyncWatermark(const SyncWatermark&) = delete;
  SyncWatermark& operator=(const SyncWatermark&) = delete;

  // The largest value recorded durably so far.
  uint64_t recorded() const { return recorded_; }

  // Durably records `value` (ignored unless larger than recorded()).
  absl::Status Record(uint64_t value);

 private:
  SyncWatermark(std::string path, int fd, uint64_t recorded, int next_slot)
      : path_(std::move(path)),
        fd_(fd),
        recorded_(recorded),
        next_slot_(next_slot) {}

  const std::string path_;
  const int fd_;
  uint64_t recorded_;
  int next_slot_;
};

}  // namespace spate::storage

#endif  // SPATE_STORAGE_SYNC_WATERMARK_H_
