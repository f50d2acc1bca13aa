#include "server/grpc_transport.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/log.h"
#include "base/prng.h"
#include "base/status_macros.h"
#include "google/protobuf/io/coded_stream.h"
#include "proto/transport.grpc.pb.h"
#include "proto/transport.pb.h"

namespace spate::server {
namespace {

using transport::MessageBatch;
using transport::RaftTransport;
using transport::StreamFeedback;

// Handshake metadata (proto/transport.proto).
constexpr char kClusterKey[] = "spate-cluster";
constexpr char kFromNodeKey[] = "spate-from-node";
constexpr char kToNodeKey[] = "spate-to-node";

// The one place that chooses the cluster link's security: the credentials
// the options carry (TLS/mTLS, server/tls.h), or plaintext.
std::shared_ptr<grpc::ChannelCredentials> PeerCredentials(
    const GrpcTransportOptions& options) {
  if (options.peer_credentials != nullptr) return options.peer_credentials;
  return grpc::InsecureChannelCredentials();
}
std::shared_ptr<grpc::ServerCredentials> ListenerCredentials(
    const GrpcTransportOptions& options) {
  if (options.listener_credentials != nullptr) {
    return options.listener_credentials;
  }
  return grpc::InsecureServerCredentials();
}

int ToMs(absl::Duration duration) {
  return static_cast<int>(
      std::min<int64_t>(absl::ToInt64Milliseconds(duration), INT_MAX));
}

grpc::ChannelArguments PeerChannelArguments(
    const GrpcTransportOptions& options) {
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(options.frame_bytes_max);
  args.SetMaxReceiveMessageSize(options.frame_bytes_max);
  if (!options.tls_server_name_override.empty()) {
    args.SetSslTargetNameOverride(options.tls_server_name_override);
  }
  // gRPC's own TCP reconnects follow the same bounds as our redials.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              ToMs(options.reconnect_backoff_initial));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              ToMs(options.reconnect_backoff_max));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, ToMs(options.keepalive_interval));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, ToMs(options.keepalive_timeout));
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // A connection of our own per peer, even when several transports in one
  // process dial the same address (tests, benchmarks).
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return args;
}

// Bytes `message` adds to a MessageBatch frame: field tag, length, body.
uint64_t FramedSize(const raft::Message& message) {
  const size_t size = message.ByteSizeLong();
  return 1 + google::protobuf::io::CodedOutputStream::VarintSize64(size) + size;
}

// Delay before the next dial: doubles from initial to max; each draw is
// jittered by ±20% so that nodes restarting together do not redial in step.
class Backoff {
 public:
  Backoff(absl::Duration initial, absl::Duration max, uint64_t seed)
      : initial_(initial), max_(max), next_(initial), prng_(seed) {}

  absl::Duration Next() {
    const absl::Duration base = next_;
    next_ = std::min(next_ * 2, max_);
    return base *
           (0.8 + 0.4 * static_cast<double>(prng_.Uniform(1001)) / 1000.0);
  }
  void Reset() { next_ = initial_; }

