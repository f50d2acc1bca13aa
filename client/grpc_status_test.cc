#include "client/grpc_status.h"

#include "gtest/gtest.h"

namespace spate::client {
namespace {

TEST(FromGrpcCodeTest, EveryCanonicalCodeMapsToTheSameAbslCode) {
  // Callers branch on codes (Unavailable means retry, NotFound means
  // reconnect), so the mapping must be exact for all 17 codes.
  for (int code = 0; code <= 16; ++code) {
    EXPECT_EQ(
        static_cast<int>(FromGrpcCode(static_cast<grpc::StatusCode>(code))),
        code);
  }
  EXPECT_EQ(FromGrpcCode(static_cast<grpc::StatusCode>(99)),
            absl::StatusCode::kUnknown);
}

TEST(FromGrpcStatusTest, KeepsTheMessage) {
  const absl::Status status = FromGrpcStatus(grpc::Status(
      grpc::StatusCode::ALREADY_EXISTS, "client id app-1 is in use"));
  EXPECT_EQ(status.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(status.message(), "client id app-1 is in use");
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

TEST(FromPubAckTest, ErrorCodeAndMessage) {
  PubAck ack;
  ack.set_sequence(7);
  EXPECT_TRUE(FromPubAck(ack).ok());

  ack.set_error("payload of 2000000 bytes exceeds max_payload 1048576");
  ack.set_error_code(static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  absl::Status status = FromPubAck(ack);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(status.message(), ack.error());

  // A server that forgot the code still fails the publish.
  ack.set_error_code(0);
  EXPECT_EQ(FromPubAck(ack).code(), absl::StatusCode::kUnknown);
  ack.set_error_code(1000);
  EXPECT_EQ(FromPubAck(ack).code(), absl::StatusCode::kUnknown);
}

}  // namespace
}  // namespace spate::client
