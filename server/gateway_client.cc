#include "server/gateway_client.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/log.h"
#include "server/forwarder.h"

namespace spate::server {
namespace {

constexpr int kDirectoryPageMax = 1000;
// A directory larger than this many pages is truncated (and logged): the
// refresh must stay bounded.
constexpr int kDirectoryPagesMax = 100;

bool IsLinkFailure(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
         status.error_code() == grpc::StatusCode::UNKNOWN ||
         status.error_code() == grpc::StatusCode::UNIMPLEMENTED ||
         status.error_code() == grpc::StatusCode::INTERNAL;
}

}  // namespace

absl::Status GatewayCallStatus(const std::string& cluster,
                               const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
      status.error_code() == grpc::StatusCode::UNAVAILABLE ||
      status.error_code() == grpc::StatusCode::CANCELLED) {
    return absl::UnavailableError(
        absl::StrCat("gateway to cluster '", cluster,
                     "' unavailable: ", status.error_message(), "; retry"));
  }
  return absl::Status(
      static_cast<absl::StatusCode>(status.error_code()),
      absl::StrCat("cluster '", cluster, "': ", status.error_message()));
}

GatewayClient::GatewayClient(GatewayClientOptions options)
    : options_(std::move(options)) {
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      options_.credentials != nullptr ? options_.credentials
                                      : grpc::InsecureChannelCredentials();
  absl::MutexLock lock(&mu_);
  for (const RemoteClusterConfig& remote : options_.remotes) {
    Link& link = links_[remote.name()];
    link.config = remote;
    for (const std::string& address : remote.addresses()) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
      args.SetMaxReceiveMessageSize(128 << 20);
      args.SetMaxSendMessageSize(128 << 20);
      if (!options_.tls_server_name_override.empty()) {
        args.SetSslTargetNameOverride(options_.tls_server_name_override);
      }
      std::shared_ptr<grpc::Channel> channel =
          grpc::CreateCustomChannel(address, credentials, args);
      link.stubs.push_back(Gateway::NewStub(channel));
      link.streaming.push_back(Streaming::NewStub(channel));
    }
    if (!remote.addresses().empty()) link.address = remote.addresses(0);
  }
}

GatewayClient::~GatewayClient() { Stop(); }

void GatewayClient::Start() {
  if (thread_.joinable() || options_.remotes.empty()) return;
  thread_ = std::thread([this] { Run(); });
}

void GatewayClient::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void GatewayClient::Run() {
  while (true) {
    RefreshAll();
    KeepAttached();
    absl::MutexLock lock(&mu_);
    auto stopping = [this]()
                        ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
    if (mu_.AwaitWithTimeout(
            absl::Condition(&stopping),
            absl::Milliseconds(options_.directory_refresh_ms))) {
      return;
    }
  }
}

bool GatewayClient::Knows(const std::string& cluster) const {
  absl::MutexLock lock(&mu_);
  return links_.contains(cluster);
}

void GatewayClient::RefreshAll() {
  std::vector<std::string> clusters;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, link] : links_) clusters.push_back(name);
  }
  for (const std::string& cluster : clusters) Refresh(cluster);
}

