#include "server/config.h"

#include "gtest/gtest.h"

namespace spate::server {
namespace {

TEST(ConfigTest, DefaultsAreValidAndPrinted) {
  ServerConfig config;
  EXPECT_TRUE(ValidateConfig(config).ok());
  const std::string text = ConfigToText(config);
  EXPECT_NE(text.find("max_msgs: 1000000"), std::string::npos) << text;
  EXPECT_NE(text.find("ping_interval_ms"), std::string::npos);
  // What is printed parses back to the same config.
  absl::StatusOr<ServerConfig> again = ParseConfigText(text, "printed");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(ConfigToText(*again), text);
}

TEST(ConfigTest, UnknownFieldNamesTheLine) {
  absl::StatusOr<ServerConfig> config = ParseConfigText(
      "node { id: 2 }\nstore { max_chanels: 5 }\n", "test.conf");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("line 2"), std::string::npos)
      << config.status();
  EXPECT_NE(config.status().message().find("max_chanels"), std::string::npos);
}

TEST(ConfigTest, InvalidValuesNameTheField) {
  ServerConfig config;
  config.mutable_raft()->set_election_ticks(2);
  config.mutable_raft()->set_heartbeat_ticks(3);
  absl::Status status = ValidateConfig(config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("raft.election_ticks"), std::string::npos);

  config = ServerConfig();
  config.mutable_store()->add_channel_overrides()->set_pattern("a.>.b");
  status = ValidateConfig(config);
  EXPECT_NE(status.message().find("channel_overrides.pattern"),
            std::string::npos);

  config = ServerConfig();
  config.mutable_node()->set_id(0);
  EXPECT_NE(ValidateConfig(config).message().find("node.id"),
            std::string::npos);

  config = ServerConfig();
  config.set_log_level("loud");
  EXPECT_FALSE(ValidateConfig(config).ok());
}

TEST(ConfigTest, GatewaysAndMirrorsAreChecked) {
  absl::StatusOr<ServerConfig> config = ParseConfigText(
      "node { cluster_name: \"east\" gateway_address: \"127.0.0.1:7222\" }\n"
      "gateways { name: \"west\" addresses: \"127.0.0.1:7322\" }\n"
      "mirrors { channel: \"orders-copy\" source_cluster: \"west\" "
      "source_channel: \"orders\" }\n",
      "test.conf");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(ValidateConfig(*config).ok()) << ValidateConfig(*config);

  ServerConfig bad = *config;
  bad.mutable_gateways(0)->set_name("east");
  absl::Status status = ValidateConfig(bad);
  EXPECT_NE(status.message().find("gateways.name"), std::string::npos);
  EXPECT_NE(status.message().find("own name"), std::string::npos) << status;

  bad = *config;
  bad.mutable_gateways(0)->clear_addresses();
  EXPECT_NE(ValidateConfig(bad).message().find("gateways.addresses"),
            std::string::npos);

  bad = *config;
  *bad.add_gateways() = config->gateways(0);
  EXPECT_NE(ValidateConfig(bad).message().find("twice"), std::string::npos);

  bad = *config;
  bad.mutable_mirrors(0)->set_source_cluster("north");
  status = ValidateConfig(bad);
  EXPECT_NE(status.message().find("mirrors.source_cluster"), std::string::npos)
      << status;

  bad = *config;
  bad.mutable_mirrors(0)->set_channel("orders.*");
  EXPECT_NE(ValidateConfig(bad).message().find("mirrors.channel"),
            std::string::npos);

  bad = *config;
  bad.mutable_gateways(0)->set_name("we st");
  EXPECT_NE(ValidateConfig(bad).message().find("gateways.name"),
            std::string::npos);
}

}  // namespace
}  // namespace spate::server
