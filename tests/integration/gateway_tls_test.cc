// Gateway links with mutual TLS (gateway_tls, docs/security.md) between
// single-node clusters (real spate-server processes on 127.0.0.1): east and
// west share a CA and link, so a publish in east reaches west's channel;
// north's gateway certificate comes from another CA (it trusts the right
// one), so west and north refuse each other in the TLS handshake although
// each lists the other, and a plaintext caller never reaches the listener.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "proto/admin.pb.h"
#include "tests/testing/certs.h"
#include "tests/testing/cluster.h"
#include "tests/testing/server_process.h"
#include "tests/testing/stream_client.h"
#include "tests/testing/waits.h"

namespace spate::testing {
namespace {

std::string GatewayTo(const std::string& name, const std::string& address) {
  return absl::StrCat("gateways { name: \"", name, "\" addresses: \"", address,
                      "\" }\n");
}

constexpr char kGatewayTuning[] =
    "gateway { directory_refresh_ms: 200 request_timeout_ms: 2000 }\n";

class GatewayTlsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (auto& cluster : clusters_) {
      if (HasFailure() || getenv("SPATE_TEST_LOGS")) {
        std::cerr << cluster->Logs();
      }
      cluster->StopAll();
    }
  }

  TestCluster* AddCluster(const std::string& name,
                          const std::string& gateway_address,
                          const std::string& config) {
    clusters_.push_back(std::make_unique<TestCluster>(
        1, absl::StrCat(config, kGatewayTuning), name,
        std::vector<std::string>{gateway_address}));
    return clusters_.back().get();
  }

  // The node's view of its link to `remote`.
  GatewayLinkStatus Link(TestCluster* cluster, const std::string& remote) {
    absl::StatusOr<ClusterStatusResponse> status = cluster->Status(1);
    if (!status.ok()) return GatewayLinkStatus();
    for (const GatewayLinkStatus& link : status->gateways().links()) {
      if (link.cluster() == remote) return link;
    }
    return GatewayLinkStatus();
  }

  std::vector<std::unique_ptr<TestCluster>> clusters_;
};

TEST_F(GatewayTlsTest, SameCaLinksAndForeignCaIsRefused) {
  const std::string certs = MakeCerts("ca-gateways");
  const std::string rogue = MakeCerts("ca-rogue-gateway");
  ASSERT_FALSE(certs.empty());
  ASSERT_FALSE(rogue.empty());
  const std::string east_gateway =
      absl::StrCat("127.0.0.1:", ServerProcess::FreePort());
  const std::string west_gateway =
      absl::StrCat("127.0.0.1:", ServerProcess::FreePort());
  const std::string north_gateway =
      absl::StrCat("127.0.0.1:", ServerProcess::FreePort());
  const std::string good_tls =
      TlsConfigText("gateway_tls", certs, certs, false);
  TestCluster* west =
      AddCluster("west", west_gateway,
                 absl::StrCat(GatewayTo("east", east_gateway),
                              GatewayTo("north", north_gateway), good_tls));
  TestCluster* east =
      AddCluster("east", east_gateway,
                 absl::StrCat(GatewayTo("west", west_gateway), good_tls));
  // north presents a certificate of another CA, and trusts west's CA.
  TestCluster* north = AddCluster(
      "north", north_gateway,
      absl::StrCat(GatewayTo("west", west_gateway),
                   TlsConfigText("gateway_tls", rogue, certs, false)));
  for (auto& cluster : clusters_) {
    absl::Status status = cluster->Start();
    ASSERT_TRUE(status.ok()) << status << cluster->Logs();
  }

  TestConnection west_client(west->client_address(1), "w");
  ASSERT_TRUE(Retry([&] { return west_client.Connect(); }).ok());
  absl::StatusOr<uint64_t> seq =
      Retry([&] { return west_client.Publish("orders", "w1"); });
  ASSERT_TRUE(seq.ok()) << seq.status();
  ASSERT_EQ(*seq, 1u);

  // east learns west's directory over the TLS link ...
  ASSERT_TRUE(WaitFor(
      [&] {
        GatewayLinkStatus link = Link(east, "west");
        return link.state() == "UP" && link.channels() >= 1;
      },
      absl::Seconds(20)))
      << Link(east, "west").ShortDebugString();
  // ... and a publish in east reaches west's channel.
  TestConnection east_client(east->client_address(1), "e");
  ASSERT_TRUE(Retry([&] { return east_client.Connect(); }).ok());
  absl::StatusOr<uint64_t> remote =
      Retry([&] { return east_client.Publish("orders", "from east"); });
  ASSERT_TRUE(remote.ok()) << remote.status();
  EXPECT_EQ(*remote, 2u);
  TestConnection reader(west->client_address(1), "reader");
  ASSERT_TRUE(reader.Connect().ok());
  SubscriptionRequest request = reader.SubRequest("orders");
  request.set_start_position(StartPosition::FIRST);
  TestSubscriber subscriber(reader.stub(), request);
  std::vector<MsgProto> msgs = subscriber.NextN(2, absl::Seconds(10));
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[1].data(), "from east");
  subscriber.Cancel();

  // north and west list each other, but neither accepts the other's
  // certificate: the links never come up (the TLS handshake fails at every
  // retry), and north never learns west's channels.
  EXPECT_FALSE(WaitFor(
      [&] {
        return Link(north, "west").state() == "UP" ||
               Link(west, "north").state() == "UP";
      },
      absl::Seconds(5)));
  GatewayLinkStatus refused = Link(north, "west");
  EXPECT_EQ(refused.channels(), 0) << refused.ShortDebugString();
  EXPECT_FALSE(refused.error().empty()) << refused.ShortDebugString();
  EXPECT_NE(Link(west, "north").state(), "UP");
  // The link that was up stays up meanwhile.
  EXPECT_EQ(Link(west, "east").state(), "UP");

  // A plaintext caller (no TLS, no certificate) gets no call through the
  // gateway listener.
  TestConnection plain(west_gateway, "plain");
  EXPECT_EQ(plain.Connect().status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace spate::testing