void GatewayClient::Refresh(const std::string& cluster) {
  absl::btree_map<std::string, uint64_t> directory;
  std::string after;
  grpc::Status failed;
  std::string answered_as;
  std::string address;
  bool truncated = false;
  for (int page = 0;; ++page) {
    if (page == kDirectoryPagesMax) {
      truncated = true;
      break;
    }
    std::shared_ptr<Gateway::Stub> stub;
    {
      absl::MutexLock lock(&mu_);
      stub = StubLocked(cluster, &address);
      // A refused link is still asked: the remote may be fixed meanwhile.
      if (stub == nullptr) {
        Link& link = links_[cluster];
        if (link.stubs.empty()) return;
        stub = link.stubs[link.current % link.stubs.size()];
        address = link.config.addresses(
            static_cast<int>(link.current % link.stubs.size()));
      }
    }
    grpc::ClientContext context;
    context.AddMetadata(kGatewayClusterMetadataKey, options_.cluster_name);
    context.set_deadline(absl::ToChronoTime(
        absl::Now() + absl::Milliseconds(options_.request_timeout_ms)));
    GatewayHelloRequest request;
    request.set_cluster_name(options_.cluster_name);
    request.set_directory_after(after);
    request.set_directory_max(kDirectoryPageMax);
    GatewayHelloResponse response;
    grpc::Status status = stub->Hello(&context, request, &response);
    {
      absl::MutexLock lock(&mu_);
      Link& link = links_[cluster];
      ++link.requests;
      link.bytes_sent += static_cast<int64_t>(request.ByteSizeLong());
      link.bytes_received += static_cast<int64_t>(response.ByteSizeLong());
    }
    if (!status.ok()) {
      failed = status;
      break;
    }
    if (response.cluster_name() != cluster) {
      answered_as = response.cluster_name();
      break;
    }
    for (const GatewayChannel& channel : response.channels()) {
      directory[channel.name()] = channel.last_sequence();
      after = channel.name();
    }
    if (!response.more() || response.channels().empty()) break;
  }

  absl::MutexLock lock(&mu_);
  Link& link = links_[cluster];
  link.address = address;
  link.last_hello_ns = absl::GetCurrentTimeNanos();
  const std::string old_state = link.state;
  if (!answered_as.empty()) {
    link.state = "REFUSED";
    link.error =
        absl::StrCat("gateway ", address, " answered as cluster '", answered_as,
                     "', expected '", cluster, "' (check gateways addresses)");
    link.directory.clear();
    ++link.current;
  } else if (!failed.ok()) {
    ++link.failures;
    const bool refused =
        failed.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
        failed.error_code() == grpc::StatusCode::FAILED_PRECONDITION;
    link.state = refused ? "REFUSED" : "DOWN";
    link.error =
        absl::StrCat("gateway ", address, ": ", failed.error_message());
    // A refused link routes nothing and its directory is forgotten. A down
    // one keeps its directory: its channels still belong to it, and
    // requests for them fail UNAVAILABLE (never create a local copy).
    if (refused) link.directory.clear();
    ++link.current;
  } else {
    link.state = "UP";
    link.error.clear();
    if (truncated) {
      LOG(WARNING) << "gateway directory truncated cluster=" << cluster
                   << " channels=" << directory.size();
    }
    link.directory = std::move(directory);
  }
  if (link.state != old_state) {
    if (link.state == "UP") {
      link.up_since_ns = link.last_hello_ns;
      if (link.was_up) ++link.reconnects;
      link.was_up = true;
    } else {
      link.up_since_ns = 0;
    }
    if (link.state == "UP") {
      LOG(INFO) << "gateway link up cluster=" << cluster
                << " address=" << address
                << " channels=" << link.directory.size();
    } else {
      LOG(WARNING) << "gateway link " << link.state << " cluster=" << cluster
                   << " error=" << link.error;
    }
  }
  UpdateConflictsLocked();
}

std::shared_ptr<Gateway::Stub> GatewayClient::StubLocked(
    const std::string& cluster, std::string* address) {
  auto it = links_.find(cluster);
  if (it == links_.end() || it->second.stubs.empty()) return nullptr;
  Link& link = it->second;
  if (link.state == "REFUSED") return nullptr;
  const size_t index = link.current % link.stubs.size();
  *address = link.config.addresses(static_cast<int>(index));
  return link.stubs[index];
}

void GatewayClient::CallFailed(const std::string& cluster,
                               const grpc::Status& status) {
  absl::MutexLock lock(&mu_);
  auto it = links_.find(cluster);
  if (it == links_.end()) return;
  ++it->second.failures;
  if (IsLinkFailure(status)) ++it->second.current;
}

void GatewayClient::SetLocalChannels(std::vector<std::string> names) {
  absl::MutexLock lock(&mu_);
  local_channels_ = absl::btree_set<std::string>(names.begin(), names.end());
  UpdateConflictsLocked();
}

