#include "storage/rocks_kv.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/log.h"
#include "rocksdb/cache.h"
#include "rocksdb/convenience.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/checkpoint.h"
#include "rocksdb/write_batch.h"
#include "storage/keys.h"
#include "storage/power_loss_fs.h"
#include "storage/sync_watermark.h"

namespace spate::storage {
namespace {

// Set once by LoseUnsyncedWritesOnCrashForTesting; never freed (stores may
// be open until the process ends).
std::atomic<rocksdb::Env*> test_env{nullptr};

constexpr Space kSpaces[kSpaceCount] = {Space::kRaftState, Space::kRaftLog,
                                        Space::kMessages, Space::kState};

rocksdb::Slice ToSlice(absl::string_view view) {
  return rocksdb::Slice(view.data(), view.size());
}

absl::string_view ToView(const rocksdb::Slice& slice) {
  return absl::string_view(slice.data(), slice.size());
}

// The one conversion from rocksdb::Status (STYLE.md "Error handling").
// `context` says what was being done and where.
absl::Status ToStatus(const rocksdb::Status& status,
                      absl::string_view context) {
  if (status.ok()) return absl::OkStatus();
  const std::string message = absl::StrCat(context, ": ", status.ToString());
  switch (status.code()) {
    case rocksdb::Status::kNotFound:
      return absl::NotFoundError(message);
    case rocksdb::Status::kCorruption:
      return absl::DataLossError(message);
    case rocksdb::Status::kNotSupported:
      return absl::UnimplementedError(message);
    case rocksdb::Status::kInvalidArgument:
      return absl::InvalidArgumentError(message);
    case rocksdb::Status::kIOError:
      if (status.IsNoSpace()) return absl::ResourceExhaustedError(message);
      if (status.IsPathNotFound()) return absl::NotFoundError(message);
      return absl::UnavailableError(message);
    case rocksdb::Status::kShutdownInProgress:
    case rocksdb::Status::kTimedOut:
    case rocksdb::Status::kBusy:
    case rocksdb::Status::kTryAgain:
      return absl::UnavailableError(message);
    case rocksdb::Status::kAborted:
      return absl::AbortedError(message);
    case rocksdb::Status::kExpired:
      return absl::DeadlineExceededError(message);
    case rocksdb::Status::kCompactionTooLarge:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::InternalError(message);
  }
}

// Makes a newly created directory's entry durable in its parent (DESIGN.md
// §6: fsync the directory after creating files); RocksDB syncs the
// directory's own contents.
absl::Status SyncParentDirectory(const std::filesystem::path& dir) {
  std::filesystem::path parent = dir.parent_path();
  if (parent.empty()) parent = ".";
  const int fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot open ", parent.string(), " to sync it"));
  }
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) {
    return absl::UnavailableError(absl::StrCat(
        "fsync of ", parent.string(), " failed after creating ", dir.string()));
  }
  return absl::OkStatus();
}

rocksdb::ColumnFamilyOptions SpaceOptions(
    Space space, const RocksKvOptions& options,
    const std::shared_ptr<rocksdb::Cache>& cache) {
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.format_version = 5;

  rocksdb::ColumnFamilyOptions cf;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf.level_compaction_dynamic_level_bytes = true;
  cf.max_write_buffer_number = options.write_buffers_per_space;
  cf.compression = rocksdb::kNoCompression;
  switch (space) {
    case Space::kRaftLog:
      cf.write_buffer_size = options.log_write_buffer_bytes;
      break;
    case Space::kMessages: {
      cf.write_buffer_size = options.log_write_buffer_bytes;
      const std::vector<rocksdb::CompressionType> supported =
          rocksdb::GetSupportedCompressions();
      if (options.compress_messages &&
          std::find(supported.begin(), supported.end(),
                    rocksdb::kLZ4Compression) != supported.end()) {
        cf.compression = rocksdb::kLZ4Compression;
      }
      break;
    }
    case Space::kRaftState:
    case Space::kState:
      cf.write_buffer_size = options.state_write_buffer_bytes;
      break;
  }
  return cf;
}

rocksdb::DBOptions DatabaseOptions(const RocksKvOptions& options) {
  rocksdb::DBOptions db;
  db.create_if_missing = true;
  db.create_missing_column_families = true;
  db.paranoid_checks = true;
  db.wal_recovery_mode =
      rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  db.max_background_jobs = options.background_jobs;
  db.db_write_buffer_size = options.write_buffers_total_bytes_max;
  db.max_total_wal_size = options.wal_total_bytes_max;
  // fdatasync is as safe as fsync for the WAL and cheaper.
  db.use_fsync = false;
  // Smooth SST writes so that a flush does not stall the WAL's fsyncs.
  db.bytes_per_sync = 1 << 20;
  db.keep_log_file_num = 4;
  db.max_log_file_size = 16 << 20;
  if (rocksdb::Env* env = test_env.load()) db.env = env;
  return db;
}

}  // namespace

