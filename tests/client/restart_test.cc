// The C++ client library across a spate-server crash: the server is
// SIGKILLed and restarted on the same port and data directory while a
// durable subscriber reads and an async publisher writes. The client
// reconnects and resumes on its own, with no user code.
#include <atomic>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "tests/client/recorder.h"
#include "tests/testing/server_process.h"

namespace spate::testing {
namespace {

class RestartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ =
        std::make_unique<ServerProcess>(ServerProcess::NewTempDir("node"));
    // A fixed port: the restarted server must be where the client looks.
    server_->set_client_address(
        absl::StrCat("127.0.0.1:", ServerProcess::FreePort()));
    const absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started;
  }

  void TearDown() override {
    if (HasFailure() || getenv("SPATE_TEST_LOGS")) {
      std::cerr << "---- server log ----\n" << server_->Log();
    }
    const absl::Status stopped = server_->Stop();
    EXPECT_TRUE(stopped.ok()) << stopped;
  }

  // A crash: SIGKILL, then the same binary on the same port and data.
  void KillAndRestart() {
    server_->Kill();
    const absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started;
  }

  std::unique_ptr<client::Connection> Connect(const std::string& client_id) {
    client::ClientOptions options;
    options.servers = {server_->address()};
    options.client_id = client_id;
    options.connect_timeout = absl::Seconds(10);
    options.pub_ack_wait = absl::Seconds(60);
    options.reconnect_wait = absl::Seconds(60);
    options.connection_lost_handler = [this](const absl::Status& reason) {
      ADD_FAILURE() << "connection lost: " << reason;
    };
    auto connection = client::Connection::Connect(options);
    EXPECT_TRUE(connection.ok()) << connection.status();
    return connection.ok() ? std::move(*connection) : nullptr;
  }

  std::unique_ptr<ServerProcess> server_;
};

void PublishRange(client::Connection* connection, const std::string& channel,
                  int first, int last) {
  for (int i = first; i <= last; ++i) {
    absl::StatusOr<uint64_t> seq =
        connection->Publish(channel, absl::StrCat("m", i));
    ASSERT_TRUE(seq.ok()) << seq.status();
    ASSERT_EQ(*seq, static_cast<uint64_t>(i));
  }
}

TEST_F(RestartTest, DurableSubscriberSurvivesAKillAndRestart) {
  auto publisher = Connect("publisher");
  auto subscriber = Connect("subscriber");
  ASSERT_TRUE(publisher != nullptr && subscriber != nullptr);
  client::SubscribeOptions options;
  options.durable_name = "d";
  options.start = client::StartPosition::First();

  // Phase 1: 1..50 delivered and acked; the close confirms the acks are
  // committed.
  PublishRange(publisher.get(), "orders", 1, 50);
  Deliveries before;
  auto first = subscriber->Subscribe("orders", options, before.Handler());
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(before.WaitFor(50));
  ASSERT_TRUE((*first)->Close().ok());

  // Phase 2: resumed at 51; the server crashes under it after 100.
  Deliveries during;
  auto sub = subscriber->Subscribe("orders", options, during.Handler());
  ASSERT_TRUE(sub.ok()) << sub.status();
  PublishRange(publisher.get(), "orders", 51, 100);
  ASSERT_TRUE(during.WaitFor(100));
  const size_t delivered_before_kill = during.size();
  KillAndRestart();
  // The sync publishes wait for their connection to come back.
  PublishRange(publisher.get(), "orders", 101, 150);
  ASSERT_TRUE(during.WaitFor(150));

  // (The publisher, which has no stream open, may find its connection
  // still known to the restarted server and need no reconnection.)
  EXPECT_GE(subscriber->reconnects(), 1);
  EXPECT_GE((*sub)->resubscribes(), 1);
  // Same handle, same handler thread throughout.
  EXPECT_EQ(during.threads().size(), 1u);
  const std::set<uint64_t> distinct = during.distinct();
  // Nothing lost: every message from 51 on, nothing acked before (1..50).
  EXPECT_EQ(*distinct.begin(), 51u);
  EXPECT_EQ(distinct.size(), 100u);
  EXPECT_EQ(*distinct.rbegin(), 150u);
  // A message seen twice was delivered before the crash (its ack may not
  // have been committed) and came again flagged as a redelivery.
  std::set<uint64_t> seen;
  for (const Deliveries::Delivery& delivery : during.all()) {
    EXPECT_EQ(delivery.data, absl::StrCat("m", delivery.sequence));
    if (!seen.insert(delivery.sequence).second) {
      EXPECT_TRUE(delivery.redelivered) << delivery.sequence;
      EXPECT_LE(delivery.sequence, 100u);
    } else if (delivery.sequence > 100) {
      // Published after the restart: a first delivery.
      EXPECT_FALSE(delivery.redelivered) << delivery.sequence;
      EXPECT_GE(delivery.index, delivered_before_kill);
    }
  }

  // Phase 3: once the close confirmed the acks, nothing comes again.
  ASSERT_TRUE((*sub)->Close().ok());
  Deliveries after;
  auto resumed = subscriber->Subscribe("orders", options, after.Handler());
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ((*resumed)->start_sequence(), 151u);
  PublishRange(publisher.get(), "orders", 151, 151);
  ASSERT_TRUE(after.WaitFor(151));
  EXPECT_EQ(after.sequences(), std::vector<uint64_t>{151});
  EXPECT_TRUE(subscriber->Close().ok());
  EXPECT_TRUE(publisher->Close().ok());
}

