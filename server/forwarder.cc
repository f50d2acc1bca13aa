#include "server/forwarder.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/log.h"
#include "server/grpc_status.h"

namespace spate::server {
namespace {

// Forwarded unary calls wait at most this long (a publish waits for its
// commit; a slow quorum answers UNAVAILABLE well before).
constexpr absl::Duration kForwardDeadline = absl::Seconds(30);

void Prepare(grpc::ClientContext* context, int hops,
             const ClientLinkOptions& link) {
  link.Prepare(context);
  context->AddMetadata(kHopsMetadataKey, absl::StrCat(hops + 1));
  context->set_deadline(absl::ToChronoTime(absl::Now() + kForwardDeadline));
}

template <typename Request, typename Response>
struct UnaryCall {
  grpc::ClientContext context;
  Request request;
  Response response;
};

absl::Status NoRoute(raft::NodeId to) {
  return absl::UnavailableError(
      absl::StrCat("no client address known for node ", to, "; retry"));
}

// Relays one subscription to the channel's leader. The upstream side
// (acks, half-close, cancel from the local client stream) may call in from
// any thread; a hold keeps the reactor alive until the leader's stream has
// ended, and calls into it are counted so the hold is released only when
// no call is in progress. No lock is held while calling into gRPC.
class SubscribeRelay : public grpc::ClientBidiReactor<SubscribeFrame, Delivery>,
                       public SubscriptionUpstream {
 public:
  static std::shared_ptr<SubscribeRelay> Start(
      Streaming::Stub* stub, int hops, const ClientLinkOptions& link,
      const SubscriptionRequest& request,
      std::shared_ptr<SubscriberStream> local) {
    std::shared_ptr<SubscribeRelay> relay(new SubscribeRelay(std::move(local)));
    relay->self_ = relay;  // released in OnDone
    Prepare(&relay->context_, hops, link);
    relay->context_.set_deadline(std::chrono::system_clock::time_point::max());
    *relay->first_.mutable_request() = request;
    stub->async()->Subscribe(&relay->context_, relay.get());
    relay->AddHold();  // released once the leader's stream ended
    relay->write_outstanding_ = true;
    relay->StartWrite(&relay->first_);
    relay->StartRead(&relay->delivery_);
    relay->StartCall();
    return relay;
  }

  // ---- SubscriptionUpstream (local client side, any thread) ----
  void Acks(std::vector<uint64_t> seqs) override {
    {
      absl::MutexLock lock(&mu_);
      if (closing_) return;
      for (uint64_t seq : seqs) pending_.add_acks()->set_sequence(seq);
    }
    Kick();
  }
  void HalfClosed() override {
    {
      absl::MutexLock lock(&mu_);
      closing_ = true;  // the leader closes and then ends the stream
    }
    Kick();
  }
  void Gone() override {
    if (Enter()) {
      context_.TryCancel();
      Leave();
    }
  }

  // ---- Reactions (gRPC threads) ----
  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      write_outstanding_ = false;
      if (!ok) closing_ = true;
    }
    Kick();
  }
  void OnReadDone(bool ok) override {
    if (!ok) {  // the leader ended the stream; OnDone has its status
      ReleaseHold();
      return;
    }
    bool keep = true;
    if (delivery_.has_response()) {
      keep = local_->Started(delivery_.response(), self_);
    }
    if (keep && delivery_.msgs_size() > 0) {
      std::vector<MsgProto> msgs(
          std::make_move_iterator(delivery_.mutable_msgs()->begin()),
          std::make_move_iterator(delivery_.mutable_msgs()->end()));
      keep = local_->Deliver(&msgs);
    }
    delivery_.Clear();
    if (!keep) context_.TryCancel();  // the local client is gone
    StartRead(&delivery_);
  }
  void OnDone(const grpc::Status& status) override {
    local_->End(FromGrpcStatus(status));
    std::shared_ptr<SubscribeRelay> self = std::move(self_);  // may free us
  }

 private:
  explicit SubscribeRelay(std::shared_ptr<SubscriberStream> local)
      : local_(std::move(local)) {}

