#include "tests/faults/checker.h"

#include "gtest/gtest.h"

namespace spate::faults {
namespace {

PublishAttempt Acked(const std::string& payload, uint64_t sequence) {
  return PublishAttempt{"c", payload, PublishOutcome::kAcked, sequence};
}

Delivery Got(uint64_t sequence, const std::string& payload,
             bool redelivered = false, int64_t epoch = 0) {
  return Delivery{sequence, payload, redelivered, epoch};
}

// Two acked publishes, read identically through two nodes and delivered
// once each to one subscriber: the clean baseline each test breaks once.
History Clean() {
  History history;
  history.publishes = {Acked("a", 1), Acked("b", 2)};
  SubscriberHistory sub;
  sub.name = "sub";
  sub.channel = "c";
  sub.deliveries = {Got(1, "a"), Got(2, "b")};
  history.subscribers = {sub};
  for (int node : {1, 2}) {
    history.reads[node]["c"] = {{1, "a"}, {2, "b"}};
    history.last_sequences[node]["c"] = 2;
  }
  return history;
}

TEST(CheckerTest, CleanHistoryIsValid) {
  CheckResult result = Check(Clean());
  EXPECT_TRUE(result.valid()) << result.Summary();
  EXPECT_EQ(result.acked, 2);
  EXPECT_EQ(result.delivered, 2);
}

TEST(CheckerTest, AckedButMissingFromOneNodeIsLost) {
  History history = Clean();
  history.reads[2]["c"].erase(2);
  CheckResult result = Check(history);
  EXPECT_EQ(result.lost, 1);
  EXPECT_FALSE(result.valid());
}

TEST(CheckerTest, AckedButNeverDeliveredIsLost) {
  History history = Clean();
  history.subscribers[0].deliveries.pop_back();
  EXPECT_EQ(Check(history).lost, 1);
}

TEST(CheckerTest, UnknownOutcomeMayBeStoredOrNot) {
  History history = Clean();
  history.publishes.push_back(
      PublishAttempt{"c", "x", PublishOutcome::kUnknown, 0});
  EXPECT_TRUE(Check(history).valid());
  for (auto& [node, channels] : history.reads) channels["c"][3] = "x";
  history.subscribers[0].deliveries.push_back(Got(3, "x"));
  CheckResult result = Check(history);
  EXPECT_TRUE(result.valid()) << result.Summary();
  EXPECT_EQ(result.unknown_stored, 1);
}

TEST(CheckerTest, NeverAttemptedOrFailedPayloadIsUnexpected) {
  History history = Clean();
  history.publishes.push_back(
      PublishAttempt{"c", "f", PublishOutcome::kFailed, 0});
  history.reads[1]["c"][3] = "f";
  history.subscribers[0].deliveries.push_back(Got(4, "ghost"));
  EXPECT_EQ(Check(history).unexpected, 2);
}

TEST(CheckerTest, DuplicatesNeedTheFlagOrANewEpoch) {
  History history = Clean();
  auto& deliveries = history.subscribers[0].deliveries;
  deliveries.push_back(Got(2, "b", /*redelivered=*/true));
  deliveries.push_back(Got(1, "a", /*redelivered=*/false, /*epoch=*/1));
  CheckResult result = Check(history);
  EXPECT_EQ(result.duplicated, 2);
  EXPECT_EQ(result.dup_unflagged, 0);
  EXPECT_TRUE(result.valid()) << result.Summary();
  deliveries.push_back(Got(2, "b", /*redelivered=*/false, /*epoch=*/1));
  deliveries.push_back(Got(2, "b", /*redelivered=*/false, /*epoch=*/1));
  EXPECT_EQ(Check(history).dup_unflagged, 1);
}

TEST(CheckerTest, FirstDeliveriesOutOfOrderAreReordered) {
  History history = Clean();
  history.subscribers[0].deliveries = {Got(2, "b"), Got(1, "a")};
  EXPECT_EQ(Check(history).reordered, 1);
}

TEST(CheckerTest, MissingSequenceIsAHole) {
  History history = Clean();
  history.publishes.push_back(Acked("d", 4));
  for (auto& [node, channels] : history.reads) channels["c"][4] = "d";
  history.subscribers[0].deliveries.push_back(Got(4, "d"));
  CheckResult result = Check(history);
  EXPECT_EQ(result.holes, 3);  // node 1, node 2, the subscriber
  EXPECT_FALSE(result.valid());
}

TEST(CheckerTest, ReplicaHoldingMoreThanReadIsAHole) {
  History history = Clean();
  history.last_sequences[2]["c"] = 3;
  CheckResult result = Check(history);
  EXPECT_EQ(result.holes, 2);    // neither read reaches #3
  EXPECT_EQ(result.lagging, 1);  // node 1 holds less than node 2
}

TEST(CheckerTest, SameSequenceTwoPayloadsIsDivergent) {
  History history = Clean();
  history.reads[2]["c"][2] = "b2";
  CheckResult result = Check(history);
  EXPECT_EQ(result.divergent, 1);
  EXPECT_FALSE(result.valid());
}

TEST(CheckerTest, AckedSequenceRedeliveredAfterReopenIsBackwards) {
  History history = Clean();
  history.subscribers[0].acked_before_close = {1, 2};
  history.subscribers[0].after_reopen = {Got(2, "b", true)};
  EXPECT_EQ(Check(history).backwards, 1);
}

}  // namespace
}  // namespace spate::faults
