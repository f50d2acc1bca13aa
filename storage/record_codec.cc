#include "storage/record_codec.h"

#include <zlib.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/check.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace spate::storage {
namespace {

// CRC of the version byte followed by the payload.
uint32_t FrameCrc(uint8_t version, absl::string_view payload) {
  const Bytef version_byte = version;
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, &version_byte, 1);
  // zlib takes uInt lengths; feed huge payloads in pieces.
  while (!payload.empty()) {
    const size_t piece = std::min<size_t>(payload.size(), 1u << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(payload.data()),
                static_cast<uInt>(piece));
    payload.remove_prefix(piece);
  }
  return static_cast<uint32_t>(crc);
}

void WriteHeader(uint32_t crc, std::string* out) {
  (*out)[0] = static_cast<char>(kRecordFormatVersion);
  for (int i = 0; i < 4; ++i) {
    (*out)[1 + i] = static_cast<char>(crc >> (8 * (3 - i)));
  }
}

// Verifies the frame; on success `*payload` views the payload.
absl::Status VerifyFrame(absl::string_view record, absl::string_view what,
                         absl::string_view* payload) {
  if (record.size() < kRecordHeaderBytes) {
    return absl::DataLossError(absl::StrCat(
        what, " record truncated: ", record.size(), " bytes, shorter than its ",
        kRecordHeaderBytes, "-byte header"));
  }
  const uint8_t version = static_cast<uint8_t>(record[0]);
  uint32_t stored = 0;
  for (int i = 0; i < 4; ++i) {
    stored = (stored << 8) | static_cast<uint8_t>(record[1 + i]);
  }
  *payload = record.substr(kRecordHeaderBytes);
  const uint32_t computed = FrameCrc(version, *payload);
  if (stored != computed) {
    return absl::DataLossError(absl::StrFormat(
        "%s record damaged: checksum mismatch (stored 0x%08x, computed "
        "0x%08x, %d bytes)",
        what, stored, computed, record.size()));
  }
  if (version != kRecordFormatVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " record has format version ", version,
                     "; this binary reads version ", kRecordFormatVersion));
  }
  return absl::OkStatus();
}

// Deterministic (map entries sorted) so that the same message always yields
// the same bytes: stored records are comparable across replicas and the
// round-trip check below is exact.
void SerializeDeterministic(const google::protobuf::MessageLite& message,
                            std::string* out) {
  google::protobuf::io::StringOutputStream stream(out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  CHECK(message.SerializeToCodedStream(&coded))
      << "cannot serialize " << message.GetTypeName();
}

}  // namespace

uint32_t Crc32(absl::string_view data) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (!data.empty()) {
    const size_t piece = std::min<size_t>(data.size(), 1u << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data()),
                static_cast<uInt>(piece));
    data.remove_prefix(piece);
  }
  return static_cast<uint32_t>(crc);
}

void EncodeRecordTo(const google::protobuf::MessageLite& message,
                    std::string* out) {
  out->assign(kRecordHeaderBytes, '\0');
  SerializeDeterministic(message, out);
  const absl::string_view payload =
      absl::string_view(*out).substr(kRecordHeaderBytes);
  WriteHeader(FrameCrc(kRecordFormatVersion, payload), out);
#ifndef NDEBUG
  // Validate before writing: the frame verifies and the payload parses back
  // into the same message.
  std::unique_ptr<google::protobuf::MessageLite> copy(message.New());
  CHECK_OK(DecodeRecord(*out, copy.get()));
  std::string reencoded;
  SerializeDeterministic(*copy, &reencoded);
  CHECK(reencoded == payload) << message.GetTypeName() << " round trip";
#endif
}

std::string EncodeRecord(const google::protobuf::MessageLite& message) {
  std::string out;
  EncodeRecordTo(message, &out);
  return out;
}

absl::Status DecodeRecord(absl::string_view record,
                          google::protobuf::MessageLite* message) {
  const std::string what = message->GetTypeName();
  absl::string_view payload;
  absl::Status status = VerifyFrame(record, what, &payload);
  if (!status.ok()) return status;
  if (!message->ParseFromArray(payload.data(),
                               static_cast<int>(payload.size()))) {
    return absl::DataLossError(absl::StrCat(
        what, " record damaged: checksum ok but payload does not parse (",
        payload.size(), " bytes)"));
  }
  return absl::OkStatus();
}

std::string FrameBytes(absl::string_view payload) {
  std::string out(kRecordHeaderBytes, '\0');
  out.append(payload.data(), payload.size());
  WriteHeader(FrameCrc(kRecordFormatVersion, payload), &out);
  DCHECK(UnframeBytes(out).ok());
  return out;
}

absl::StatusOr<absl::string_view> UnframeBytes(absl::string_view record) {
  absl::string_view payload;
  absl::Status status = VerifyFrame(record, "opaque", &payload);
  if (!status.ok()) return status;
  return payload;
}

}  // namespace spate::storage
