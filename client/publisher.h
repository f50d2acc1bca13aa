// AsyncPublisher: the pipelined publish path of one Connection
// (Connection::PublishAsync / Flush) over one PublishStream at a time,
// opened lazily on the connection's current session (session_tracker.h).
//
// Window: at most max_pub_acks_in_flight publishes are pending (queued,
// written or awaiting their PubAck); Publish blocks while the window is
// full, up to pub_ack_wait. A slot frees when the ack arrives, before the
// AckHandler runs, so a handler may publish again.
//
// Batching: a writer thread takes every message waiting in the outbox (up to
// kBatchBytesMax) and writes them as one PubBatch frame. It never waits to
// fill a batch: while one frame is being written the next one accumulates.
//
// Resending: every pending publish keeps its PubMsg and guid until it
// completes, and the server deduplicates guids, so sending one again is
// safe: a message that was stored gets its original sequence back.
//   - When the stream breaks (or the connection interrupts it to
//     reconnect), its reader asks the connection for a health check
//     (SessionTracker) and, once the connection is confirmed or
//     re-established, opens a new stream whose outbox is every pending
//     publish in publish order — the ones written but not acked, then the
//     rest. Publishes made meanwhile just queue.
//   - A PubAck refused with UNAVAILABLE (no leader yet, node stopping) is
//     retried after a backoff (kRetryDelayMin doubling to kRetryDelayMax)
//     on the current stream.
// Completion: each pending publish completes exactly once, with its PubAck
// (sequence or the mapped `error_code`), DeadlineExceeded once pub_ack_wait
// passed since PublishAsync, or the reason given to Cancel/Shutdown (the
// connection was lost or closed).
//
// Expiry runs on the writer thread between writes, and on a reader waiting
// for the connection: while a write is stuck in HTTP/2 flow control (the
// server stopped reading), overdue publishes complete only once it returns
// or the stream breaks, and a full window makes PublishAsync fail with
// DeadlineExceeded.
//
// Threads, per stream: "spate-pub-write" (writes frames, expires overdue
// publishes, queues due retries) and "spate-pub-read" (reads PubAckBatch
// frames; after the stream ends, waits for the connection and opens the
// next stream). Both run AckHandlers, one at a time and in completion
// order (callback_mu_ is held while a handler runs); Cancel runs them on
// its caller's thread.
// Lock order: callback_mu_ → stream_mu_ → mu_ → SessionTracker's mutex.
// Handlers run with only callback_mu_ held; they may call Publish (which
// takes stream_mu_ and mu_; with a full window it times out, as no ack
// completes meanwhile) but must not call Flush, Cancel or Shutdown.
#ifndef SPATE_CLIENT_PUBLISHER_H_
#define SPATE_CLIENT_PUBLISHER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/options.h"
#include "client/session.h"
#include "client/session_tracker.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/sync_stream.h"
#include "proto/streaming.pb.h"

namespace spate::client {

class AsyncPublisher {
 public:
  // Payload bytes per PubBatch frame, so that a full window never makes a
  // frame larger than gRPC's default 4 MiB receive limit. A bigger single
  // message still goes alone.
  static constexpr int64_t kBatchBytesMax = 1 << 20;
  // Backoff of a publish refused with UNAVAILABLE, and between streams
  // that keep breaking right after they opened.
  static constexpr absl::Duration kRetryDelayMin = absl::Milliseconds(50);
  static constexpr absl::Duration kRetryDelayMax = absl::Seconds(1);

  explicit AsyncPublisher(std::shared_ptr<SessionTracker> tracker);
  AsyncPublisher(const AsyncPublisher&) = delete;
  AsyncPublisher& operator=(const AsyncPublisher&) = delete;
  // Shuts down with Cancelled if not done yet.
  ~AsyncPublisher();

  // Queues `msg` (its guid already set) and returns once it is queued;
  // `handler` later reports the outcome. Blocks while the window is full:
  // DeadlineExceeded after pub_ack_wait. After Shutdown/Cancel, returns the
  // reason given there.
  absl::Status Publish(PubMsg msg, AckHandler handler);

  // Waits until every publish queued so far has completed and its handler
  // has returned; DeadlineExceeded after `timeout`.
  absl::Status Flush(absl::Duration timeout);

  // The connection is about to reconnect: cancels the current stream so
  // that its reader waits for the new session; nothing is failed.
  void Interrupt();

  // The connection reconnected: opens a stream for the publishes queued
  // while there was none (a reader that is recovering does it itself).
  void Resume();

  // Refuses further publishes with `reason`, cancels the streams and fails
  // every pending publish with `reason` (running their handlers on this
  // thread). The first reason wins. Safe from any thread but the handlers.
  void Cancel(const absl::Status& reason);

