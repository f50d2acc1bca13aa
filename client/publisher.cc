#include "client/publisher.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/log.h"
#include "client/grpc_status.h"
#include "client/thread_name.h"

namespace spate::client {
namespace {

// A stream that ends sooner than this after it opened, before any ack came
// back, counts as a quick break: the next one waits a backoff first.
constexpr absl::Duration kQuickBreak = absl::Seconds(1);

absl::Duration Backoff(int attempt) {
  absl::Duration delay = AsyncPublisher::kRetryDelayMin;
  for (int i = 1; i < attempt && delay < AsyncPublisher::kRetryDelayMax; ++i) {
    delay *= 2;
  }
  return std::min(delay, AsyncPublisher::kRetryDelayMax);
}

}  // namespace

AsyncPublisher::AsyncPublisher(std::shared_ptr<SessionTracker> tracker)
    : tracker_(std::move(tracker)),
      pub_ack_wait_(tracker_->session()->options.pub_ack_wait),
      window_(tracker_->session()->options.max_pub_acks_in_flight) {}

AsyncPublisher::~AsyncPublisher() {
  Shutdown(absl::CancelledError("publisher destroyed"));
}

int AsyncPublisher::pending_count() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(pending_.size());
}

int64_t AsyncPublisher::resent_count() const {
  absl::MutexLock lock(&mu_);
  return resent_;
}

absl::Status AsyncPublisher::Publish(PubMsg msg, AckHandler handler) {
  const absl::Time deadline = absl::Now() + pub_ack_wait_;
  bool open = false;
  {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() { return stopping_ || pending_.size() < window_; };
    mu_.AwaitWithDeadline(absl::Condition(&ready), deadline);
    if (stopping_) return stop_reason_;
    if (pending_.size() >= window_) {
      return absl::DeadlineExceededError(
          absl::StrCat("publish window full: ", pending_.size(),
                       " publishes unacknowledged after ",
                       absl::FormatDuration(pub_ack_wait_)));
    }
    const uint64_t order = next_order_++;
    Pending& pending = pending_[order];
    pending.guid = msg.guid();
    pending.msg = std::move(msg);
    pending.handler = std::move(handler);
    pending.deadline = absl::Now() + pub_ack_wait_;
    const bool inserted = order_by_guid_.emplace(pending.guid, order).second;
    CHECK(inserted) << "duplicate publish guid " << pending.guid;
    if (current_ != nullptr && !current_->broken) {
      current_->outbox.insert(order);
    } else {
      // Between streams: a recovering reader sends it with the rest.
      open = !recovering_;
    }
  }
  if (open) OpenStream(nullptr, /*recovering=*/false);
  return absl::OkStatus();
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

void AsyncPublisher::Interrupt() {
  absl::MutexLock streams_lock(&stream_mu_);
  Stream* current;
  {
    absl::MutexLock lock(&mu_);
    current = current_;
  }
  // Owned by streams_, which stream_mu_ keeps intact.
  if (current != nullptr) current->context.TryCancel();
}

void AsyncPublisher::Resume() {
  bool open;
  {
    absl::MutexLock lock(&mu_);
    open = !pending_.empty() && !recovering_ &&
           (current_ == nullptr || current_->broken);
  }
  if (open) OpenStream(nullptr, /*recovering=*/false);
}

void AsyncPublisher::Cancel(const absl::Status& reason) {
  absl::Status first;
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      stopping_ = true;
      stop_reason_ = reason;
    }
    first = stop_reason_;
  }
  abandon_.store(true);
  tracker_->WakeWaiters();
  {
    absl::MutexLock streams_lock(&stream_mu_);
    for (const std::unique_ptr<Stream>& stream : streams_) {
      stream->context.TryCancel();
    }
  }
  FailAll(first);
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

