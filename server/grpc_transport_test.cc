// GrpcTransport on loopback: two or three transports in one process, real
// gRPC, port 0. Every wait is bounded; failures say what was missing.
#include "server/grpc_transport.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/transport.grpc.pb.h"

namespace spate::server {
namespace {

using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(20);

// Polls `done` until it holds or `timeout` passes.
bool WaitUntil(const std::function<bool()>& done,
               absl::Duration timeout = kWait) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

raft::Message Append(raft::NodeId from, raft::NodeId to, uint64_t index,
                     size_t data_bytes = 16) {
  raft::Message message;
  message.set_type(raft::MSG_APPEND);
  message.set_group(7);
  message.set_from(from);
  message.set_to(to);
  message.set_term(1);
  message.set_index(index);
  raft::Entry* entry = message.add_entries();
  entry->set_term(1);
  entry->set_index(index + 1);
  entry->set_data(std::string(data_bytes, 'x'));
  return message;
}

std::vector<raft::Message> Appends(raft::NodeId from, raft::NodeId to,
                                   uint64_t first, int count,
                                   size_t data_bytes = 16) {
  std::vector<raft::Message> messages;
  for (int i = 0; i < count; ++i) {
    messages.push_back(Append(from, to, first + i, data_bytes));
  }
  return messages;
}

// Collects what a transport's handler receives. Hold() makes the handler
// block (at most kWait) to play a slow receiver, which a real handler must
// never do.
class Inbox {
 public:
  InboundHandler Handler() {
    return [this](raft::NodeId from, std::vector<raft::Message> messages) {
      Add(from, std::move(messages));
    };
  }

  void Hold() {
    absl::MutexLock lock(&mu_);
    held_ = true;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    held_ = false;
  }
  // True once a handler call is blocked by Hold().
  bool WaitBlocked() {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&blocked_), kWait);
  }

  bool WaitForMessages(size_t count) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return messages_.size() >= count;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), kWait);
  }

  std::vector<std::pair<raft::NodeId, raft::Message>> messages() const {
    absl::MutexLock lock(&mu_);
    return messages_;
  }
  size_t batches() const {
    absl::MutexLock lock(&mu_);
    return batches_;
  }
  // Indexes received from `from`, in arrival order.
  std::vector<uint64_t> Indexes(raft::NodeId from) const {
    absl::MutexLock lock(&mu_);
    std::vector<uint64_t> indexes;
    for (const auto& [sender, message] : messages_) {
      if (sender == from) indexes.push_back(message.index());
    }
    return indexes;
  }

 private:
  void Add(raft::NodeId from, std::vector<raft::Message> messages) {
    absl::MutexLock lock(&mu_);
    ++batches_;
    for (raft::Message& message : messages) {
      messages_.emplace_back(from, std::move(message));
    }
    if (held_) {
      blocked_ = true;
      auto released = [this]()
                          ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !held_; };
      mu_.AwaitWithTimeout(absl::Condition(&released), kWait);
      blocked_ = false;
    }
  }

  mutable absl::Mutex mu_;
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  bool blocked_ ABSL_GUARDED_BY(mu_) = false;
  size_t batches_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::pair<raft::NodeId, raft::Message>> messages_
      ABSL_GUARDED_BY(mu_);
};

GrpcTransportOptions Options(raft::NodeId id, PeerAddresses peers = {}) {
  GrpcTransportOptions options;
  options.cluster_name = "test";
  options.node_id = id;
  options.listen_address = "127.0.0.1:0";
  options.peers = std::move(peers);
  options.reconnect_backoff_initial = absl::Milliseconds(10);
  options.reconnect_backoff_max = absl::Milliseconds(100);
  return options;
}

std::unique_ptr<GrpcTransport> StartOrDie(const GrpcTransportOptions& options,
                                          Inbox* inbox) {
  absl::StatusOr<std::unique_ptr<GrpcTransport>> transport =
      GrpcTransport::Start(options, inbox->Handler());
  EXPECT_TRUE(transport.ok()) << transport.status();
  return transport.ok() ? *std::move(transport) : nullptr;
}

