// `spate bench` against three real spate-server processes: every role and
// mode completes with the counts it promised, sane rates and latencies,
// and CPU figures for the given server PIDs; bad flags and a stalled run
// fail with a clear message.
#include "tools/spate/bench.h"

#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/cluster.h"
#include "tools/spate/bench_runner.h"
#include "tools/spate/command.h"

namespace spate::cli {
namespace {

using ::spate::testing::TestCluster;

class BenchTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new TestCluster(3);
    const absl::Status started = cluster_->Start();
    ASSERT_TRUE(started.ok()) << started << cluster_->Logs();
  }
  static void TearDownTestSuite() {
    cluster_->StopAll();
    delete cluster_;
    cluster_ = nullptr;
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << cluster_->Logs();
  }

  // Runs `spate bench ARGS --json` against the cluster; returns the exit
  // code, the parsed output in *json (when it is JSON).
  int Bench(std::vector<std::string> args, nlohmann::json* json = nullptr) {
    std::vector<std::string> argv = {
        "spate",
        "bench",
        "--json",
        "--progress",
        "0",
        absl::StrCat("--server=", cluster_->ClientAddresses()),
        absl::StrCat("--server_pids=", cluster_->node(1).pid(), ",",
                     cluster_->node(2).pid(), ",", cluster_->node(3).pid())};
    argv.insert(argv.end(), args.begin(), args.end());
    out_.str("");
    err_.str("");
    const int code = RunCli({BenchCommand()}, argv, io_);
    if (json != nullptr && code == kExitOk) {
      *json = nlohmann::json::parse(out_.str());
    }
    return code;
  }

  // Checks the figures every role reports.
  static void ExpectSaneRole(const nlohmann::json& role, int64_t msgs) {
    EXPECT_EQ(role["msgs"], msgs) << role;
    EXPECT_GT(role["seconds"].get<double>(), 0) << role;
    EXPECT_GT(role["msgs_per_s"].get<double>(), 0) << role;
    EXPECT_GT(role["mb_per_s"].get<double>(), 0) << role;
    const nlohmann::json& latency = role["latency"];
    EXPECT_EQ(latency["count"], msgs) << role;
    EXPECT_GT(latency["p50_us"].get<double>(), 0) << role;
    EXPECT_LE(latency["p50_us"].get<double>(), latency["p99_us"].get<double>());
    EXPECT_LE(latency["p99_us"].get<double>(),
              latency["p999_us"].get<double>());
    EXPECT_LE(latency["p999_us"].get<double>(),
              latency["max_us"].get<double>());
    // Nothing on loopback takes a minute.
    EXPECT_LT(latency["max_us"].get<double>(), 60e6) << role;
  }

  static TestCluster* cluster_;
  std::istringstream in_;
  std::ostringstream out_;
  std::ostringstream err_;
  std::atomic<bool> interrupted_{false};
  Io io_{&in_, &out_, &err_, &interrupted_};
};

TestCluster* BenchTest::cluster_ = nullptr;

TEST_F(BenchTest, AsyncPublisherWithDurableManualAckSubscriber) {
  nlohmann::json json;
  ASSERT_EQ(Bench({"durable-ch", "--count", "3000", "--window", "200", "--subs",
                   "1", "--sub_kind", "durable", "--manual_ack",
                   "--max_in_flight", "100", "--label", "pubsub"},
                  &json),
            kExitOk)
      << err_.str();
  EXPECT_EQ(json["label"], "pubsub");
  ExpectSaneRole(json["pub"], 3000);
  ExpectSaneRole(json["sub"], 3000);
  EXPECT_EQ(json["pub"]["errors"], 0);
  ASSERT_EQ(json["servers"].size(), 3u);
  // Replicating 3000 messages costs the cluster some CPU (a single
  // follower may stay under one clock tick, 10 ms, in a run this short).
  double cpu = 0;
  for (const nlohmann::json& server : json["servers"]) {
    EXPECT_GE(server["cpu_s"].get<double>(), 0) << json["servers"];
    cpu += server["cpu_s"].get<double>();
  }
  EXPECT_GT(cpu, 0) << json["servers"];
  EXPECT_GT(json["msgs_per_server_cpu_s"].get<double>(), 0);

  // A catch-up read of what is now stored (3000 + 1 warm-up message,
  // which the reader skips), from the first message.
  ASSERT_EQ(Bench({"durable-ch", "--pubs", "0", "--subs", "1", "--all",
                   "--count", "3000"},
                  &json),
            kExitOk)
      << err_.str();
  EXPECT_FALSE(json.contains("pub"));
  ExpectSaneRole(json["sub"], 3000);
}