void LoseUnsyncedWritesOnCrashForTesting() {
  if (test_env.load() != nullptr) return;
  static rocksdb::Env* const env =
      rocksdb::NewCompositeEnv(
          std::make_shared<PowerLossFileSystem>(rocksdb::FileSystem::Default()))
          .release();
  test_env.store(env);
}

absl::Status RocksKvOptions::Validate() const {
  if (log_write_buffer_bytes < (1 << 20)) {
    return absl::InvalidArgumentError(
        "log_write_buffer_bytes must be >= 1 MiB");
  }
  if (state_write_buffer_bytes < (1 << 20)) {
    return absl::InvalidArgumentError(
        "state_write_buffer_bytes must be >= 1 MiB");
  }
  if (write_buffers_per_space < 2) {
    return absl::InvalidArgumentError("write_buffers_per_space must be >= 2");
  }
  if (write_buffers_total_bytes_max < log_write_buffer_bytes) {
    return absl::InvalidArgumentError(
        "write_buffers_total_bytes_max must be >= log_write_buffer_bytes");
  }
  if (background_jobs < 1) {
    return absl::InvalidArgumentError("background_jobs must be >= 1");
  }
  return absl::OkStatus();
}

class RocksKv::Impl {
 public:
  Impl(std::string dir, rocksdb::DB* db,
       std::vector<rocksdb::ColumnFamilyHandle*> handles)
      : dir_(std::move(dir)), db_(db), handles_(std::move(handles)) {
    CHECK_EQ(handles_.size(), kSpaceCount + 1);  // + RocksDB's "default"
  }

  ~Impl() {
    if (mark_ != nullptr && synced_ > mark_->recorded()) {
      // A clean stop records everything synced: any later loss is caught.
      const absl::Status status = mark_->Record(synced_);
      if (!status.ok()) LOG(ERROR) << status;
    }
    for (rocksdb::ColumnFamilyHandle* handle : handles_) {
      const rocksdb::Status status = db_->DestroyColumnFamilyHandle(handle);
      if (!status.ok()) {
        LOG(ERROR) << ToStatus(status, "closing column family in " + dir_);
      }
    }
    const absl::Status status = ToStatus(db_->Close(), "closing " + dir_);
    if (!status.ok()) LOG(ERROR) << status;
  }

  rocksdb::DB* db() const { return db_.get(); }
  const std::vector<rocksdb::ColumnFamilyHandle*>& handles() const {
    return handles_;
  }
  rocksdb::ColumnFamilyHandle* handle(Space space) const {
    return handles_[static_cast<size_t>(space) + 1];
  }
  const std::string& dir() const { return dir_; }

  void set_mark(std::unique_ptr<SyncWatermark> mark) {
    mark_ = std::move(mark);
  }

  // After a synced write: everything up to the latest sequence is durable
  // (Write has a single caller). Recorded at most every kMarkInterval.
  absl::Status OnSynced() {
    synced_ = db_->GetLatestSequenceNumber();
    const auto now = std::chrono::steady_clock::now();
    if (mark_ == nullptr || now < next_mark_) return absl::OkStatus();
    next_mark_ = now + kMarkInterval;
    return mark_->Record(synced_);
  }

 private:
  static constexpr std::chrono::milliseconds kMarkInterval{10};

  std::unique_ptr<SyncWatermark> mark_;
  uint64_t synced_ = 0;
  std::chrono::steady_clock::time_point next_mark_;
  const std::string dir_;
  std::unique_ptr<rocksdb::DB> db_;
  // handles_[0] is "default" (unused), then one per Space in enum order.
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

absl::StatusOr<std::unique_ptr<RocksKv>> RocksKv::Open(
    const std::string& dir, const RocksKvOptions& options) {
  absl::Status valid = options.Validate();
  if (!valid.ok()) return valid;
  const std::filesystem::path path(dir);
  std::error_code error;
  const bool created = std::filesystem::create_directories(path, error);
  if (error) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create the store directory ", dir, ": ", error.message()));
  }
  if (created) {
    absl::Status synced = SyncParentDirectory(path);
    if (!synced.ok()) return synced;
  }

