#include "server/channel_fsm.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "storage/channel_store.h"
#include "storage/mem_kv.h"

namespace spate::server {
namespace {

constexpr uint64_t kChannel = 7;
constexpr int64_t kSecond = 1000000000;

ChannelCommand Publish(std::vector<std::string> payloads,
                       std::vector<std::string> guids, int64_t ts) {
  ChannelCommand command;
  for (size_t i = 0; i < payloads.size(); ++i) {
    PublishEntry* entry = command.mutable_publish()->add_entries();
    entry->set_client_id("c1");
    entry->set_data(payloads[i]);
    if (i < guids.size()) entry->set_guid(guids[i]);
    entry->set_timestamp_ns(ts);
  }
  return command;
}

ChannelCommand Subscribe(const std::string& member, const std::string& client,
                         const std::string& durable, const std::string& group,
                         uint64_t start) {
  ChannelCommand command;
  SubscriptionCreate* create = command.mutable_subscribe();
  create->set_client_id(client);
  create->set_member_id(member);
  create->set_durable_name(durable);
  create->set_q_group(group);
  create->set_max_in_flight(10);
  create->set_ack_wait_ms(1000);
  create->set_start_sequence(start);
  return command;
}

class ChannelFsmTest : public ::testing::Test {
 protected:
  void SetUp() override { CreateFsm(ChannelLimits()); }

  void CreateFsm(const ChannelLimits& limits) {
    storage::WriteBatch batch;
    fsm_ = ChannelFsm::Create(&store_, kChannel, "orders", limits, 0, options_,
                              &batch);
    ASSERT_TRUE(kv_.Write(batch, true).ok());
  }

  ChannelApplyResult Apply(const ChannelCommand& command) {
    storage::WriteBatch batch;
    ChannelApplyResult result = fsm_->Apply(++index_, command, &batch);
    EXPECT_TRUE(kv_.Write(batch, true).ok());
    fsm_->MarkWritten();
    return result;
  }

  std::unique_ptr<ChannelFsm> Reload() {
    absl::StatusOr<std::unique_ptr<ChannelFsm>> loaded =
        ChannelFsm::Load(&store_, kChannel, options_);
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    return loaded.ok() ? *std::move(loaded) : nullptr;
  }

  SubscriptionRequest Request(StartPosition position, uint64_t seq = 0,
                              int64_t delta_ns = 0) {
    SubscriptionRequest request;
    request.set_start_position(position);
    request.set_start_sequence(seq);
    request.set_start_time_delta_ns(delta_ns);
    return request;
  }