  // Claims the right to call into the reactor (false after the hold went).
  bool Enter() {
    absl::MutexLock lock(&mu_);
    if (hold_released_) return false;
    ++calls_;
    return true;
  }
  void Leave() {
    bool release = false;
    {
      absl::MutexLock lock(&mu_);
      --calls_;
      release = release_wanted_ && calls_ == 0 && !hold_released_;
      if (release) hold_released_ = true;
    }
    if (release) RemoveHold();
  }
  void ReleaseHold() {
    bool release = false;
    {
      absl::MutexLock lock(&mu_);
      release_wanted_ = true;
      release = calls_ == 0 && !hold_released_;
      if (release) hold_released_ = true;
    }
    if (release) RemoveHold();
  }
  // Starts the next write (acks, or the half-close) if none is outstanding.
  void Kick() {
    if (!Enter()) return;
    enum { kNothing, kWrite, kWritesDone } act = kNothing;
    {
      absl::MutexLock lock(&mu_);
      if (!write_outstanding_ && !writes_done_) {
        if (pending_.acks_size() > 0) {
          writing_.Clear();
          writing_.mutable_acks()->Swap(&pending_);
          write_outstanding_ = true;
          act = kWrite;
        } else if (closing_) {
          writes_done_ = true;
          act = kWritesDone;
        }
      }
    }
    if (act == kWrite) StartWrite(&writing_);
    if (act == kWritesDone) StartWritesDone();
    Leave();
  }

  grpc::ClientContext context_;
  std::shared_ptr<SubscriberStream> local_;
  std::shared_ptr<SubscribeRelay> self_;
  SubscribeFrame first_;
  SubscribeFrame writing_;  // owned by the outstanding write
  Delivery delivery_;

  absl::Mutex mu_;
  AckBatch pending_ ABSL_GUARDED_BY(mu_);
  bool write_outstanding_ ABSL_GUARDED_BY(mu_) = false;
  bool writes_done_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  bool release_wanted_ ABSL_GUARDED_BY(mu_) = false;
  bool hold_released_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

void RelaySubscription(Streaming::Stub* stub, int hops,
                       const SubscriptionRequest& request,
                       std::shared_ptr<SubscriberStream> stream) {
  // Relays for gateways go to another cluster: no cluster token.
  SubscribeRelay::Start(stub, hops, ClientLinkOptions(), request,
                        std::move(stream));
}

int IncomingHops(const grpc::ServerContextBase& context) {
  auto it = context.client_metadata().find(kHopsMetadataKey);
  if (it == context.client_metadata().end()) return 0;
  int hops = 0;
  if (!absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()),
                        &hops) ||
      hops < 0) {
    return kForwardHopsMax;  // garbage: never forward it further
  }
  return hops;
}

Forwarder::Forwarder(
    absl::flat_hash_map<raft::NodeId, std::string> client_addresses,
    ClientLinkOptions link)
    : link_(std::move(link)), addresses_(std::move(client_addresses)) {}

bool Forwarder::Knows(raft::NodeId node) const {
  absl::MutexLock lock(&mu_);
  return addresses_.contains(node);
}

std::string Forwarder::AddressOf(raft::NodeId node) const {
  absl::MutexLock lock(&mu_);
  auto it = addresses_.find(node);
  return it == addresses_.end() ? std::string() : it->second;
}

void Forwarder::SetAddresses(
    absl::flat_hash_map<raft::NodeId, std::string> client_addresses) {
  absl::MutexLock lock(&mu_);
  for (const auto& [node, address] : client_addresses) {
    auto it = addresses_.find(node);
    if (it != addresses_.end() && it->second != address) {
      // In-flight calls keep the old channel alive by themselves; a new
      // stub serves new calls.
      retired_.push_back(std::move(stubs_[node]));
      stubs_.erase(node);
    }
  }
  addresses_ = std::move(client_addresses);
}

Streaming::Stub* Forwarder::StubFor(raft::NodeId node) {
  absl::MutexLock lock(&mu_);
  auto stub = stubs_.find(node);
  if (stub != stubs_.end()) return stub->second.get();
  auto address = addresses_.find(node);
  if (address == addresses_.end()) return nullptr;
  auto channel = link_.Dial(address->second);
  auto [it, inserted] = stubs_.emplace(node, Streaming::NewStub(channel));
  return it->second.get();
}

void Forwarder::Connect(
    raft::NodeId to, int hops, const ConnectRequest& request,
    absl::AnyInvocable<void(absl::StatusOr<ConnectResponse>)> done) {
  Streaming::Stub* stub = StubFor(to);
  if (stub == nullptr) {
    done(NoRoute(to));
    return;
  }
  auto call = std::make_shared<UnaryCall<ConnectRequest, ConnectResponse>>();
  call->request = request;
  Prepare(&call->context, hops, link_);
  auto shared = std::make_shared<decltype(done)>(std::move(done));
  stub->async()->Connect(&call->context, &call->request, &call->response,
                         [call, shared](grpc::Status status) {
                           if (status.ok()) {
                             (*shared)(call->response);
                           } else {
                             (*shared)(FromGrpcStatus(status));
                           }
                         });
}

