#include "storage/sync_watermark.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"

namespace spate::storage {
namespace {

constexpr uint32_t kMagic = 0x53594e43;  // "SYNC"
constexpr size_t kSlotBytes = 16;
constexpr int kSlots = 2;

void PutLe(uint64_t value, int bytes, unsigned char* out) {
  for (int i = 0; i < bytes; ++i) out[i] = (value >> (8 * i)) & 0xff;
}

uint64_t GetLe(const unsigned char* in, int bytes) {
  uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) value = (value << 8) | in[i];
  return value;
}

uint32_t Crc(const unsigned char* data, size_t size) {
  return static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(data), size));
}

std::string Errno() { return std::strerror(errno); }

}  // namespace

absl::StatusOr<std::unique_ptr<SyncWatermark>> SyncWatermark::Open(
    const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / kFileName).string();
  const bool existed = std::filesystem::exists(path);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot open ", path, ": ", Errno()));
  }
  if (!existed) {
    const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    const bool synced = dir_fd >= 0 && ::fsync(dir_fd) == 0;
    if (dir_fd >= 0) ::close(dir_fd);
    if (!synced) {
      ::close(fd);
      return absl::UnavailableError(
          absl::StrCat("cannot sync ", dir, " after creating ", path));
    }
  }
  unsigned char slots[kSlots * kSlotBytes] = {};
  const ssize_t read = ::pread(fd, slots, sizeof(slots), 0);
  if (read < 0) {
    ::close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot read ", path, ": ", Errno()));
  }
  uint64_t recorded = 0;
  int newest = -1;
  for (int slot = 0; slot < kSlots; ++slot) {
    if (read < static_cast<ssize_t>((slot + 1) * kSlotBytes)) break;
    const unsigned char* record = slots + slot * kSlotBytes;
    if (GetLe(record + 8, 4) != kMagic ||
        GetLe(record + 12, 4) != Crc(record, 12)) {
      continue;  // never written, or torn: the other slot has the value
    }
    const uint64_t value = GetLe(record, 8);
    if (newest < 0 || value > recorded) {
      recorded = value;
      newest = slot;
    }
  }
  return std::unique_ptr<SyncWatermark>(
      new SyncWatermark(path, fd, recorded, (newest + 1) % kSlots));
}

SyncWatermark::~SyncWatermark() { ::close(fd_); }

absl::Status SyncWatermark::Record(uint64_t value) {
  if (value <= recorded_) return absl::OkStatus();
  unsigned char record[kSlotBytes];
  PutLe(value, 8, record);
  PutLe(kMagic, 4, record + 8);
  PutLe(Crc(record, 12), 4, record + 12);
  const off_t offset = static_cast<off_t>(next_slot_) * kSlotBytes;
  if (::pwrite(fd_, record, kSlotBytes, offset) !=
      static_cast<ssize_t>(kSlotBytes)) {
    return absl::UnavailableError(
        absl::StrCat("cannot write ", path_, ": ", Errno()));
  }
  if (::fdatasync(fd_) != 0) {
    return absl::UnavailableError(
        absl::StrCat("fdatasync of ", path_, " failed: ", Errno()));
  }
  recorded_ = value;
  next_slot_ = (next_slot_ + 1) % kSlots;
  return absl::OkStatus();
}

}  // namespace spate::storage