// A loopback port nothing listens on (bound, then released).
std::string ClosedAddress() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  return absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
}

// A TCP listener that never accepts nor speaks HTTP/2: the kernel completes
// connections, so a dialer hangs in the handshake instead of failing.
class SilentListener {
 public:
  SilentListener() : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(fd_, 16), 0);
    EXPECT_EQ(getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    address_ = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
  }
  ~SilentListener() { close(fd_); }
  const std::string& address() const { return address_; }

 private:
  const int fd_;
  std::string address_;
};

// A loopback TCP relay to `target` that can freeze: while frozen it stops
// moving bytes in both directions, like a peer under SIGSTOP whose kernel
// still holds the connection open.
class FreezableRelay {
 public:
  explicit FreezableRelay(const std::string& target_address)
      : listen_fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    target_port_ = static_cast<uint16_t>(
        std::stoi(target_address.substr(target_address.rfind(':') + 1)));
    sockaddr_in addr = Loopback(0);
    socklen_t len = sizeof(addr);
    EXPECT_EQ(
        bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(listen_fd_, 16), 0);
    EXPECT_EQ(getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len),
              0);
    address_ = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~FreezableRelay() {
    stop_ = true;
    accept_thread_.join();
    for (std::thread& pump : pumps_) pump.join();
    close(listen_fd_);
  }
  const std::string& address() const { return address_; }
  void Freeze() { frozen_ = true; }

 private:
  static sockaddr_in Loopback(uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    return addr;
  }

  void AcceptLoop() {
    while (!stop_) {
      pollfd pfd{listen_fd_, POLLIN, 0};
      if (poll(&pfd, 1, 10) <= 0) continue;
      const int client = accept(listen_fd_, nullptr, nullptr);
      if (client < 0) continue;
      const int server = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr = Loopback(target_port_);
      if (connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
          0) {
        close(client);
        close(server);
        continue;
      }
      pumps_.emplace_back([this, client, server] { Pump(client, server); });
    }
  }

  // Copies bytes both ways until either side closes or the relay stops.
  void Pump(int a, int b) {
    char buffer[16384];
    while (!stop_) {
      if (frozen_) {
        absl::SleepFor(absl::Milliseconds(10));
        continue;
      }
      pollfd pfds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
      if (poll(pfds, 2, 10) <= 0) continue;
      bool closed = false;
      for (int i = 0; i < 2 && !closed; ++i) {
        if ((pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        const ssize_t n = read(pfds[i].fd, buffer, sizeof(buffer));
        closed = n <= 0 || write(pfds[1 - i].fd, buffer, n) != n;
      }
      if (closed) break;
    }
    close(a);
    close(b);
  }

  const int listen_fd_;
  uint16_t target_port_ = 0;
  std::string address_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> frozen_{false};
  std::thread accept_thread_;
  // Written by the accept thread only; joined after it.
  std::vector<std::thread> pumps_;
};

// Transport 1 → transport 2, both knowing each other.
struct Pair {
  Inbox inbox1;
  Inbox inbox2;
  std::unique_ptr<GrpcTransport> t1;
  std::unique_ptr<GrpcTransport> t2;

  explicit Pair(GrpcTransportOptions options1 = Options(1),
                GrpcTransportOptions options2 = Options(2)) {
    t1 = StartOrDie(options1, &inbox1);
    options2.peers[1] = t1->bound_address();
    t2 = StartOrDie(options2, &inbox2);
    EXPECT_TRUE(t1->SetPeers({{2, t2->bound_address()}}).ok());
  }
  bool Connected() {
    return WaitUntil([&] { return t1->PeerReachable(2); }) &&
           WaitUntil([&] { return t2->PeerReachable(1); });
  }
};

std::vector<uint64_t> Range(uint64_t first, uint64_t count) {
  std::vector<uint64_t> range;
  for (uint64_t i = 0; i < count; ++i) range.push_back(first + i);
  return range;
}

TEST(GrpcTransportTest, DeliversBatchesInOrderWithSenderId) {
  Pair pair;
  ASSERT_TRUE(pair.Connected());
  for (int batch = 0; batch < 3; ++batch) {
    ASSERT_TRUE(pair.t1->Send(2, Appends(1, 2, batch * 10, 10)));
  }
  ASSERT_TRUE(pair.inbox2.WaitForMessages(30));
  EXPECT_EQ(pair.inbox2.Indexes(1), Range(0, 30));
  for (const auto& [from, message] : pair.inbox2.messages()) {
    EXPECT_EQ(from, 1u);
    EXPECT_EQ(message.to(), 2u);
    EXPECT_EQ(message.entries(0).data(), std::string(16, 'x'));
  }
  ASSERT_TRUE(
      WaitUntil([&] { return pair.t1->Stats().peers[2].messages_sent == 30; }));
  const TransportStats sent = pair.t1->Stats();
  const TransportStats received = pair.t2->Stats();
  EXPECT_EQ(received.peers.at(1).messages_received, 30u);
  EXPECT_EQ(received.peers.at(1).batches_received,
            sent.peers.at(2).batches_sent);
  EXPECT_EQ(received.peers.at(1).bytes_received, sent.peers.at(2).bytes_sent);
  EXPECT_EQ(sent.peers.at(2).dropped_queue_full, 0u);
  EXPECT_EQ(sent.peers.at(2).connects, 1u);
}

TEST(GrpcTransportTest, CoalescesSendsWhileReceiverIsSlow) {
  Pair pair;
  ASSERT_TRUE(pair.Connected());
  pair.inbox2.Hold();
  ASSERT_TRUE(pair.t1->Send(2, Appends(1, 2, 0, 1)));
  ASSERT_TRUE(pair.inbox2.WaitBlocked());
  // 2000 Sends (2 MB) while the receiver is stuck: once gRPC's flow
  // control window is full the sender waits, and Sends pile up into frames.
  constexpr int kSends = 2000;
  for (int i = 1; i <= kSends; ++i) {
    ASSERT_TRUE(pair.t1->Send(2, Appends(1, 2, i, 1, 1024))) << i;
  }
  pair.inbox2.Release();
  ASSERT_TRUE(pair.inbox2.WaitForMessages(kSends + 1));
  EXPECT_EQ(pair.inbox2.Indexes(1), Range(0, kSends + 1));
  const PeerStats received = pair.t2->Stats().peers.at(1);
  EXPECT_EQ(received.messages_received, kSends + 1u);
  EXPECT_LT(received.batches_received, kSends / 2u)
      << "Sends were not coalesced into fewer frames";
  EXPECT_EQ(pair.inbox2.batches(), received.batches_received);
}

TEST(GrpcTransportTest, ThreeNodesExchangeWithEveryPeer) {
  Inbox inboxes[3];
  std::unique_ptr<GrpcTransport> nodes[3];
  for (int i = 0; i < 3; ++i) {
    nodes[i] = StartOrDie(Options(i + 1), &inboxes[i]);
    ASSERT_NE(nodes[i], nullptr);
  }
  for (int i = 0; i < 3; ++i) {
    PeerAddresses peers;
    for (int j = 0; j < 3; ++j) {
      if (j != i) peers[j + 1] = nodes[j]->bound_address();
    }
    ASSERT_TRUE(nodes[i]->SetPeers(peers).ok());
  }
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      if (i == j) continue;
      ASSERT_TRUE(WaitUntil([&] { return nodes[i]->PeerReachable(j + 1); }));
      for (int batch = 0; batch < 10; ++batch) {
        ASSERT_TRUE(nodes[i]->Send(j + 1, Appends(i + 1, j + 1, batch * 5, 5)));
      }
    }
  }
  for (int j = 0; j < 3; ++j) {
    ASSERT_TRUE(inboxes[j].WaitForMessages(100));
    for (int i = 0; i < 3; ++i) {
      if (i == j) continue;
      EXPECT_EQ(inboxes[j].Indexes(i + 1), Range(0, 50))
          << "node " << j + 1 << " from " << i + 1;
    }
  }
  const absl::Time start = absl::Now();
  for (auto& node : nodes) node->Shutdown();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST(GrpcTransportTest, DownPeerDropsThenDeliveryResumesByItself) {
  const std::string address = ClosedAddress();
  Inbox inbox1;
  std::unique_ptr<GrpcTransport> t1 =
      StartOrDie(Options(1, {{2, address}}), &inbox1);
  ASSERT_NE(t1, nullptr);
  EXPECT_FALSE(t1->PeerReachable(2));
  EXPECT_FALSE(t1->Send(2, Appends(1, 2, 0, 3)));
  EXPECT_EQ(t1->Stats().peers.at(2).dropped_unreachable, 3u);

  GrpcTransportOptions options2 = Options(2, {{1, t1->bound_address()}});
  options2.listen_address = address;
  for (int life = 0; life < 2; ++life) {
    Inbox inbox2;
    std::unique_ptr<GrpcTransport> t2 = StartOrDie(options2, &inbox2);
    ASSERT_NE(t2, nullptr);
    ASSERT_TRUE(WaitUntil([&] { return t1->PeerReachable(2); }))
        << "no reconnect after the peer started, life " << life;
    ASSERT_TRUE(t1->Send(2, Appends(1, 2, 100, 4)));
    ASSERT_TRUE(inbox2.WaitForMessages(4));
    EXPECT_EQ(inbox2.Indexes(1), Range(100, 4));
    // The link is idle when the peer goes away: the pending read notices.
    t2.reset();
    ASSERT_TRUE(WaitUntil([&] { return !t1->PeerReachable(2); }));
    EXPECT_FALSE(t1->Send(2, Appends(1, 2, 200, 1)));
  }
  // The status arrives just after the link is marked down.
  ASSERT_TRUE(
      WaitUntil([&] { return !t1->Stats().peers[2].last_error.empty(); }));
  const PeerStats stats = t1->Stats().peers.at(2);
  EXPECT_EQ(stats.connects, 2u);
  EXPECT_EQ(stats.dropped_unreachable, 5u);
}