void Forwarder::Ping(raft::NodeId to, int hops, const PingRequest& request,
                     absl::AnyInvocable<void(absl::Status)> done) {
  Streaming::Stub* stub = StubFor(to);
  if (stub == nullptr) {
    done(NoRoute(to));
    return;
  }
  auto call = std::make_shared<UnaryCall<PingRequest, PingResponse>>();
  call->request = request;
  Prepare(&call->context, hops, link_);
  auto shared = std::make_shared<decltype(done)>(std::move(done));
  stub->async()->Ping(&call->context, &call->request, &call->response,
                      [call, shared](grpc::Status status) {
                        (*shared)(FromGrpcStatus(status));
                      });
}

void Forwarder::Close(raft::NodeId to, int hops, const CloseRequest& request,
                      absl::AnyInvocable<void(absl::Status)> done) {
  Streaming::Stub* stub = StubFor(to);
  if (stub == nullptr) {
    done(NoRoute(to));
    return;
  }
  auto call = std::make_shared<UnaryCall<CloseRequest, CloseResponse>>();
  call->request = request;
  Prepare(&call->context, hops, link_);
  auto shared = std::make_shared<decltype(done)>(std::move(done));
  stub->async()->Close(&call->context, &call->request, &call->response,
                       [call, shared](grpc::Status status) {
                         (*shared)(FromGrpcStatus(status));
                       });
}

void Forwarder::Unsubscribe(raft::NodeId to, int hops,
                            const UnsubscribeRequest& request,
                            absl::AnyInvocable<void(absl::Status)> done) {
  Streaming::Stub* stub = StubFor(to);
  if (stub == nullptr) {
    done(NoRoute(to));
    return;
  }
  auto call =
      std::make_shared<UnaryCall<UnsubscribeRequest, UnsubscribeResponse>>();
  call->request = request;
  Prepare(&call->context, hops, link_);
  auto shared = std::make_shared<decltype(done)>(std::move(done));
  stub->async()->Unsubscribe(&call->context, &call->request, &call->response,
                             [call, shared](grpc::Status status) {
                               (*shared)(FromGrpcStatus(status));
                             });
}

void Forwarder::PublishBatch(
    raft::NodeId to, int hops, std::vector<PubMsg> msgs,
    absl::AnyInvocable<void(std::vector<PubAck>)> done) {
  auto fail_all = [](const std::vector<PubMsg>& msgs,
                     const absl::Status& status) {
    std::vector<PubAck> acks;
    for (const PubMsg& msg : msgs) {
      PubAck& ack = acks.emplace_back();
      ack.set_guid(msg.guid());
      ack.set_error(std::string(status.message()));
      ack.set_error_code(static_cast<int>(status.code()));
    }
    return acks;
  };
  Streaming::Stub* stub = StubFor(to);
  if (stub == nullptr) {
    done(fail_all(msgs, NoRoute(to)));
    return;
  }
  auto call = std::make_shared<UnaryCall<PubBatch, PubAckBatch>>();
  for (PubMsg& msg : msgs) *call->request.add_msgs() = std::move(msg);
  Prepare(&call->context, hops, link_);
  auto shared = std::make_shared<decltype(done)>(std::move(done));
  stub->async()->PublishBatch(
      &call->context, &call->request, &call->response,
      [call, shared, fail_all](grpc::Status status) {
        std::vector<PubMsg> sent(call->request.msgs().begin(),
                                 call->request.msgs().end());
        if (!status.ok() ||
            call->response.acks_size() != call->request.msgs_size()) {
          absl::Status error = status.ok() ? absl::InternalError(
                                                 "forwarded batch answered "
                                                 "with the wrong ack count")
                                           : FromGrpcStatus(status);
          (*shared)(fail_all(sent, error));
          return;
        }
        (*shared)(std::vector<PubAck>(call->response.acks().begin(),
                                      call->response.acks().end()));
      });
}

void Forwarder::Subscribe(raft::NodeId to, int hops,
                          const SubscriptionRequest& request,
                          std::shared_ptr<SubscriberStream> stream) {
  Streaming::Stub* stub = StubFor(to);
  if (stub == nullptr) {
    stream->End(NoRoute(to));
    return;
  }
  SubscribeRelay::Start(stub, hops, link_, request, std::move(stream));
}

}  // namespace spate::server
