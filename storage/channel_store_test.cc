#include "storage/channel_store.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "storage/keys.h"
#include "storage/mem_kv.h"
#include "storage/record_codec.h"
#include "storage/rocks_kv.h"
#include "storage/test_util.h"

namespace spate::storage {
namespace {

StoredMessage MakeMessage(uint64_t sequence, size_t data_bytes = 10) {
  StoredMessage message;
  message.set_sequence(sequence);
  message.set_timestamp_ns(1000 + sequence);
  message.set_guid("guid-" + std::to_string(sequence));
  message.set_data(
      std::string(data_bytes, static_cast<char>('a' + sequence % 26)));
  (*message.mutable_headers())["k"] = "v" + std::to_string(sequence);
  return message;
}

std::vector<uint64_t> Sequences(const std::vector<StoredMessage>& messages) {
  std::vector<uint64_t> sequences;
  for (const StoredMessage& message : messages) {
    sequences.push_back(message.sequence());
  }
  return sequences;
}

class ChannelStoreTest : public ::testing::Test {
 protected:
  void Write(WriteBatch* batch) {
    ASSERT_TRUE(kv_.Write(*batch, true).ok());
    batch->Clear();
  }

  // Stores messages first..last of `channel` with `data_bytes` payloads.
  void PutMessages(uint64_t channel, uint64_t first, uint64_t last,
                   size_t data_bytes = 10) {
    WriteBatch batch;
    for (uint64_t seq = first; seq <= last; ++seq) {
      store_.PutMessage(channel, MakeMessage(seq, data_bytes), &batch);
    }
    Write(&batch);
  }

  std::vector<uint64_t> Scan(uint64_t channel, uint64_t from, uint64_t to,
                             size_t max_count, uint64_t max_bytes) {
    std::vector<StoredMessage> out;
    const absl::Status status =
        store_.ScanMessages(channel, from, to, max_count, max_bytes, &out);
    EXPECT_TRUE(status.ok()) << status;
    return Sequences(out);
  }