TEST(GrpcTransportTest, KeepaliveDetectsAFrozenPeer) {
  Inbox inbox1, inbox2;
  GrpcTransportOptions options1 = Options(1);
  options1.keepalive_interval = absl::Milliseconds(100);
  options1.keepalive_timeout = absl::Milliseconds(300);
  std::unique_ptr<GrpcTransport> t1 = StartOrDie(options1, &inbox1);
  ASSERT_NE(t1, nullptr);
  std::unique_ptr<GrpcTransport> t2 =
      StartOrDie(Options(2, {{1, t1->bound_address()}}), &inbox2);
  ASSERT_NE(t2, nullptr);
  FreezableRelay relay(t2->bound_address());
  ASSERT_TRUE(t1->SetPeers({{2, relay.address()}}).ok());
  ASSERT_TRUE(WaitUntil([&] { return t1->PeerReachable(2); }));
  ASSERT_TRUE(t1->Send(2, Appends(1, 2, 0, 1)));
  ASSERT_TRUE(inbox2.WaitForMessages(1));

  // The link is idle and the peer stops answering without closing it.
  relay.Freeze();
  const absl::Time frozen = absl::Now();
  ASSERT_TRUE(WaitUntil([&] { return !t1->PeerReachable(2); }));
  EXPECT_LT(absl::Now() - frozen, absl::Seconds(5));
  t1->Shutdown();
}