void GatewayClient::UpdateConflictsLocked() {
  absl::btree_map<std::string, std::vector<std::string>> conflicts;
  for (const auto& [name, link] : links_) {
    for (const auto& [channel, last] : link.directory) {
      if (local_channels_.contains(channel)) {
        auto& owners = conflicts[channel];
        if (owners.empty()) owners.push_back(options_.cluster_name);
        owners.push_back(name);
      }
    }
  }
  for (auto& [channel, owners] : conflicts) {
    std::sort(owners.begin(), owners.end());
    if (!conflicts_.contains(channel)) {
      LOG(WARNING) << "channel name conflict: channel=" << channel
                   << " is owned by clusters " << absl::StrJoin(owners, ",")
                   << "; requests go to '" << owners.front()
                   << "', the other copies keep their data";
    }
  }
  conflicts_ = std::move(conflicts);
}

std::string GatewayClient::RouteFor(const std::string& channel, bool local,
                                    bool local_mirror) {
  if (local_mirror) return "";
  absl::MutexLock lock(&mu_);
  std::string owner;
  for (const auto& [name, link] : links_) {
    if (link.state == "REFUSED" || !link.directory.contains(channel)) continue;
    if (owner.empty() || name < owner) owner = name;
  }
  if (owner.empty()) return "";
  if (local && options_.cluster_name < owner) return "";
  return owner;
}

void GatewayClient::Publish(
    const std::string& cluster, std::vector<PubMsg> msgs,
    absl::AnyInvocable<void(std::vector<PubAck>)> done) {
  struct Call {
    grpc::ClientContext context;
    PubBatch request;
    PubAckBatch response;
    absl::AnyInvocable<void(std::vector<PubAck>)> done;
  };
  auto call = std::make_shared<Call>();
  call->done = std::move(done);
  for (PubMsg& msg : msgs) *call->request.add_msgs() = std::move(msg);
  auto fail_all = [cluster](Call* call, const absl::Status& status) {
    std::vector<PubAck> acks;
    for (const PubMsg& msg : call->request.msgs()) {
      PubAck ack;
      ack.set_guid(msg.guid());
      ack.set_error(std::string(status.message()));
      ack.set_error_code(static_cast<int>(status.code()));
      acks.push_back(std::move(ack));
    }
    call->done(std::move(acks));
  };
  std::shared_ptr<Gateway::Stub> stub;
  std::string address;
  {
    absl::MutexLock lock(&mu_);
    stub = StubLocked(cluster, &address);
    if (stub != nullptr) {
      Link& link = links_[cluster];
      ++link.requests;
      link.bytes_sent += static_cast<int64_t>(call->request.ByteSizeLong());
    }
  }
  if (stub == nullptr) {
    fail_all(call.get(),
             absl::UnavailableError(absl::StrCat(
                 "no usable gateway link to cluster '", cluster, "'; retry")));
    return;
  }
  call->context.AddMetadata(kGatewayClusterMetadataKey, options_.cluster_name);
  call->context.set_deadline(absl::ToChronoTime(
      absl::Now() + absl::Milliseconds(options_.request_timeout_ms)));
  stub->async()->Publish(
      &call->context, &call->request, &call->response,
      [this, cluster, call, fail_all](grpc::Status status) {
        if (!status.ok()) {
          CallFailed(cluster, status);
          fail_all(call.get(), GatewayCallStatus(cluster, status));
          return;
        }
        {
          absl::MutexLock lock(&mu_);
          links_[cluster].bytes_received +=
              static_cast<int64_t>(call->response.ByteSizeLong());
        }
        if (call->response.acks_size() != call->request.msgs_size()) {
          fail_all(call.get(), absl::InternalError(absl::StrCat(
                                   "cluster '", cluster, "' answered ",
                                   call->response.acks_size(), " acks for ",
                                   call->request.msgs_size(), " messages")));
          return;
        }
        std::vector<PubAck> acks(call->response.acks().begin(),
                                 call->response.acks().end());
        call->done(std::move(acks));
      });
}