 private:
  const absl::Duration initial_;
  const absl::Duration max_;
  absl::Duration next_;
  base::Prng prng_;
};

std::string Describe(const grpc::Status& status) {
  return absl::StrCat("code=", status.error_code(), " (",
                      status.error_message(), ")");
}

// First occurrence and then every 1024th: enough to notice, never a flood.
bool ShouldLogCount(uint64_t before, uint64_t after) {
  return before == 0 || (before >> 10) != (after >> 10);
}

absl::Status ValidatePeers(raft::NodeId self, const PeerAddresses& peers) {
  for (const auto& [id, address] : peers) {
    if (id == raft::kNoNode) {
      return absl::InvalidArgumentError("peers: node id 0 is not valid");
    }
    if (id == self) {
      return absl::InvalidArgumentError(
          absl::StrCat("peers: node ", id, " is this node"));
    }
    if (address.find(':') == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("peers: node ", id, " address must be host:port, got \"",
                       address, "\""));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateGrpcTransportOptions(const GrpcTransportOptions& options) {
  if (options.cluster_name.empty()) {
    return absl::InvalidArgumentError("cluster_name must not be empty");
  }
  if (options.node_id == raft::kNoNode) {
    return absl::InvalidArgumentError("node_id must be >= 1");
  }
  if (options.listen_address.find(':') == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen_address must be host:port, got \"",
                     options.listen_address, "\""));
  }
  if (options.peer_queue_bytes_max == 0) {
    return absl::InvalidArgumentError("peer_queue_bytes_max must be > 0");
  }
  if (options.frame_bytes_max < 1024) {
    return absl::InvalidArgumentError("frame_bytes_max must be >= 1024");
  }
  if (options.reconnect_backoff_initial <= absl::ZeroDuration() ||
      options.reconnect_backoff_max < options.reconnect_backoff_initial) {
    return absl::InvalidArgumentError(
        "reconnect backoff must satisfy 0 < initial <= max");
  }
  if (options.keepalive_interval <= absl::ZeroDuration() ||
      options.keepalive_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "keepalive_interval and keepalive_timeout must be > 0");
  }
  return ValidatePeers(options.node_id, options.peers);
}

// ---------------------------------------------------------------------------
// Outbound: one Peer per remote node.

// The queue, sender thread and current link of one remote node. Join
// returns only once the last link is destroyed (call context included), so
// after it no gRPC thread touches the peer and its channel is released on
// the caller's thread.
class GrpcTransport::Peer {
 public:
  Peer(const GrpcTransportOptions& options, raft::NodeId id,
       std::string address)
      : cluster_name_(options.cluster_name),
        node_id_(options.node_id),
        id_(id),
        address_(std::move(address)),
        queue_bytes_max_(options.peer_queue_bytes_max),
        frame_bytes_max_(static_cast<uint64_t>(options.frame_bytes_max)),
        credentials_(PeerCredentials(options)),
        channel_arguments_(PeerChannelArguments(options)),
        backoff_(options.reconnect_backoff_initial,
                 options.reconnect_backoff_max,
                 options.node_id * 0x9e3779b97f4a7c15ULL ^ id) {}

  ~Peer() { CHECK(!sender_.joinable()) << "peer " << id_ << " not stopped"; }

  raft::NodeId id() const { return id_; }
  const std::string& address() const { return address_; }

  // The owner keeps the peer alive until Join returns.
  void StartSender() {
    sender_ = std::thread([this] { Run(); });
  }