TEST(GrpcTransportTest, RefusesAnotherCluster) {
  GrpcTransportOptions options2 = Options(2);
  options2.cluster_name = "other";
  Pair pair(Options(1), options2);
  ASSERT_TRUE(WaitUntil([&] {
    return pair.t1->Stats().peers[2].last_error.find("code=7") !=
           std::string::npos;  // PERMISSION_DENIED
  })) << pair.t1->Stats().peers[2].last_error;
  EXPECT_THAT(pair.t1->Stats().peers[2].last_error, HasSubstr("\"other\""));
  EXPECT_FALSE(pair.t1->PeerReachable(2));
  EXPECT_FALSE(pair.t1->Send(2, Appends(1, 2, 0, 1)));
  EXPECT_GE(pair.t2->Stats().streams_refused, 1u);
  EXPECT_EQ(pair.t2->Stats().peers.count(1), 1u);  // configured, never heard
  EXPECT_EQ(pair.t2->Stats().peers.at(1).batches_received, 0u);
}

TEST(GrpcTransportTest, RefusesUnknownNodeUntilItBecomesAPeer) {
  Inbox inbox1, inbox2;
  std::unique_ptr<GrpcTransport> t2 = StartOrDie(Options(2), &inbox2);
  ASSERT_NE(t2, nullptr);
  std::unique_ptr<GrpcTransport> t1 =
      StartOrDie(Options(1, {{2, t2->bound_address()}}), &inbox1);
  ASSERT_NE(t1, nullptr);
  ASSERT_TRUE(WaitUntil([&] {
    return t1->Stats().peers[2].last_error.find("code=9") !=
           std::string::npos;  // FAILED_PRECONDITION
  })) << t1->Stats().peers[2].last_error;
  EXPECT_THAT(t1->Stats().peers[2].last_error, HasSubstr("not a peer"));
  EXPECT_FALSE(t1->PeerReachable(2));
  EXPECT_GE(t2->Stats().streams_refused, 1u);

  // Membership catches up: the sender's redial gets in by itself.
  ASSERT_TRUE(t2->SetPeers({{1, t1->bound_address()}}).ok());
  ASSERT_TRUE(WaitUntil([&] { return t1->PeerReachable(2); }));
  ASSERT_TRUE(t1->Send(2, Appends(1, 2, 0, 2)));
  ASSERT_TRUE(inbox2.WaitForMessages(2));
}

