#include "storage/power_loss_fs.h"

#include <mutex>
#include <string>
#include <utility>

namespace spate::storage {
namespace {

using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

// RocksDB's info log ("LOG", "LOG.old.<time>") is text for people, not
// data: it is written through so that a crashed node's log stays readable.
bool IsInfoLog(const std::string& fname) {
  const size_t slash = fname.rfind('/');
  const std::string base =
      slash == std::string::npos ? fname : fname.substr(slash + 1);
  return base == "LOG" || base.rfind("LOG.old", 0) == 0;
}

// A writable file whose appended bytes wait in `buffer_` until a sync.
// Invariant: the file's logical content is the target's content followed
// by `buffer_`.
class BufferedFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  BufferedFile(std::unique_ptr<rocksdb::FSWritableFile> target,
               std::atomic<uint64_t>* unsynced_bytes)
      : FSWritableFileOwnerWrapper(std::move(target)),
        unsynced_bytes_(unsynced_bytes) {}

  ~BufferedFile() override {
    // RocksDB normally closes first; a file destroyed open behaves like a
    // close (see the header: closed files keep their bytes).
    std::lock_guard<std::mutex> lock(mu_);
    WriteThrough(IOOptions()).PermitUncheckedError();
  }

  IOStatus Append(const Slice& data, const IOOptions& options,
                  IODebugContext* dbg) override {
    std::lock_guard<std::mutex> lock(mu_);
    buffer_.append(data.data(), data.size());
    *unsynced_bytes_ += data.size();
    return IOStatus::OK();
  }
  IOStatus Append(const Slice& data, const IOOptions& options,
                  const rocksdb::DataVerificationInfo& verification_info,
                  IODebugContext* dbg) override {
    return Append(data, options, dbg);
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset,
                            const IOOptions& options,
                            IODebugContext* dbg) override {
    std::lock_guard<std::mutex> lock(mu_);
    // Only direct I/O uses positioned appends; keep it correct, not lossy.
    IOStatus status = WriteThrough(options);
    if (!status.ok()) return status;
    return target()->PositionedAppend(data, offset, options, dbg);
  }
  IOStatus PositionedAppend(
      const Slice& data, uint64_t offset, const IOOptions& options,
      const rocksdb::DataVerificationInfo& verification_info,
      IODebugContext* dbg) override {
    return PositionedAppend(data, offset, options, dbg);
  }
  IOStatus Truncate(uint64_t size, const IOOptions& options,
                    IODebugContext* dbg) override {
    std::lock_guard<std::mutex> lock(mu_);
    IOStatus status = WriteThrough(options);
    if (!status.ok()) return status;
    return target()->Truncate(size, options, dbg);
  }
  IOStatus Close(const IOOptions& options, IODebugContext* dbg) override {
    std::lock_guard<std::mutex> lock(mu_);
    IOStatus status = WriteThrough(options);
    if (!status.ok()) return status;
    return target()->Close(options, dbg);
  }
  // Flush only moves bytes from a user-space buffer to the OS, which a
  // power loss does not survive: the bytes stay here.
  IOStatus Flush(const IOOptions& options, IODebugContext* dbg) override {
    return IOStatus::OK();
  }
  IOStatus Sync(const IOOptions& options, IODebugContext* dbg) override {
    std::lock_guard<std::mutex> lock(mu_);
    IOStatus status = WriteThrough(options);
    if (!status.ok()) return status;
    return target()->Sync(options, dbg);
  }
  IOStatus Fsync(const IOOptions& options, IODebugContext* dbg) override {
    std::lock_guard<std::mutex> lock(mu_);
    IOStatus status = WriteThrough(options);
    if (!status.ok()) return status;
    return target()->Fsync(options, dbg);
  }
  bool IsSyncThreadSafe() const override { return true; }
  uint64_t GetFileSize(const IOOptions& options, IODebugContext* dbg) override {
    std::lock_guard<std::mutex> lock(mu_);
    return target()->GetFileSize(options, dbg) + buffer_.size();
  }
  // A range sync is a write-back hint, not a durability point; the range
  // may still be in the buffer.
  IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const IOOptions& options,
                     IODebugContext* dbg) override {
    return IOStatus::OK();
  }
  IOStatus InvalidateCache(size_t offset, size_t length) override {
    return IOStatus::OK();
  }

 private:
  // Hands the buffered bytes to the real file (without syncing it).
  IOStatus WriteThrough(const IOOptions& options) {
    if (buffer_.empty()) return IOStatus::OK();
    IOStatus status = target()->Append(Slice(buffer_), options, nullptr);
    if (!status.ok()) return status;
    status = target()->Flush(options, nullptr);
    *unsynced_bytes_ -= buffer_.size();
    buffer_.clear();
    return status;
  }

  std::atomic<uint64_t>* const unsynced_bytes_;
  std::mutex mu_;
  std::string buffer_;  // guarded by mu_
};

}  // namespace

PowerLossFileSystem::PowerLossFileSystem(
    std::shared_ptr<rocksdb::FileSystem> target)
    : FileSystemWrapper(std::move(target)) {}

IOStatus PowerLossFileSystem::Wrap(
    const std::string& fname, IOStatus status,
    std::unique_ptr<rocksdb::FSWritableFile>* result) {
  if (!status.ok() || IsInfoLog(fname)) return status;
  *result =
      std::make_unique<BufferedFile>(std::move(*result), &unsynced_bytes_);
  return status;
}

IOStatus PowerLossFileSystem::NewWritableFile(
    const std::string& fname, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, IODebugContext* dbg) {
  return Wrap(fname, target()->NewWritableFile(fname, options, result, dbg),
              result);
}

IOStatus PowerLossFileSystem::ReopenWritableFile(
    const std::string& fname, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, IODebugContext* dbg) {
  return Wrap(fname, target()->ReopenWritableFile(fname, options, result, dbg),
              result);
}

IOStatus PowerLossFileSystem::ReuseWritableFile(
    const std::string& fname, const std::string& old_fname,
    const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, IODebugContext* dbg) {
  return Wrap(
      fname,
      target()->ReuseWritableFile(fname, old_fname, options, result, dbg),
      result);
}

}  // namespace spate::storage
