#include "storage/record_codec.h"

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "proto/raft.pb.h"
#include "proto/records.pb.h"

namespace spate::storage {
namespace {

StoredMessage SampleMessage() {
  StoredMessage message;
  message.set_sequence(12345);
  message.set_timestamp_ns(1700000000123456789);
  message.set_guid("guid-1");
  message.set_reply("inbox.7");
  message.set_data(
      std::string("payload\0with\xff"
                  "bytes",
                  18));
  (*message.mutable_headers())["b"] = "2";
  (*message.mutable_headers())["a"] = "1";
  message.set_crc32(Crc32(message.data()));
  return message;
}

TEST(RecordCodecTest, RoundTrips) {
  const StoredMessage message = SampleMessage();
  const std::string record = EncodeRecord(message);
  EXPECT_EQ(record[0], static_cast<char>(kRecordFormatVersion));
  StoredMessage decoded;
  ASSERT_TRUE(DecodeRecord(record, &decoded).ok());
  EXPECT_EQ(decoded.sequence(), message.sequence());
  EXPECT_EQ(decoded.data(), message.data());
  EXPECT_EQ(decoded.headers().at("a"), "1");
  EXPECT_EQ(decoded.headers().at("b"), "2");

  raft::Entry empty;
  raft::Entry decoded_entry;
  decoded_entry.set_term(9);
  ASSERT_TRUE(DecodeRecord(EncodeRecord(empty), &decoded_entry).ok());
  EXPECT_EQ(decoded_entry.term(), 0u);
}

TEST(RecordCodecTest, EncodingIsDeterministic) {
  // Maps serialize in sorted order, so equal messages give equal bytes.
  StoredMessage a = SampleMessage();
  StoredMessage b = SampleMessage();
  b.mutable_headers()->clear();
  (*b.mutable_headers())["a"] = "1";
  (*b.mutable_headers())["b"] = "2";
  EXPECT_EQ(EncodeRecord(a), EncodeRecord(b));
}

TEST(RecordCodecTest, DetectsEveryFlippedBit) {
  const std::string record = EncodeRecord(SampleMessage());
  for (size_t byte = 0; byte < record.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string damaged = record;
      damaged[byte] ^= static_cast<char>(1 << bit);
      StoredMessage decoded;
      const absl::Status status = DecodeRecord(damaged, &decoded);
      ASSERT_EQ(status.code(), absl::StatusCode::kDataLoss)
          << "byte " << byte << " bit " << bit << ": " << status;
      EXPECT_TRUE(absl::StrContains(status.message(), "spate.StoredMessage"))
          << status;
    }
  }
}

TEST(RecordCodecTest, DetectsTruncationAndExtension) {
  const std::string record = EncodeRecord(SampleMessage());
  for (size_t size = 0; size < record.size(); ++size) {
    StoredMessage decoded;
    EXPECT_EQ(DecodeRecord(record.substr(0, size), &decoded).code(),
              absl::StatusCode::kDataLoss)
        << "truncated to " << size;
  }
  StoredMessage decoded;
  EXPECT_EQ(DecodeRecord(record + "x", &decoded).code(),
            absl::StatusCode::kDataLoss);
}

TEST(RecordCodecTest, ChecksumOkButUnparsableIsDataLoss) {
  // A well-framed payload that is not a valid Entry (a truncated varint).
  const std::string record = FrameBytes(std::string("\x08\xff", 2));
  raft::Entry entry;
  const absl::Status status = DecodeRecord(record, &entry);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "does not parse")) << status;
}

TEST(RecordCodecTest, UnknownVersionIsFailedPrecondition) {
  // Build a frame with version 2 and a correct checksum for it.
  std::string record = FrameBytes("abc");
  std::string versioned = std::string(1, '\x02') + "abc";
  const uint32_t crc = Crc32(versioned);
  record[0] = '\x02';
  for (int i = 0; i < 4; ++i)
    record[1 + i] = static_cast<char>(crc >> (8 * (3 - i)));
  const absl::StatusOr<absl::string_view> payload = UnframeBytes(record);
  EXPECT_EQ(payload.status().code(), absl::StatusCode::kFailedPrecondition)
      << payload.status();
}

TEST(RecordCodecTest, OpaqueBytesRoundTripAndDetectDamage) {
  const std::string data(1000, 'x');
  const std::string record = FrameBytes(data);
  absl::StatusOr<absl::string_view> payload = UnframeBytes(record);
  ASSERT_TRUE(payload.ok());
  EXPECT_EQ(*payload, data);
  std::string damaged = record;
  damaged[500] = 'y';
  EXPECT_EQ(UnframeBytes(damaged).status().code(), absl::StatusCode::kDataLoss);
}

TEST(RecordCodecTest, Crc32MatchesTheStandardCheckValue) {
  // The CRC-32/IEEE check value of "123456789".
  EXPECT_EQ(Crc32("123456789"), 0xCBF43926u);
}

}  // namespace
}  // namespace spate::storage