  storage::MemKv kv_;
  storage::ChannelStore store_{&kv_};
  ChannelFsmOptions options_;
  std::unique_ptr<ChannelFsm> fsm_;
  uint64_t index_ = 0;
};

TEST_F(ChannelFsmTest, PublishAssignsGapFreeSequencesAndSurvivesReload) {
  ChannelApplyResult result = Apply(Publish({"a", "b", "c"}, {}, kSecond));
  EXPECT_EQ(result.sequences, (std::vector<uint64_t>{1, 2, 3}));
  result = Apply(Publish({"d"}, {}, 2 * kSecond));
  EXPECT_EQ(result.sequences, (std::vector<uint64_t>{4}));
  EXPECT_EQ(fsm_->first_sequence(), 1u);
  EXPECT_EQ(fsm_->last_sequence(), 4u);
  EXPECT_EQ(fsm_->record().msgs(), 4);
  EXPECT_EQ(fsm_->record().bytes(), 4);

  std::unique_ptr<ChannelFsm> reloaded = Reload();
  EXPECT_EQ(reloaded->last_sequence(), 4u);
  EXPECT_EQ(reloaded->applied_index(), index_);
  absl::StatusOr<StoredMessage> msg = reloaded->ReadMessage(2);
  ASSERT_TRUE(msg.ok());
  EXPECT_EQ(msg->data(), "b");
  EXPECT_NE(msg->crc32(), 0u);
}

TEST_F(ChannelFsmTest, TimestampsNeverGoBackwards) {
  Apply(Publish({"a"}, {}, 5 * kSecond));
  Apply(Publish({"b"}, {}, 3 * kSecond));  // a new leader's clock is behind
  EXPECT_EQ(fsm_->ReadMessage(2)->timestamp_ns(), 5 * kSecond);
}

TEST_F(ChannelFsmTest, DuplicateGuidReturnsTheFirstSequence) {
  Apply(Publish({"a", "b"}, {"g1", "g2"}, kSecond));
  ChannelApplyResult result =
      Apply(Publish({"again", "new"}, {"g1", "g3"}, 2 * kSecond));
  EXPECT_EQ(result.sequences, (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(result.duplicates, (std::vector<bool>{true, false}));
  EXPECT_EQ(fsm_->last_sequence(), 3u);

  // Within one batch, too.
  result = Apply(Publish({"x", "x"}, {"g4", "g4"}, 2 * kSecond));
  EXPECT_EQ(result.sequences, (std::vector<uint64_t>{4, 4}));

  // The window survives a restart: the index is rebuilt from the store.
  fsm_ = Reload();
  result = Apply(Publish({"again"}, {"g2"}, 3 * kSecond));
  EXPECT_EQ(result.sequences, (std::vector<uint64_t>{2}));

  // After the window, and once kDedupKeptSequences newer messages were
  // stored, the guid is new again.
  for (uint64_t i = 0; i < kDedupKeptSequences; ++i) {
    Apply(Publish({"filler"}, {}, 3 * kSecond));
  }
  const int64_t later = 3 * kSecond + options_.dedup_window_ms * 1000000 + 1;
  result = Apply(Publish({"late"}, {"g1"}, later));
  EXPECT_EQ(result.sequences, (std::vector<uint64_t>{5 + kDedupKeptSequences}));
}

// Soak seeds 3028 and 3067: a leader's wall clock jumped forward by 424 s
// (1.5 h), so the next message's timestamp put every earlier guid outside
// the 120 s window, and a client's retry of a publish from just before the
// jump was stored a second time. The newest sequences stay deduplicated
// whatever the timestamps, alike in a replica that restarted.
TEST_F(ChannelFsmTest, RetryAfterAForwardClockJumpIsStillADuplicate) {
  Apply(Publish({"a", "b"}, {"g1", "g2"}, kSecond));
  const int64_t jumped = kSecond + 424 * kSecond;
  ChannelApplyResult result = Apply(Publish({"c"}, {"g3"}, jumped));
  EXPECT_EQ(result.sequences, (std::vector<uint64_t>{3}));
  std::unique_ptr<ChannelFsm> reloaded = Reload();
  result = Apply(Publish({"a"}, {"g1"}, jumped));
  EXPECT_EQ(result.sequences, (std::vector<uint64_t>{1}));
  EXPECT_TRUE(result.duplicates[0]);
  storage::WriteBatch batch;
  ChannelApplyResult after =
      reloaded->Apply(index_, Publish({"a"}, {"g1"}, jumped), &batch);
  EXPECT_EQ(after.sequences, (std::vector<uint64_t>{1}));

  // Time-based eviction still bounds the set once enough newer messages
  // came: live and reloaded replicas agree which guids are forgotten.
  for (uint64_t i = 0; i < kDedupKeptSequences; ++i) {
    Apply(Publish({"filler"}, {}, jumped));
  }
  reloaded = Reload();
  result = Apply(Publish({"b"}, {"g2"}, jumped));
  EXPECT_FALSE(result.duplicates[0]);
  storage::WriteBatch batch2;
  after = reloaded->Apply(index_, Publish({"b"}, {"g2"}, jumped), &batch2);
  EXPECT_EQ(after.sequences, result.sequences);
  result = Apply(Publish({"c"}, {"g3"}, jumped));
  EXPECT_TRUE(result.duplicates[0]);
}

TEST_F(ChannelFsmTest, DedupStateIsTheSameAfterReloadWithTheEntryCap) {
  options_.dedup_entries_max = 2;
  CreateFsm(ChannelLimits());
  Apply(Publish({"a", "b", "c"}, {"g1", "g2", "g3"}, kSecond));
  // g1 fell out of the cap: republishing stores it again, both before and
  // after a reload (replicas must agree whether they restarted or not).
  std::unique_ptr<ChannelFsm> reloaded = Reload();
  ChannelApplyResult live = Apply(Publish({"a"}, {"g1"}, kSecond));
  EXPECT_EQ(live.sequences[0], 4u);
  storage::WriteBatch batch;
  ChannelApplyResult after =
      reloaded->Apply(index_, Publish({"a"}, {"g1"}, kSecond), &batch);
  EXPECT_EQ(after.sequences[0], 4u);
  ChannelApplyResult g3 = Apply(Publish({"c"}, {"g3"}, kSecond));
  EXPECT_TRUE(g3.duplicates[0]);
}

TEST_F(ChannelFsmTest, MaxMsgsRemovesOldestFirst) {
  ChannelLimits limits;
  limits.set_max_msgs(3);
  CreateFsm(limits);
  Apply(Publish({"1", "2", "3", "4", "5"}, {}, kSecond));
  EXPECT_EQ(fsm_->first_sequence(), 3u);
  EXPECT_EQ(fsm_->last_sequence(), 5u);
  EXPECT_EQ(fsm_->record().msgs(), 3);
  EXPECT_EQ(fsm_->ReadMessage(2).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_.GetMessage(kChannel, 2).status().code(),
            absl::StatusCode::kNotFound);
  std::unique_ptr<ChannelFsm> reloaded = Reload();
  EXPECT_EQ(reloaded->first_sequence(), 3u);
  EXPECT_EQ(reloaded->record().bytes(), 3);
}

TEST_F(ChannelFsmTest, MaxBytesKeepsTheNewestEvenIfItAloneIsTooBig) {
  ChannelLimits limits;
  limits.set_max_bytes(10);
  CreateFsm(limits);
  Apply(Publish({"12345", "67890"}, {}, kSecond));
  EXPECT_EQ(fsm_->record().msgs(), 2);
  Apply(Publish({"x"}, {}, kSecond));
  EXPECT_EQ(fsm_->first_sequence(), 2u);
  Apply(Publish({std::string(50, 'z')}, {}, kSecond));
  EXPECT_EQ(fsm_->first_sequence(), 4u);
  EXPECT_EQ(fsm_->record().msgs(), 1);
  EXPECT_EQ(fsm_->record().bytes(), 50);
}

TEST_F(ChannelFsmTest, TrimByAgeUsesTheCommandTime) {
  ChannelLimits limits;
  limits.set_max_age_ms(1000);
  CreateFsm(limits);
  Apply(Publish({"old"}, {}, 1 * kSecond));
  Apply(Publish({"new"}, {}, 5 * kSecond));
  ChannelCommand trim;
  trim.mutable_trim()->set_now_ns(5 * kSecond + kSecond / 2);
  Apply(trim);
  EXPECT_EQ(fsm_->first_sequence(), 2u);
  trim.mutable_trim()->set_now_ns(10 * kSecond);
  Apply(trim);
  EXPECT_EQ(fsm_->record().msgs(), 0);
  EXPECT_EQ(fsm_->first_sequence(), 3u);
  EXPECT_EQ(fsm_->last_sequence(), 2u);
}

TEST_F(ChannelFsmTest, SetLimitsAppliesAtItsPositionAndPersists) {
  CreateFsm(ChannelLimits());
  Apply(Publish({"a", "b", "c", "d"}, {}, kSecond));
  ChannelCommand set;
  set.mutable_set_limits()->mutable_limits()->set_max_msgs(2);
  Apply(set);
  EXPECT_EQ(fsm_->record().limits().max_msgs(), 2);
  EXPECT_EQ(fsm_->first_sequence(), 3u);
  EXPECT_EQ(fsm_->record().msgs(), 2);
  Apply(Publish({"e"}, {}, kSecond));
  EXPECT_EQ(fsm_->first_sequence(), 4u);
  std::unique_ptr<ChannelFsm> reloaded = Reload();
  EXPECT_EQ(reloaded->record().limits().max_msgs(), 2);
  EXPECT_EQ(reloaded->first_sequence(), 4u);
}

TEST_F(ChannelFsmTest,
       StartPositionsFollowTheRulesEvenAfterLimitsRemovedMessages) {
  ChannelLimits limits;
  limits.set_max_msgs(5);
  CreateFsm(limits);
  // Empty channel.
  EXPECT_EQ(*fsm_->ResolveStartSequence(Request(FIRST), 0), 1u);
  EXPECT_EQ(*fsm_->ResolveStartSequence(Request(LAST_RECEIVED), 0), 1u);
  EXPECT_EQ(*fsm_->ResolveStartSequence(Request(NEW_ONLY), 0), 1u);
  for (int i = 1; i <= 10; ++i) {
    Apply(Publish({"m"}, {}, i * kSecond));  // seq i at i seconds
  }
  ASSERT_EQ(fsm_->first_sequence(), 6u);
  const int64_t now = 10 * kSecond;
  EXPECT_EQ(*fsm_->ResolveStartSequence(Request(NEW_ONLY), now), 11u);
  EXPECT_EQ(*fsm_->ResolveStartSequence(Request(LAST_RECEIVED), now), 10u);
  EXPECT_EQ(*fsm_->ResolveStartSequence(Request(FIRST), now), 6u);
  EXPECT_EQ(*fsm_->ResolveStartSequence(Request(SEQUENCE_START, 2), now), 6u);
  EXPECT_EQ(*fsm_->ResolveStartSequence(Request(SEQUENCE_START, 8), now), 8u);
  EXPECT_EQ(*fsm_->ResolveStartSequence(Request(SEQUENCE_START, 99), now), 11u);
  EXPECT_EQ(*fsm_->ResolveStartSequence(
                Request(TIME_DELTA_START, 0, 3 * kSecond), now),
            7u);
  EXPECT_EQ(*fsm_->ResolveStartSequence(
                Request(TIME_DELTA_START, 0, 100 * kSecond), now),
            6u);
  EXPECT_EQ(*fsm_->ResolveStartSequence(Request(TIME_DELTA_START, 0, 0),
                                        now + kSecond),
            11u);
}

TEST_F(ChannelFsmTest, DurableResumesAndRefusesASecondLiveMember) {
  ChannelApplyResult created = Apply(Subscribe("m1", "c1", "dur", "", 1));
  ASSERT_TRUE(created.status.ok());
  EXPECT_FALSE(created.resumed);

  ChannelApplyResult twice = Apply(Subscribe("m2", "c1", "dur", "", 1));
  EXPECT_EQ(twice.status.code(), absl::StatusCode::kAlreadyExists);
  // Another client's durable of the same name is a different subscription.
  EXPECT_TRUE(Apply(Subscribe("m3", "c2", "dur", "", 1)).status.ok());

  ChannelCommand close;
  close.mutable_close_subscription()->set_sub_id(created.sub_id);
  close.mutable_close_subscription()->set_member_id("m1");
  close.mutable_close_subscription()->set_last_sent(0);
  ChannelApplyResult closed = Apply(close);
  EXPECT_FALSE(closed.subscription_removed);
  EXPECT_FALSE(fsm_->FindSubscription(created.sub_id)->online());

  ChannelApplyResult resumed = Apply(Subscribe("m4", "c1", "dur", "", 99));
  ASSERT_TRUE(resumed.status.ok());
  EXPECT_TRUE(resumed.resumed);
  EXPECT_EQ(resumed.sub_id, created.sub_id);

  ChannelCommand del;
  del.mutable_delete_subscription()->set_sub_id(created.sub_id);
  del.mutable_delete_subscription()->set_member_id("m4");
  EXPECT_TRUE(Apply(del).subscription_removed);
  EXPECT_EQ(fsm_->FindSubscription(created.sub_id), nullptr);
  EXPECT_FALSE(store_.GetSubscription(kChannel, created.sub_id).ok());
}

TEST_F(ChannelFsmTest, PlainSubscriptionIsRemovedOnClose) {
  ChannelApplyResult created = Apply(Subscribe("m1", "c1", "", "", 1));
  ChannelCommand close;
  close.mutable_close_subscription()->set_sub_id(created.sub_id);
  close.mutable_close_subscription()->set_member_id("m1");
  EXPECT_TRUE(Apply(close).subscription_removed);
  EXPECT_TRUE(fsm_->subscriptions().empty());
}

TEST_F(ChannelFsmTest, QueueGroupsShareOneSubscription) {
  ChannelApplyResult a = Apply(Subscribe("m1", "c1", "", "workers", 1));
  ChannelApplyResult b = Apply(Subscribe("m2", "c2", "", "workers", 1));
  EXPECT_EQ(a.sub_id, b.sub_id);
  EXPECT_TRUE(b.resumed);
  EXPECT_EQ(fsm_->SubscriptionCount(), 2);
  // A durable queue group with the same group name is another one.
  ChannelApplyResult d = Apply(Subscribe("m3", "c1", "dq", "workers", 1));
  EXPECT_NE(d.sub_id, a.sub_id);

  // The last member of a durable queue group closing keeps the group.
  ChannelCommand close;
  close.mutable_close_subscription()->set_sub_id(d.sub_id);
  close.mutable_close_subscription()->set_member_id("m3");
  EXPECT_FALSE(Apply(close).subscription_removed);
  ChannelApplyResult back = Apply(Subscribe("m4", "c9", "dq", "workers", 1));
  EXPECT_EQ(back.sub_id, d.sub_id);
  // ... and its last member unsubscribing deletes it.
  ChannelCommand del;
  del.mutable_delete_subscription()->set_sub_id(d.sub_id);
  del.mutable_delete_subscription()->set_member_id("m4");
  EXPECT_TRUE(Apply(del).subscription_removed);

  // A non-durable group disappears with its last member.
  del.mutable_delete_subscription()->set_sub_id(a.sub_id);
  del.mutable_delete_subscription()->set_member_id("m1");
  EXPECT_FALSE(Apply(del).subscription_removed);
  close.mutable_close_subscription()->set_sub_id(a.sub_id);
  close.mutable_close_subscription()->set_member_id("m2");
  EXPECT_TRUE(Apply(close).subscription_removed);
}

TEST_F(ChannelFsmTest, MaxSubsCountsMembersAndOfflineDurables) {
  ChannelLimits limits;
  limits.set_max_subs(2);
  CreateFsm(limits);
  ChannelApplyResult d = Apply(Subscribe("m1", "c1", "dur", "", 1));
  ChannelCommand close;
  close.mutable_close_subscription()->set_sub_id(d.sub_id);
  close.mutable_close_subscription()->set_member_id("m1");
  Apply(close);
  ASSERT_TRUE(Apply(Subscribe("m2", "c1", "", "", 1)).status.ok());
  EXPECT_EQ(Apply(Subscribe("m3", "c2", "", "", 1)).status.code(),
            absl::StatusCode::kResourceExhausted);
  // Resuming the offline durable does not add to the count.
  EXPECT_TRUE(Apply(Subscribe("m4", "c1", "dur", "", 1)).status.ok());
}

TEST_F(ChannelFsmTest, ProgressAdvancesTheFloorAndPersistsRedeliveryCounts) {
  Apply(Publish({"1", "2", "3", "4", "5"}, {}, kSecond));
  ChannelApplyResult sub = Apply(Subscribe("m1", "c1", "dur", "", 1));
  ChannelCommand progress;
  SubscriptionProgress* p = progress.mutable_progress()->add_subs();
  p->set_sub_id(sub.sub_id);
  p->add_acked(2);
  p->add_acked(4);
  p->add_redelivered(1);
  p->add_redelivered(1);
  p->add_redelivered(3);
  p->set_last_sent(5);
  Apply(progress);
  const Subscription* s = fsm_->FindSubscription(sub.sub_id);
  EXPECT_EQ(s->record.ack_floor(), 0u);
  EXPECT_EQ(s->acked.size(), 2u);
  EXPECT_EQ(s->redelivery_counts.at(1), 2u);
  EXPECT_EQ(s->record.last_sent(), 5u);

  progress.mutable_progress()->mutable_subs(0)->clear_redelivered();
  progress.mutable_progress()->mutable_subs(0)->clear_acked();
  progress.mutable_progress()->mutable_subs(0)->add_acked(1);
  Apply(progress);
  s = fsm_->FindSubscription(sub.sub_id);
  EXPECT_EQ(s->record.ack_floor(), 2u);  // 1 and 2 acked
  EXPECT_EQ(s->redelivery_counts.count(1), 0u);

  fsm_ = Reload();
  s = fsm_->FindSubscription(sub.sub_id);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->record.ack_floor(), 2u);
  EXPECT_TRUE(s->acked.contains(4));
  EXPECT_EQ(s->redelivery_counts.at(3), 1u);
  EXPECT_EQ(s->record.members_size(), 1);
}

TEST_F(ChannelFsmTest, SameCommandsGiveTheSameStateOnEveryReplica) {
  storage::MemKv other_kv;
  storage::ChannelStore other_store(&other_kv);
  storage::WriteBatch batch;
  std::unique_ptr<ChannelFsm> other = ChannelFsm::Create(
      &other_store, kChannel, "orders", ChannelLimits(), 0, options_, &batch);
  ASSERT_TRUE(other_kv.Write(batch, true).ok());

  std::vector<ChannelCommand> commands = {
      Publish({"a", "b"}, {"g1", "g2"}, kSecond),
      Subscribe("m1", "c1", "dur", "", 1),
      Publish({"c", "a"}, {"g3", "g1"}, 2 * kSecond),
      Subscribe("m2", "c2", "", "q", 2),
  };
  ChannelCommand progress;
  progress.mutable_progress()->add_subs()->set_sub_id(1);
  progress.mutable_progress()->mutable_subs(0)->add_acked(1);
  commands.push_back(progress);
  uint64_t other_index = 0;
  for (const ChannelCommand& command : commands) {
    Apply(command);
    storage::WriteBatch b;
    other->Apply(++other_index, command, &b);
    ASSERT_TRUE(other_kv.Write(b, true).ok());
    other->MarkWritten();
  }
  EXPECT_EQ(fsm_->record().SerializeAsString(),
            other->record().SerializeAsString());
  ASSERT_EQ(fsm_->subscriptions().size(), other->subscriptions().size());
  for (const auto& [id, sub] : fsm_->subscriptions()) {
    const Subscription* twin = other->FindSubscription(id);
    ASSERT_NE(twin, nullptr);
    EXPECT_EQ(sub.record.SerializeAsString(), twin->record.SerializeAsString());
    EXPECT_EQ(sub.acked, twin->acked);
  }
  for (uint64_t seq = 1; seq <= fsm_->last_sequence(); ++seq) {
    EXPECT_EQ(fsm_->ReadMessage(seq)->SerializeAsString(),
              other->ReadMessage(seq)->SerializeAsString());
  }
}

TEST_F(ChannelFsmTest, InstalledImageBehavesLikeTheOriginal) {
  ChannelLimits limits;
  limits.set_max_msgs(4);
  CreateFsm(limits);
  Apply(Publish({"a", "b", "c", "d", "e", "f"},
                {"g1", "g2", "g3", "g4", "g5", "g6"}, kSecond));
  ChannelApplyResult sub = Apply(Subscribe("m1", "c1", "dur", "", 1));
  ChannelCommand progress;
  progress.mutable_progress()->add_subs()->set_sub_id(sub.sub_id);
  progress.mutable_progress()->mutable_subs(0)->add_acked(4);
  progress.mutable_progress()->mutable_subs(0)->add_redelivered(5);
  Apply(progress);
  const ChannelSnapshot image = fsm_->Image();
  EXPECT_EQ(image.record().applied_index(), index_);

  // Another replica with older state: it gets the messages the image needs
  // (what the fetch does), then installs.
  storage::MemKv other_kv;
  storage::ChannelStore other_store(&other_kv);
  storage::WriteBatch batch;
  std::unique_ptr<ChannelFsm> other = ChannelFsm::Create(
      &other_store, kChannel, "orders", limits, 0, options_, &batch);
  ASSERT_TRUE(
      other->Apply(1, Publish({"old"}, {"gx"}, kSecond), &batch).status.ok());
  std::vector<StoredMessage> msgs;
  ASSERT_TRUE(
      fsm_->ReadMessages(fsm_->first_sequence(), 100, 1 << 20, &msgs).ok());
  for (const StoredMessage& msg : msgs) {
    other_store.PutMessage(kChannel, msg, &batch);
  }
  ASSERT_TRUE(other_kv.Write(batch, true).ok());
  other->MarkWritten();
  storage::WriteBatch install;
  ASSERT_TRUE(other->Install(image, &install).ok());
  ASSERT_TRUE(other_kv.Write(install, true).ok());
  other->MarkWritten();

  EXPECT_EQ(other->record().SerializeAsString(),
            fsm_->record().SerializeAsString());
  const Subscription* copied = other->FindSubscription(sub.sub_id);
  ASSERT_NE(copied, nullptr);
  EXPECT_TRUE(copied->acked.contains(4));
  EXPECT_EQ(copied->redelivery_counts.at(5), 1u);
  EXPECT_NE(other->FindByMember("m1"), nullptr);
  // Dedup survived (g6 is within the window and still stored) and the next
  // command gives the same result on both.
  ChannelCommand next = Publish({"again", "new"}, {"g6", "g7"}, 2 * kSecond);
  ChannelApplyResult mine = Apply(next);
  storage::WriteBatch b2;
  ChannelApplyResult theirs = other->Apply(index_, next, &b2);
  EXPECT_EQ(mine.sequences, theirs.sequences);
  EXPECT_EQ(mine.sequences, (std::vector<uint64_t>{6, 7}));
  // A reload from the installed store gives the same state too.
  ASSERT_TRUE(other_kv.Write(b2, true).ok());
  other->MarkWritten();
  absl::StatusOr<std::unique_ptr<ChannelFsm>> reloaded =
      ChannelFsm::Load(&other_store, kChannel, options_);
  ASSERT_TRUE(reloaded.ok());
  EXPECT_EQ((*reloaded)->record().SerializeAsString(),
            fsm_->record().SerializeAsString());
  EXPECT_EQ(other_store.GetMessage(kChannel, 1).status().code(),
            absl::StatusCode::kNotFound);  // the old message is gone
}

TEST_F(ChannelFsmTest, InstallWithoutTheMessagesIsDataLoss) {
  Apply(Publish({"a", "b"}, {}, kSecond));
  const ChannelSnapshot image = fsm_->Image();
  storage::MemKv other_kv;
  storage::ChannelStore other_store(&other_kv);
  storage::WriteBatch batch;
  std::unique_ptr<ChannelFsm> other = ChannelFsm::Create(
      &other_store, kChannel, "orders", ChannelLimits(), 0, options_, &batch);
  EXPECT_EQ(other->Install(image, &batch).code(), absl::StatusCode::kDataLoss);
}

TEST_F(ChannelFsmTest, ReadsSpanTheStoreAndTheCache) {
  options_.cache_bytes_max = 2;  // keep almost nothing cached
  CreateFsm(ChannelLimits());
  Apply(Publish({"a", "b", "c", "d"}, {}, kSecond));
  Apply(Publish({"e"}, {}, kSecond));
  std::vector<StoredMessage> out;
  ASSERT_TRUE(fsm_->ReadMessages(2, 10, 1 << 20, &out).ok());
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].data(), "b");
  EXPECT_EQ(out[3].data(), "e");
  out.clear();
  ASSERT_TRUE(fsm_->ReadMessages(1, 2, 1 << 20, &out).ok());
  EXPECT_EQ(out.size(), 2u);
}

ChannelCommand MirrorBatch(uint64_t prev, std::vector<uint64_t> sequences) {
  ChannelCommand command;
  command.mutable_mirror_append()->set_prev_sequence(prev);
  for (uint64_t seq : sequences) {
    StoredMessage* msg = command.mutable_mirror_append()->add_messages();
    msg->set_sequence(seq);
    msg->set_timestamp_ns(static_cast<int64_t>(seq) * 1000);
    msg->set_data(absl::StrCat("m", seq));
    msg->set_guid(absl::StrCat("g", seq));
    msg->set_crc32(static_cast<uint32_t>(seq));
  }
  return command;
}

TEST_F(ChannelFsmTest, MirrorAppendKeepsSourceSequencesExactlyOnce) {
  ChannelApplyResult result = Apply(MirrorBatch(0, {1, 2, 3}));
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_EQ(result.sequences, (std::vector<uint64_t>{1, 2, 3}));
  // The same batch again (a resumed feed) is rejected, nothing changes.
  result = Apply(MirrorBatch(0, {1, 2, 3}));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kFailedPrecondition);
  // A batch that would leave a hole after what it claims to follow, too.
  result = Apply(MirrorBatch(5, {6}));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(fsm_->last_sequence(), 3u);
  ASSERT_TRUE(Apply(MirrorBatch(3, {4})).status.ok());
  // Stored exactly as the source stored them, and so after a reload.
  std::unique_ptr<ChannelFsm> loaded = Reload();
  ASSERT_NE(loaded, nullptr);
  absl::StatusOr<StoredMessage> msg = loaded->ReadMessage(4);
  ASSERT_TRUE(msg.ok()) << msg.status();
  EXPECT_EQ(msg->timestamp_ns(), 4000);
  EXPECT_EQ(msg->data(), "m4");
  EXPECT_EQ(msg->guid(), "g4");
  EXPECT_EQ(msg->crc32(), 4u);
  EXPECT_EQ(loaded->first_sequence(), 1u);
  EXPECT_EQ(loaded->last_sequence(), 4u);
}

TEST_F(ChannelFsmTest, MirrorAppendFollowsSourceRetentionHoles) {
  // The source removed 1..9 before the mirror saw them: it starts at 10.
  ASSERT_TRUE(Apply(MirrorBatch(0, {10, 11})).status.ok());
  EXPECT_EQ(fsm_->first_sequence(), 10u);
  EXPECT_EQ(fsm_->last_sequence(), 11u);
  // Later a hole again (the link was down while the source trimmed): the
  // messages before it are dropped so the stored range stays contiguous.
  ASSERT_TRUE(Apply(MirrorBatch(11, {20, 21})).status.ok());
  EXPECT_EQ(fsm_->first_sequence(), 20u);
  EXPECT_EQ(fsm_->last_sequence(), 21u);
  EXPECT_EQ(fsm_->record().msgs(), 2);
  EXPECT_FALSE(fsm_->ReadMessage(11).ok());
  ASSERT_TRUE(fsm_->ReadMessage(21).ok());
  // Descending sequences are refused whole.
  ChannelApplyResult result = Apply(MirrorBatch(21, {23, 22}));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(fsm_->last_sequence(), 21u);
}

}  // namespace
}  // namespace spate::server