  // Stopping is two-phase so that a transport stops all peers in parallel.
  void BeginStop() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      reachable_.store(false, std::memory_order_release);
    }
    {
      std::lock_guard<std::mutex> lock(redial_mu_);
      redial_stop_ = true;
    }
    redial_cv_.notify_all();
  }
  void Join() {
    if (sender_.joinable()) sender_.join();
    absl::MutexLock lock(&links_->mu);
    links_->mu.Await(absl::Condition(
        +[](LinkCount* count) { return count->live == 0; }, links_.get()));
  }

  bool reachable() const { return reachable_.load(std::memory_order_acquire); }

  // Loop thread. See Transport::Send.
  bool Enqueue(std::vector<raft::Message>* messages);

  void FillStats(PeerStats* stats) const;

 private:
  class Link;
  // Links alive, including one whose OnDone already ran but whose members
  // are still being destroyed. Links hold a reference, so the count
  // outlives the peer while the last link signals.
  struct LinkCount {
    absl::Mutex mu;
    int live ABSL_GUARDED_BY(mu) = 0;
  };

  void Run();
  // Writes frames on `link` until it breaks or the peer stops; returns
  // once the link is gone (OnDone ran). True if the link was ever up.
  bool ServeLink(Link* link);
  bool SenderHasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || link_broken_ ||
           (link_up_ && !write_in_flight_ && pending_.messages_size() > 0);
  }
  bool LinkGone() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return link_ == nullptr;
  }
  // Moves what is pending (up to one frame's worth) into frame_.
  void TakeFrame() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MarkBroken() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Reactions of the current link (gRPC threads).
  void OnLinkAccepted(bool ok);
  void OnLinkReadFailed();
  void OnLinkWriteDone(bool ok);
  void OnLinkDone(const grpc::Status& status);

  const std::string cluster_name_;
  const raft::NodeId node_id_;
  const raft::NodeId id_;
  const std::string address_;
  const uint64_t queue_bytes_max_;
  const uint64_t frame_bytes_max_;
  const std::shared_ptr<grpc::ChannelCredentials> credentials_;
  const grpc::ChannelArguments channel_arguments_;

  const std::shared_ptr<LinkCount> links_ = std::make_shared<LinkCount>();

  // Sender thread only.
  std::thread sender_;
  // A new channel (so a new connection) for every dial: gRPC's own
  // reconnect backoff is a gRPC timer, and Debian's gRPC waits for its
  // timers with absl's wall-clock waits, so after a wall-clock step an old
  // channel may not reconnect for the length of the step. Each link keeps
  // the stub it was started on until it is gone.
  std::unique_ptr<RaftTransport::Stub> stub_;
  Backoff backoff_;
  // On the monotonic clock: a wall-clock step must not delay a redial.
  std::chrono::steady_clock::time_point redial_at_;

  // The sender's wait before a redial (until redial_at_ or BeginStop).
  // Not on mu_: absl's timed waits (20220623) sleep until an absolute
  // wall-clock time, so a wall-clock step (NTP; libfaketime in the fault
  // harness) would stretch the backoff by the size of the step, while
  // std::condition_variable waits on the monotonic clock.
  std::mutex redial_mu_;
  std::condition_variable redial_cv_;
  bool redial_stop_ = false;  // guarded by redial_mu_

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // The link being dialed or served: created by the sender thread, cleared
  // by its OnDone. At most one exists at a time.
  Link* link_ ABSL_GUARDED_BY(mu_) = nullptr;
  // The receiver accepted the handshake (sent its initial metadata).
  bool link_up_ ABSL_GUARDED_BY(mu_) = false;
  // A read or write failed: the sender starts no more writes.
  bool link_broken_ ABSL_GUARDED_BY(mu_) = false;
  bool read_failed_ ABSL_GUARDED_BY(mu_) = false;
  // frame_ is owned by gRPC until the write completes.
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  // Enqueue calls between starting a write and StartWrite returning; the
  // sender keeps its hold on the link until there are none.
  int writes_starting_ ABSL_GUARDED_BY(mu_) = 0;
  transport::MessageBatch frame_ ABSL_GUARDED_BY(mu_);
  uint64_t frame_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // Messages waiting for the next frame; pending_bytes_ ≤ queue_bytes_max_.
  transport::MessageBatch pending_ ABSL_GUARDED_BY(mu_);
  uint64_t pending_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  PeerStats stats_ ABSL_GUARDED_BY(mu_);
  // link_up_ && !link_broken_ && !stopping_, readable without the lock.
  std::atomic<bool> reachable_{false};
};

// One stream to the peer. The sender thread starts it and holds it (so
// gRPC keeps it alive until the sender lets go); writes are started by
// whoever finds the link idle with messages queued: the sender, Enqueue
// (the loop thread, under the sender's hold) or the previous write's
// OnWriteDone. Its reactions report to the peer. Deletes itself in OnDone.
class GrpcTransport::Peer::Link final
    : public grpc::ClientBidiReactor<MessageBatch, StreamFeedback> {
 public:
  explicit Link(Peer* peer) : registration_(peer->links_), peer_(peer) {
    context_.AddMetadata(kClusterKey, peer_->cluster_name_);
    context_.AddMetadata(kFromNodeKey, absl::StrCat(peer_->node_id_));
    context_.AddMetadata(kToNodeKey, absl::StrCat(peer_->id_));
    // Not wait_for_ready: while the peer is down the stream fails at once
    // and the sender redials after its own backoff, on a new channel.
    context_.set_wait_for_ready(false);
  }

  void Start() {
    peer_->stub_->async()->Stream(&context_, this);
    AddHold();  // released by Release()
    StartRead(&feedback_);
    StartCall();
  }
  void Cancel() { context_.TryCancel(); }
  void Release() { RemoveHold(); }

  void OnReadInitialMetadataDone(bool ok) override {
    peer_->OnLinkAccepted(ok);
  }
  void OnReadDone(bool ok) override {
    // The receiver writes nothing today; whatever it writes is ignored.
    if (ok) {
      StartRead(&feedback_);
      return;
    }
    peer_->OnLinkReadFailed();
  }
  void OnWriteDone(bool ok) override { peer_->OnLinkWriteDone(ok); }
  void OnDone(const grpc::Status& status) override {
    peer_->OnLinkDone(status);
    delete this;
  }

 private:
  // Counts the link in LinkCount while it exists. Declared first, so it is
  // destroyed last, after the call context.
  class Registration {
   public:
    explicit Registration(std::shared_ptr<LinkCount> count)
        : count_(std::move(count)) {
      absl::MutexLock lock(&count_->mu);
      ++count_->live;
    }
    ~Registration() {
      absl::MutexLock lock(&count_->mu);
      --count_->live;
    }

   private:
    const std::shared_ptr<LinkCount> count_;
  };

  Registration registration_;
  Peer* const peer_;
  grpc::ClientContext context_;
  StreamFeedback feedback_;
};

