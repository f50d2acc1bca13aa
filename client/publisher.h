// AsyncPublisher: the pipelined publish path of one Connection
// (Connection::PublishAsync / Flush) over one PublishStream, opened lazily.
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
// Completion: each pending publish completes exactly once, with its PubAck
// (sequence or the mapped `error_code`), DeadlineExceeded after
// pub_ack_wait, or — when the stream breaks — Unavailable; Shutdown fails the
// rest with the given reason. Pending entries keep their PubMsg and guid so
// that a later version can resend them on a new stream (the server
// deduplicates guids); today a broken stream fails them and the next Publish
// opens a new stream.
//
// Expiry runs on the writer thread between writes: while a write is stuck
// in HTTP/2 flow control (the server stopped reading), overdue publishes
// complete only once it returns or the stream breaks, and a full window
// makes PublishAsync fail with DeadlineExceeded.
//
// Threads, per open stream: "spate-pub-write" (writes frames, expires
// overdue publishes) and "spate-pub-read" (reads PubAckBatch frames). Both
// run AckHandlers, one at a time and in completion order (callback_mu_ is
// held while a handler runs).
// Lock order: callback_mu_ → stream_mu_ → mu_. Handlers run with only
// callback_mu_ held; they may call Publish (which takes stream_mu_ and mu_;
// with a full window it times out, as no ack completes meanwhile) but must
// not call Flush or Shutdown (those wait for handlers).
#ifndef SPATE_CLIENT_PUBLISHER_H_
#define SPATE_CLIENT_PUBLISHER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
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

  explicit AsyncPublisher(std::shared_ptr<const Session> session);
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

  // Non-blocking: refuses further publishes with `reason` and cancels the
  // stream; the reader thread then fails every pending publish with
  // `reason`. The first reason wins. Safe from any thread but the handlers.
  void Cancel(const absl::Status& reason);

  // Cancel, then join every thread. Must not run on a publisher thread.
  void Shutdown(const absl::Status& reason);

  int pending_count() const;

 private:
  struct Stream {
    uint64_t generation = 0;
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReaderWriter<PubBatch, PubAckBatch>> rw;
    std::thread writer;
    std::thread reader;
    // The rest is guarded by the publisher's mu_.
    // Publish orders (keys of pending_) not yet written.
    std::deque<uint64_t> outbox;
    // The reader saw the stream end.
    bool broken = false;
    bool writer_exited = false;
    // The reader completed every pending publish of this stream.
    bool finished = false;
  };

  struct Pending {
    std::string guid;
    PubMsg msg;
    AckHandler handler;
    absl::Time deadline;
    // The stream it was queued on; a broken stream fails only its own.
    uint64_t generation = 0;
  };

  struct Completion {
    AckHandler handler;
    std::string guid;
    absl::StatusOr<uint64_t> result;
  };

  // Returns the open stream, opening one if there is none or it broke.
  absl::StatusOr<Stream*> EnsureStream();
  void WriteLoop(Stream* stream);
  void ReadLoop(Stream* stream);
  // Moves up to kBatchBytesMax of `stream`'s outbox into `batch`.
  void TakeBatchLocked(Stream* stream, PubBatch* batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Time NextExpiryLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Completes the acked publishes of `acks`.
  void CompleteAcks(const PubAckBatch& acks);
  // Completes the publishes whose deadline passed.
  void ExpireOverdue();
  // Completes every pending publish queued on stream `generation`.
  void FailGeneration(uint64_t generation, const absl::Status& reason);
  // Removes pending_[order] and records its completion.
  void RemoveLocked(std::map<uint64_t, Pending>::iterator it,
                    absl::StatusOr<uint64_t> result,
                    std::vector<Completion>* done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs `done`'s handlers; requires callback_mu_.
  void RunCompletions(std::vector<Completion>* done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(callback_mu_);

  const std::shared_ptr<const Session> session_;

  // Serializes opening streams and owns them; threads of finished streams
  // are joined when the next one opens.
  absl::Mutex stream_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::vector<std::unique_ptr<Stream>> streams_ ABSL_GUARDED_BY(stream_mu_);
  uint64_t next_generation_ ABSL_GUARDED_BY(stream_mu_) = 1;

  // Held while handlers run, so they run one at a time and in order.
  absl::Mutex callback_mu_ ABSL_ACQUIRED_BEFORE(stream_mu_);

  mutable absl::Mutex mu_;
  Stream* current_ ABSL_GUARDED_BY(mu_) = nullptr;
  // Pending publishes by publish order; the window is its size.
  std::map<uint64_t, Pending> pending_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint64_t> order_by_guid_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_order_ ABSL_GUARDED_BY(mu_) = 1;
  // Completions removed from pending_ whose handlers have not returned yet.
  int completing_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status stop_reason_ ABSL_GUARDED_BY(mu_);
};

}  // namespace spate::client

#endif  // SPATE_CLIENT_PUBLISHER_H_
