#include "tools/spate/bench_report.h"

#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tools/spate/bench_config.h"

namespace spate::cli {
namespace {

BenchResult SampleResult() {
  BenchResult result;
  result.config.servers = {"127.0.0.1:1"};
  result.config.label = "case1";
  result.config.count = 1000;
  result.config.size_bytes = 1000;
  RoleResult& pub = result.pub.emplace();
  pub.clients = 2;
  pub.msgs = 1000;
  pub.errors = 3;
  pub.seconds = 0.5;
  pub.client_msgs_per_s = {900, 1100};
  for (int i = 1; i <= 1000; ++i) pub.latency.RecordNanos(i * 1000);
  result.servers = {{101, 1.5}, {102, 0.5}, {103, -1}};
  result.bench_cpu_seconds = 0.25;
  result.elapsed_seconds = 0.6;
  result.load_1m_start = 1.5;
  result.load_1m_end = 2.5;
  return result;
}

TEST(BenchReportTest, RatesAndCpuFigures) {
  const BenchResult result = SampleResult();
  EXPECT_DOUBLE_EQ(result.pub->msgs_per_s(), 2000);
  EXPECT_DOUBLE_EQ(result.pub->mb_per_s(1000), 2.0);
  // The server that exited is left out of the sum.
  EXPECT_DOUBLE_EQ(result.server_cpu_seconds(), 2.0);
  EXPECT_DOUBLE_EQ(result.msgs_per_server_cpu_second(), 500);
}

TEST(BenchReportTest, JsonCarriesEveryFigure) {
  const nlohmann::json json = nlohmann::json::parse(FormatJson(SampleResult()));
  EXPECT_EQ(json["label"], "case1");
  EXPECT_EQ(json["config"]["count"], 1000);
  EXPECT_EQ(json["config"]["size_bytes"], 1000);
  EXPECT_EQ(json["pub"]["msgs"], 1000);
  EXPECT_EQ(json["pub"]["errors"], 3);
  EXPECT_DOUBLE_EQ(json["pub"]["msgs_per_s"].get<double>(), 2000);
  EXPECT_DOUBLE_EQ(json["pub"]["mb_per_s"].get<double>(), 2.0);
  EXPECT_EQ(json["pub"]["client_msgs_per_s"].size(), 2u);
  const nlohmann::json& latency = json["pub"]["latency"];
  EXPECT_EQ(latency["count"], 1000);
  EXPECT_DOUBLE_EQ(latency["min_us"].get<double>(), 1);
  EXPECT_DOUBLE_EQ(latency["max_us"].get<double>(), 1000);
  EXPECT_NEAR(latency["p50_us"].get<double>(), 500, 500 / 128.0 + 1);
  EXPECT_NEAR(latency["p99_us"].get<double>(), 990, 990 / 128.0 + 1);
  EXPECT_NEAR(latency["p999_us"].get<double>(), 999, 999 / 128.0 + 1);
  EXPECT_FALSE(json.contains("sub"));
  ASSERT_EQ(json["servers"].size(), 3u);
  EXPECT_EQ(json["servers"][0]["pid"], 101);
  EXPECT_DOUBLE_EQ(json["servers"][2]["cpu_s"].get<double>(), -1);
  EXPECT_DOUBLE_EQ(json["server_cpu_s"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(json["msgs_per_server_cpu_s"].get<double>(), 500);
  EXPECT_DOUBLE_EQ(json["loadavg_1m_end"].get<double>(), 2.5);
}

TEST(BenchReportTest, TextNamesRolesLatenciesAndServers) {
  const std::string text = FormatText(SampleResult());
  EXPECT_NE(text.find("[case1]"), std::string::npos) << text;
  EXPECT_NE(text.find("2000 msgs/s, 2.00 MB/s"), std::string::npos) << text;
  EXPECT_NE(text.find("3 failed"), std::string::npos) << text;
  EXPECT_NE(text.find("publish->ack ms: p50 0.50"), std::string::npos) << text;
  EXPECT_NE(text.find("pid 103 gone"), std::string::npos) << text;
  EXPECT_NE(text.find("500 msgs per server CPU-second"), std::string::npos)
      << text;
  EXPECT_EQ(text.find("sub:"), std::string::npos) << text;
}

TEST(BenchConfigTest, ValidateNamesTheProblem) {
  BenchConfig config;
  config.servers = {"127.0.0.1:1"};
  EXPECT_TRUE(config.Validate().ok());
  BenchConfig small = config;
  small.size_bytes = 8;
  EXPECT_NE(small.Validate().message().find("at least 16"), std::string::npos);
  BenchConfig both = config;
  both.duration = absl::Seconds(1);
  EXPECT_FALSE(both.Validate().ok());
  BenchConfig reader = config;
  reader.publishers = 0;
  reader.subscribers = 1;
  EXPECT_FALSE(reader.Validate().ok());  // reading needs start_first
  reader.start_first = true;
  EXPECT_TRUE(reader.Validate().ok());
  BenchConfig nobody = config;
  nobody.publishers = 0;
  EXPECT_FALSE(nobody.Validate().ok());
  BenchConfig no_servers = config;
  no_servers.servers.clear();
  EXPECT_FALSE(no_servers.Validate().ok());
}

TEST(BenchConfigTest, ChannelNamesAndDescription) {
  BenchConfig config;
  config.channel = "load";
  EXPECT_EQ(config.ChannelName(0), "load");
  config.channels = 4;
  config.publishers = 4;
  EXPECT_EQ(config.ChannelName(3), "load.3");
  EXPECT_EQ(config.Describe(),
            "4 pub x 100000 msgs, async window 1000, 128 B, 4 channels");
  config.subscribers = 1;
  config.sub_kind = SubKind::kDurable;
  config.manual_ack = true;
  config.sync = true;
  EXPECT_EQ(config.Describe(),
            "4 pub x 100000 msgs, sync, 1 durable sub, manual ack, max in "
            "flight 1024, 128 B, 4 channels");
}

}  // namespace
}  // namespace spate::cli