void GatewayClient::Fetch(
    const std::string& cluster, const GatewayFetchRequest& request,
    absl::AnyInvocable<void(absl::StatusOr<GatewayFetchResponse>)> done) {
  struct Call {
    grpc::ClientContext context;
    GatewayFetchRequest request;
    GatewayFetchResponse response;
    absl::AnyInvocable<void(absl::StatusOr<GatewayFetchResponse>)> done;
  };
  auto call = std::make_shared<Call>();
  call->request = request;
  call->done = std::move(done);
  std::shared_ptr<Gateway::Stub> stub;
  std::string address;
  {
    absl::MutexLock lock(&mu_);
    stub = StubLocked(cluster, &address);
    if (stub != nullptr) {
      Link& link = links_[cluster];
      ++link.requests;
      link.bytes_sent += static_cast<int64_t>(request.ByteSizeLong());
    }
  }
  if (stub == nullptr) {
    call->done(absl::UnavailableError(
        absl::StrCat("no usable gateway link to cluster '", cluster, "'")));
    return;
  }
  call->context.AddMetadata(kGatewayClusterMetadataKey, options_.cluster_name);
  call->context.set_deadline(absl::ToChronoTime(
      absl::Now() +
      absl::Milliseconds(options_.request_timeout_ms + request.wait_ms())));
  stub->async()->Fetch(
      &call->context, &call->request, &call->response,
      [this, cluster, call](grpc::Status status) {
        if (!status.ok()) {
          CallFailed(cluster, status);
          call->done(GatewayCallStatus(cluster, status));
          return;
        }
        {
          absl::MutexLock lock(&mu_);
          links_[cluster].bytes_received +=
              static_cast<int64_t>(call->response.ByteSizeLong());
        }
        call->done(std::move(call->response));
      });
}

void GatewayClient::Attach(const std::string& cluster,
                           const std::string& client_id, AttachDone done) {
  struct Call {
    grpc::ClientContext context;
    GatewayAttachRequest request;
    GatewayAttachResponse response;
    std::shared_ptr<Streaming::Stub> streaming;
    AttachDone done;
  };
  auto call = std::make_shared<Call>();
  call->request.set_client_id(client_id);
  call->done = std::move(done);
  std::shared_ptr<Gateway::Stub> stub;
  std::string address;
  {
    absl::MutexLock lock(&mu_);
    stub = StubLocked(cluster, &address);
    if (stub != nullptr) {
      Link& link = links_[cluster];
      call->streaming = link.streaming[link.current % link.streaming.size()];
      ++link.requests;
    }
  }
  if (stub == nullptr) {
    call->done(absl::UnavailableError(absl::StrCat(
                   "no usable gateway link to cluster '", cluster, "'; retry")),
               nullptr);
    return;
  }
  call->context.AddMetadata(kGatewayClusterMetadataKey, options_.cluster_name);
  call->context.set_deadline(absl::ToChronoTime(
      absl::Now() + absl::Milliseconds(options_.request_timeout_ms)));
  stub->async()->Attach(&call->context, &call->request, &call->response,
                        [this, cluster, call](grpc::Status status) {
                          if (!status.ok()) {
                            CallFailed(cluster, status);
                            call->done(GatewayCallStatus(cluster, status),
                                       nullptr);
                            return;
                          }
                          call->done(call->response, call->streaming);
                        });
}

void GatewayClient::KeepAttached() {
  std::vector<std::pair<std::string, std::string>> clients;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [key, count] : attached_) clients.push_back(key);
  }
  for (const auto& [cluster, client_id] : clients) {
    Attach(cluster, client_id,
           [](absl::StatusOr<GatewayAttachResponse>,
              std::shared_ptr<Streaming::Stub>) {});
  }
}

namespace {

// The local client's stream of a remote subscription: counts it as open
// (so its client is kept registered remotely) until it ends.
class RemoteSubscriberStream : public SubscriberStream {
 public:
  RemoteSubscriberStream(std::shared_ptr<SubscriberStream> local,
                         absl::AnyInvocable<void()> on_end)
      : local_(std::move(local)), on_end_(std::move(on_end)) {}
  ~RemoteSubscriberStream() override { Ended(); }

  bool Started(const SubscriptionResponse& response,
               std::shared_ptr<SubscriptionUpstream> upstream) override {
    return local_->Started(response, std::move(upstream));
  }
  bool Deliver(std::vector<MsgProto>* msgs) override {
    return local_->Deliver(msgs);
  }
  void End(const absl::Status& status) override {
    Ended();
    local_->End(status);
  }

 private:
  void Ended() {
    absl::AnyInvocable<void()> on_end;
    {
      absl::MutexLock lock(&mu_);
      on_end = std::move(on_end_);
      on_end_ = nullptr;
    }
    if (on_end) on_end();
  }