// A hand-made client speaking the wire protocol, to check what the
// receiver answers to handshakes and frames GrpcTransport would not send.
class RawSender {
 public:
  RawSender(const std::string& address,
            std::vector<std::pair<std::string, std::string>> metadata)
      : stub_(transport::RaftTransport::NewStub(
            grpc::CreateChannel(address, grpc::InsecureChannelCredentials()))) {
    context_.set_deadline(absl::ToChronoTime(absl::Now() + kWait));
    for (const auto& [key, value] : metadata) {
      context_.AddMetadata(key, value);
    }
    stream_ = stub_->Stream(&context_);
  }
  bool Write(std::vector<raft::Message> messages) {
    transport::MessageBatch frame;
    for (raft::Message& message : messages) {
      *frame.add_messages() = std::move(message);
    }
    return stream_->Write(frame);
  }
  grpc::Status Finish() {
    stream_->WritesDone();
    return stream_->Finish();
  }

 private:
  std::unique_ptr<transport::RaftTransport::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<transport::MessageBatch,
                                           transport::StreamFeedback>>
      stream_;
};

std::vector<std::pair<std::string, std::string>> Handshake(
    const std::string& cluster, raft::NodeId from, raft::NodeId to) {
  return {{"spate-cluster", cluster},
          {"spate-from-node", absl::StrCat(from)},
          {"spate-to-node", absl::StrCat(to)}};
}

TEST(GrpcTransportTest, HandshakeStatuses) {
  Inbox inbox;
  std::unique_ptr<GrpcTransport> t2 =
      StartOrDie(Options(2, {{1, ClosedAddress()}}), &inbox);
  ASSERT_NE(t2, nullptr);
  const std::string address = t2->bound_address();

  grpc::Status status = RawSender(address, {}).Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << status.error_message();

  status = RawSender(address, Handshake("other", 1, 2)).Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("\"other\""));
  EXPECT_THAT(status.error_message(), HasSubstr("\"test\""));

  status = RawSender(address, Handshake("test", 1, 3)).Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("dialed node 3"));

  status = RawSender(address, Handshake("test", 5, 2)).Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("node 5 is not a peer"));

  EXPECT_EQ(t2->Stats().streams_refused, 4u);
  EXPECT_EQ(inbox.batches(), 0u);
}