  MemKv kv_;
  ChannelStore store_{&kv_};
};

TEST_F(ChannelStoreTest, MessagesRoundTrip) {
  PutMessages(1, 1, 3);
  absl::StatusOr<StoredMessage> message = store_.GetMessage(1, 2);
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(message->sequence(), 2u);
  EXPECT_EQ(message->guid(), "guid-2");
  EXPECT_EQ(message->data(), MakeMessage(2).data());
  EXPECT_EQ(message->headers().at("k"), "v2");
  EXPECT_EQ(store_.GetMessage(1, 4).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_.GetMessage(2, 2).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ChannelStoreTest, ScanHonoursRangeCountAndBytes) {
  PutMessages(1, 1, 20, /*data_bytes=*/100);
  PutMessages(2, 1, 5);  // another channel, never mixed in
  EXPECT_EQ(Scan(1, 5, 8, 100, UINT64_MAX),
            (std::vector<uint64_t>{5, 6, 7, 8}));
  EXPECT_EQ(Scan(1, 5, 100, 3, UINT64_MAX), (std::vector<uint64_t>{5, 6, 7}));
  EXPECT_EQ(Scan(1, 18, UINT64_MAX, 100, UINT64_MAX),
            (std::vector<uint64_t>{18, 19, 20}));
  // Bytes: stop before exceeding, but always at least one message.
  EXPECT_EQ(Scan(1, 1, 20, 100, 250), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(Scan(1, 1, 20, 100, 300), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(Scan(1, 1, 20, 100, 1), (std::vector<uint64_t>{1}));
  EXPECT_TRUE(Scan(1, 1, 20, 0, UINT64_MAX).empty());
  EXPECT_TRUE(Scan(1, 21, 30, 100, UINT64_MAX).empty());
  EXPECT_TRUE(Scan(1, 9, 8, 100, UINT64_MAX).empty());

  // Appends to what `out` already holds.
  std::vector<StoredMessage> out = {MakeMessage(99)};
  ASSERT_TRUE(store_.ScanMessages(2, 1, 2, 10, UINT64_MAX, &out).ok());
  EXPECT_EQ(Sequences(out), (std::vector<uint64_t>{99, 1, 2}));
}

TEST_F(ChannelStoreTest, DeleteMessagesIsInclusiveAndScansSkipGaps) {
  PutMessages(1, 1, 10);
  WriteBatch batch;
  store_.DeleteMessages(1, 1, 3, &batch);  // a range
  store_.DeleteMessages(1, 6, 6, &batch);  // a single message
  store_.DeleteMessages(1, 9, 8, &batch);  // empty
  Write(&batch);
  EXPECT_EQ(Scan(1, 1, 10, 100, UINT64_MAX),
            (std::vector<uint64_t>{4, 5, 7, 8, 9, 10}));
  store_.DeleteMessages(1, 9, UINT64_MAX, &batch);
  Write(&batch);
  EXPECT_EQ(Scan(1, 1, UINT64_MAX, 100, UINT64_MAX),
            (std::vector<uint64_t>{4, 5, 7, 8}));
}

TEST_F(ChannelStoreTest, DamagedMessageIsDataLoss) {
  PutMessages(1, 1, 5);
  ASSERT_TRUE(kv_.CorruptValue(Space::kMessages, MessageKey(1, 3), 8, 2).ok());
  const absl::Status get = store_.GetMessage(1, 3).status();
  EXPECT_EQ(get.code(), absl::StatusCode::kDataLoss) << get;
  EXPECT_TRUE(absl::StrContains(get.message(), "channel=1 sequence=3")) << get;
  std::vector<StoredMessage> out;
  const absl::Status scan = store_.ScanMessages(1, 1, 5, 10, UINT64_MAX, &out);
  EXPECT_EQ(scan.code(), absl::StatusCode::kDataLoss) << scan;
  EXPECT_EQ(Sequences(out), (std::vector<uint64_t>{1, 2}));
}

TEST_F(ChannelStoreTest, MisplacedMessageIsDataLoss) {
  // A valid record under the wrong sequence (a bug or a misdirected write).
  StoredMessage message = MakeMessage(7);
  WriteBatch batch;
  batch.Put(Space::kMessages, MessageKey(1, 8), EncodeRecord(message));
  Write(&batch);
  const absl::Status status = store_.GetMessage(1, 8).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "sequence=7")) << status;
}

TEST_F(ChannelStoreTest, RecordsRoundTripAndList) {
  WriteBatch batch;
  for (uint64_t id : {3, 1, 2}) {
    ChannelRecord channel;
    channel.set_channel_id(id);
    channel.set_name("chan." + std::to_string(id));
    channel.set_last_sequence(10 * id);
    store_.PutChannel(channel, &batch);
    ChannelDirectoryEntry entry;
    entry.set_name(channel.name());
    entry.set_channel_id(id);
    store_.PutDirectoryEntry(entry, &batch);
  }
  for (uint64_t sub : {5, 4}) {
    SubscriptionRecord record;
    record.set_sub_id(sub);
    record.set_durable_name("dur" + std::to_string(sub));
    record.add_acked(sub + 100);
    store_.PutSubscription(1, record, &batch);
  }
  SubscriptionRecord other;
  other.set_sub_id(1);
  store_.PutSubscription(2, other, &batch);
  for (const char* id : {"zed", "amy"}) {
    ClientRecord client;
    client.set_client_id(id);
    store_.PutClient(client, &batch);
  }
  MetaRecord meta;
  meta.set_next_channel_id(4);
  store_.PutMeta(meta, &batch);
  Write(&batch);

  EXPECT_EQ(store_.GetChannel(2).value().last_sequence(), 20u);
  EXPECT_EQ(store_.GetChannel(4).status().code(), absl::StatusCode::kNotFound);
  const std::vector<ChannelRecord> channels = store_.ListChannels().value();
  ASSERT_EQ(channels.size(), 3u);
  EXPECT_EQ(channels[0].channel_id(), 1u);
  EXPECT_EQ(channels[2].channel_id(), 3u);

  EXPECT_EQ(store_.GetSubscription(1, 4).value().durable_name(), "dur4");
  const std::vector<SubscriptionRecord> subs =
      store_.ListSubscriptions(1).value();
  ASSERT_EQ(subs.size(), 2u);
  EXPECT_EQ(subs[0].sub_id(), 4u);
  EXPECT_EQ(subs[1].acked(0), 105u);
  EXPECT_EQ(store_.ListSubscriptions(2).value().size(), 1u);
  EXPECT_TRUE(store_.ListSubscriptions(3).value().empty());

  const std::vector<ClientRecord> clients = store_.ListClients().value();
  ASSERT_EQ(clients.size(), 2u);
  EXPECT_EQ(clients[0].client_id(), "amy");
  EXPECT_EQ(store_.GetClient("zed").value().client_id(), "zed");
  EXPECT_EQ(store_.GetClient("ze").status().code(),
            absl::StatusCode::kNotFound);

  EXPECT_EQ(store_.GetMeta().value().next_channel_id(), 4u);
  EXPECT_EQ(store_.GetDirectoryEntry("chan.3").value().channel_id(), 3u);
  const std::vector<ChannelDirectoryEntry> directory =
      store_.ListDirectory().value();
  ASSERT_EQ(directory.size(), 3u);
  EXPECT_EQ(directory[0].name(), "chan.1");

  store_.DeleteSubscription(1, 5, &batch);
  store_.DeleteClient("amy", &batch);
  store_.DeleteDirectoryEntry("chan.1", &batch);
  Write(&batch);
  EXPECT_EQ(store_.ListSubscriptions(1).value().size(), 1u);
  EXPECT_EQ(store_.ListClients().value().size(), 1u);
  EXPECT_EQ(store_.ListDirectory().value().size(), 2u);
}

TEST_F(ChannelStoreTest, MetaIsNotFoundBeforeTheFirstPut) {
  EXPECT_EQ(store_.GetMeta().status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ChannelStoreTest, DeleteChannelRemovesOnlyThatChannel) {
  WriteBatch batch;
  for (uint64_t id : {1, 2}) {
    ChannelRecord channel;
    channel.set_channel_id(id);
    store_.PutChannel(channel, &batch);
    SubscriptionRecord sub;
    sub.set_sub_id(1);
    store_.PutSubscription(id, sub, &batch);
  }
  Write(&batch);
  PutMessages(1, 1, 5);
  PutMessages(2, 1, 5);
  store_.DeleteChannel(1, &batch);
  Write(&batch);
  EXPECT_EQ(store_.GetChannel(1).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_.ListSubscriptions(1).value().empty());
  EXPECT_TRUE(Scan(1, 0, UINT64_MAX, 100, UINT64_MAX).empty());
  EXPECT_TRUE(store_.GetChannel(2).ok());
  EXPECT_EQ(store_.ListSubscriptions(2).value().size(), 1u);
  EXPECT_EQ(Scan(2, 0, UINT64_MAX, 100, UINT64_MAX).size(), 5u);
}

TEST_F(ChannelStoreTest, DamagedRecordInAListIsDataLoss) {
  WriteBatch batch;
  ClientRecord client;
  client.set_client_id("c1");
  store_.PutClient(client, &batch);
  Write(&batch);
  ASSERT_TRUE(kv_.CorruptValue(Space::kState, ClientKey("c1"), 0, 1).ok());
  const absl::Status status = store_.ListClients().status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "client=\"c1\"")) << status;
}

TEST(ChannelStoreRocksTest, MessagesSurviveReopen) {
  const std::string dir = MakeTempDir();
  {
    std::unique_ptr<RocksKv> kv = RocksKv::Open(dir, RocksKvOptions()).value();
    ChannelStore store(kv.get());
    WriteBatch batch;
    for (uint64_t seq = 1; seq <= 100; ++seq) {
      store.PutMessage(9, MakeMessage(seq, 1000), &batch);
    }
    ASSERT_TRUE(kv->Write(batch, true).ok());
  }
  std::unique_ptr<RocksKv> kv = RocksKv::Open(dir, RocksKvOptions()).value();
  ChannelStore store(kv.get());
  std::vector<StoredMessage> out;
  ASSERT_TRUE(store.ScanMessages(9, 50, 200, 1000, 10 * 1000, &out).ok());
  ASSERT_EQ(out.size(), 10u);
  EXPECT_EQ(out.front().sequence(), 50u);
  EXPECT_EQ(out.back().data(), MakeMessage(59, 1000).data());
}

}  // namespace
}  // namespace spate::storage

namespace spate::storage {
namespace {

TEST(ChannelStoreNodesTest, NodeRecordsRoundTrip) {
  MemKv kv;
  ChannelStore store(&kv);
  WriteBatch batch;
  NodeRecord node;
  node.set_node_id(4);
  node.set_cluster_address("127.0.0.1:6225");
  store.PutNode(node, &batch);
  node.set_node_id(2);
  node.set_state(NodeRecord::LEAVING);
  store.PutNode(node, &batch);
  ASSERT_TRUE(kv.Write(batch, true).ok());
  absl::StatusOr<std::vector<NodeRecord>> nodes = store.ListNodes();
  ASSERT_TRUE(nodes.ok());
  ASSERT_EQ(nodes->size(), 2u);
  EXPECT_EQ((*nodes)[0].node_id(), 2u);  // ascending by id
  EXPECT_EQ((*nodes)[0].state(), NodeRecord::LEAVING);
  WriteBatch remove;
  store.DeleteNode(2, &remove);
  ASSERT_TRUE(kv.Write(remove, true).ok());
  EXPECT_EQ(store.ListNodes()->size(), 1u);
}

}  // namespace
}  // namespace spate::storage
