// One spate-server process per test, driven over real gRPC: every client
// behaviour of DESIGN.md §4 on a single node, including crash recovery.
#include <algorithm>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "proto/admin.grpc.pb.h"
#include "tests/testing/server_process.h"
#include "tests/testing/stream_client.h"

namespace spate::testing {
namespace {

using absl::StatusCode;

class SingleNodeTest : public ::testing::Test {
 protected:
  void StartServer(const std::string& config = "") {
    if (data_dir_.empty()) data_dir_ = ServerProcess::NewTempDir("node");
    server_ = std::make_unique<ServerProcess>(data_dir_, config);
    absl::Status status = server_->Start();
    ASSERT_TRUE(status.ok()) << status;
  }

  std::unique_ptr<TestConnection> Connected(const std::string& client_id) {
    auto connection =
        std::make_unique<TestConnection>(server_->address(), client_id);
    absl::StatusOr<ConnectResponse> response = connection->Connect();
    EXPECT_TRUE(response.ok()) << response.status();
    return connection;
  }

  void TearDown() override {
    if (server_ != nullptr && server_->running()) {
      absl::Status stopped = server_->Stop();
      EXPECT_TRUE(stopped.ok()) << stopped;
    }
    if ((HasFailure() || getenv("SPATE_TEST_LOGS")) && server_ != nullptr) {
      std::cerr << "---- server log ----\n" << server_->Log();
    }
  }

  std::string data_dir_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(SingleNodeTest, PublishThenSubscribeFromFirst) {
  StartServer();
  auto conn = Connected("c1");
  for (int i = 1; i <= 3; ++i) {
    absl::StatusOr<uint64_t> seq =
        conn->Publish("orders", absl::StrCat("m", i));
    ASSERT_TRUE(seq.ok()) << seq.status();
    EXPECT_EQ(*seq, static_cast<uint64_t>(i));
  }
  SubscriptionRequest request = conn->SubRequest("orders");
  request.set_start_position(FIRST);
  TestSubscriber sub(conn->stub(), request);
  absl::StatusOr<SubscriptionResponse> started = sub.WaitStarted();
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ(started->start_sequence(), 1u);
  std::vector<MsgProto> msgs = sub.NextN(3);
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[0].data(), "m1");
  EXPECT_EQ(msgs[2].sequence(), 3u);
  EXPECT_EQ(msgs[1].subject(), "orders");
  EXPECT_FALSE(msgs[0].redelivered());
  EXPECT_GT(msgs[0].timestamp(), 0);

