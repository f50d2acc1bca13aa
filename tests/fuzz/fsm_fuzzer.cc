// Fuzz target: the replicated state machines (server/channel_fsm.h,
// server/meta_fsm.h) applying arbitrary decoded commands. Commands reach
// Apply from the raft log; a command the leader should never have proposed
// (an unknown subscription, an ack beyond the last sequence, a duplicate
// create) must be refused or ignored by every replica alike, never crash
// the node, and never leave the stored state different from the state in
// memory: after every input, the state machines reloaded from the store
// must have the same image as the live ones.
//
// Input: records (tests/fuzz/fuzz_input.h); an even selector applies the
// bytes as a ChannelCommand, an odd one as a MetaCommand; selector 0xff
// reloads the channel from the store mid-way (a restart).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "base/check.h"
#include "proto/command.pb.h"
#include "proto/records.pb.h"
#include "server/channel_fsm.h"
#include "server/meta_fsm.h"
#include "storage/channel_store.h"
#include "storage/mem_kv.h"
#include "tests/fuzz/fuzz_input.h"

namespace spate::fuzz {
namespace {

constexpr uint64_t kChannelId = 3;

class FsmHarness {
 public:
  FsmHarness() {
    options_.dedup_entries_max = 16;
    options_.cache_bytes_max = 4096;
    ChannelLimits limits;
    limits.set_max_msgs(20);
    limits.set_max_bytes(2000);
    limits.set_max_subs(8);
    storage::WriteBatch batch;
    channel_ = server::ChannelFsm::Create(&store_, kChannelId, "orders.eu",
                                          limits, 0, options_, &batch);
    Write(batch);
    channel_->MarkWritten();
    absl::StatusOr<std::unique_ptr<server::MetaFsm>> meta =
        server::MetaFsm::Load(&store_);
    CHECK_OK(meta.status());
    meta_ = *std::move(meta);
  }

  void ApplyChannel(absl::string_view bytes) {
    ChannelCommand command;
    if (!command.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return;
    }
    storage::WriteBatch batch;
    server::ChannelApplyResult result =
        channel_->Apply(++channel_index_, command, &batch);
    Write(batch);
    channel_->MarkWritten();
    if (result.status.ok() && command.has_publish()) {
      CHECK_EQ(result.sequences.size(),
               static_cast<size_t>(command.publish().entries_size()));
    }
    CHECK_LE(channel_->first_sequence(), channel_->last_sequence() + 1);
  }

  void ApplyMeta(absl::string_view bytes) {
    MetaCommand command;
    if (!command.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return;
    }
    storage::WriteBatch batch;
    meta_->Apply(++meta_index_, command, &batch);
    Write(batch);
  }

  // A restart: the channel as the store holds it must equal the live one.
  void ReloadAndCompare() {
    absl::StatusOr<std::unique_ptr<server::ChannelFsm>> loaded =
        server::ChannelFsm::Load(&store_, kChannelId, options_);
    CHECK_OK(loaded.status());
    CHECK(CanonicalBytes((*loaded)->Image()) ==
          CanonicalBytes(channel_->Image()))
        << "channel state in memory differs from the stored state";
    channel_ = *std::move(loaded);
    absl::StatusOr<std::unique_ptr<server::MetaFsm>> meta =
        server::MetaFsm::Load(&store_);
    CHECK_OK(meta.status());
    CHECK(CanonicalBytes((*meta)->Image()) == CanonicalBytes(meta_->Image()))
        << "metadata in memory differs from the stored state";
    meta_ = *std::move(meta);
  }

 private:
  void Write(const storage::WriteBatch& batch) {
    CHECK_OK(kv_.Write(batch, /*sync=*/true));
  }

  storage::MemKv kv_;
  storage::ChannelStore store_{&kv_};
  server::ChannelFsmOptions options_;
  std::unique_ptr<server::ChannelFsm> channel_;
  std::unique_ptr<server::MetaFsm> meta_;
  uint64_t channel_index_ = 1;
  uint64_t meta_index_ = 0;
};

}  // namespace
}  // namespace spate::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  spate::fuzz::QuietProtobufLogs();
  spate::fuzz::FsmHarness harness;
  spate::fuzz::FuzzInput input(data, size);
  spate::fuzz::FuzzRecord record;
  int applied = 0;
  while (input.Next(&record) && applied++ < 64) {
    if (record.selector == 0xff) {
      harness.ReloadAndCompare();
    } else if (record.selector % 2 == 0) {
      harness.ApplyChannel(record.bytes);
    } else {
      harness.ApplyMeta(record.bytes);
    }
  }
  harness.ReloadAndCompare();
  return 0;
}