bool AsyncPublisher::OpenStream(std::shared_ptr<const Session> session,
                                bool recovering) {
  absl::MutexLock streams_lock(&stream_mu_);
  std::vector<std::unique_ptr<Stream>> finished;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return true;
    if (!recovering &&
        (recovering_ || (current_ != nullptr && !current_->broken))) {
      return true;
    }
    // Streams whose threads are done hold no locks any more and are
    // exiting: joining them here is immediate.
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
  // A stream on a session the connection is leaving would break at once,
  // or worse, be refused as a replaced connection.
  if (tracker_->state() != SessionTracker::State::kConnected) return false;
  if (session == nullptr) {
    session = tracker_->session();
  } else if (session != tracker_->session()) {
    return false;
  }
  auto stream = std::make_unique<Stream>();
  stream->generation = next_generation_++;
  stream->session = std::move(session);
  stream->opened = absl::Now();
  stream->session->Authorize(&stream->context);
  stream->rw = stream->session->stub->PublishStream(&stream->context);
  Stream* const opened = stream.get();
  {
    absl::MutexLock lock(&mu_);
    for (auto& [order, pending] : pending_) {
      opened->outbox.insert(order);
      if (pending.sent) ++resent_;
    }
    // Every pending publish goes out now, refused ones included.
    retries_.clear();
    current_ = opened;
    recovering_ = false;
  }
  opened->writer = std::thread([this, opened] { WriteLoop(opened); });
  opened->reader = std::thread([this, opened] { ReadLoop(opened); });
  streams_.push_back(std::move(stream));
  return true;
}

absl::Time AsyncPublisher::NextExpiryLocked() const {
  // Deadlines grow with the publish order (a fixed wait after each).
  return pending_.empty() ? absl::InfiniteFuture()
                          : pending_.begin()->second.deadline;
}

absl::Time AsyncPublisher::NextWakeLocked() const {
  const absl::Time retry =
      retries_.empty() ? absl::InfiniteFuture() : retries_.begin()->first;
  return std::min(NextExpiryLocked(), retry);
}

void AsyncPublisher::QueueDueRetriesLocked() {
  const absl::Time now = absl::Now();
  while (!retries_.empty() && retries_.begin()->first <= now) {
    const uint64_t order = retries_.begin()->second;
    retries_.erase(retries_.begin());
    if (current_ == nullptr || current_->broken) continue;  // Resent anyway.
    if (pending_.count(order) == 0) continue;               // Expired.
    current_->outbox.insert(order);
    ++resent_;
  }
}

void AsyncPublisher::TakeBatchLocked(Stream* stream, PubBatch* batch) {
  int64_t bytes = 0;
  while (!stream->outbox.empty()) {
    auto it = pending_.find(*stream->outbox.begin());
    if (it == pending_.end()) {  // Completed before it was written.
      stream->outbox.erase(stream->outbox.begin());
      continue;
    }
    const int64_t size = static_cast<int64_t>(it->second.msg.ByteSizeLong());
    if (batch->msgs_size() > 0 && bytes + size > kBatchBytesMax) break;
    // A copy: the pending entry keeps the message for a resend. It names
    // the connection the stream belongs to, which changes on reconnects.
    PubMsg* msg = batch->add_msgs();
    *msg = it->second.msg;
    msg->set_conn_id(stream->session->conn_id);
    it->second.sent = true;
    bytes += size;
    stream->outbox.erase(stream->outbox.begin());
  }
}

