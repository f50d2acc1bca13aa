#include "server/delivery.h"

#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "storage/channel_store.h"
#include "storage/mem_kv.h"

namespace spate::server {
namespace {

constexpr int64_t kMs = 1000000;

constexpr int64_t kUnlimited = std::numeric_limits<int64_t>::max();

// Takes what it is given; with a byte budget (free_bytes), refuses a batch
// that does not fit as SubscribeState does (slow consumer), and the budget
// only grows back when the test says the client read (Read).
class RecordingSink : public DeliverySink {
 public:
  bool Deliver(std::vector<MsgProto>* msgs) override {
    if (refuse) return false;
    int64_t bytes = 0;
    for (const MsgProto& msg : *msgs) {
      bytes += static_cast<int64_t>(msg.ByteSizeLong());
    }
    if (bytes > free_bytes) return false;
    if (free_bytes != kUnlimited) {
      free_bytes -= bytes;
      queued_bytes += bytes;
    }
    for (MsgProto& msg : *msgs) received.push_back(std::move(msg));
    return true;
  }
  int64_t FreeBytes() override { return free_bytes; }
  // The client read everything queued.
  void Read() {
    free_bytes += queued_bytes;
    queued_bytes = 0;
  }
  std::vector<uint64_t> Sequences() const {
    std::vector<uint64_t> out;
    for (const MsgProto& msg : received) out.push_back(msg.sequence());
    return out;
  }
  std::vector<MsgProto> received;
  bool refuse = false;
  int64_t free_bytes = kUnlimited;
  int64_t queued_bytes = 0;
};

class DeliveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    storage::WriteBatch batch;
    fsm_ = ChannelFsm::Create(&store_, 1, "orders", ChannelLimits(), 0,
                              ChannelFsmOptions(), &batch);
    ASSERT_TRUE(kv_.Write(batch, true).ok());
    delivery_ = std::make_unique<ChannelDelivery>(fsm_.get(), options_);
  }

  ChannelApplyResult Apply(const ChannelCommand& command) {
    storage::WriteBatch batch;
    ChannelApplyResult result = fsm_->Apply(++index_, command, &batch);
    EXPECT_TRUE(kv_.Write(batch, true).ok());
    fsm_->MarkWritten();
    delivery_->MarkDirty();
    return result;
  }

  // Publishes `count` messages "m<sequence>", padded to `size` bytes.
  void Publish(int count, size_t size = 0) {
    ChannelCommand command;
    for (int i = 0; i < count; ++i) {
      PublishEntry* entry = command.mutable_publish()->add_entries();
      std::string data = "m" + std::to_string(fsm_->last_sequence() + i + 1);
      if (data.size() < size) data.resize(size, '.');
      entry->set_data(data);
      entry->set_timestamp_ns(now_);
    }
    Apply(command);
  }

  // Creates (or joins/resumes) a subscription the way the node does and
  // attaches a sink to the new member.
  ChannelApplyResult Subscribe(const std::string& member,
                               std::shared_ptr<RecordingSink> sink,
                               int max_in_flight, const std::string& durable,
                               const std::string& group, uint64_t start = 1,
                               uint64_t lease = 0) {
    ChannelCommand command;
    SubscriptionCreate* create = command.mutable_subscribe();
    create->set_client_id("c1");
    create->set_member_id(member);
    create->set_durable_name(durable);
    create->set_q_group(group);
    create->set_max_in_flight(max_in_flight);
    create->set_ack_wait_ms(1000);
    create->set_start_sequence(start);
    create->set_sent_lease(
        lease != 0 ? lease : delivery_->InitialLease(start, max_in_flight));
    ChannelApplyResult result = Apply(command);
    EXPECT_TRUE(result.status.ok()) << result.status;
    delivery_->Attach(result.sub_id, member, result.previous_last_sent, sink);
    return result;
  }

  // Replicates what the engine took as progress (as the node would).
  void ReplicateProgress() {
    ChannelCommand command;
    if (delivery_->TakeProgress(command.mutable_progress())) Apply(command);
  }

  void Pump() { delivery_->Pump(now_); }

  storage::MemKv kv_;
  storage::ChannelStore store_{&kv_};
  std::unique_ptr<ChannelFsm> fsm_;
  DeliveryOptions options_;
  std::unique_ptr<ChannelDelivery> delivery_;
  uint64_t index_ = 0;
  int64_t now_ = 1000 * kMs;
};