  const std::shared_ptr<rocksdb::Cache> cache =
      rocksdb::NewLRUCache(options.block_cache_bytes);
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName,
                           rocksdb::ColumnFamilyOptions());
  for (Space space : kSpaces) {
    descriptors.emplace_back(std::string(SpaceName(space)),
                             SpaceOptions(space, options, cache));
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  const rocksdb::Status status = rocksdb::DB::Open(
      DatabaseOptions(options), dir, descriptors, &handles, &db);
  if (!status.ok()) {
    absl::Status open_error =
        ToStatus(status, absl::StrCat("cannot open the store in ", dir));
    if (absl::StrContains(status.ToString(), "lock")) {
      return absl::Status(
          open_error.code(),
          absl::StrCat(open_error.message(),
                       " (is another process using this directory?)"));
    }
    return open_error;
  }
  auto impl = std::make_unique<Impl>(dir, db, std::move(handles));
  absl::StatusOr<std::unique_ptr<SyncWatermark>> mark =
      SyncWatermark::Open(dir);
  if (!mark.ok()) return mark.status();
  const uint64_t recovered = db->GetLatestSequenceNumber();
  if (recovered < (*mark)->recorded()) {
    return absl::DataLossError(absl::StrCat(
        "the store in ", dir, " lost writes it had synced: its write-ahead ",
        "log recovers up to sequence ", recovered, " but sequence ",
        (*mark)->recorded(), " was synced (", SyncWatermark::kFileName,
        "); a truncated or damaged log. This node must not serve or vote ",
        "with it: move the directory away and restart the node empty, and ",
        "it catches up from its peers"));
  }
  impl->set_mark(*std::move(mark));
  return std::unique_ptr<RocksKv>(new RocksKv(std::move(impl)));
}

namespace {

// A RocksDB snapshot as a read-only Kv (see Kv::NewSnapshot).
class RocksSnapshotKv : public Kv {
 public:
  RocksSnapshotKv(const RocksKv* owner, rocksdb::DB* db,
                  std::vector<rocksdb::ColumnFamilyHandle*> handles)
      : owner_(owner),
        db_(db),
        handles_(std::move(handles)),
        snapshot_(db->GetSnapshot()) {}
  ~RocksSnapshotKv() override { db_->ReleaseSnapshot(snapshot_); }

  absl::StatusOr<std::string> Get(Space space,
                                  absl::string_view key) const override {
    rocksdb::ReadOptions read_options;
    read_options.snapshot = snapshot_;
    rocksdb::PinnableSlice value;
    const rocksdb::Status status =
        db_->Get(read_options, Handle(space), ToSlice(key), &value);
    if (!status.ok()) {
      return ToStatus(status,
                      absl::StrCat("get ", DescribeKey(space, key),
                                   " in a snapshot of ", owner_->dir()));
    }
    return std::string(value.data(), value.size());
  }

  absl::Status Scan(
      Space space, absl::string_view begin, absl::string_view end, bool reverse,
      absl::FunctionRef<bool(absl::string_view, absl::string_view)> visit)
      const override {
    if (begin >= end) return absl::OkStatus();
    const rocksdb::Slice lower = ToSlice(begin);
    const rocksdb::Slice upper = ToSlice(end);
    rocksdb::ReadOptions read_options;
    read_options.snapshot = snapshot_;
    read_options.iterate_lower_bound = &lower;
    read_options.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(read_options, Handle(space)));
    if (!reverse) {
      for (it->Seek(lower); it->Valid(); it->Next()) {
        if (!visit(ToView(it->key()), ToView(it->value()))) break;
      }
    } else {
      for (it->SeekToLast(); it->Valid(); it->Prev()) {
        if (!visit(ToView(it->key()), ToView(it->value()))) break;
      }
    }
    return ToStatus(it->status(),
                    absl::StrCat("scan in a snapshot of ", owner_->dir()));
  }

  absl::Status Write(const WriteBatch& batch, bool sync) override {
    return absl::FailedPreconditionError("a Kv snapshot is read-only");
  }
  absl::StatusOr<KvStats> GetStats() const override {
    return owner_->GetStats();
  }
  absl::StatusOr<std::unique_ptr<Kv>> NewSnapshot() const override {
    return absl::FailedPreconditionError("snapshot of a snapshot");
  }

 private:
  rocksdb::ColumnFamilyHandle* Handle(Space space) const {
    return handles_[static_cast<size_t>(space) + 1];
  }

  const RocksKv* owner_;
  rocksdb::DB* db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  const rocksdb::Snapshot* snapshot_;
};

}  // namespace

