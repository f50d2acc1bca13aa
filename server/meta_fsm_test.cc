#include "server/meta_fsm.h"

#include "gtest/gtest.h"
#include "storage/channel_store.h"
#include "storage/mem_kv.h"

namespace spate::server {
namespace {

class MetaFsmTest : public ::testing::Test {
 protected:
  void SetUp() override { fsm_ = *MetaFsm::Load(&store_); }

  MetaApplyResult Apply(const MetaCommand& command) {
    storage::WriteBatch batch;
    MetaApplyResult result = fsm_->Apply(++index_, command, &batch);
    EXPECT_TRUE(kv_.Write(batch, true).ok());
    return result;
  }

  storage::MemKv kv_;
  storage::ChannelStore store_{&kv_};
  std::unique_ptr<MetaFsm> fsm_;
  uint64_t index_ = 0;
};

TEST_F(MetaFsmTest, ClientsConnectReplaceAndClose) {
  MetaCommand connect;
  connect.mutable_connect()->set_client_id("c1");
  connect.mutable_connect()->set_conn_id("conn-a");
  EXPECT_TRUE(Apply(connect).replaced_conn_id.empty());
  connect.mutable_connect()->set_conn_id("conn-b");
  EXPECT_EQ(Apply(connect).replaced_conn_id, "conn-a");

  MetaCommand close;
  close.mutable_close()->set_client_id("c1");
  close.mutable_close()->set_conn_id("conn-a");  // a late close of the old one
  EXPECT_EQ(Apply(close).status.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(fsm_->FindClient("c1"), nullptr);
  close.mutable_close()->set_conn_id("conn-b");
  EXPECT_TRUE(Apply(close).status.ok());
  EXPECT_EQ(fsm_->FindClient("c1"), nullptr);
}

TEST_F(MetaFsmTest, ChannelsGetIdsOnceAndSurviveReload) {
  MetaCommand create;
  create.mutable_create_channel()->set_name("orders");
  create.mutable_create_channel()->mutable_limits()->set_max_msgs(5);
  MetaApplyResult first = Apply(create);
  EXPECT_TRUE(first.created);
  EXPECT_EQ(first.channel_id, 1u);
  MetaApplyResult again = Apply(create);
  EXPECT_FALSE(again.created);
  EXPECT_EQ(again.channel_id, 1u);
  create.mutable_create_channel()->set_name("payments");
  EXPECT_EQ(Apply(create).channel_id, 2u);

  MetaCommand connect;
  connect.mutable_connect()->set_client_id("c1");
  Apply(connect);

  std::unique_ptr<MetaFsm> reloaded = *MetaFsm::Load(&store_);
  EXPECT_EQ(reloaded->applied_index(), index_);
  ASSERT_NE(reloaded->FindChannel("orders"), nullptr);
  EXPECT_EQ(reloaded->FindChannel("orders")->limits().max_msgs(), 5);
  EXPECT_NE(reloaded->FindClient("c1"), nullptr);

  MetaCommand del;
  del.mutable_delete_channel()->set_name("orders");
  del.mutable_delete_channel()->set_channel_id(1);
  EXPECT_TRUE(Apply(del).status.ok());
  // Ids are never reused.
  create.mutable_create_channel()->set_name("orders");
  EXPECT_EQ(Apply(create).channel_id, 3u);
}

TEST_F(MetaFsmTest, InstalledImageReplacesClientsAndChannels) {
  MetaCommand create;
  create.mutable_create_channel()->set_name("orders");
  create.mutable_create_channel()->add_replicas(1);
  Apply(create);
  MetaCommand connect;
  connect.mutable_connect()->set_client_id("c1");
  Apply(connect);
  const MetaSnapshot image = fsm_->Image();

  storage::MemKv other_kv;
  storage::ChannelStore other_store(&other_kv);
  std::unique_ptr<MetaFsm> other = *MetaFsm::Load(&other_store);
  storage::WriteBatch batch;
  MetaCommand stale;
  stale.mutable_connect()->set_client_id("gone");
  other->Apply(1, stale, &batch);
  other->Install(image, &batch);
  ASSERT_TRUE(other_kv.Write(batch, true).ok());
  EXPECT_EQ(other->FindClient("gone"), nullptr);
  EXPECT_NE(other->FindClient("c1"), nullptr);
  ASSERT_NE(other->FindChannel("orders"), nullptr);
  EXPECT_EQ(other->applied_index(), index_);
  std::unique_ptr<MetaFsm> reloaded = *MetaFsm::Load(&other_store);
  EXPECT_EQ(reloaded->FindClient("gone"), nullptr);
  EXPECT_NE(reloaded->FindChannel("orders"), nullptr);
  // Ids continue where the image's counter was.
  create.mutable_create_channel()->set_name("payments");
  storage::WriteBatch more;
  EXPECT_EQ(other->Apply(index_ + 1, create, &more).channel_id, 2u);
}

TEST_F(MetaFsmTest, NodesAndChannelReplicas) {
  MetaCommand upsert;
  NodeRecord* node = upsert.mutable_upsert_node()->add_nodes();
  node->set_node_id(4);
  node->set_client_address("127.0.0.1:4225");
  Apply(upsert);
  node->set_state(NodeRecord::LEAVING);
  Apply(upsert);
  ASSERT_EQ(fsm_->nodes().size(), 1u);
  EXPECT_EQ(fsm_->nodes().at(4).state(), NodeRecord::LEAVING);

  MetaCommand create;
  create.mutable_create_channel()->set_name("orders");
  for (uint64_t r : {1, 2, 3}) create.mutable_create_channel()->add_replicas(r);
  const uint64_t id = Apply(create).channel_id;
  MetaCommand replicas;
  replicas.mutable_channel_replicas()->set_name("orders");
  replicas.mutable_channel_replicas()->set_channel_id(id);
  for (uint64_t r : {1, 2, 4}) {
    replicas.mutable_channel_replicas()->add_replicas(r);
  }
  EXPECT_TRUE(Apply(replicas).replicas_changed);
  EXPECT_FALSE(Apply(replicas).replicas_changed);  // same set again
  replicas.mutable_channel_replicas()->set_channel_id(id + 1);
  EXPECT_EQ(Apply(replicas).status.code(), absl::StatusCode::kNotFound);

  std::unique_ptr<MetaFsm> reloaded = *MetaFsm::Load(&store_);
  EXPECT_EQ(reloaded->nodes().at(4).client_address(), "127.0.0.1:4225");
  EXPECT_EQ(reloaded->FindChannel("orders")->replicas(2), 4u);
  MetaCommand forget;
  forget.mutable_delete_node()->set_node_id(4);
  Apply(forget);
  EXPECT_TRUE(fsm_->nodes().empty());
}

}  // namespace
}  // namespace spate::server