  // New messages arrive live.
  ASSERT_TRUE(conn->Publish("orders", "m4").ok());
  std::optional<MsgProto> live = sub.Next();
  ASSERT_TRUE(live.has_value());
  EXPECT_EQ(live->sequence(), 4u);
}

// Fast heartbeats so that expiry and replacement happen within a test.
constexpr char kFastPings[] =
    "clients { ping_interval_ms: 200 ping_max_out: 3 }";

SubscriptionRequest WithStart(SubscriptionRequest request,
                              StartPosition position, uint64_t seq = 0) {
  request.set_start_position(position);
  request.set_start_sequence(seq);
  return request;
}

TEST_F(SingleNodeTest, ConnectRefusesALiveDuplicateAndReplacesASilentOne) {
  StartServer(kFastPings);
  TestConnection bad(server_->address(), "no spaces allowed");
  EXPECT_EQ(bad.Connect().status().code(), StatusCode::kInvalidArgument);

  auto first = Connected("dup");
  ASSERT_TRUE(first->Connect().ok());  // same connection again: fine
  TestConnection second(server_->address(), "dup");
  EXPECT_EQ(second.Connect().status().code(), StatusCode::kAlreadyExists);

  // The first stops pinging: after 1.5 intervals it may be replaced.
  absl::SleepFor(absl::Milliseconds(350));
  ASSERT_TRUE(second.Connect().ok());
  EXPECT_EQ(first->Ping().code(), StatusCode::kNotFound);
  EXPECT_TRUE(second.Ping().ok());
  EXPECT_EQ(first->Publish("orders", "x").status().code(),
            StatusCode::kNotFound);
}

TEST_F(SingleNodeTest, MissedPingsDropTheClientAndItsPlainSubscriptions) {
  StartServer(kFastPings);
  auto conn = Connected("sleepy");
  SubscriptionRequest plain = conn->SubRequest("events");
  TestSubscriber plain_sub(conn->stub(), plain);
  ASSERT_TRUE(plain_sub.WaitStarted().ok());
  SubscriptionRequest durable = conn->SubRequest("events");
  durable.set_durable_name("keep");
  TestSubscriber durable_sub(conn->stub(), durable);
  ASSERT_TRUE(durable_sub.WaitStarted().ok());

  // No pings for 3 intervals: the server drops the client.
  absl::Status ended = plain_sub.WaitEnd(absl::Seconds(10));
  EXPECT_EQ(ended.code(), StatusCode::kUnavailable) << ended;
  EXPECT_EQ(durable_sub.WaitEnd(absl::Seconds(10)).code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(conn->Ping().code(), StatusCode::kNotFound);

  // The durable kept its state: published meanwhile, delivered on resume.
  auto other = Connected("publisher");
  ASSERT_TRUE(other->Publish("events", "while away").ok());
  auto again = Connected("sleepy");
  SubscriptionRequest resume = again->SubRequest("events");
  resume.set_durable_name("keep");
  TestSubscriber resumed(again->stub(), resume);
  ASSERT_TRUE(resumed.WaitStarted().ok());
  std::optional<MsgProto> msg = resumed.Next();
  ASSERT_TRUE(msg.has_value());
  EXPECT_EQ(msg->data(), "while away");
}

TEST_F(SingleNodeTest, BadPublishesGetClearErrorsAndStoreNothing) {
  StartServer("store { max_payload_bytes: 100 }");
  auto conn = Connected("c1");
  ASSERT_EQ(*conn->Publish("orders", "first"), 1u);

  PubMsg msg = conn->Msg("orders", std::string(101, 'x'));
  EXPECT_EQ(conn->PublishRaw(msg).status().code(),
            StatusCode::kResourceExhausted);
  for (const char* bad : {"", "a..b", "orders.*", "orders.>", "sp ace"}) {
    msg = conn->Msg(bad, "x");
    absl::Status status = conn->PublishRaw(msg).status();
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(status.message().find("subject"), std::string::npos) << status;
  }
  msg = conn->Msg("orders", "x");
  msg.set_client_id("stranger");
  EXPECT_EQ(conn->PublishRaw(msg).status().code(), StatusCode::kNotFound);
  msg = conn->Msg("orders", "x");
  msg.set_conn_id("someone-else");
  EXPECT_EQ(conn->PublishRaw(msg).status().code(), StatusCode::kNotFound);
  msg = conn->Msg("orders", "x");
  msg.set_client_id("bad id!");
  EXPECT_EQ(conn->PublishRaw(msg).status().code(),
            StatusCode::kInvalidArgument);
  msg = conn->Msg("orders", "x");
  msg.set_guid(std::string(65, 'g'));
  EXPECT_EQ(conn->PublishRaw(msg).status().code(),
            StatusCode::kInvalidArgument);

  // Nothing of the above was stored: the next message is sequence 2.
  EXPECT_EQ(*conn->Publish("orders", "second"), 2u);
  TestSubscriber sub(conn->stub(),
                     WithStart(conn->SubRequest("orders"), FIRST));
  std::vector<MsgProto> msgs = sub.NextN(3, absl::Milliseconds(500));
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[1].data(), "second");
}

TEST_F(SingleNodeTest, PublishStreamAcksInOrderAndDeduplicatesGuids) {
  StartServer();
  auto conn = Connected("c1");
  std::vector<PubMsg> msgs;
  for (int i = 0; i < 1000; ++i) {
    PubMsg msg = conn->Msg("stream", absl::StrCat("m", i));
    msg.set_guid(absl::StrCat("g", i));
    msgs.push_back(msg);
  }
  // One bad message in the middle does not end the stream.
  msgs[500].set_subject("bad.*");
  absl::StatusOr<std::vector<PubAck>> acks = conn->PublishStream(msgs);
  ASSERT_TRUE(acks.ok()) << acks.status();
  ASSERT_EQ(acks->size(), 1000u);
  std::map<std::string, PubAck> by_guid;
  for (const PubAck& ack : *acks) by_guid[ack.guid()] = ack;
  EXPECT_EQ(by_guid["g500"].error_code(),
            static_cast<int>(StatusCode::kInvalidArgument));
  EXPECT_FALSE(by_guid["g500"].error().empty());
  uint64_t expected = 1;
  for (const PubAck& ack : *acks) {
    if (ack.guid() == "g500") continue;
    EXPECT_TRUE(ack.error().empty()) << ack.error();
    EXPECT_EQ(ack.sequence(), expected++);  // commit order = publish order
  }

  // Publishing the same guids again returns the original sequences.
  std::vector<PubMsg> again(msgs.begin(), msgs.begin() + 10);
  acks = conn->PublishStream(again);
  ASSERT_TRUE(acks.ok());
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ((*acks)[i].sequence(), i + 1);
  EXPECT_EQ(*conn->Publish("stream", "next"), 1000u);
}

TEST_F(SingleNodeTest, EveryStartPositionOnAChannelTrimmedByLimits) {
  StartServer("store { limits { max_msgs: 5 } }");
  auto conn = Connected("c1");
  for (int i = 1; i <= 10; ++i) {
    ASSERT_TRUE(conn->Publish("trimmed", absl::StrCat("m", i)).ok());
  }
  // Messages 1..5 were removed by max_msgs; 6..10 remain.
  auto first_seq = [&](SubscriptionRequest request) -> uint64_t {
    TestSubscriber sub(conn->stub(), request);
    absl::StatusOr<SubscriptionResponse> started = sub.WaitStarted();
    EXPECT_TRUE(started.ok()) << started.status();
    std::optional<MsgProto> msg = sub.Next(absl::Milliseconds(500));
    return msg ? msg->sequence() : 0;
  };
  SubscriptionRequest base = conn->SubRequest("trimmed");
  EXPECT_EQ(first_seq(WithStart(base, FIRST)), 6u);
  EXPECT_EQ(first_seq(WithStart(base, LAST_RECEIVED)), 10u);
  EXPECT_EQ(first_seq(WithStart(base, SEQUENCE_START, 2)), 6u);
  EXPECT_EQ(first_seq(WithStart(base, SEQUENCE_START, 8)), 8u);
  SubscriptionRequest time = WithStart(base, TIME_DELTA_START);
  time.set_start_time_delta_ns(absl::ToInt64Nanoseconds(absl::Hours(1)));
  EXPECT_EQ(first_seq(time), 6u);

  // NEW_ONLY and a sequence beyond the end both start with the next one.
  TestSubscriber new_only(conn->stub(), WithStart(base, NEW_ONLY));
  TestSubscriber beyond(conn->stub(), WithStart(base, SEQUENCE_START, 100));
  ASSERT_TRUE(new_only.WaitStarted().ok());
  ASSERT_TRUE(beyond.WaitStarted().ok());
  EXPECT_FALSE(new_only.Next(absl::Milliseconds(200)).has_value());
  ASSERT_EQ(*conn->Publish("trimmed", "m11"), 11u);
  EXPECT_EQ(new_only.Next()->sequence(), 11u);
  EXPECT_EQ(beyond.Next()->sequence(), 11u);
}

TEST_F(SingleNodeTest, TimeDeltaStartsAtTheFirstMessageThatRecent) {
  StartServer();
  auto conn = Connected("c1");
  ASSERT_TRUE(conn->Publish("timed", "old").ok());
  absl::SleepFor(absl::Milliseconds(1500));
  ASSERT_TRUE(conn->Publish("timed", "recent").ok());
  SubscriptionRequest request =
      WithStart(conn->SubRequest("timed"), TIME_DELTA_START);
  request.set_start_time_delta_ns(absl::ToInt64Nanoseconds(absl::Seconds(1)));
  TestSubscriber sub(conn->stub(), request);
  std::optional<MsgProto> msg = sub.Next();
  ASSERT_TRUE(msg.has_value());
  EXPECT_EQ(msg->data(), "recent");
}

TEST_F(SingleNodeTest, MaxInFlightNeverExceeded) {
  StartServer();
  auto conn = Connected("c1");
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(conn->Publish("flow", "m").ok());
  SubscriptionRequest request = WithStart(conn->SubRequest("flow"), FIRST);
  request.set_max_in_flight(5);
  TestSubscriber sub(conn->stub(), request);
  std::vector<MsgProto> got = sub.NextN(6, absl::Milliseconds(500));
  ASSERT_EQ(got.size(), 5u);  // stalled at the limit

  // Ack one at a time: exactly one more arrives each time, never more.
  std::set<uint64_t> unacked;
  for (const MsgProto& msg : got) unacked.insert(msg.sequence());
  uint64_t received = got.size();
  while (received < 50) {
    const uint64_t oldest = *unacked.begin();
    unacked.erase(unacked.begin());
    ASSERT_TRUE(sub.Ack(oldest));
    std::optional<MsgProto> next = sub.Next();
    ASSERT_TRUE(next.has_value()) << "after " << received;
    EXPECT_FALSE(next->redelivered());
    unacked.insert(next->sequence());
    ++received;
    ASSERT_LE(unacked.size(), 5u);
  }
  EXPECT_FALSE(sub.Next(absl::Milliseconds(100)).has_value());
}

TEST_F(SingleNodeTest, AckWaitRedeliversWithinOneToTwoAckWaits) {
  StartServer();
  auto conn = Connected("c1");
  SubscriptionRequest request = conn->SubRequest("slow");
  request.set_ack_wait_in_secs(1);
  TestSubscriber sub(conn->stub(), request);
  ASSERT_TRUE(sub.WaitStarted().ok());
  ASSERT_TRUE(conn->Publish("slow", "m").ok());
  std::optional<MsgProto> first = sub.Next();
  ASSERT_TRUE(first.has_value());
  const absl::Time delivered = absl::Now();
  std::optional<MsgProto> again = sub.Next(absl::Seconds(5));
  ASSERT_TRUE(again.has_value());
  const absl::Duration waited = absl::Now() - delivered;
  EXPECT_GE(waited, absl::Milliseconds(950));  // delivery time is approximate
  EXPECT_LE(waited, absl::Seconds(2));
  EXPECT_EQ(again->sequence(), first->sequence());
  EXPECT_TRUE(again->redelivered());
  EXPECT_EQ(again->redelivery_count(), 1u);
  ASSERT_TRUE(sub.Ack(again->sequence()));
  EXPECT_FALSE(sub.Next(absl::Milliseconds(1500)).has_value());
}

TEST_F(SingleNodeTest, QueueGroupHandsPendingMessagesToTheOtherMembers) {
  StartServer();
  auto conn = Connected("c1");
  SubscriptionRequest request = conn->SubRequest("work");
  request.set_q_group("workers");
  auto a = std::make_unique<TestSubscriber>(conn->stub(), request);
  TestSubscriber b(conn->stub(), request);
  ASSERT_TRUE(a->WaitStarted().ok());
  ASSERT_TRUE(b.WaitStarted().ok());
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(conn->Publish("work", "job").ok());

  // Each member gets a share; a acks nothing, b acks everything.
  std::set<uint64_t> seen;
  std::set<uint64_t> held_by_a;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (seen.size() < 20 && absl::Now() < deadline) {
    if (std::optional<MsgProto> m = a->Next(absl::Milliseconds(20))) {
      EXPECT_TRUE(seen.insert(m->sequence()).second);
      held_by_a.insert(m->sequence());
    }
    if (std::optional<MsgProto> m = b.Next(absl::Milliseconds(20))) {
      EXPECT_TRUE(seen.insert(m->sequence()).second);
      b.Ack(m->sequence());
    }
  }
  ASSERT_EQ(seen.size(), 20u);
  ASSERT_FALSE(held_by_a.empty());

  // a leaves: its unacked messages go to b, flagged redelivered.
  ASSERT_TRUE(a->CloseSend().ok());
  a.reset();
  std::vector<MsgProto> handed = b.NextN(held_by_a.size());
  ASSERT_EQ(handed.size(), held_by_a.size());
  for (const MsgProto& m : handed) {
    EXPECT_TRUE(held_by_a.count(m.sequence())) << m.sequence();
    EXPECT_TRUE(m.redelivered());
  }
}

TEST_F(SingleNodeTest, DurableResumesAfterServerCrashAtFirstUnacked) {
  StartServer();
  auto conn = Connected("c1");
  for (int i = 1; i <= 100; ++i) {
    ASSERT_TRUE(conn->Publish("durable", absl::StrCat("m", i)).ok());
  }
  SubscriptionRequest request = WithStart(conn->SubRequest("durable"), FIRST);
  request.set_durable_name("d1");
  request.set_max_in_flight(10);
  {
    TestSubscriber sub(conn->stub(), request);
    std::vector<MsgProto> got;
    // Take 40, acking the first 30 as they come.
    while (got.size() < 40) {
      std::optional<MsgProto> m = sub.Next();
      ASSERT_TRUE(m.has_value());
      got.push_back(*m);
      if (m->sequence() <= 30) sub.Ack(m->sequence());
    }
    // Half-close: the stream ends once the close and acks are committed.
    ASSERT_TRUE(sub.CloseSend().ok());
  }
  server_->Kill();  // SIGKILL: a crash
  StartServer();

  TestConnection again(server_->address(), "c1");
  ASSERT_TRUE(again.Connect().ok());  // replaceable at once after restart
  SubscriptionRequest resume = request;
  resume.set_conn_id(again.conn_id());
  resume.set_start_position(NEW_ONLY);  // ignored: the durable resumes
  TestSubscriber sub(again.stub(), resume);
  std::vector<MsgProto> got;
  while (got.size() < 70) {
    std::optional<MsgProto> m = sub.Next();
    ASSERT_TRUE(m.has_value()) << "after " << got.size();
    got.push_back(*m);
    sub.Ack(m->sequence());
  }
  EXPECT_EQ(got.front().sequence(), 31u);  // nothing acked comes back
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].sequence(), 31 + i);
    EXPECT_EQ(got[i].data(), absl::StrCat("m", 31 + i));
    // 31..40 were delivered before the crash: flagged redelivered.
    EXPECT_EQ(got[i].redelivered(), got[i].sequence() <= 40) << i;
  }
  EXPECT_FALSE(sub.Next(absl::Milliseconds(300)).has_value());
}

