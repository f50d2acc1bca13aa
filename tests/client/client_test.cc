// The C++ client library against one real spate-server process: sync and
// async publishing, every start position, manual acks and durable resume.
#include "client/client.h"

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/recorder.h"
#include "tests/testing/server_process.h"

namespace spate::testing {
namespace {

using ::testing::ElementsAreArray;

std::vector<uint64_t> Range(uint64_t first, uint64_t last) {
  std::vector<uint64_t> range;
  for (uint64_t seq = first; seq <= last; ++seq) range.push_back(seq);
  return range;
}

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ =
        std::make_unique<ServerProcess>(ServerProcess::NewTempDir("node"));
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

  std::unique_ptr<client::Connection> Connect(const std::string& client_id) {
    client::ClientOptions options;
    options.servers = {server_->address()};
    options.client_id = client_id;
    options.connect_timeout = absl::Seconds(10);
    auto connection = client::Connection::Connect(options);
    EXPECT_TRUE(connection.ok()) << connection.status();
    return connection.ok() ? std::move(*connection) : nullptr;
  }

  std::unique_ptr<ServerProcess> server_;
};

TEST_F(ClientTest, PublishesSyncAndAsyncAndSubscribesFromEveryStart) {
  auto publisher = Connect("publisher");
  ASSERT_NE(publisher, nullptr);
  for (uint64_t i = 1; i <= 5; ++i) {
    absl::StatusOr<uint64_t> seq =
        publisher->Publish("orders", absl::StrCat("m", i), {{"n", "x"}});
    ASSERT_TRUE(seq.ok()) << seq.status();
    EXPECT_EQ(*seq, i);
  }
  AckResults acks;
  for (int i = 6; i <= 10; ++i) {
    ASSERT_TRUE(
        publisher->PublishAsync("orders", absl::StrCat("m", i), acks.Handler(i))
            .ok());
  }
  ASSERT_TRUE(publisher->Flush(absl::Seconds(30)).ok());
  for (const auto& [index, result] : acks.all()) {
    ASSERT_TRUE(result.ok()) << result.status();
    // One publisher's async publishes are stored in publish order.
    EXPECT_EQ(*result, static_cast<uint64_t>(index));
  }
  // The time-delta start needs the two batches apart in time: messages
  // 1..10 are stored before `cut`, 11 and 12 at least 200 ms after it.
  const absl::Time cut = absl::Now();
  absl::SleepFor(absl::Milliseconds(200));
  for (int i = 11; i <= 12; ++i) {
    ASSERT_TRUE(publisher->Publish("orders", absl::StrCat("m", i)).ok());
  }

  auto subscriber = Connect("subscriber");
  ASSERT_NE(subscriber, nullptr);
  struct Case {
    std::string name;
    client::StartPosition start;
    uint64_t first;
  };
  const std::vector<Case> cases = {
      {"first", client::StartPosition::First(), 1},
      {"sequence", client::StartPosition::AtSequence(4), 4},
      {"last", client::StartPosition::LastReceived(), 12},
      // Starts 100 ms after `cut`: after m10, before m11.
      {"time",
       client::StartPosition::AtTimeDelta(absl::Now() - cut -
                                          absl::Milliseconds(100)),
       11},
      {"new", client::StartPosition::NewOnly(), 13},
  };
  std::vector<std::unique_ptr<Deliveries>> inboxes;
  std::vector<std::unique_ptr<client::Subscription>> subs;
  for (const Case& c : cases) {
    client::SubscribeOptions options;
    options.start = c.start;
    inboxes.push_back(std::make_unique<Deliveries>());
    auto sub =
        subscriber->Subscribe("orders", options, inboxes.back()->Handler());
    ASSERT_TRUE(sub.ok()) << c.name << ": " << sub.status();
    EXPECT_EQ((*sub)->start_sequence(), c.first) << c.name;
    subs.push_back(std::move(*sub));
  }
  ASSERT_TRUE(publisher->Publish("orders", "m13").ok());
  for (size_t i = 0; i < cases.size(); ++i) {
    ASSERT_TRUE(inboxes[i]->WaitFor(13)) << cases[i].name;
    EXPECT_THAT(inboxes[i]->sequences(),
                ElementsAreArray(Range(cases[i].first, 13)))
        << cases[i].name;
    for (const Deliveries::Delivery& delivery : inboxes[i]->all()) {
      EXPECT_EQ(delivery.data, absl::StrCat("m", delivery.sequence));
      EXPECT_FALSE(delivery.redelivered);
    }
  }
  for (auto& sub : subs) EXPECT_TRUE(sub->Close().ok());
  EXPECT_TRUE(subscriber->Close().ok());
  EXPECT_TRUE(publisher->Close().ok());
}

TEST_F(ClientTest, ADurableResumesAtItsFirstUnackedMessage) {
  auto publisher = Connect("publisher");
  ASSERT_NE(publisher, nullptr);
  for (int i = 1; i <= 5; ++i) {
    ASSERT_TRUE(publisher->Publish("jobs", absl::StrCat("m", i)).ok());
  }
  auto subscriber = Connect("worker");
  ASSERT_NE(subscriber, nullptr);
  client::SubscribeOptions options;
  options.durable_name = "d";
  options.manual_acks = true;
  options.start = client::StartPosition::First();
  Deliveries first;
  client::MessageHandler record = first.Handler();
  auto sub = subscriber->Subscribe("jobs", options,
                                   [&](const client::Message& message) {
                                     record(message);
                                     if (message.sequence() <= 3) {
                                       EXPECT_TRUE(message.Ack().ok());
                                     }
                                   });
  ASSERT_TRUE(sub.ok()) << sub.status();
  ASSERT_TRUE(first.WaitFor(5));
  // Close writes the acks of 1..3 ahead of the half-close; the server
  // confirms once they are committed.
  ASSERT_TRUE((*sub)->Close().ok());

  Deliveries second;
  auto resumed = subscriber->Subscribe("jobs", options, second.Handler());
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  ASSERT_TRUE(second.WaitFor(5));
  const auto delivered = second.all();
  ASSERT_GE(delivered.size(), 2u);
  EXPECT_EQ(delivered[0].sequence, 4u);
  EXPECT_EQ(delivered[1].sequence, 5u);
  EXPECT_TRUE(delivered[0].redelivered);
  EXPECT_EQ((*resumed)->start_sequence(), 4u);
  EXPECT_TRUE((*resumed)->Unsubscribe().ok());
}

}  // namespace
}  // namespace spate::testing
