#include "client/ids.h"

#include "absl/random/random.h"
#include "absl/synchronization/mutex.h"

namespace spate::client {
namespace {

constexpr char kBase62[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

// One process-wide generator: absl::BitGen seeds itself from the OS and is
// not thread-safe, hence the mutex (ids are drawn per connection, rarely).
uint64_t RandomWord() {
  static absl::Mutex mu(absl::kConstInit);
  static absl::BitGen* gen ABSL_GUARDED_BY(mu) = nullptr;
  absl::MutexLock lock(&mu);
  if (gen == nullptr) gen = new absl::BitGen();
  return absl::Uniform<uint64_t>(*gen);
}

}  // namespace

std::string RandomBytes(int size) {
  std::string bytes;
  bytes.reserve(size);
  while (static_cast<int>(bytes.size()) < size) {
    uint64_t word = RandomWord();
    for (int i = 0; i < 8 && static_cast<int>(bytes.size()) < size; ++i) {
      bytes.push_back(static_cast<char>(word & 0xff));
      word >>= 8;
    }
  }
  return bytes;
}

std::string RandomAlnum(int size) {
  std::string text;
  for (int i = 0; i < size; ++i) {
    text.push_back("abcdefghijklmnopqrstuvwxyz0123456789"[RandomWord() % 36]);
  }
  return text;
}

GuidGenerator::GuidGenerator() {
  // 12 characters of 6 random bits each (values < 62 by rejection) carry
  // about 71 bits of entropy.
  while (static_cast<int>(prefix_.size()) < kPrefixChars) {
    uint64_t word = RandomWord();
    for (int i = 0; i < 10 && static_cast<int>(prefix_.size()) < kPrefixChars;
         ++i) {
      const uint64_t digit = word & 63;
      word >>= 6;
      if (digit < 62) prefix_.push_back(kBase62[digit]);
    }
  }
}

std::string GuidGenerator::Next() {
  uint64_t n = counter_.fetch_add(1, std::memory_order_relaxed);
  std::string guid = prefix_;
  do {
    guid.push_back(kBase62[n % 62]);
    n /= 62;
  } while (n != 0);
  return guid;
}

}  // namespace spate::client
