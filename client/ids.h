// Client-generated identifiers: the per-connection conn_id and per-message
// publish guids. The server deduplicates publishes by guid, so a guid must
// never repeat: each generator draws a 72-bit random prefix from the OS
// entropy source (as NATS's NUID does) and appends a per-generator counter,
// which makes guids unique within a connection by construction and across
// connections with overwhelming probability. Thread-safe.
#ifndef SPATE_CLIENT_IDS_H_
#define SPATE_CLIENT_IDS_H_

#include <atomic>
#include <cstdint>
#include <string>

namespace spate::client {

// `size` random bytes from a generator seeded by the OS.
std::string RandomBytes(int size);

// "spate-cli-" style suffixes: `size` random characters of [a-z0-9].
std::string RandomAlnum(int size);

class GuidGenerator {
 public:
  // 12 base-62 characters of prefix, then up to 11 of counter.
  static constexpr int kPrefixChars = 12;
  static constexpr int kGuidCharsMax = 23;

  GuidGenerator();
  GuidGenerator(const GuidGenerator&) = delete;
  GuidGenerator& operator=(const GuidGenerator&) = delete;

  std::string Next();

 private:
  std::string prefix_;
  std::atomic<uint64_t> counter_{0};
};

}  // namespace spate::client

#endif  // SPATE_CLIENT_IDS_H_