TEST_F(SingleNodeTest, DurableStateSurvivesAKillWithTheStreamStillOpen) {
  StartServer();
  auto conn = Connected("c1");
  for (int i = 1; i <= 20; ++i) ASSERT_TRUE(conn->Publish("d", "m").ok());
  SubscriptionRequest request = WithStart(conn->SubRequest("d"), FIRST);
  request.set_durable_name("d1");
  request.set_max_in_flight(5);
  auto sub = std::make_unique<TestSubscriber>(conn->stub(), request);
  std::vector<MsgProto> got = sub->NextN(5);
  ASSERT_EQ(got.size(), 5u);
  server_->Kill();  // the stream is still attached: no graceful close
  sub.reset();
  StartServer();
  TestConnection again(server_->address(), "c1");
  ASSERT_TRUE(again.Connect().ok());
  request.set_conn_id(again.conn_id());
  TestSubscriber resumed(again.stub(), request);
  std::vector<MsgProto> msgs = resumed.NextN(5);
  ASSERT_EQ(msgs.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(msgs[i].sequence(), i + 1);
    EXPECT_TRUE(msgs[i].redelivered());  // possibly seen before the crash
  }
}

TEST_F(SingleNodeTest, CloseKeepsADurableAndUnsubscribeDeletesIt) {
  StartServer();
  auto conn = Connected("c1");
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(conn->Publish("ch", "m").ok());
  SubscriptionRequest request = WithStart(conn->SubRequest("ch"), FIRST);
  request.set_durable_name("dur");
  std::string id;
  {
    TestSubscriber sub(conn->stub(), request);
    id = sub.WaitStarted()->subscription_id();
    std::vector<MsgProto> got = sub.NextN(2);
    ASSERT_EQ(got.size(), 2u);
    sub.AckAll(got);
    // A second live subscriber on the same durable is refused.
    TestSubscriber dup(conn->stub(), request);
    EXPECT_EQ(dup.WaitStarted().status().code(), StatusCode::kAlreadyExists);
    absl::SleepFor(absl::Milliseconds(100));  // let the acks in
    ASSERT_TRUE(conn->Unsubscribe("ch", id, /*close_only=*/true).ok());
    EXPECT_TRUE(sub.WaitEnd().ok());
  }
  {
    TestSubscriber sub(conn->stub(), request);
    std::optional<MsgProto> m = sub.Next();
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->sequence(), 3u);  // resumed after the acked ones
    id = sub.WaitStarted()->subscription_id();
    ASSERT_TRUE(conn->Unsubscribe("ch", id, /*close_only=*/false).ok());
  }
  TestSubscriber fresh(conn->stub(), request);
  std::optional<MsgProto> m = fresh.Next();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->sequence(), 1u);  // deleted: starts over from FIRST

  EXPECT_EQ(conn->Unsubscribe("ch", "no-such-id", false).code(),
            StatusCode::kNotFound);
  auto other = Connected("c2");
  const std::string fresh_id = fresh.WaitStarted()->subscription_id();
  EXPECT_EQ(other->Unsubscribe("ch", fresh_id, false).code(),
            StatusCode::kNotFound);  // not its subscription
}