bool GrpcTransport::Peer::Enqueue(std::vector<raft::Message>* messages) {
  if (!reachable()) {
    absl::MutexLock lock(&mu_);
    stats_.dropped_unreachable += messages->size();
    return false;
  }
  // Sizing and allocation happen before taking the lock, so the sender
  // thread never waits for more than a few pointer moves.
  std::vector<std::unique_ptr<raft::Message>> owned;
  owned.reserve(messages->size());
  uint64_t bytes = 0;
  uint64_t oversize = 0;
  for (raft::Message& message : *messages) {
    const uint64_t size = FramedSize(message);
    if (size > frame_bytes_max_) {
      ++oversize;
      continue;
    }
    bytes += size;
    owned.push_back(std::make_unique<raft::Message>(std::move(message)));
  }
  absl::MutexLock lock(&mu_);
  if (oversize > 0) {
    const uint64_t before = stats_.dropped_oversize;
    stats_.dropped_oversize += oversize;
    if (ShouldLogCount(before, stats_.dropped_oversize)) {
      LOG(WARNING) << "raft message larger than frame_bytes_max dropped peer="
                   << id_ << " frame_bytes_max=" << frame_bytes_max_
                   << " dropped_total=" << stats_.dropped_oversize;
    }
  }
  if (!reachable()) {
    stats_.dropped_unreachable += owned.size();
    return false;
  }
  if (pending_bytes_ + bytes > queue_bytes_max_) {
    stats_.dropped_queue_full += owned.size();
    return false;
  }
  for (std::unique_ptr<raft::Message>& message : owned) {
    pending_.mutable_messages()->AddAllocated(message.release());
  }
  pending_bytes_ += bytes;
  if (link_ != nullptr && link_up_ && !link_broken_ && !stopping_ &&
      !write_in_flight_) {
    // An idle link: write from this thread instead of waking the sender
    // (one thread hand-off less per message on a lightly loaded link).
    TakeFrame();
    write_in_flight_ = true;
    ++writes_starting_;
    Link* const link = link_;
    mu_.Unlock();
    link->StartWrite(&frame_);
    mu_.Lock();
    --writes_starting_;
  }
  return oversize == 0;
}

void GrpcTransport::Peer::TakeFrame() {
  DCHECK_GT(pending_.messages_size(), 0);
  if (pending_bytes_ <= frame_bytes_max_) {
    frame_.Swap(&pending_);
    frame_bytes_ = pending_bytes_;
    pending_bytes_ = 0;
    return;
  }
  // More than one frame may carry (rare: a slow link and large appends):
  // send the oldest frame's worth, the rest follows in the next frame.
  auto* queued = pending_.mutable_messages();
  int count = 0;
  uint64_t bytes = 0;
  for (; count < queued->size(); ++count) {
    const uint64_t size = FramedSize(queued->Get(count));
    if (bytes + size > frame_bytes_max_) break;
    bytes += size;
  }
  CHECK_GT(count, 0) << "a queued message exceeds frame_bytes_max";
  std::vector<raft::Message*> taken(count);
  queued->ExtractSubrange(0, count, taken.data());
  for (raft::Message* message : taken) {
    frame_.mutable_messages()->AddAllocated(message);
  }
  frame_bytes_ = bytes;
  pending_bytes_ -= bytes;
}

void GrpcTransport::Peer::MarkBroken() {
  link_broken_ = true;
  reachable_.store(false, std::memory_order_release);
}

