#include "server/snapshot_fetcher.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/log.h"
#include "proto/snapshot.grpc.pb.h"
#include "server/grpc_status.h"
#include "storage/channel_store.h"

namespace spate::server {
namespace {

// A fetch that makes no progress for this long is abandoned (the leader
// sends a new snapshot later).
constexpr absl::Duration kFetchDeadline = absl::Minutes(10);

}  // namespace

bool SnapshotFetcher::Start(uint64_t channel_id,
                            const std::string& source_address,
                            const ChannelSnapshot& image,
                            absl::AnyInvocable<void(absl::Status)> done) {
  absl::MutexLock lock(&mu_);
  if (stopped_ || running_.contains(channel_id)) return false;
  auto context = std::make_shared<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + kFetchDeadline));
  running_[channel_id] = context;
  threads_.emplace_back([this, channel_id, source_address, image, context,
                         done = std::move(done)]() mutable {
    absl::Status status = Fetch(context.get(), source_address, image);
    {
      absl::MutexLock lock(&mu_);
      running_.erase(channel_id);
    }
    done(status);
  });
  return true;
}

absl::Status SnapshotFetcher::Fetch(grpc::ClientContext* context,
                                    const std::string& source_address,
                                    const ChannelSnapshot& image) {
  const ChannelRecord& record = image.record();
  if (record.msgs() == 0) return absl::OkStatus();
  auto stub = SnapshotSource::NewStub(link_.Dial(source_address));
  link_.Prepare(context);
  FetchMessagesRequest request;
  request.set_cluster_name(cluster_name_);
  request.set_channel_id(record.channel_id());
  request.set_transfer_id(image.transfer_id());
  request.set_from_sequence(record.first_sequence());
  request.set_to_sequence(record.last_sequence());
  auto reader = stub->FetchMessages(context, request);
  storage::ChannelStore store(kv_);
  FetchMessagesChunk chunk;
  uint64_t expected = record.first_sequence();
  while (reader->Read(&chunk)) {
    storage::WriteBatch batch;
    for (const StoredMessage& message : chunk.messages()) {
      if (message.sequence() != expected) {
        context->TryCancel();
        reader->Finish().IgnoreError();  // the gap is the error reported
        return absl::DataLossError(
            absl::StrCat("snapshot fetch: expected message ", expected,
                         ", got ", message.sequence()));
      }
      store.PutMessage(record.channel_id(), message, &batch);
      ++expected;
    }
    // Unsynced: the synced write that persists the snapshot comes later
    // in the same log, so these are durable before the install is.
    if (absl::Status status = kv_->Write(batch, /*sync=*/false); !status.ok()) {
      context->TryCancel();
      reader->Finish().IgnoreError();  // the write error is reported
      return status;
    }
  }
  absl::Status status = FromGrpcStatus(reader->Finish());
  if (!status.ok()) return status;
  if (expected != record.last_sequence() + 1) {
    return absl::DataLossError(absl::StrCat("snapshot fetch ended at message ",
                                            expected, " of ",
                                            record.last_sequence()));
  }
  return absl::OkStatus();
}

bool SnapshotFetcher::Running(uint64_t channel_id) const {
  absl::MutexLock lock(&mu_);
  return running_.contains(channel_id);
}

void SnapshotFetcher::Stop() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    for (auto& [id, context] : running_) context->TryCancel();
    threads.swap(threads_);
  }
  for (std::thread& thread : threads) thread.join();
}

}  // namespace spate::server