TEST_F(SingleNodeTest, BadSubscriptionRequestsAreRefused) {
  StartServer();
  auto conn = Connected("c1");
  auto expect_refused = [&](SubscriptionRequest request, StatusCode code) {
    TestSubscriber sub(conn->stub(), request);
    absl::StatusOr<SubscriptionResponse> started = sub.WaitStarted();
    EXPECT_EQ(started.status().code(), code) << started.status();
  };
  SubscriptionRequest r = conn->SubRequest("ch");
  r.set_max_in_flight(0);
  expect_refused(r, StatusCode::kInvalidArgument);
  r = conn->SubRequest("ch");
  r.set_ack_wait_in_secs(0);
  expect_refused(r, StatusCode::kInvalidArgument);
  r = conn->SubRequest("ch.*");
  expect_refused(r, StatusCode::kInvalidArgument);
  r = conn->SubRequest("ch");
  r.set_durable_name("bad name");
  expect_refused(r, StatusCode::kInvalidArgument);
  r = conn->SubRequest("ch");
  r.set_q_group("bad:group");
  expect_refused(r, StatusCode::kInvalidArgument);
  r = WithStart(conn->SubRequest("ch"), SEQUENCE_START, 0);
  expect_refused(r, StatusCode::kInvalidArgument);
  r = conn->SubRequest("ch");
  r.set_start_position(static_cast<StartPosition>(42));
  expect_refused(r, StatusCode::kInvalidArgument);
  r = conn->SubRequest("ch");
  r.set_client_id("unknown");
  expect_refused(r, StatusCode::kNotFound);

  // A stream whose first frame is not the request.
  grpc::ClientContext context;
  auto stream = conn->stub()->Subscribe(&context);
  SubscribeFrame frame;
  frame.mutable_acks()->add_acks()->set_sequence(1);
  stream->Write(frame);
  Delivery delivery;
  EXPECT_FALSE(stream->Read(&delivery));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // None of that created a subscription or stored anything.
  EXPECT_EQ(*conn->Publish("ch", "m"), 1u);
}