void GrpcTransport::Peer::Run() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(redial_mu_);
      redial_cv_.wait_until(lock, redial_at_, [this] { return redial_stop_; });
    }
    // Released after the previous link is gone (ServeLink waits for it).
    stub_ = RaftTransport::NewStub(
        grpc::CreateCustomChannel(address_, credentials_, channel_arguments_));
    Link* link;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      link = new Link(this);
      link_ = link;
      link_up_ = false;
      link_broken_ = false;
      read_failed_ = false;
    }
    link->Start();
    const bool was_up = ServeLink(link);
    if (was_up) backoff_.Reset();
    redial_at_ = std::chrono::steady_clock::now() +
                 absl::ToChronoNanoseconds(backoff_.Next());
  }
}

bool GrpcTransport::Peer::ServeLink(Link* link) {
  bool was_up = false;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &Peer::SenderHasWork));
      was_up |= link_up_;
      if (stopping_ || link_broken_) break;
      TakeFrame();
      write_in_flight_ = true;
    }
    // frame_ stays untouched until OnLinkWriteDone (write_in_flight_).
    link->StartWrite(&frame_);
  }
  // No more writes on this link. Cancel it unless the call has already
  // ended (a failed read means its status is in), then let gRPC finish it.
  // A write being started by Enqueue still needs the hold.
  bool cancel;
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* starting) { return *starting == 0; }, &writes_starting_));
    cancel = stopping_ || !read_failed_;
  }
  if (cancel) link->Cancel();
  link->Release();
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(this, &Peer::LinkGone));
  return was_up;
}

void GrpcTransport::Peer::OnLinkAccepted(bool ok) {
  // Not ok: refused (trailers-only) or failed before the handshake; the
  // failed read that follows ends the link.
  if (!ok) return;
  absl::MutexLock lock(&mu_);
  link_up_ = true;
  if (stopping_ || link_broken_) return;
  ++stats_.connects;
  stats_.last_error.clear();
  reachable_.store(true, std::memory_order_release);
  LOG(INFO) << "raft link up peer=" << id_ << " node=" << node_id_
            << " address=" << address_;
}

void GrpcTransport::Peer::OnLinkReadFailed() {
  absl::MutexLock lock(&mu_);
  read_failed_ = true;
  MarkBroken();
}

void GrpcTransport::Peer::OnLinkWriteDone(bool ok) {
  MessageBatch written;  // destroyed after the lock is released
  Link* next = nullptr;
  {
    absl::MutexLock lock(&mu_);
    DCHECK(write_in_flight_);
    write_in_flight_ = false;
    if (ok) {
      ++stats_.batches_sent;
      stats_.messages_sent += frame_.messages_size();
      stats_.bytes_sent += frame_bytes_;
    } else {
      stats_.dropped_disconnected += frame_.messages_size();
      MarkBroken();
    }
    written.Swap(&frame_);
    frame_bytes_ = 0;
    if (ok && !stopping_ && !link_broken_ && pending_.messages_size() > 0) {
      // What queued meanwhile goes out from this reaction (always allowed
      // on the link) rather than through the sender thread.
      TakeFrame();
      write_in_flight_ = true;
      next = link_;
    }
  }
  if (next != nullptr) next->StartWrite(&frame_);
}

void GrpcTransport::Peer::OnLinkDone(const grpc::Status& status) {
  MessageBatch dropped;  // destroyed after the lock is released
  absl::MutexLock lock(&mu_);
  DCHECK(!write_in_flight_);
  stats_.dropped_disconnected += pending_.messages_size();
  dropped.Swap(&pending_);
  pending_bytes_ = 0;
  const bool was_up = link_up_;
  link_ = nullptr;
  link_up_ = false;
  MarkBroken();
  if (stopping_) return;
  const std::string error = Describe(status);
  if (was_up) {
    LOG(WARNING) << "raft link down peer=" << id_ << " node=" << node_id_
                 << " address=" << address_ << " status=" << error;
  } else if (error != stats_.last_error) {
    // Refusals repeat at every redial: log only when the reason changes.
    LOG(WARNING) << "raft link refused or failed peer=" << id_
                 << " node=" << node_id_ << " address=" << address_
                 << " status=" << error;
  }
  stats_.last_error = error;
}