TEST_F(DeliveryTest, MaxInFlightStallsAndOneAckResumes) {
  Publish(5);
  auto sink = std::make_shared<RecordingSink>();
  Subscribe("m1", sink, 2, "", "");
  Pump();
  EXPECT_EQ(sink->Sequences(), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(delivery_->InFlight("m1"), 2);
  Pump();
  EXPECT_EQ(sink->received.size(), 2u);  // stalled at the limit

  delivery_->Ack("m1", 1);
  Pump();
  EXPECT_EQ(sink->Sequences(), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_FALSE(sink->received[2].redelivered());
  EXPECT_EQ(sink->received[2].data(), "m3");
  EXPECT_EQ(sink->received[2].subject(), "orders");

  // Duplicate and unknown acks change nothing.
  delivery_->Ack("m1", 1);
  delivery_->Ack("m1", 99);
  EXPECT_EQ(delivery_->InFlight("m1"), 2);
}

TEST_F(DeliveryTest, AckWaitRedeliversOldestFirstWithFlagAndCount) {
  Publish(3);
  auto sink = std::make_shared<RecordingSink>();
  Subscribe("m1", sink, 10, "", "");
  Pump();
  ASSERT_EQ(sink->received.size(), 3u);
  delivery_->Ack("m1", 2);
  EXPECT_EQ(delivery_->NextDeadline(), now_ + 1000 * kMs);
  now_ += 999 * kMs;
  Pump();
  EXPECT_EQ(sink->received.size(), 3u);  // not yet
  now_ += 1 * kMs;
  Pump();
  ASSERT_EQ(sink->received.size(), 5u);
  EXPECT_EQ(sink->received[3].sequence(), 1u);
  EXPECT_EQ(sink->received[4].sequence(), 3u);
  EXPECT_TRUE(sink->received[3].redelivered());
  EXPECT_EQ(sink->received[3].redelivery_count(), 1u);

  ProgressBatch progress;
  ASSERT_TRUE(delivery_->TakeProgress(&progress));
  ASSERT_EQ(progress.subs_size(), 1);
  EXPECT_EQ(progress.subs(0).acked_size(), 1);
  EXPECT_EQ(progress.subs(0).redelivered_size(), 2);

  now_ += 1000 * kMs;
  Pump();
  EXPECT_EQ(sink->received.back().redelivery_count(), 2u);
}

TEST_F(DeliveryTest, QueueGroupSharesAndHandsOverPendingMessages) {
  Publish(6);
  auto a = std::make_shared<RecordingSink>();
  auto b = std::make_shared<RecordingSink>();
  Subscribe("a", a, 10, "", "workers");
  Subscribe("b", b, 10, "", "workers");
  Pump();
  EXPECT_EQ(a->received.size() + b->received.size(), 6u);
  EXPECT_GT(a->received.size(), 0u);
  EXPECT_GT(b->received.size(), 0u);
  // Each message went to exactly one member.
  std::vector<uint64_t> all = a->Sequences();
  for (uint64_t s : b->Sequences()) all.push_back(s);
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (std::vector<uint64_t>{1, 2, 3, 4, 5, 6}));

  const size_t b_before = b->received.size();
  const size_t a_pending = a->received.size();
  delivery_->Detach("a");
  Pump();
  ASSERT_EQ(b->received.size(), b_before + a_pending);
  for (size_t i = b_before; i < b->received.size(); ++i) {
    EXPECT_TRUE(b->received[i].redelivered());
  }
}

TEST_F(DeliveryTest, QueueGroupPrefersTheLeastLoadedMember) {
  auto a = std::make_shared<RecordingSink>();
  auto b = std::make_shared<RecordingSink>();
  Subscribe("a", a, 2, "", "workers");
  Subscribe("b", b, 10, "", "workers");
  Publish(8);
  Pump();
  EXPECT_EQ(a->received.size(), 2u);  // a is stalled at its limit
  EXPECT_EQ(b->received.size(), 6u);
}

TEST_F(DeliveryTest, NothingBeyondTheCommittedLeaseIsDelivered) {
  Publish(10);
  auto sink = std::make_shared<RecordingSink>();
  Subscribe("m1", sink, 100, "", "", /*start=*/1, /*lease=*/4);
  Pump();
  EXPECT_EQ(sink->Sequences(), (std::vector<uint64_t>{1, 2, 3, 4}));
  // The engine asked for more; once committed, delivery goes on.
  ReplicateProgress();
  EXPECT_GE(fsm_->FindSubscription(1)->record.last_sent(), 10u);
  Pump();
  EXPECT_EQ(sink->received.size(), 10u);
}

TEST_F(DeliveryTest, ResumedDurableGetsUnackedMessagesRedeliveredFirst) {
  Publish(5);
  auto first = std::make_shared<RecordingSink>();
  ChannelApplyResult sub = Subscribe("m1", first, 10, "dur", "");
  Pump();
  delivery_->Ack("m1", 1);
  delivery_->Ack("m1", 3);
  const uint64_t last_sent = delivery_->Detach("m1");
  EXPECT_EQ(last_sent, 5u);
  ReplicateProgress();
  ChannelCommand close;
  close.mutable_close_subscription()->set_sub_id(sub.sub_id);
  close.mutable_close_subscription()->set_member_id("m1");
  close.mutable_close_subscription()->set_last_sent(last_sent);
  Apply(close);
  Publish(2);

  auto second = std::make_shared<RecordingSink>();
  ChannelApplyResult resumed = Subscribe("m2", second, 10, "dur", "");
  EXPECT_TRUE(resumed.resumed);
  EXPECT_EQ(resumed.previous_last_sent, 5u);
  Pump();
  EXPECT_EQ(second->Sequences(), (std::vector<uint64_t>{2, 4, 5, 6, 7}));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(second->received[i].redelivered());
  EXPECT_FALSE(second->received[3].redelivered());
}

// A durable resumed with far more unacked bytes than its stream takes at
// once gets them all, a budget at a time, instead of being cut off as a
// slow consumer by its own redelivery burst; so does a catch-up read.
TEST_F(DeliveryTest, RedeliveryBurstIsPacedToTheSinkBudget) {
  Publish(100, 1000);  // ~100 KB
  auto first = std::make_shared<RecordingSink>();
  ChannelApplyResult sub = Subscribe("m1", first, 1000, "dur", "");
  Pump();
  ASSERT_EQ(first->received.size(), 100u);
  const uint64_t last_sent = delivery_->Detach("m1");
  ReplicateProgress();
  ChannelCommand close;
  close.mutable_close_subscription()->set_sub_id(sub.sub_id);
  close.mutable_close_subscription()->set_member_id("m1");
  close.mutable_close_subscription()->set_last_sent(last_sent);
  Apply(close);
  Publish(20, 1000);

  auto second = std::make_shared<RecordingSink>();
  second->free_bytes = 16 * 1024;
  Subscribe("m2", second, 1000, "dur", "");
  std::vector<uint64_t> expected;
  for (uint64_t seq = 1; seq <= 120; ++seq) expected.push_back(seq);
  for (int round = 0; round < 100 && second->received.size() < 120; ++round) {
    const size_t before = second->received.size();
    ASSERT_TRUE(delivery_->NeedsPump(now_));
    Pump();
    EXPECT_TRUE(delivery_->TakeDeadMembers().empty());
    EXPECT_GT(second->received.size(), before);
    EXPECT_LE(second->queued_bytes, 16 * 1024);
    // Blocked on its budget: pumped again shortly, not only at AckWait.
    if (second->received.size() < 120) {
      EXPECT_LE(delivery_->NextDeadline(), now_ + options_.paced_retry_ns);
    }
    second->Read();
    now_ += options_.paced_retry_ns;
  }
  EXPECT_EQ(second->Sequences(), expected);
  EXPECT_TRUE(second->received[99].redelivered());
  EXPECT_FALSE(second->received[100].redelivered());
}

// A member whose stream has no room for what is due, and never reads, is
// offered it anyway after slow_consumer_stall_ns and cut off; until then it
// is only paced.
TEST_F(DeliveryTest, SinkWithoutRoomIsCutOffAfterTheStall) {
  Publish(50, 1000);
  auto sink = std::make_shared<RecordingSink>();
  sink->free_bytes = 8 * 1024;
  Subscribe("m1", sink, 1000, "", "");
  Pump();
  const size_t first = sink->received.size();
  EXPECT_GT(first, 0u);
  EXPECT_LT(first, 50u);
  const int64_t start = now_;
  while (now_ - start < options_.slow_consumer_stall_ns) {
    now_ += options_.paced_retry_ns * 20;
    Pump();
    if (now_ - start < options_.slow_consumer_stall_ns) {
      EXPECT_TRUE(delivery_->TakeDeadMembers().empty());
    }
  }
  now_ += options_.paced_retry_ns;
  Pump();
  EXPECT_EQ(delivery_->TakeDeadMembers(), (std::vector<std::string>{"m1"}));
  EXPECT_EQ(sink->received.size(), first);
}

TEST_F(DeliveryTest, RefusingSinkIsReportedDead) {
  Publish(1);
  auto sink = std::make_shared<RecordingSink>();
  sink->refuse = true;
  Subscribe("m1", sink, 10, "", "");
  Pump();
  EXPECT_EQ(delivery_->TakeDeadMembers(), (std::vector<std::string>{"m1"}));
  Publish(1);
  Pump();
  EXPECT_TRUE(delivery_->TakeDeadMembers().empty());  // reported once
}

TEST_F(DeliveryTest, MessagesRemovedByLimitsAreSkipped) {
  storage::WriteBatch batch;
  ChannelLimits limits;
  limits.set_max_msgs(2);
  fsm_ = ChannelFsm::Create(&store_, 2, "small", limits, 0, ChannelFsmOptions(),
                            &batch);
  ASSERT_TRUE(kv_.Write(batch, true).ok());
  delivery_ = std::make_unique<ChannelDelivery>(fsm_.get(), options_);
  auto sink = std::make_shared<RecordingSink>();
  Subscribe("m1", sink, 10, "", "", /*start=*/1);
  Publish(5);
  Pump();
  EXPECT_EQ(sink->Sequences(), (std::vector<uint64_t>{4, 5}));
}

}  // namespace
}  // namespace spate::server