TEST_F(SingleNodeTest, CloseEndsTheClientsStreams) {
  StartServer();
  auto conn = Connected("c1");
  SubscriptionRequest plain = conn->SubRequest("ch");
  TestSubscriber sub(conn->stub(), plain);
  ASSERT_TRUE(sub.WaitStarted().ok());
  ASSERT_TRUE(conn->Close().ok());
  EXPECT_EQ(sub.WaitEnd().code(), StatusCode::kCancelled);
  EXPECT_EQ(conn->Ping().code(), StatusCode::kNotFound);
  EXPECT_EQ(conn->Close().code(), StatusCode::kNotFound);
  // The id is free again.
  TestConnection again(server_->address(), "c1");
  EXPECT_TRUE(again.Connect().ok());
}

TEST_F(SingleNodeTest, MessagesAndHeadersSurviveARestart) {
  StartServer();
  auto conn = Connected("c1");
  PubMsg msg = conn->Msg("h", "payload");
  msg.set_guid("g1");
  (*msg.mutable_headers())["trace"] = "abc";
  ASSERT_TRUE(conn->PublishRaw(msg).ok());
  ASSERT_TRUE(server_->Stop().ok());
  StartServer();
  TestConnection again(server_->address(), "c2");
  ASSERT_TRUE(again.Connect().ok());
  TestSubscriber sub(again.stub(), WithStart(again.SubRequest("h"), FIRST));
  std::optional<MsgProto> m = sub.Next();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->data(), "payload");
  EXPECT_EQ(m->headers().at("trace"), "abc");
  // Deduplication also survives the restart.
  msg.set_client_id("c2");
  msg.set_conn_id(again.conn_id());
  EXPECT_EQ(again.PublishRaw(msg)->sequence(), 1u);
}

