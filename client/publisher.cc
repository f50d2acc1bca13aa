#include "client/publisher.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/log.h"
#include "client/grpc_status.h"
#include "client/thread_name.h"

namespace spate::client {

AsyncPublisher::AsyncPublisher(std::shared_ptr<const Session> session)
    : session_(std::move(session)) {}

AsyncPublisher::~AsyncPublisher() {
  Shutdown(absl::CancelledError("publisher destroyed"));
}

int AsyncPublisher::pending_count() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(pending_.size());
}

absl::Status AsyncPublisher::Publish(PubMsg msg, AckHandler handler) {
  const absl::Duration wait = session_->options.pub_ack_wait;
  const size_t window = session_->options.max_pub_acks_in_flight;
  const absl::Time deadline = absl::Now() + wait;
  // A stream that broke is replaced once; if the new one breaks before the
  // message is queued, the server is most likely gone.
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<Stream*> stream = EnsureStream();
    if (!stream.ok()) return stream.status();
    absl::MutexLock lock(&mu_);
    Stream* const opened = *stream;
    auto ready = [&]() {
      return stopping_ || current_ != opened || current_->broken ||
             pending_.size() < window;
    };
    mu_.AwaitWithDeadline(absl::Condition(&ready), deadline);
    if (stopping_) return stop_reason_;
    if (current_ == nullptr || current_->broken) {
      if (attempt >= 1) {
        return absl::UnavailableError(absl::StrCat(
            "publish stream to ", session_->server, " keeps breaking"));
      }
      continue;
    }
    if (pending_.size() >= window) {
      return absl::DeadlineExceededError(absl::StrCat(
          "publish window full: ", pending_.size(),
          " publishes unacknowledged after ", absl::FormatDuration(wait)));
    }
    const uint64_t order = next_order_++;
    Pending& pending = pending_[order];
    pending.guid = msg.guid();
    pending.msg = std::move(msg);
    pending.handler = std::move(handler);
    pending.deadline = absl::Now() + wait;
    pending.generation = current_->generation;
    const bool inserted = order_by_guid_.emplace(pending.guid, order).second;
    CHECK(inserted) << "duplicate publish guid " << pending.guid;
    current_->outbox.push_back(order);
    return absl::OkStatus();
  }
}

absl::Status AsyncPublisher::Flush(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto drained = [this]() { return pending_.empty() && completing_ == 0; };
  if (!mu_.AwaitWithTimeout(absl::Condition(&drained), timeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat("flush: ", pending_.size() + completing_,
                     " async publishes not completed within ",
                     absl::FormatDuration(timeout)));
  }
  return absl::OkStatus();
}

void AsyncPublisher::Cancel(const absl::Status& reason) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      stopping_ = true;
      stop_reason_ = reason;
    }
  }
  absl::MutexLock streams_lock(&stream_mu_);
  for (const std::unique_ptr<Stream>& stream : streams_) {
    stream->context.TryCancel();
  }
}

void AsyncPublisher::Shutdown(const absl::Status& reason) {
  Cancel(reason);
  std::vector<std::unique_ptr<Stream>> streams;
  {
    absl::MutexLock streams_lock(&stream_mu_);
    streams.swap(streams_);
  }
  for (const std::unique_ptr<Stream>& stream : streams) {
    CHECK(stream->reader.get_id() != std::this_thread::get_id() &&
          stream->writer.get_id() != std::this_thread::get_id())
        << "the connection must not be closed from an AckHandler";
    if (stream->writer.joinable()) stream->writer.join();
    if (stream->reader.joinable()) stream->reader.join();
  }
  absl::MutexLock lock(&mu_);
  current_ = nullptr;
}

