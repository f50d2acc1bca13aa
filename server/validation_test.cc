#include "server/validation.h"

#include <string>

#include "gtest/gtest.h"

namespace spate::server {
namespace {

using absl::StatusCode;

TEST(ValidationTest, ClientIds) {
  EXPECT_TRUE(ValidateClientId("client-1_A").ok());
  EXPECT_EQ(ValidateClientId("").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateClientId("has space").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateClientId("dot.ted").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateClientId(std::string(kClientIdMaxBytes + 1, 'a')).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(ValidateClientId(std::string(kClientIdMaxBytes, 'a')).ok());
}

TEST(ValidationTest, ChannelNames) {
  EXPECT_TRUE(ValidateChannelName("orders").ok());
  EXPECT_TRUE(ValidateChannelName("orders.eu-west.v2").ok());
  for (const char* bad : {"", ".", "a.", ".a", "a..b", "a.*", "a.>", "a*b",
                          "with space", "tab\there"}) {
    absl::Status status = ValidateChannelName(bad);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(status.message().find("subject"), absl::string_view::npos);
  }
  EXPECT_EQ(
      ValidateChannelName(std::string(kChannelNameMaxBytes + 1, 'a')).code(),
      StatusCode::kInvalidArgument);
  std::string many_tokens = "a";
  for (size_t i = 0; i < kChannelTokensMax; ++i) many_tokens += ".a";
  EXPECT_EQ(ValidateChannelName(many_tokens).code(),
            StatusCode::kInvalidArgument);
}

TEST(ValidationTest, DurableAndQueueNames) {
  EXPECT_TRUE(ValidateName("durable_name", "my.durable-1").ok());
  absl::Status status = ValidateName("q_group", "a:b");
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("q_group"), absl::string_view::npos);
}

PubMsg GoodPub() {
  PubMsg msg;
  msg.set_client_id("c1");
  msg.set_subject("orders");
  msg.set_guid("g-1");
  msg.set_data("hello");
  return msg;
}

TEST(ValidationTest, PubMsgPayloadLimitCountsHeaders) {
  StoreConfig store;
  store.set_max_payload_bytes(10);
  PubMsg msg = GoodPub();
  EXPECT_TRUE(ValidatePubMsg(msg, store).ok());
  (*msg.mutable_headers())["k"] = "valu";  // 5 + 1 + 4 = 10
  EXPECT_TRUE(ValidatePubMsg(msg, store).ok());
  (*msg.mutable_headers())["k"] = "value";
  EXPECT_EQ(ValidatePubMsg(msg, store).code(), StatusCode::kResourceExhausted);
}

TEST(ValidationTest, PubMsgFields) {
  StoreConfig store;
  PubMsg msg = GoodPub();
  msg.set_guid(std::string(kGuidMaxBytes + 1, 'g'));
  EXPECT_EQ(ValidatePubMsg(msg, store).code(), StatusCode::kInvalidArgument);
  msg = GoodPub();
  msg.set_subject("a.*");
  EXPECT_EQ(ValidatePubMsg(msg, store).code(), StatusCode::kInvalidArgument);
  msg = GoodPub();
  msg.set_client_id("");
  EXPECT_EQ(ValidatePubMsg(msg, store).code(), StatusCode::kInvalidArgument);
  msg = GoodPub();
  (*msg.mutable_headers())[""] = "x";
  EXPECT_EQ(ValidatePubMsg(msg, store).code(), StatusCode::kInvalidArgument);
  msg = GoodPub();
  msg.set_reply(std::string(kReplyMaxBytes + 1, 'r'));
  EXPECT_EQ(ValidatePubMsg(msg, store).code(), StatusCode::kInvalidArgument);
}

SubscriptionRequest GoodSub() {
  SubscriptionRequest request;
  request.set_client_id("c1");
  request.set_subject("orders");
  request.set_max_in_flight(10);
  request.set_ack_wait_in_secs(30);
  return request;
}

TEST(ValidationTest, SubscriptionOptions) {
  SubscriptionsConfig subs;
  EXPECT_TRUE(ValidateSubscriptionRequest(GoodSub(), subs).ok());

  SubscriptionRequest request = GoodSub();
  request.set_max_in_flight(0);
  EXPECT_EQ(ValidateSubscriptionRequest(request, subs).code(),
            StatusCode::kInvalidArgument);
  request = GoodSub();
  request.set_max_in_flight(subs.max_in_flight_max() + 1);
  EXPECT_EQ(ValidateSubscriptionRequest(request, subs).code(),
            StatusCode::kInvalidArgument);
  request = GoodSub();
  request.set_ack_wait_in_secs(0);
  EXPECT_EQ(ValidateSubscriptionRequest(request, subs).code(),
            StatusCode::kInvalidArgument);
  request = GoodSub();
  request.set_start_position(static_cast<StartPosition>(17));
  EXPECT_EQ(ValidateSubscriptionRequest(request, subs).code(),
            StatusCode::kInvalidArgument);
  request = GoodSub();
  request.set_start_position(SEQUENCE_START);
  EXPECT_EQ(ValidateSubscriptionRequest(request, subs).code(),
            StatusCode::kInvalidArgument);
  request.set_start_sequence(5);
  EXPECT_TRUE(ValidateSubscriptionRequest(request, subs).ok());
  request = GoodSub();
  request.set_start_position(TIME_DELTA_START);
  request.set_start_time_delta_ns(-1);
  EXPECT_EQ(ValidateSubscriptionRequest(request, subs).code(),
            StatusCode::kInvalidArgument);
  request = GoodSub();
  request.set_durable_name("bad name");
  EXPECT_EQ(ValidateSubscriptionRequest(request, subs).code(),
            StatusCode::kInvalidArgument);
  request = GoodSub();
  request.set_q_group("bad*group");
  EXPECT_EQ(ValidateSubscriptionRequest(request, subs).code(),
            StatusCode::kInvalidArgument);
}

TEST(ValidationTest, Unsubscribe) {
  UnsubscribeRequest request;
  request.set_client_id("c1");
  request.set_subject("orders");
  EXPECT_EQ(ValidateUnsubscribeRequest(request).code(),
            StatusCode::kInvalidArgument);
  request.set_subscription_id("m-1");
  EXPECT_TRUE(ValidateUnsubscribeRequest(request).ok());
}

}  // namespace
}  // namespace spate::server
