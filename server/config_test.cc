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

TEST(ConfigTest, InvalidValuesNameTheLineInTheFile) {
  const std::string text =
      "node { id: 1 }\n"
      "store {\n"
      "  channel_overrides { pattern: \"ok.*\" }\n"
      "  channel_overrides {\n"
      "    pattern: \"bad\"\n"
      "    limits { max_msgs: -1 }\n"
      "  }\n"
      "}\n"
      "raft { tick_ms: 0 }\n";
  absl::StatusOr<ServerConfig> config = ParseConfigText(text, "t.conf");
  ASSERT_TRUE(config.ok()) << config.status();
  absl::Status status =
      LocateConfigError(ValidateConfig(*config), text, "t.conf");
  EXPECT_NE(status.message().find("store.channel_overrides.limits.max_msgs"),
            std::string::npos)
      << status;
  EXPECT_NE(status.message().find("t.conf line 6"), std::string::npos)
      << status;

  config->mutable_store()->clear_channel_overrides();
  status = LocateConfigError(ValidateConfig(*config), text, "t.conf");
  EXPECT_NE(status.message().find("raft.tick_ms"), std::string::npos);
  EXPECT_NE(status.message().find("t.conf line 9"), std::string::npos)
      << status;

  // A value that is not in the file (a flag) gets no line.
  ServerConfig flagged;
  flagged.mutable_node()->set_id(0);
  status = LocateConfigError(ValidateConfig(flagged), "log_level: \"info\"",
                             "t.conf");
  EXPECT_NE(status.message().find("node.id"), std::string::npos);
  EXPECT_EQ(status.message().find("line"), std::string::npos) << status;
}

TEST(ConfigTest, AnnotatedExampleIsValid) {
  absl::StatusOr<ServerConfig> config = LoadConfigFile("docs/spate.conf");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(ValidateConfig(*config).ok()) << ValidateConfig(*config);
  EXPECT_EQ(config->node().peers_size(), 2);
  EXPECT_FALSE(config->monitor_address().empty());
  EXPECT_EQ(config->store().channel_overrides_size(), 2);
}

}  // namespace
}  // namespace spate::server
