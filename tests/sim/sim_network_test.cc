#include "tests/sim/sim_network.h"

#include <string>
#include <utility>
#include <vector>

#include "base/prng.h"
#include "gtest/gtest.h"
#include "tests/sim/event_queue.h"
#include "tests/sim/trace.h"

namespace spate::sim {
namespace {

// A network between nodes 1..3 that records what happened to each message
// (identified by its `index` field).
class NetworkTest : public ::testing::Test {
 protected:
  NetworkTest()
      : prng_(1),
        trace_(&queue_, nullptr),
        network_(&queue_, &prng_, &trace_,
                 SimNetwork::Handlers{
                     [this](const Envelope& e) {
                       delivered_.push_back(e.message.index());
                       delivered_at_.push_back(queue_.now());
                     },
                     [this](const Envelope& e, SimNetwork::Loss loss) {
                       lost_.emplace_back(e.message.index(), loss);
                     }}) {}

  void Send(raft::NodeId from, raft::NodeId to, uint64_t id) {
    Envelope e;
    e.message.set_from(from);
    e.message.set_to(to);
    e.message.set_index(id);
    network_.Send(std::move(e));
  }

  void RunAll() {
    while (!queue_.empty()) queue_.RunNext();
  }

  EventQueue queue_;
  base::Prng prng_;
  Trace trace_;
  SimNetwork network_;
  std::vector<uint64_t> delivered_;
  std::vector<SimTime> delivered_at_;
  std::vector<std::pair<uint64_t, SimNetwork::Loss>> lost_;
};

TEST_F(NetworkTest, CalmNetworkDeliversEverythingOnceWithinTheLatency) {
  NetworkFaults faults;
  faults.latency_min_ms = 2;
  faults.latency_max_ms = 9;
  network_.set_faults(faults);
  for (uint64_t id = 0; id < 100; ++id) Send(1, 2, id);
  RunAll();
  ASSERT_EQ(delivered_.size(), 100u);
  EXPECT_TRUE(lost_.empty());
  std::vector<bool> seen(100, false);
  bool reordered = false;
  for (size_t i = 0; i < delivered_.size(); ++i) {
    EXPECT_FALSE(seen[delivered_[i]]);
    seen[delivered_[i]] = true;
    EXPECT_GE(delivered_at_[i], 2u);
    EXPECT_LE(delivered_at_[i], 9u);
    if (i > 0 && delivered_[i] < delivered_[i - 1]) reordered = true;
  }
  EXPECT_TRUE(reordered) << "random latencies reorder messages";
}

TEST_F(NetworkTest, DropsAndDuplicates) {
  NetworkFaults faults;
  faults.drop_per_mille = 1000;
  network_.set_faults(faults);
  Send(1, 2, 7);
  RunAll();
  EXPECT_TRUE(delivered_.empty());
  ASSERT_EQ(lost_.size(), 1u);
  EXPECT_EQ(lost_[0].second, SimNetwork::Loss::kDropped);

  faults.drop_per_mille = 0;
  faults.duplicate_per_mille = 1000;
  network_.set_faults(faults);
  Send(1, 2, 8);
  RunAll();
  EXPECT_EQ(delivered_, (std::vector<uint64_t>{8, 8}));
  EXPECT_EQ(network_.stats().duplicated, 1u);
}

TEST_F(NetworkTest, SymmetricPartitionBlocksBothWays) {
  network_.Partition({1}, {2, 3});
  Send(1, 2, 1);
  Send(3, 1, 2);
  Send(2, 3, 3);  // same side
  RunAll();
  EXPECT_EQ(delivered_, (std::vector<uint64_t>{3}));
  ASSERT_EQ(lost_.size(), 2u);
  EXPECT_EQ(lost_[0].second, SimNetwork::Loss::kBlocked);
  network_.Heal();
  Send(1, 2, 4);
  RunAll();
  EXPECT_EQ(delivered_.back(), 4u);
}

TEST_F(NetworkTest, AsymmetricPartitionBlocksOneWay) {
  network_.Block(1, 2);
  EXPECT_EQ(network_.BlockedLinks(), "1->2");
  Send(1, 2, 1);
  Send(2, 1, 2);
  RunAll();
  EXPECT_EQ(delivered_, (std::vector<uint64_t>{2}));
  ASSERT_EQ(lost_.size(), 1u);
  EXPECT_EQ(lost_[0].first, 1u);
}

TEST_F(NetworkTest, PartitionLosesMessagesAlreadyInFlight) {
  Send(1, 2, 1);  // latency >= 1ms: still in flight
  network_.Block(1, 2);
  RunAll();
  EXPECT_TRUE(delivered_.empty());
  EXPECT_EQ(lost_.size(), 1u);
}

}  // namespace
}  // namespace spate::sim