  std::shared_ptr<SubscriberStream> local_;
  absl::Mutex mu_;
  absl::AnyInvocable<void()> on_end_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

void GatewayClient::Subscribe(const std::string& cluster,
                              SubscriptionRequest request,
                              std::shared_ptr<SubscriberStream> stream) {
  const std::string client_id = request.client_id();
  {
    absl::MutexLock lock(&mu_);
    ++attached_[{cluster, client_id}];
  }
  auto remote = std::make_shared<RemoteSubscriberStream>(
      std::move(stream), [this, cluster, client_id] {
        absl::MutexLock lock(&mu_);
        auto it = attached_.find({cluster, client_id});
        if (it != attached_.end() && --it->second <= 0) attached_.erase(it);
      });
  Attach(cluster, client_id,
         [request = std::move(request), remote](
             absl::StatusOr<GatewayAttachResponse> attached,
             std::shared_ptr<Streaming::Stub> stub) mutable {
           if (!attached.ok()) {
             remote->End(attached.status());
             return;
           }
           request.set_client_id(attached->client_id());
           request.set_conn_id(attached->conn_id());
           // Hop 1 at the owner: it may forward to its leader, never over
           // a gateway again.
           RelaySubscription(stub.get(), /*hops=*/0, request, remote);
         });
}

void GatewayClient::Unsubscribe(const std::string& cluster,
                                UnsubscribeRequest request,
                                absl::AnyInvocable<void(absl::Status)> done) {
  const std::string client_id = request.client_id();
  auto shared =
      std::make_shared<absl::AnyInvocable<void(absl::Status)>>(std::move(done));
  Attach(cluster, client_id,
         [this, cluster, request = std::move(request), shared](
             absl::StatusOr<GatewayAttachResponse> attached,
             std::shared_ptr<Streaming::Stub> stub) mutable {
           if (!attached.ok()) {
             (*shared)(attached.status());
             return;
           }
           struct Call {
             grpc::ClientContext context;
             UnsubscribeRequest request;
             UnsubscribeResponse response;
           };
           auto call = std::make_shared<Call>();
           call->request = std::move(request);
           call->request.set_client_id(attached->client_id());
           call->request.set_conn_id(attached->conn_id());
           call->context.AddMetadata(kHopsMetadataKey, "1");
           call->context.set_deadline(absl::ToChronoTime(
               absl::Now() + absl::Milliseconds(options_.request_timeout_ms)));
           stub->async()->Unsubscribe(
               &call->context, &call->request, &call->response,
               [cluster, call, stub, shared](grpc::Status status) {
                 (*shared)(GatewayCallStatus(cluster, status));
               });
         });
}

void GatewayClient::ReportMirror(const MirrorStatus& mirror) {
  absl::MutexLock lock(&mu_);
  mirrors_[mirror.channel()] = mirror;
}

void GatewayClient::ForgetMirror(const std::string& channel) {
  absl::MutexLock lock(&mu_);
  mirrors_.erase(channel);
}

GatewayStatus GatewayClient::Status() const {
  absl::MutexLock lock(&mu_);
  GatewayStatus status;
  status.set_cluster_name(options_.cluster_name);
  for (const auto& [name, link] : links_) {
    GatewayLinkStatus* out = status.add_links();
    out->set_cluster(name);
    out->set_state(link.state);
    out->set_address(link.address);
    out->set_error(link.error);
    out->set_bytes_sent(link.bytes_sent);
    out->set_bytes_received(link.bytes_received);
    out->set_requests(link.requests);
    out->set_failures(link.failures);
    out->set_channels(static_cast<int32_t>(link.directory.size()));
    out->set_connected_since_ns(link.up_since_ns);
    out->set_reconnects(link.reconnects);
  }
  for (const auto& [name, mirror] : mirrors_) *status.add_mirrors() = mirror;
  for (const auto& [channel, owners] : conflicts_) {
    GatewayConflict* conflict = status.add_conflicts();
    conflict->set_channel(channel);
    for (const std::string& owner : owners) conflict->add_clusters(owner);
    conflict->set_routed_to(owners.front());
  }
  return status;
}

}  // namespace spate::server