TEST_F(SingleNodeTest, MaxChannelsRefusesNewChannelsAndStoresNothing) {
  StartServer("store { max_channels: 2 }");
  auto conn = Connected("c1");
  ASSERT_TRUE(conn->Publish("a", "m").ok());
  ASSERT_TRUE(conn->Publish("b", "m").ok());
  absl::Status status = conn->Publish("c", "m").status();
  EXPECT_EQ(status.code(), StatusCode::kResourceExhausted) << status;
  EXPECT_NE(status.message().find("max_channels"), std::string::npos);
  TestSubscriber sub(conn->stub(), conn->SubRequest("d"));
  EXPECT_EQ(sub.WaitStarted().status().code(), StatusCode::kResourceExhausted);
  // Existing channels keep working.
  EXPECT_EQ(*conn->Publish("a", "m2"), 2u);
}

// The channel's status on the server, if the channel exists.
std::optional<GroupStatus> ChannelStatus(const std::string& address,
                                         const std::string& channel) {
  auto stub = Admin::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  ClusterStatusResponse status;
  if (!stub->ClusterStatus(&context, ClusterStatusRequest(), &status).ok()) {
    return std::nullopt;
  }
  for (const GroupStatus& group : status.groups()) {
    if (group.channel() == channel) return group;
  }
  return std::nullopt;
}

