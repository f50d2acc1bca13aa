// GatewayMetrics against a real prometheus-cpp registry: the link series
// follow the status totals, link_up tracks the state, and a mirror's lag
// series goes away when this node stops feeding it.
#include "server/gateway_metrics.h"

#include <prometheus/text_serializer.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace spate::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Scrape(prometheus::Registry& registry) {
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

GatewayStatus Status(const std::string& state, int64_t sent, int64_t received,
                     bool with_mirror) {
  GatewayStatus status;
  GatewayLinkStatus* link = status.add_links();
  link->set_cluster("west");
  link->set_state(state);
  link->set_bytes_sent(sent);
  link->set_bytes_received(received);
  if (with_mirror) {
    MirrorStatus* mirror = status.add_mirrors();
    mirror->set_channel("orders-copy");
    mirror->set_lag(42);
  }
  return status;
}

TEST(GatewayMetricsTest, FollowsTheLinksAndMirrors) {
  prometheus::Registry registry;
  GatewayMetrics metrics(&registry);
  metrics.Update(Status("UP", 100, 2000, true));
  std::string text = Scrape(registry);
  EXPECT_THAT(text,
              HasSubstr("spate_gateway_bytes_sent_total{remote=\"west\"} 100"));
  EXPECT_THAT(text,
              HasSubstr("spate_gateway_bytes_received_total{remote=\"west\"} "
                        "2000"));
  EXPECT_THAT(text, HasSubstr("spate_gateway_link_up{remote=\"west\"} 1"));
  EXPECT_THAT(text,
              HasSubstr("spate_mirror_lag_messages{channel=\"orders-copy\"} "
                        "42"));

  // The link went down after more traffic; the mirror moved to another
  // node.
  metrics.Update(Status("DOWN", 150, 2500, false));
  text = Scrape(registry);
  EXPECT_THAT(text,
              HasSubstr("spate_gateway_bytes_sent_total{remote=\"west\"} 150"));
  EXPECT_THAT(text,
              HasSubstr("spate_gateway_bytes_received_total{remote=\"west\"} "
                        "2500"));
  EXPECT_THAT(text, HasSubstr("spate_gateway_link_up{remote=\"west\"} 0"));
  EXPECT_THAT(text, Not(HasSubstr("spate_mirror_lag_messages{")));
}

}  // namespace
}  // namespace spate::server