void GrpcTransport::Peer::FillStats(PeerStats* stats) const {
  absl::MutexLock lock(&mu_);
  *stats = stats_;
  stats->reachable = reachable();
  stats->queued_bytes = pending_bytes_;
}

// ---------------------------------------------------------------------------
// Inbound.

struct GrpcTransport::InboundCounters {
  std::atomic<uint64_t> batches{0};
  std::atomic<uint64_t> messages{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> bad_to{0};
  std::atomic<uint64_t> bad_from{0};
};

// One inbound stream: admits or refuses it, then reads frames one at a time
// and delivers each before reading the next (gRPC's flow control then
// slows a sender that outpaces this node). Deletes itself in OnDone.
class GrpcTransport::InboundStream final
    : public grpc::ServerBidiReactor<MessageBatch, StreamFeedback> {
 public:
  InboundStream(GrpcTransport* transport, grpc::CallbackServerContext* context)
      : transport_(transport) {
    const grpc::Status status = transport_->Admit(*context, &from_, &counters_);
    if (!status.ok()) {
      Finish(status);
      return;
    }
    // Tells the sender the link is up before it writes anything.
    StartSendInitialMetadata();
    StartRead(&frame_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the sender ended or cancelled the stream
      Finish(grpc::Status::OK);
      return;
    }
    const grpc::Status status =
        transport_->Deliver(from_, counters_.get(), &frame_);
    if (!status.ok()) {
      Finish(status);
      return;
    }
    StartRead(&frame_);
  }

  void OnDone() override { delete this; }

 private:
  GrpcTransport* const transport_;
  raft::NodeId from_ = raft::kNoNode;
  std::shared_ptr<InboundCounters> counters_;
  MessageBatch frame_;
};

class GrpcTransport::Service final : public RaftTransport::CallbackService {
 public:
  explicit Service(GrpcTransport* transport) : transport_(transport) {}

  grpc::ServerBidiReactor<MessageBatch, StreamFeedback>* Stream(
      grpc::CallbackServerContext* context) override {
    return new InboundStream(transport_, context);
  }