RocksKv::RocksKv(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<Kv>> RocksKv::NewSnapshot() const {
  return std::unique_ptr<Kv>(
      new RocksSnapshotKv(this, impl_->db(), impl_->handles()));
}

RocksKv::~RocksKv() = default;

const std::string& RocksKv::dir() const { return impl_->dir(); }

absl::StatusOr<std::string> RocksKv::Get(Space space,
                                         absl::string_view key) const {
  rocksdb::PinnableSlice value;
  const rocksdb::Status status = impl_->db()->Get(
      rocksdb::ReadOptions(), impl_->handle(space), ToSlice(key), &value);
  if (!status.ok()) {
    return ToStatus(status, absl::StrCat("get ", DescribeKey(space, key),
                                         " in ", impl_->dir()));
  }
  return std::string(value.data(), value.size());
}

absl::Status RocksKv::Scan(
    Space space, absl::string_view begin, absl::string_view end, bool reverse,
    absl::FunctionRef<bool(absl::string_view, absl::string_view)> visit) const {
  if (begin >= end) return absl::OkStatus();
  const rocksdb::Slice lower = ToSlice(begin);
  const rocksdb::Slice upper = ToSlice(end);
  rocksdb::ReadOptions read_options;
  read_options.iterate_lower_bound = &lower;
  read_options.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db()->NewIterator(read_options, impl_->handle(space)));
  if (!reverse) {
    for (it->Seek(lower); it->Valid(); it->Next()) {
      if (!visit(ToView(it->key()), ToView(it->value()))) break;
    }
  } else {
    // With iterate_upper_bound set, SeekToLast lands on the last key < end.
    for (it->SeekToLast(); it->Valid(); it->Prev()) {
      if (!visit(ToView(it->key()), ToView(it->value()))) break;
    }
  }
  return ToStatus(it->status(),
                  absl::StrCat("scan from ", DescribeKey(space, begin), " in ",
                               impl_->dir()));
}

absl::Status RocksKv::Write(const WriteBatch& batch, bool sync) {
  rocksdb::WriteBatch rocks_batch(batch.bytes() + 64);
  rocksdb::Status status;
  batch.ForEach([&](const WriteBatch::Op& op) {
    if (!status.ok()) return;
    rocksdb::ColumnFamilyHandle* handle = impl_->handle(op.space);
    switch (op.type) {
      case WriteBatch::OpType::kPut:
        status = rocks_batch.Put(handle, ToSlice(op.key), ToSlice(op.value));
        break;
      case WriteBatch::OpType::kDelete:
        status = rocks_batch.Delete(handle, ToSlice(op.key));
        break;
      case WriteBatch::OpType::kDeleteRange:
        status =
            rocks_batch.DeleteRange(handle, ToSlice(op.key), ToSlice(op.value));
        break;
    }
  });
  if (status.ok()) {
    rocksdb::WriteOptions write_options;
    write_options.sync = sync;
    status = impl_->db()->Write(write_options, &rocks_batch);
    if (status.ok() && sync) return impl_->OnSynced();
  }
  return ToStatus(status, absl::StrCat("write of ", batch.count(),
                                       " operations to ", impl_->dir()));
}

absl::StatusOr<KvStats> RocksKv::GetStats() const {
  KvStats stats;
  for (Space space : kSpaces) {
    SpaceStats& out = stats.spaces[static_cast<size_t>(space)];
    rocksdb::ColumnFamilyHandle* handle = impl_->handle(space);
    // Missing properties leave 0: the numbers are estimates for monitoring.
    impl_->db()->GetIntProperty(handle, "rocksdb.estimate-num-keys",
                                &out.keys_approx);
    impl_->db()->GetIntProperty(handle, "rocksdb.total-sst-files-size",
                                &out.disk_bytes);
    impl_->db()->GetIntProperty(handle, "rocksdb.cur-size-all-mem-tables",
                                &out.memory_bytes);
  }
  return stats;
}

absl::Status RocksKv::Flush() {
  rocksdb::FlushOptions flush_options;
  flush_options.wait = true;
  for (Space space : kSpaces) {
    absl::Status status = ToStatus(
        impl_->db()->Flush(flush_options, impl_->handle(space)),
        absl::StrCat("flush of ", SpaceName(space), " in ", impl_->dir()));
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status RocksKv::Checkpoint(const std::string& dir) const {
  rocksdb::Checkpoint* raw = nullptr;
  absl::Status status = ToStatus(rocksdb::Checkpoint::Create(impl_->db(), &raw),
                                 absl::StrCat("checkpoint of ", impl_->dir()));
  if (!status.ok()) return status;
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  // log_size_for_flush = 0: always flush first, so the copy holds SST
  // files and needs little WAL.
  return ToStatus(checkpoint->CreateCheckpoint(dir, /*log_size_for_flush=*/0),
                  absl::StrCat("checkpoint of ", impl_->dir(), " into ", dir));
}

}  // namespace spate::storage