  // Cancel, then join every thread. Must not run on a publisher thread.
  void Shutdown(const absl::Status& reason);

  int pending_count() const;
  // Publishes sent again, after a stream broke or an UNAVAILABLE ack.
  int64_t resent_count() const;

 private:
  struct Stream {
    uint64_t generation = 0;
    std::shared_ptr<const Session> session;
    absl::Time opened;
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReaderWriter<PubBatch, PubAckBatch>> rw;
    std::thread writer;
    std::thread reader;
    // The rest is guarded by the publisher's mu_.
    // Publish orders (keys of pending_) to write, lowest first.
    std::set<uint64_t> outbox;
    // The reader saw the stream end.
    bool broken = false;
    bool writer_exited = false;
    // Both threads are done with the publisher's state.
    bool finished = false;
  };

  struct Pending {
    std::string guid;
    PubMsg msg;
    AckHandler handler;
    absl::Time deadline;
    // Written on some stream (so opening a new one resends it).
    bool sent = false;
    // UNAVAILABLE acks so far.
    int refusals = 0;
  };

  struct Completion {
    AckHandler handler;
    std::string guid;
    absl::StatusOr<uint64_t> result;
  };

  // Opens a stream on `session` (the tracker's current one when null)
  // unless one is open or a reader is recovering (`recovering` says the
  // caller is that reader). Its outbox is every pending publish. False
  // when the session is not (or no longer) the connected one: a recovering
  // reader then waits for the next; a publish leaves it to Resume.
  bool OpenStream(std::shared_ptr<const Session> session, bool recovering);
  void WriteLoop(Stream* stream);
  void ReadLoop(Stream* stream);
  // After `stream` ended: waits for the connection's verdict, expiring
  // overdue publishes meanwhile, and opens the next stream if any publish
  // is pending.
  void Recover(Stream* stream);
  // Moves up to kBatchBytesMax of `stream`'s outbox into `batch`.
  void TakeBatchLocked(Stream* stream, PubBatch* batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Time NextWakeLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Time NextExpiryLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves retries that are due into the current stream's outbox.
  void QueueDueRetriesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Completes (or schedules the retry of) the acked publishes of `acks`.
  void CompleteAcks(const PubAckBatch& acks);
  // Completes the publishes whose deadline passed.
  void ExpireOverdue();
  // Completes every pending publish with `reason`.
  void FailAll(const absl::Status& reason);
  // Removes pending_[order] and records its completion.
  void RemoveLocked(std::map<uint64_t, Pending>::iterator it,
                    absl::StatusOr<uint64_t> result,
                    std::vector<Completion>* done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs `done`'s handlers; requires callback_mu_.
  void RunCompletions(std::vector<Completion>* done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(callback_mu_);

  const std::shared_ptr<SessionTracker> tracker_;
  const absl::Duration pub_ack_wait_;
  const size_t window_;
  // Set by Cancel; makes a reader waiting for the connection give up.
  std::atomic<bool> abandon_{false};

  // Serializes opening streams and owns them; threads of finished streams
  // are joined when the next one opens.
  absl::Mutex stream_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::vector<std::unique_ptr<Stream>> streams_ ABSL_GUARDED_BY(stream_mu_);
  uint64_t next_generation_ ABSL_GUARDED_BY(stream_mu_) = 1;

  // Held while handlers run, so they run one at a time and in order.
  absl::Mutex callback_mu_ ABSL_ACQUIRED_BEFORE(stream_mu_);

  mutable absl::Mutex mu_;
  Stream* current_ ABSL_GUARDED_BY(mu_) = nullptr;
  // A reader is between streams: it opens the next one.
  bool recovering_ ABSL_GUARDED_BY(mu_) = false;
  // Streams in a row that broke before any ack came back.
  int quick_breaks_ ABSL_GUARDED_BY(mu_) = 0;
  // Pending publishes by publish order; the window is its size.
  std::map<uint64_t, Pending> pending_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint64_t> order_by_guid_
      ABSL_GUARDED_BY(mu_);
  // Publish orders refused with UNAVAILABLE, by when to send them again.
  std::multimap<absl::Time, uint64_t> retries_ ABSL_GUARDED_BY(mu_);
  uint64_t next_order_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t resent_ ABSL_GUARDED_BY(mu_) = 0;
  // Completions removed from pending_ whose handlers have not returned yet.
  int completing_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status stop_reason_ ABSL_GUARDED_BY(mu_);
};

}  // namespace spate::client

#endif  // SPATE_CLIENT_PUBLISHER_H_
