// Framing of every value Spate stores: a format version byte and a CRC-32
// (zlib's) in front of the payload, so that a damaged or truncated record is
// detected on read and reported as absl::DataLossError, never parsed into
// garbage (DESIGN.md §6: "Every stored record carries a checksum").
//
//   byte 0       format version (kRecordFormatVersion)
//   bytes 1..4   CRC-32 of (version byte, payload), big-endian
//   bytes 5..    payload: a serialized protobuf message, or opaque bytes
//
// The CRC also covers the version byte, so a flipped version is a checksum
// failure (DataLoss), while a well-formed record of an unknown version (a
// newer binary wrote it) is absl::FailedPreconditionError.
//
// Checks are paired (STYLE.md): Encode verifies its own output in debug
// builds (frame and round-trip), Decode verifies on every read.
//
// Threading: pure functions, any thread.
#ifndef SPATE_STORAGE_RECORD_CODEC_H_
#define SPATE_STORAGE_RECORD_CODEC_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message_lite.h"

namespace spate::storage {

inline constexpr uint8_t kRecordFormatVersion = 1;
inline constexpr size_t kRecordHeaderBytes = 5;

// Serializes `message` and frames it. Crashes if serialization fails (a
// proto3 message only fails when it exceeds 2 GiB: a bug upstream).
std::string EncodeRecord(const google::protobuf::MessageLite& message);
// Same, replacing the contents of `*out` (lets hot paths reuse a buffer).
void EncodeRecordTo(const google::protobuf::MessageLite& message,
                    std::string* out);

// Verifies the frame of `record` and parses it into `*message`. Errors name
// the message type and the damage: DataLoss for a short record, a checksum
// mismatch or an unparsable payload; FailedPrecondition for an unknown
// version. Callers add which key held the record (keys.h DescribeKey).
absl::Status DecodeRecord(absl::string_view record,
                          google::protobuf::MessageLite* message);

// Frames opaque bytes (no protobuf) the same way.
std::string FrameBytes(absl::string_view payload);
// Verifies the frame and returns a view of the payload inside `record`.
absl::StatusOr<absl::string_view> UnframeBytes(absl::string_view record);

// CRC-32 (IEEE, zlib) of `data`; exposed for the message payload crc32
// field and for tests.
uint32_t Crc32(absl::string_view data);

}  // namespace spate::storage

#endif  // SPATE_STORAGE_RECORD_CODEC_H_