void AsyncPublisher::WriteLoop(Stream* stream) {
  NameThisThread("spate-pub-write");
  while (true) {
    PubBatch batch;
    bool overdue = false;
    {
      absl::MutexLock lock(&mu_);
      // A retry scheduled meanwhile may be due before `wake_at`.
      const absl::Time wake_at = NextWakeLocked();
      auto wake = [this, stream, wake_at]() {
        return stopping_ || stream->broken || !stream->outbox.empty() ||
               NextWakeLocked() < wake_at;
      };
      mu_.AwaitWithDeadline(absl::Condition(&wake), wake_at);
      if (stopping_ || stream->broken) break;
      if (stream == current_) QueueDueRetriesLocked();
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
    {
      absl::MutexLock lock(&mu_);
      quick_breaks_ = 0;
    }
    CompleteAcks(acks);
  }
  bool recover = false;
  {
    absl::MutexLock lock(&mu_);
    stream->broken = true;
    // Publishes queued from now on wait for this reader's next stream.
    if (!stopping_ && current_ == stream) recover = recovering_ = true;
    // Finish() must not race a Write on the same call.
    mu_.Await(absl::Condition(&stream->writer_exited));
  }
  const grpc::Status end = stream->rw->Finish();
  if (recover) {
    if (tracker_->state() == SessionTracker::State::kConnected) {
      LOG(WARNING) << "publish stream to " << stream->session->server
                   << " ended: "
                   << (end.ok() ? "closed by the server"
                                : FromGrpcStatus(end).ToString())
                   << "; checking the connection, pending publishes will "
                      "be resent";
    }
    Recover(stream);
  }
  absl::MutexLock lock(&mu_);
  stream->finished = true;
}

void AsyncPublisher::Recover(Stream* stream) {
  {
    absl::MutexLock lock(&mu_);
    if (absl::Now() - stream->opened < kQuickBreak) ++quick_breaks_;
    if (quick_breaks_ > 1) {
      // The stream keeps ending right after it opened: do not spin.
      auto stopped = [this]() { return stopping_; };
      mu_.AwaitWithTimeout(absl::Condition(&stopped),
                           Backoff(quick_breaks_ - 1));
    }
  }
  while (true) {
    const uint64_t ticket = tracker_->RequestCheck();
    while (true) {
      absl::Time deadline;
      {
        absl::MutexLock lock(&mu_);
        if (stopping_ || pending_.empty()) {
          // Nothing to resend: the next Publish opens a stream (or Resume
          // after a reconnect); Cancel fails what is left when stopping.
          recovering_ = false;
          if (current_ == stream) current_ = nullptr;
          return;
        }
        deadline = NextExpiryLocked();
      }
      absl::StatusOr<std::shared_ptr<const Session>> session =
          tracker_->AwaitCheck(ticket, deadline, &abandon_);
      if (session.ok()) {
        if (OpenStream(*std::move(session), /*recovering=*/true)) return;
        break;  // The session changed meanwhile: check again.
      }
      if (absl::IsDeadlineExceeded(session.status())) {
        ExpireOverdue();
        continue;
      }
      // Lost or closed: the connection cancels the publisher.
      absl::MutexLock lock(&mu_);
      recovering_ = false;
      if (current_ == stream) current_ = nullptr;
      return;
    }
  }
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
  bool refused = false;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    for (const PubAck& ack : acks.acks()) {
      auto found = order_by_guid_.find(ack.guid());
      // Unknown guids already completed (expired); their handler ran.
      if (found == order_by_guid_.end()) continue;
      auto it = pending_.find(found->second);
      absl::Status error = FromPubAck(ack);
      if (absl::IsUnavailable(error) && !stopping_ &&
          now < it->second.deadline) {
        // Retryable (no leader yet, node stopping): same guid, later.
        retries_.emplace(now + Backoff(++it->second.refusals), it->first);
        refused = true;
        continue;
      }
      RemoveLocked(it,
                   error.ok() ? absl::StatusOr<uint64_t>(ack.sequence())
                              : absl::StatusOr<uint64_t>(error),
                   &done);
    }
  }
  RunCompletions(&done);
  // A node that refuses may be on its way out; let the connection look.
  if (refused) tracker_->RequestCheck();
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
                       "no ack within ", absl::FormatDuration(pub_ack_wait_))),
                   &done);
    }
  }
  RunCompletions(&done);
}

void AsyncPublisher::FailAll(const absl::Status& reason) {
  absl::MutexLock callbacks(&callback_mu_);
  std::vector<Completion> done;
  {
    absl::MutexLock lock(&mu_);
    while (!pending_.empty()) RemoveLocked(pending_.begin(), reason, &done);
    retries_.clear();
  }
  RunCompletions(&done);
}

}  // namespace spate::client
