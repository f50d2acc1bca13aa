#include "tests/faults/link_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace spate::faults {
namespace {

constexpr int kPollMs = 20;
constexpr size_t kChunkBytes = 64 * 1024;

int LocalPort(int fd, bool peer) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  const int rc =
      peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len)
           : getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return rc == 0 ? ntohs(addr.sin_port) : 0;
}

// Closes with a reset (no FIN handshake), as a dropped link looks.
void Reset(int fd) {
  linger lin{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
  close(fd);
}

int ConnectTo(const std::string& target) {
  const size_t colon = target.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(target.substr(colon + 1), &port)) {
    return -1;
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, target.substr(0, colon).c_str(), &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

}  // namespace

const char* LinkModeName(LinkMode mode) {
  switch (mode) {
    case LinkMode::kPass:
      return "pass";
    case LinkMode::kDelay:
      return "delay";
    case LinkMode::kStall:
      return "stall";
    case LinkMode::kDrop:
      return "drop";
  }
  return "?";
}

// Both ends of one proxied connection. The fds are closed when the last
// pump lets go of it; `dead` tells the other pump to stop.
struct LinkProxy::Connection {
  Connection(int client, int server, int from)
      : client_fd(client), server_fd(server), from(from) {}
  ~Connection() {
    close(client_fd);
    close(server_fd);
  }
  void Kill(bool reset) {
    if (dead.exchange(true)) return;
    if (reset) {
      linger lin{1, 0};
      setsockopt(client_fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
      setsockopt(server_fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
    }
    shutdown(client_fd, SHUT_RDWR);
    shutdown(server_fd, SHUT_RDWR);
  }
  const int client_fd;
  const int server_fd;
  const int from;
  std::atomic<bool> dead{false};
};

LinkProxy::LinkProxy(std::string target, Identify identify)
    : target_(std::move(target)), identify_(std::move(identify)) {}

LinkProxy::~LinkProxy() { Stop(); }

std::string LinkProxy::address() const {
  return absl::StrCat("127.0.0.1:", port_);
}

absl::Status LinkProxy::Start() {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return absl::InternalError("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listen_fd_, 64) != 0) {
    return absl::InternalError(absl::StrCat("proxy bind/listen: ", errno));
  }
  port_ = LocalPort(listen_fd_, /*peer=*/false);
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  return absl::OkStatus();
}

void LinkProxy::Stop() {
  if (stop_.exchange(true)) return;
  if (accept_thread_.joinable()) accept_thread_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
  std::list<Pumper> pumpers;
  {
    absl::MutexLock lock(&mu_);
    pumpers.swap(pumpers_);
  }
  for (Pumper& pumper : pumpers) pumper.thread.join();
}

void LinkProxy::SetRule(int from, LinkRule rule) {
  absl::MutexLock lock(&mu_);
  if (rule.mode == LinkMode::kPass) {
    rules_.erase(from);
  } else {
    rules_[from] = rule;
  }
}

void LinkProxy::ClearRules() {
  absl::MutexLock lock(&mu_);
  rules_.clear();
}

LinkProxyStats LinkProxy::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

LinkRule LinkProxy::RuleFor(int from) const {
  if (from <= 0) return LinkRule();
  absl::MutexLock lock(&mu_);
  auto it = rules_.find(from);
  return it == rules_.end() ? LinkRule() : it->second;
}

void LinkProxy::AcceptLoop() {
  while (!stop_) {
    pollfd pfd{listen_fd_, POLLIN, 0};
    if (poll(&pfd, 1, kPollMs) <= 0) continue;
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    Serve(fd);
    ReapFinished();
  }
}

void LinkProxy::Serve(int client_fd) {
  const int client_port = LocalPort(client_fd, /*peer=*/true);
  // The dialer's fd table may lag the handshake by a moment.
  int from = 0;
  for (int attempt = 0; attempt < 5 && from == 0; ++attempt) {
    from = identify_(client_port, port_);
    if (from == 0) absl::SleepFor(absl::Milliseconds(2));
  }
  if (RuleFor(from).mode == LinkMode::kDrop) {
    Reset(client_fd);
    absl::MutexLock lock(&mu_);
    ++stats_.refused;
    return;
  }
  const int server_fd = ConnectTo(target_);
  if (server_fd < 0) {  // the node is down: so is the link
    Reset(client_fd);
    return;
  }
  const int one = 1;
  setsockopt(client_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  auto connection = std::make_shared<Connection>(client_fd, server_fd, from);
  absl::MutexLock lock(&mu_);
  ++stats_.connections;
  if (from == 0) ++stats_.unidentified;
  for (bool upstream : {true, false}) {
    auto done = std::make_shared<std::atomic<bool>>(false);
    pumpers_.push_back(Pumper{std::thread([this, connection, upstream, done] {
                                Pump(connection, upstream);
                                *done = true;
                              }),
                              done});
  }
}

void LinkProxy::ReapFinished() {
  std::list<Pumper> finished;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = pumpers_.begin(); it != pumpers_.end();) {
      if (*it->done) {
        finished.splice(finished.end(), pumpers_, it++);
      } else {
        ++it;
      }
    }
  }
  for (Pumper& pumper : finished) pumper.thread.join();
}

void LinkProxy::Pump(std::shared_ptr<Connection> connection, bool upstream) {
  const int src = upstream ? connection->client_fd : connection->server_fd;
  const int dst = upstream ? connection->server_fd : connection->client_fd;
  std::vector<char> buffer(kChunkBytes);
  while (!stop_ && !connection->dead) {
    LinkRule rule = RuleFor(connection->from);
    if (rule.mode == LinkMode::kDrop) {
      connection->Kill(/*reset=*/true);
      absl::MutexLock lock(&mu_);
      ++stats_.refused;
      break;
    }
    if (rule.mode == LinkMode::kStall) {
      absl::SleepFor(absl::Milliseconds(kPollMs));
      continue;
    }
    pollfd pfd{src, POLLIN, 0};
    if (poll(&pfd, 1, kPollMs) <= 0) continue;
    const ssize_t n = read(src, buffer.data(), buffer.size());
    if (n <= 0) {
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      connection->Kill(/*reset=*/false);
      break;
    }
    if (rule.mode == LinkMode::kDelay) {
      const absl::Time release = absl::Now() + rule.delay;
      while (!stop_ && !connection->dead && absl::Now() < release) {
        absl::SleepFor(
            std::min(absl::Milliseconds(kPollMs), release - absl::Now()));
      }
    }
    // Writes wait for room (a stopped peer reads nothing) but stay bounded
    // by the stop and dead checks.
    ssize_t sent = 0;
    while (sent < n && !stop_ && !connection->dead) {
      pollfd out{dst, POLLOUT, 0};
      if (poll(&out, 1, kPollMs) <= 0) continue;
      const ssize_t w = send(dst, buffer.data() + sent, n - sent,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        connection->Kill(/*reset=*/false);
        break;
      }
      sent += w;
    }
    absl::MutexLock lock(&mu_);
    stats_.bytes += sent;
  }
}

}  // namespace spate::faults
