#include "server/auth.h"

#include <grpcpp/test/server_context_test_spouse.h>

#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace spate::server {
namespace {

TEST(ChannelPatternTest, NatsSubjectRules) {
  EXPECT_TRUE(ChannelPatternMatches("orders", "orders"));
  EXPECT_FALSE(ChannelPatternMatches("orders", "orders.eu"));
  EXPECT_TRUE(ChannelPatternMatches("orders.>", "orders.eu"));
  EXPECT_TRUE(ChannelPatternMatches("orders.>", "orders.eu.paid"));
  EXPECT_FALSE(ChannelPatternMatches("orders.>", "orders"));
  EXPECT_FALSE(ChannelPatternMatches("orders.>", "payments"));
  EXPECT_FALSE(ChannelPatternMatches("orders.>", "ordersx.eu"));
  EXPECT_TRUE(ChannelPatternMatches("orders.*.paid", "orders.eu.paid"));
  EXPECT_FALSE(ChannelPatternMatches("orders.*.paid", "orders.eu.x.paid"));
  EXPECT_FALSE(ChannelPatternMatches("orders.*", "orders.eu.paid"));
  EXPECT_TRUE(ChannelPatternMatches("*", "payments"));
  EXPECT_FALSE(ChannelPatternMatches("*", "payments.x"));
  EXPECT_TRUE(ChannelPatternMatches(">", "a.b.c"));
}

class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AuthConfig config;
    config.set_enabled(true);
    config.set_cluster_token("cluster-secret");
    UserConfig* alice = config.add_users();
    alice->set_name("alice");
    alice->set_password_hash(*HashPassword("wonderland", 4));
    alice->add_tokens("alice-token");
    alice->add_publish("orders.>");
    alice->add_subscribe("orders.>");
    alice->add_subscribe("audit");
    UserConfig* root = config.add_users();
    root->set_name("root");
    root->add_tokens("root-token");
    root->add_publish(">");
    root->set_admin(true);
    auth_ = *Authenticator::Create(config);
  }

  // Authenticates a call carrying `authorization` (none when empty).
  absl::StatusOr<const Principal*> Call(const std::string& authorization) {
    grpc::ServerContext context;
    grpc::testing::ServerContextTestSpouse spouse(&context);
    if (!authorization.empty()) {
      spouse.AddClientMetadata(kAuthorizationMetadataKey, authorization);
    }
    return auth_->Authenticate(context);
  }

  std::unique_ptr<Authenticator> auth_;
};

TEST_F(AuthenticatorTest, TokensPasswordsAndClusterToken) {
  absl::StatusOr<const Principal*> alice =
      Call(BearerAuthorization("alice-token"));
  ASSERT_TRUE(alice.ok()) << alice.status();
  EXPECT_EQ((*alice)->name(), "alice");
  absl::StatusOr<const Principal*> by_password =
      Call(BasicAuthorization("alice", "wonderland"));
  ASSERT_TRUE(by_password.ok()) << by_password.status();
  EXPECT_EQ(*by_password, *alice);
  // Cached after the first bcrypt check: same answer.
  EXPECT_EQ(*Call(BasicAuthorization("alice", "wonderland")), *alice);
  EXPECT_EQ(*Call(BearerAuthorization("cluster-secret")),
            Principal::Unrestricted());
}

TEST_F(AuthenticatorTest, EveryFailureLooksTheSame) {
  for (const std::string& bad :
       {std::string(), BearerAuthorization("nope"),
        BasicAuthorization("alice", "wrong"),
        BasicAuthorization("mallory", "wonderland"),
        BasicAuthorization("root", ""), std::string("Basic !!!"),
        std::string("Digest x"), BearerAuthorization("")}) {
    absl::StatusOr<const Principal*> result = Call(bad);
    ASSERT_FALSE(result.ok()) << bad;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_EQ(result.status().message(), "authentication failed") << bad;
  }
}

TEST_F(AuthenticatorTest, PermissionsPerUser) {
  const Principal* alice = *Call(BearerAuthorization("alice-token"));
  EXPECT_TRUE(alice->CheckPublish("orders.eu").ok());
  EXPECT_EQ(alice->CheckPublish("payments").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(alice->CheckPublish("orders").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(alice->CheckSubscribe("audit").ok());
  EXPECT_EQ(alice->CheckSubscribe("payments").code(),
            absl::StatusCode::kPermissionDenied);
  // The cached decision is the same as the first one.
  EXPECT_EQ(alice->CheckSubscribe("payments").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(alice->CheckAdmin().code(), absl::StatusCode::kPermissionDenied);
  const Principal* root = *Call(BearerAuthorization("root-token"));
  EXPECT_TRUE(root->CheckPublish("payments").ok());
  EXPECT_EQ(root->CheckSubscribe("payments").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(root->CheckAdmin().ok());
}

TEST(AuthenticatorConfigTest, DisabledLetsEveryoneIn) {
  std::unique_ptr<Authenticator> auth = *Authenticator::Create(AuthConfig());
  grpc::ServerContext context;
  EXPECT_EQ(*auth->Authenticate(context), Principal::Unrestricted());
}

TEST(AuthenticatorConfigTest, BadConfigNamesTheField) {
  AuthConfig config;
  config.add_users()->set_name("a");
  config.add_users()->set_name("a");
  EXPECT_EQ(Authenticator::Create(config).status().code(),
            absl::StatusCode::kInvalidArgument);
  config.mutable_users()->RemoveLast();
  config.mutable_users(0)->set_password_hash("plaintext");
  EXPECT_EQ(Authenticator::Create(config).status().code(),
            absl::StatusCode::kInvalidArgument);
  config.mutable_users(0)->clear_password_hash();
  config.mutable_users(0)->add_publish("orders.>.x");
  absl::Status status = Authenticator::Create(config).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("auth.users[0].publish"), std::string::npos);
}

}  // namespace
}  // namespace spate::server