TEST(GrpcTransportTest, DropsMessagesWithWrongAddressing) {
  Inbox inbox;
  std::unique_ptr<GrpcTransport> t2 =
      StartOrDie(Options(2, {{1, ClosedAddress()}}), &inbox);
  ASSERT_NE(t2, nullptr);
  RawSender sender(t2->bound_address(), Handshake("test", 1, 2));
  std::vector<raft::Message> messages;
  messages.push_back(Append(1, 2, 0));
  messages.push_back(Append(1, 3, 1));  // not for this node
  messages.push_back(Append(4, 2, 2));  // not from the stream's sender
  messages.push_back(Append(1, 2, 3));
  ASSERT_TRUE(sender.Write(std::move(messages)));
  ASSERT_TRUE(inbox.WaitForMessages(2));
  ASSERT_TRUE(sender.Write({Append(1, 2, 4)}));
  ASSERT_TRUE(inbox.WaitForMessages(3));
  EXPECT_TRUE(sender.Finish().ok());
  EXPECT_EQ(inbox.Indexes(1), (std::vector<uint64_t>{0, 3, 4}));
  const PeerStats stats = t2->Stats().peers.at(1);
  EXPECT_EQ(stats.batches_received, 2u);
  EXPECT_EQ(stats.messages_received, 3u);
  EXPECT_EQ(stats.rejected_bad_to, 1u);
  EXPECT_EQ(stats.rejected_bad_from, 1u);
}

TEST(GrpcTransportTest, QueueBoundIsEnforcedAndRecovers) {
  GrpcTransportOptions options1 = Options(1);
  constexpr uint64_t kQueueBytesMax = 256 << 10;
  options1.peer_queue_bytes_max = kQueueBytesMax;
  Pair pair(options1);
  ASSERT_TRUE(pair.Connected());
  pair.inbox2.Hold();
  ASSERT_TRUE(pair.t1->Send(2, Appends(1, 2, 0, 1)));
  ASSERT_TRUE(pair.inbox2.WaitBlocked());
  // Until gRPC's flow control stops the sender, and then the queue fills.
  std::vector<uint64_t> accepted = {0};
  uint64_t index = 1;
  bool dropped = false;
  for (; index < 20000 && !dropped; ++index) {
    if (pair.t1->Send(2, Appends(1, 2, index, 1, 4096))) {
      accepted.push_back(index);
    } else {
      dropped = true;
    }
  }
  ASSERT_TRUE(dropped) << "the queue never filled";
  EXPECT_TRUE(pair.t1->PeerReachable(2));
  PeerStats stats = pair.t1->Stats().peers.at(2);
  EXPECT_EQ(stats.dropped_queue_full, 1u);
  EXPECT_LE(stats.queued_bytes, kQueueBytesMax);
  EXPECT_GT(stats.queued_bytes, kQueueBytesMax - 2 * 4200);

  pair.inbox2.Release();
  ASSERT_TRUE(pair.inbox2.WaitForMessages(accepted.size()));
  ASSERT_TRUE(WaitUntil(
      [&] { return pair.t1->Stats().peers.at(2).queued_bytes == 0; }));
  ASSERT_TRUE(pair.t1->Send(2, Appends(1, 2, index, 1)));
  accepted.push_back(index);
  ASSERT_TRUE(pair.inbox2.WaitForMessages(accepted.size()));
  EXPECT_EQ(pair.inbox2.Indexes(1), accepted);
}

TEST(GrpcTransportTest, SplitsFramesAndDropsOversizeMessages) {
  GrpcTransportOptions options1 = Options(1);
  options1.frame_bytes_max = 16 << 10;
  GrpcTransportOptions options2 = Options(2);
  options2.frame_bytes_max = 16 << 10;
  Pair pair(options1, options2);
  ASSERT_TRUE(pair.Connected());
  // 64 KiB in one Send: more than four frames' worth.
  ASSERT_TRUE(pair.t1->Send(2, Appends(1, 2, 0, 64, 1024)));
  ASSERT_TRUE(pair.inbox2.WaitForMessages(64));
  EXPECT_EQ(pair.inbox2.Indexes(1), Range(0, 64));
  EXPECT_GE(pair.t2->Stats().peers.at(1).batches_received, 5u);

  std::vector<raft::Message> mixed = Appends(1, 2, 64, 1);
  mixed.push_back(Append(1, 2, 65, 20 << 10));  // larger than a frame
  mixed.push_back(Append(1, 2, 66));
  EXPECT_FALSE(pair.t1->Send(2, std::move(mixed)));
  ASSERT_TRUE(pair.inbox2.WaitForMessages(66));
  EXPECT_EQ(pair.inbox2.Indexes(1).back(), 66u);
  EXPECT_EQ(pair.t1->Stats().peers.at(2).dropped_oversize, 1u);
}