TEST_F(RestartTest, AsyncPublishesCompleteAcrossAKillAndRestart) {
  auto publisher = Connect("publisher");
  ASSERT_NE(publisher, nullptr);
  AckResults acks;
  std::atomic<bool> stop{false};
  std::atomic<int> published{0};
  std::atomic<int> refused{0};
  // Publishes without pause, so that the crash finds publishes in flight.
  std::thread publishing([&] {
    for (int i = 0; !stop.load(); ++i) {
      if (!publisher
               ->PublishAsync("events", absl::StrCat("m", i), acks.Handler(i))
               .ok()) {
        ++refused;
      }
      ++published;
    }
  });
  ASSERT_TRUE(Eventually([&] { return acks.acked() >= 500; }));
  KillAndRestart();
  // Publishing goes on after the restart, then stops.
  const size_t acked_at_restart = acks.acked();
  ASSERT_TRUE(
      Eventually([&] { return acks.acked() >= acked_at_restart + 500; }));
  stop = true;
  publishing.join();
  ASSERT_TRUE(publisher->Flush(absl::Seconds(60)).ok());
  EXPECT_EQ(refused.load(), 0);
  const int messages = published.load();
  // The crash caught publishes unacknowledged; they were sent again.
  EXPECT_GT(publisher->resent_publishes(), 0);
  std::cerr << "published " << messages << ", resent "
            << publisher->resent_publishes() << ", reconnects "
            << publisher->reconnects() << "\n";

  // Every handler got a sequence; they are distinct and, as one
  // publisher's messages are resent in publish order, increasing.
  const auto results = acks.all();
  ASSERT_EQ(results.size(), static_cast<size_t>(messages));
  std::map<uint64_t, int> index_by_sequence;
  uint64_t previous = 0;
  for (const auto& [index, result] : results) {
    ASSERT_TRUE(result.ok()) << index << ": " << result.status();
    EXPECT_TRUE(index_by_sequence.emplace(*result, index).second)
        << "sequence " << *result << " given twice";
    EXPECT_GT(*result, previous) << index;
    previous = *result;
  }

  // None lost, none stored twice: the channel holds exactly those.
  auto reader = Connect("reader");
  ASSERT_NE(reader, nullptr);
  client::SubscribeOptions options;
  options.start = client::StartPosition::First();
  options.max_in_flight = 4096;
  Deliveries stored;
  auto sub = reader->Subscribe("events", options, stored.Handler());
  ASSERT_TRUE(sub.ok()) << sub.status();
  ASSERT_TRUE(stored.WaitFor(messages));
  const auto delivered = stored.all();
  ASSERT_EQ(delivered.size(), static_cast<size_t>(messages));
  for (const Deliveries::Delivery& delivery : delivered) {
    auto it = index_by_sequence.find(delivery.sequence);
    ASSERT_NE(it, index_by_sequence.end()) << delivery.sequence;
    EXPECT_EQ(delivery.data, absl::StrCat("m", it->second));
  }
  EXPECT_TRUE(reader->Close().ok());
  EXPECT_TRUE(publisher->Close().ok());
}

}  // namespace
}  // namespace spate::testing