// Polls `done` every 50 ms until it holds or `timeout` passes.
bool Eventually(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return done();
}

TEST_F(SingleNodeTest, MaxAgeRemovesOldMessagesOnATimer) {
  StartServer("store { limits { max_age_ms: 300 } }");
  auto conn = Connected("c1");
  ASSERT_TRUE(conn->Publish("aging", "old").ok());
  // No publish in between: the timer alone removes it.
  EXPECT_TRUE(Eventually(
      [&] {
        std::optional<GroupStatus> group =
            ChannelStatus(server_->address(), "aging");
        return group.has_value() && group->msgs() == 0;
      },
      absl::Seconds(10)));
  ASSERT_EQ(*conn->Publish("aging", "new"), 2u);
  TestSubscriber sub(conn->stub(), WithStart(conn->SubRequest("aging"), FIRST));
  std::optional<MsgProto> first = sub.Next();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->data(), "new");
}

TEST_F(SingleNodeTest, InactiveChannelIsDeleted) {
  StartServer(
      "store { channel_overrides { pattern: \"tmp.>\" limits { "
      "max_inactivity_ms: 300 } } }");
  auto conn = Connected("c1");
  ASSERT_TRUE(conn->Publish("tmp.x", "m1").ok());
  ASSERT_TRUE(conn->Publish("keep", "m1").ok());
  EXPECT_TRUE(Eventually(
      [&] { return !ChannelStatus(server_->address(), "tmp.x").has_value(); },
      absl::Seconds(15)));
  EXPECT_TRUE(ChannelStatus(server_->address(), "keep").has_value());
  // Publishing creates it anew, from sequence 1.
  EXPECT_EQ(*conn->Publish("tmp.x", "m2"), 1u);
  EXPECT_EQ(*conn->Publish("keep", "m2"), 2u);
}

}  // namespace
}  // namespace spate::testing
