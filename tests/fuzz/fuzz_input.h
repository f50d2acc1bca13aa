// FuzzInput: splits one libFuzzer input into a sequence of small records so
// that a target can drive a stateful object (a state machine, a raft
// replica) with many operations per input. The format is deliberately
// trivial, so that libFuzzer's byte mutations stay meaningful:
//
//   record := selector:u8  length:u16 little-endian  bytes[length]
//
// A truncated last record yields its available bytes. The seed-corpus
// generator (tests/fuzz/make_seeds.py) writes the same format.
//
// Threading: a plain value; one per fuzz iteration.
#ifndef SPATE_TESTS_FUZZ_FUZZ_INPUT_H_
#define SPATE_TESTS_FUZZ_FUZZ_INPUT_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/message_lite.h"
#include "google/protobuf/stubs/logging.h"

namespace spate::fuzz {

// Protobuf logs an ERROR line for every string field with invalid UTF-8
// it refuses to parse; fuzz inputs hit that constantly, and the log would
// dominate the run time. Call once per input (cheap after the first).
inline void QuietProtobufLogs() {
  static const bool quiet = [] {
    google::protobuf::SetLogHandler(nullptr);
    return true;
  }();
  (void)quiet;
}

// The bytes of `message` with map entries in key order. Plain
// SerializeAsString writes a map in hash order, which differs between two
// equal messages built in different orders; comparing states byte for byte
// needs one canonical form.
inline std::string CanonicalBytes(
    const google::protobuf::MessageLite& message) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializePartialToCodedStream(&coded);
  }
  return out;
}

struct FuzzRecord {
  uint8_t selector = 0;
  absl::string_view bytes;
};

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size)
      : rest_(reinterpret_cast<const char*>(data), size) {}

  // Fills `*record` with the next record; false at the end of the input.
  bool Next(FuzzRecord* record) {
    if (rest_.empty()) return false;
    record->selector = static_cast<uint8_t>(rest_[0]);
    rest_.remove_prefix(1);
    size_t length = 0;
    if (rest_.size() >= 2) {
      length = static_cast<uint8_t>(rest_[0]) |
               (static_cast<size_t>(static_cast<uint8_t>(rest_[1])) << 8);
      rest_.remove_prefix(2);
    } else {
      rest_.remove_prefix(rest_.size());
    }
    if (length > rest_.size()) length = rest_.size();
    record->bytes = rest_.substr(0, length);
    rest_.remove_prefix(length);
    return true;
  }

 private:
  absl::string_view rest_;
};

}  // namespace spate::fuzz

#endif  // SPATE_TESTS_FUZZ_FUZZ_INPUT_H_