 private:
  GrpcTransport* const transport_;
};

namespace {

// The value of metadata `key`, or empty.
std::string Metadata(const grpc::CallbackServerContext& context,
                     const char* key) {
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find(key);
  if (it == metadata.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

}  // namespace

grpc::Status GrpcTransport::Admit(const grpc::CallbackServerContext& context,
                                  raft::NodeId* from,
                                  std::shared_ptr<InboundCounters>* counters) {
  const std::string cluster = Metadata(context, kClusterKey);
  const std::string from_text = Metadata(context, kFromNodeKey);
  const std::string to_text = Metadata(context, kToNodeKey);
  raft::NodeId to = raft::kNoNode;
  grpc::Status refusal;
  if (cluster.empty() || !absl::SimpleAtoi(from_text, from) ||
      !absl::SimpleAtoi(to_text, &to) || *from == raft::kNoNode) {
    refusal = grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("raft stream without valid ", kClusterKey, ", ",
                     kFromNodeKey, " and ", kToNodeKey, " metadata"));
  } else if (cluster != options_.cluster_name) {
    refusal = grpc::Status(
        grpc::StatusCode::PERMISSION_DENIED,
        absl::StrCat("node ", *from, " belongs to cluster \"", cluster,
                     "\", this node (", options_.node_id, ") to cluster \"",
                     options_.cluster_name, "\""));
  } else if (to != options_.node_id) {
    refusal = grpc::Status(
        grpc::StatusCode::FAILED_PRECONDITION,
        absl::StrCat("node ", *from, " dialed node ", to, " but reached node ",
                     options_.node_id, " (check the peer addresses)"));
  } else if (!IsPeer(*from)) {
    refusal =
        grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                     absl::StrCat("node ", *from, " is not a peer of node ",
                                  options_.node_id, " in cluster \"",
                                  options_.cluster_name, "\""));
  }
  if (!refusal.ok()) {
    streams_refused_.fetch_add(1, std::memory_order_relaxed);
    LOG(WARNING) << "raft stream refused remote=" << context.peer()
                 << " status=" << Describe(refusal);
    return refusal;
  }
  absl::MutexLock lock(&inbound_mu_);
  std::shared_ptr<InboundCounters>& entry = inbound_[*from];
  if (entry == nullptr) entry = std::make_shared<InboundCounters>();
  *counters = entry;
  LOG(INFO) << "raft stream accepted from=" << *from
            << " remote=" << context.peer();
  return grpc::Status::OK;
}

grpc::Status GrpcTransport::Deliver(raft::NodeId from,
                                    InboundCounters* counters,
                                    MessageBatch* frame) {
  if (!IsPeer(from)) {
    streams_refused_.fetch_add(1, std::memory_order_relaxed);
    LOG(WARNING) << "raft stream ended: sender no longer a peer from=" << from;
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("node ", from, " is no longer a peer of ",
                                     options_.node_id));
  }
  const uint64_t bytes = frame->ByteSizeLong();
  std::vector<raft::Message> messages;
  messages.reserve(frame->messages_size());
  uint64_t bad_to = 0;
  uint64_t bad_from = 0;
  for (raft::Message& message : *frame->mutable_messages()) {
    if (message.to() != options_.node_id) {
      ++bad_to;
    } else if (message.from() != from) {
      ++bad_from;
    } else {
      messages.push_back(std::move(message));
    }
  }
  frame->Clear();
  counters->batches.fetch_add(1, std::memory_order_relaxed);
  counters->messages.fetch_add(messages.size(), std::memory_order_relaxed);
  counters->bytes.fetch_add(bytes, std::memory_order_relaxed);
  if (bad_to + bad_from > 0) {
    const uint64_t before =
        counters->bad_to.fetch_add(bad_to, std::memory_order_relaxed) +
        counters->bad_from.fetch_add(bad_from, std::memory_order_relaxed);
    if (ShouldLogCount(before, before + bad_to + bad_from)) {
      LOG(WARNING) << "raft messages with wrong addressing dropped from="
                   << from << " bad_to=" << bad_to << " bad_from=" << bad_from;
    }
  }
  absl::ReaderMutexLock lock(&handler_mu_);
  if (handler_stopped_) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "raft transport shutting down");
  }
  if (!messages.empty()) handler_(from, std::move(messages));
  return grpc::Status::OK;
}

// ---------------------------------------------------------------------------
// GrpcTransport.

absl::StatusOr<std::unique_ptr<GrpcTransport>> GrpcTransport::Start(
    const GrpcTransportOptions& options, InboundHandler handler) {
  RETURN_IF_ERROR(ValidateGrpcTransportOptions(options));
  if (handler == nullptr) {
    return absl::InvalidArgumentError("an inbound handler is required");
  }
  std::unique_ptr<GrpcTransport> transport(
      new GrpcTransport(options, std::move(handler)));
  RETURN_IF_ERROR(transport->Listen());
  RETURN_IF_ERROR(transport->SetPeers(options.peers));
  return transport;
}

GrpcTransport::GrpcTransport(const GrpcTransportOptions& options,
                             InboundHandler handler)
    : options_(options),
      handler_(std::move(handler)),
      service_(std::make_unique<Service>(this)) {}

GrpcTransport::~GrpcTransport() { Shutdown(); }

absl::Status GrpcTransport::Listen() {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options_.listen_address,
                           ListenerCredentials(options_), &port);
  builder.RegisterService(service_.get());
  builder.SetMaxReceiveMessageSize(options_.frame_bytes_max);
  // Two nodes configured with the same cluster address must not share the
  // port (the kernel would split connections between them).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             ToMs(options_.keepalive_interval));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             ToMs(options_.keepalive_timeout));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Peers ping every keepalive_interval even on idle links: never treat
  // that as abuse (the default would close the connection).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
      ToMs(options_.keepalive_interval) / 2);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on cluster address ", options_.listen_address,
        " (in use, or not a valid host:port)"));
  }
  const std::string& address = options_.listen_address;
  bound_address_ =
      absl::StrCat(address.substr(0, address.rfind(':')), ":", port);
  LOG(INFO) << "raft transport listening address=" << bound_address_
            << " node=" << options_.node_id
            << " cluster=" << options_.cluster_name;
  return absl::OkStatus();
}