TEST_F(BenchTest, QueueGroupsShareTheMessagesOfTheirChannel) {
  nlohmann::json json;
  ASSERT_EQ(Bench({"queue-ch", "--pubs", "2", "--channels", "2", "--subs", "4",
                   "--sub_kind", "queue", "--count", "2000"},
                  &json),
            kExitOk)
      << err_.str();
  ExpectSaneRole(json["pub"], 2000);
  // Each message once between the members of its channel's group.
  EXPECT_EQ(json["sub"]["msgs"], 2000);
  EXPECT_EQ(json["pub"]["client_msgs_per_s"].size(), 2u);
  EXPECT_EQ(json["sub"]["client_msgs_per_s"].size(), 4u);
}

TEST_F(BenchTest, SyncPublishesMeasureEachRoundTrip) {
  nlohmann::json json;
  ASSERT_EQ(Bench({"sync-ch", "--sync", "--count", "300"}, &json), kExitOk)
      << err_.str();
  ExpectSaneRole(json["pub"], 300);
  EXPECT_TRUE(json["config"]["sync"].get<bool>());
}

TEST_F(BenchTest, OpenLoopPublishesOnSchedule) {
  nlohmann::json json;
  ASSERT_EQ(
      Bench({"rate-ch", "--rate", "400", "--duration", "1s", "--subs", "1"},
            &json),
      kExitOk)
      << err_.str();
  // 400 msgs/s for 1 s: exactly 400 scheduled publishes.
  ExpectSaneRole(json["pub"], 400);
  ExpectSaneRole(json["sub"], 400);
  EXPECT_GE(json["pub"]["seconds"].get<double>(), 0.99);
}

TEST_F(BenchTest, TextReportAndProgress) {
  std::vector<std::string> argv = {
      "spate",   "bench",
      "text-ch", "--count",
      "2000",    "--progress",
      "1ms",     absl::StrCat("--server=", cluster_->ClientAddresses())};
  ASSERT_EQ(RunCli({BenchCommand()}, argv, io_), kExitOk) << err_.str();
  EXPECT_NE(out_.str().find("pub: 1 client(s), 2000 msgs"), std::string::npos)
      << out_.str();
  EXPECT_NE(out_.str().find("publish->ack ms: p50"), std::string::npos)
      << out_.str();
  EXPECT_NE(err_.str().find(" acked ("), std::string::npos) << err_.str();
}

TEST_F(BenchTest, BadFlagsAreUsageErrors) {
  EXPECT_EQ(Bench({"--size", "8"}), kExitUsage);
  EXPECT_NE(err_.str().find("at least 16"), std::string::npos) << err_.str();
  EXPECT_EQ(Bench({"--sub_kind", "fancy"}), kExitUsage);
  EXPECT_EQ(Bench({"--server_pids", "12,x"}), kExitUsage);
  EXPECT_EQ(Bench({"--count", "10", "--duration", "1s"}), kExitUsage);
}

TEST_F(BenchTest, StalledReaderFailsAfterTheStallTimeout) {
  // Nothing was ever published to this channel.
  EXPECT_EQ(Bench({"empty-ch", "--pubs", "0", "--subs", "1", "--all", "--count",
                   "5", "--stall_timeout", "1s"}),
            kExitError);
  EXPECT_NE(err_.str().find("no progress for 1s"), std::string::npos)
      << err_.str();
}

TEST(BenchPayloadTest, StampRoundTripsAndForeignPayloadsHaveNone) {
  const std::string payload = BenchRunner::MakePayload(64, 123456789);
  EXPECT_EQ(payload.size(), 64u);
  EXPECT_EQ(BenchRunner::PayloadSendNanos(payload), 123456789);
  EXPECT_EQ(BenchRunner::PayloadSendNanos("hello, this is not a bench msg"),
            std::nullopt);
  EXPECT_EQ(BenchRunner::PayloadSendNanos("short"), std::nullopt);
}

}  // namespace
}  // namespace spate::cli