TEST(GrpcTransportTest, RemovedPeersAreDisconnectedAndRefused) {
  Pair pair;
  ASSERT_TRUE(pair.Connected());
  ASSERT_TRUE(pair.t1->Send(2, Appends(1, 2, 0, 1)));
  ASSERT_TRUE(pair.inbox2.WaitForMessages(1));

  // Node 2 drops node 1 from its membership: node 1's next frame ends its
  // stream and its redials are refused.
  ASSERT_TRUE(pair.t2->SetPeers({}).ok());
  EXPECT_FALSE(pair.t2->PeerReachable(1));
  EXPECT_FALSE(pair.t2->Send(1, Appends(2, 1, 0, 1)));
  pair.t1->Send(2, Appends(1, 2, 1, 1));  // may or may not be queued
  ASSERT_TRUE(WaitUntil([&] { return !pair.t1->PeerReachable(2); }));
  ASSERT_TRUE(WaitUntil([&] {
    return pair.t1->Stats().peers[2].last_error.find("not a peer") !=
           std::string::npos;
  })) << pair.t1->Stats().peers[2].last_error;
  EXPECT_EQ(pair.inbox2.messages().size(), 1u);

  ASSERT_TRUE(pair.t1->SetPeers({}).ok());
  EXPECT_FALSE(pair.t1->Send(2, Appends(1, 2, 2, 3)));
  const TransportStats stats = pair.t1->Stats();
  EXPECT_FALSE(pair.t1->PeerReachable(2));
  EXPECT_FALSE(stats.peers.at(2).reachable);  // only inbound counters left
  EXPECT_EQ(stats.peers.at(2).messages_sent, 0u);
  EXPECT_EQ(stats.dropped_unknown_peer, 3u);
}

TEST(GrpcTransportTest, ShutdownIsQuickWithUnreachablePeers) {
  SilentListener silent;
  Inbox inbox;
  std::unique_ptr<GrpcTransport> t1 = StartOrDie(
      Options(1, {{2, ClosedAddress()}, {3, silent.address()}}), &inbox);
  ASSERT_NE(t1, nullptr);
  absl::SleepFor(absl::Milliseconds(200));  // let both dials get stuck
  EXPECT_FALSE(t1->PeerReachable(2));
  EXPECT_FALSE(t1->PeerReachable(3));
  EXPECT_FALSE(t1->Send(3, Appends(1, 3, 0, 1)));
  const absl::Time start = absl::Now();
  t1->Shutdown();
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
  EXPECT_FALSE(t1->Send(2, Appends(1, 2, 0, 1)));
  EXPECT_FALSE(t1->SetPeers({}).ok());
  t1->Shutdown();  // idempotent
}

TEST(GrpcTransportTest, RejectsBadOptions) {
  Inbox inbox;
  GrpcTransportOptions options = Options(0);
  EXPECT_EQ(GrpcTransport::Start(options, inbox.Handler()).status().code(),
            absl::StatusCode::kInvalidArgument);
  options = Options(1, {{1, "127.0.0.1:1"}});
  EXPECT_THAT(GrpcTransport::Start(options, inbox.Handler()).status().message(),
              HasSubstr("this node"));
  options = Options(1);
  options.cluster_name.clear();
  EXPECT_FALSE(GrpcTransport::Start(options, inbox.Handler()).ok());
  options = Options(1);
  EXPECT_FALSE(GrpcTransport::Start(options, nullptr).ok());

  // A second node on the same cluster address fails to start.
  std::unique_ptr<GrpcTransport> first = StartOrDie(Options(1), &inbox);
  ASSERT_NE(first, nullptr);
  options = Options(2);
  options.listen_address = first->bound_address();
  EXPECT_EQ(GrpcTransport::Start(options, inbox.Handler()).status().code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace spate::server