absl::Status GrpcTransport::SetPeers(const PeerAddresses& peers) {
  RETURN_IF_ERROR(ValidatePeers(options_.node_id, peers));
  std::vector<std::shared_ptr<Peer>> removed;
  {
    absl::MutexLock lock(&peers_mu_);
    if (stopped_) {
      return absl::FailedPreconditionError("raft transport is shut down");
    }
    std::vector<raft::NodeId> gone;
    for (const auto& [id, peer] : peers_) {
      const auto it = peers.find(id);
      if (it == peers.end() || it->second != peer->address()) {
        gone.push_back(id);
      }
    }
    for (raft::NodeId id : gone) {
      removed.push_back(std::move(peers_[id]));
      peers_.erase(id);
    }
    for (const auto& [id, address] : peers) {
      if (peers_.contains(id)) continue;
      auto peer = std::make_shared<Peer>(options_, id, address);
      peer->StartSender();
      peers_.emplace(id, std::move(peer));
      LOG(INFO) << "raft peer added peer=" << id << " address=" << address;
    }
  }
  for (const auto& peer : removed) peer->BeginStop();
  for (const auto& peer : removed) {
    peer->Join();
    LOG(INFO) << "raft peer removed peer=" << peer->id()
              << " address=" << peer->address();
  }
  return absl::OkStatus();
}

bool GrpcTransport::IsPeer(raft::NodeId node) const {
  absl::ReaderMutexLock lock(&peers_mu_);
  return !stopped_ && peers_.contains(node);
}

bool GrpcTransport::Send(raft::NodeId to, std::vector<raft::Message> messages) {
  if (messages.empty()) return true;
  for (const raft::Message& message : messages) {
    DCHECK_EQ(message.to(), to);
    DCHECK_EQ(message.from(), options_.node_id);
  }
  std::shared_ptr<Peer> peer;
  {
    absl::ReaderMutexLock lock(&peers_mu_);
    const auto it = peers_.find(to);
    if (it != peers_.end()) peer = it->second;
  }
  if (peer == nullptr) {
    dropped_unknown_peer_.fetch_add(messages.size(), std::memory_order_relaxed);
    return false;
  }
  return peer->Enqueue(&messages);
}

bool GrpcTransport::PeerReachable(raft::NodeId peer) const {
  absl::ReaderMutexLock lock(&peers_mu_);
  const auto it = peers_.find(peer);
  return it != peers_.end() && it->second->reachable();
}

TransportStats GrpcTransport::Stats() const {
  TransportStats stats;
  {
    absl::ReaderMutexLock lock(&peers_mu_);
    for (const auto& [id, peer] : peers_) peer->FillStats(&stats.peers[id]);
  }
  {
    absl::MutexLock lock(&inbound_mu_);
    for (const auto& [id, counters] : inbound_) {
      PeerStats& peer = stats.peers[id];
      peer.batches_received = counters->batches.load();
      peer.messages_received = counters->messages.load();
      peer.bytes_received = counters->bytes.load();
      peer.rejected_bad_to = counters->bad_to.load();
      peer.rejected_bad_from = counters->bad_from.load();
    }
  }
  stats.dropped_unknown_peer = dropped_unknown_peer_.load();
  stats.streams_refused = streams_refused_.load();
  return stats;
}

void GrpcTransport::Shutdown() {
  std::vector<std::shared_ptr<Peer>> peers;
  {
    absl::MutexLock lock(&peers_mu_);
    if (stopped_) return;
    stopped_ = true;
    for (auto& [id, peer] : peers_) peers.push_back(std::move(peer));
    peers_.clear();
  }
  {
    // Waits for running handler calls; none starts afterwards.
    absl::MutexLock lock(&handler_mu_);
    handler_stopped_ = true;
  }
  for (const auto& peer : peers) peer->BeginStop();
  for (const auto& peer : peers) peer->Join();
  if (server_ != nullptr) {
    // Inbound streams never end by themselves: cancel them now.
    server_->Shutdown(absl::ToChronoTime(absl::Now()));
    server_->Wait();
  }
  LOG(INFO) << "raft transport stopped node=" << options_.node_id;
}

}  // namespace spate::server
