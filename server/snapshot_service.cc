#include "server/snapshot_service.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/grpc_status.h"
#include "storage/channel_store.h"

namespace spate::server {
namespace {

constexpr size_t kChunkMessagesMax = 1024;
constexpr int64_t kChunkBytesMax = 1 << 20;

// Writes one chunk at a time; the next is read when the previous was sent.
class FetchReactor : public grpc::ServerWriteReactor<FetchMessagesChunk> {
 public:
  FetchReactor(std::shared_ptr<const storage::Kv> view,
               const FetchMessagesRequest& request)
      : view_(std::move(view)),
        store_(view_.get()),
        request_(request),
        next_(request.from_sequence()) {
    Next();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
      return;
    }
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (next_ > request_.to_sequence()) {
      Finish(grpc::Status::OK);
      return;
    }
    std::vector<StoredMessage> messages;
    absl::Status status = store_.ScanMessages(
        request_.channel_id(), next_, request_.to_sequence(), kChunkMessagesMax,
        kChunkBytesMax, &messages);
    if (status.ok() && (messages.empty() || messages[0].sequence() != next_)) {
      status = absl::DataLossError(
          absl::StrCat("snapshot message ", next_, " of channel ",
                       request_.channel_id(), " is missing"));
    }
    if (!status.ok()) {
      Finish(ToGrpcStatus(status));
      return;
    }
    chunk_.Clear();
    for (StoredMessage& message : messages) {
      next_ = message.sequence() + 1;
      *chunk_.add_messages() = std::move(message);
    }
    StartWrite(&chunk_);
  }

  std::shared_ptr<const storage::Kv> view_;
  storage::ChannelStore store_;
  const FetchMessagesRequest request_;
  uint64_t next_;
  FetchMessagesChunk chunk_;
};

}  // namespace

grpc::ServerWriteReactor<FetchMessagesChunk>* SnapshotService::FetchMessages(
    grpc::CallbackServerContext* context, const FetchMessagesRequest* request) {
  auto refuse = [](grpc::StatusCode code, const std::string& message) {
    class Refused : public grpc::ServerWriteReactor<FetchMessagesChunk> {
     public:
      explicit Refused(grpc::Status status) { Finish(std::move(status)); }
      void OnDone() override { delete this; }
    };
    return new Refused(grpc::Status(code, message));
  };
  absl::StatusOr<const Principal*> principal = auth_->Authenticate(*context);
  if (!principal.ok()) {
    return refuse(grpc::StatusCode::UNAUTHENTICATED,
                  std::string(principal.status().message()));
  }
  if (*principal != Principal::Unrestricted()) {
    return refuse(grpc::StatusCode::PERMISSION_DENIED, "nodes only");
  }
  if (request->cluster_name() != cluster_name_) {
    return refuse(grpc::StatusCode::PERMISSION_DENIED,
                  "snapshot fetch from another cluster");
  }
  if (request->from_sequence() < 1 ||
      request->to_sequence() < request->from_sequence()) {
    return refuse(grpc::StatusCode::INVALID_ARGUMENT, "bad sequence range");
  }
  std::shared_ptr<const storage::Kv> view =
      transfers_->Find(request->transfer_id(), request->channel_id());
  if (view == nullptr) {
    return refuse(grpc::StatusCode::NOT_FOUND,
                  "no such snapshot transfer (expired?)");
  }
  return new FetchReactor(std::move(view), *request);
}

}  // namespace spate::server