absl::StatusOr<AsyncPublisher::Stream*> AsyncPublisher::EnsureStream() {
  absl::MutexLock streams_lock(&stream_mu_);
  std::vector<std::unique_ptr<Stream>> finished;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return stop_reason_;
    if (current_ != nullptr && !current_->broken) return current_;
    // Streams whose reader completed everything hold no locks any more and
    // their threads are exiting: joining them here is immediate.
    for (auto it = streams_.begin(); it != streams_.end();) {
      if ((*it)->finished && it->get() != current_) {
        finished.push_back(std::move(*it));
        it = streams_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const std::unique_ptr<Stream>& stream : finished) {
    stream->writer.join();
    stream->reader.join();
  }
  auto stream = std::make_unique<Stream>();
  stream->generation = next_generation_++;
  stream->rw = session_->stub->PublishStream(&stream->context);
  Stream* const opened = stream.get();
  {
    absl::MutexLock lock(&mu_);
    current_ = opened;
  }
  opened->writer = std::thread([this, opened] { WriteLoop(opened); });
  opened->reader = std::thread([this, opened] { ReadLoop(opened); });
  streams_.push_back(std::move(stream));
  return opened;
}

absl::Time AsyncPublisher::NextExpiryLocked() const {
  return pending_.empty() ? absl::InfiniteFuture()
                          : pending_.begin()->second.deadline;
}

void AsyncPublisher::TakeBatchLocked(Stream* stream, PubBatch* batch) {
  int64_t bytes = 0;
  while (!stream->outbox.empty()) {
    auto it = pending_.find(stream->outbox.front());
    if (it == pending_.end()) {  // Expired before it was written.
      stream->outbox.pop_front();
      continue;
    }
    const int64_t size = static_cast<int64_t>(it->second.msg.ByteSizeLong());
    if (batch->msgs_size() > 0 && bytes + size > kBatchBytesMax) break;
    // A copy: the pending entry keeps the message for a resend.
    *batch->add_msgs() = it->second.msg;
    bytes += size;
    stream->outbox.pop_front();
  }
}

void AsyncPublisher::WriteLoop(Stream* stream) {
  NameThisThread("spate-pub-write");
  while (true) {
    PubBatch batch;
    bool overdue = false;
    {
      absl::MutexLock lock(&mu_);
      auto wake = [this, stream]() {
        return stopping_ || stream->broken || !stream->outbox.empty();
      };
      mu_.AwaitWithDeadline(absl::Condition(&wake), NextExpiryLocked());
      if (stopping_ || stream->broken) break;
      overdue = NextExpiryLocked() <= absl::Now();
      TakeBatchLocked(stream, &batch);
    }
    if (overdue) ExpireOverdue();
    // A failed write means the stream ended; the reader sees it too.
    if (batch.msgs_size() > 0 && !stream->rw->Write(batch)) break;
  }
  absl::MutexLock lock(&mu_);
  stream->writer_exited = true;
}

void AsyncPublisher::ReadLoop(Stream* stream) {
  NameThisThread("spate-pub-read");
  PubAckBatch acks;
  while (stream->rw->Read(&acks)) {
    CompleteAcks(acks);
  }
  {
    absl::MutexLock lock(&mu_);
    stream->broken = true;
    // Finish() must not race a Write on the same call.
    mu_.Await(absl::Condition(&stream->writer_exited));
  }
  const grpc::Status end = stream->rw->Finish();
  absl::Status reason;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      reason = stop_reason_;
    } else {
      reason = absl::UnavailableError(absl::StrCat(
          "publish stream to ", session_->server, " ended: ",
          end.ok() ? "closed by the server" : FromGrpcStatus(end).ToString()));
      LOG(WARNING) << reason;
    }
  }
  FailGeneration(stream->generation, reason);
  absl::MutexLock lock(&mu_);
  stream->finished = true;
}

void AsyncPublisher::RemoveLocked(std::map<uint64_t, Pending>::iterator it,
                                  absl::StatusOr<uint64_t> result,
                                  std::vector<Completion>* done) {
  order_by_guid_.erase(it->second.guid);
  done->push_back(Completion{std::move(it->second.handler),
                             std::move(it->second.guid), std::move(result)});
  pending_.erase(it);
  ++completing_;
}

void AsyncPublisher::RunCompletions(std::vector<Completion>* done) {
  for (Completion& completion : *done) {
    if (completion.handler)
      completion.handler(completion.guid, completion.result);
  }
  absl::MutexLock lock(&mu_);
  completing_ -= static_cast<int>(done->size());
}

void AsyncPublisher::CompleteAcks(const PubAckBatch& acks) {
  absl::MutexLock callbacks(&callback_mu_);
  std::vector<Completion> done;
  {
    absl::MutexLock lock(&mu_);
    for (const PubAck& ack : acks.acks()) {
      auto found = order_by_guid_.find(ack.guid());
      // Unknown guids already completed (expired); their handler ran.
      if (found == order_by_guid_.end()) continue;
      absl::Status error = FromPubAck(ack);
      RemoveLocked(pending_.find(found->second),
                   error.ok() ? absl::StatusOr<uint64_t>(ack.sequence())
                              : absl::StatusOr<uint64_t>(error),
                   &done);
    }
  }
  RunCompletions(&done);
}

void AsyncPublisher::ExpireOverdue() {
  absl::MutexLock callbacks(&callback_mu_);
  std::vector<Completion> done;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    while (!pending_.empty() && pending_.begin()->second.deadline <= now) {
      RemoveLocked(pending_.begin(),
                   absl::DeadlineExceededError(absl::StrCat(
                       "no ack within ",
                       absl::FormatDuration(session_->options.pub_ack_wait))),
                   &done);
    }
  }
  RunCompletions(&done);
}

void AsyncPublisher::FailGeneration(uint64_t generation,
                                    const absl::Status& reason) {
  absl::MutexLock callbacks(&callback_mu_);
  std::vector<Completion> done;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = pending_.begin(); it != pending_.end();) {
      auto next = std::next(it);
      if (it->second.generation == generation) RemoveLocked(it, reason, &done);
      it = next;
    }
  }
  RunCompletions(&done);
}

}  // namespace spate::client
