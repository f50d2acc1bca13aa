// LinkProxy: a fault-injecting TCP proxy on 127.0.0.1 in front of one
// node's listener (its cluster port or its client port). The cluster's node
// table advertises the proxy's address instead of the node's own
// (NodeConfig.advertise_*_address), so every connection another node opens
// to this one passes through here, and the proxy can cut, stall or slow the
// link from any one node to this one — partitions symmetric or one-way,
// isolations and splits are sets of such per-link rules (FaultCluster).
//
// The node that dialed a connection is found from its source port
// (socket_owner.h) when the connection is accepted. A rule applies to every
// connection, open or future, from that node; connections from anything
// that is not a node (node 0) always pass. Modes:
//   kPass   forward both directions at once
//   kDelay  forward each chunk `delay` after it arrived (per direction)
//   kStall  forward nothing, but keep the connection open: a black hole
//           that only timeouts and keepalives can detect
//   kDrop   close the open connections and refuse new ones (reset)
// A stalled link buffers what is in flight; if it passes again before the
// endpoints gave up, the bytes arrive late (as after a healed partition).
//
// Threading: public methods are thread-safe. One accept thread per proxy,
// two pump threads per connection; Stop() joins them all (bounded: every
// blocking call polls with a short timeout).
#ifndef SPATE_TESTS_FAULTS_LINK_PROXY_H_
#define SPATE_TESTS_FAULTS_LINK_PROXY_H_

#include <atomic>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace spate::faults {

enum class LinkMode { kPass, kDelay, kStall, kDrop };

struct LinkRule {
  LinkMode mode = LinkMode::kPass;
  absl::Duration delay = absl::ZeroDuration();  // kDelay only
};

const char* LinkModeName(LinkMode mode);

struct LinkProxyStats {
  int connections = 0;   // accepted and forwarded
  int unidentified = 0;  // of those, from no known node
  int refused = 0;       // reset by a kDrop rule (at accept or later)
  uint64_t bytes = 0;    // forwarded, both directions
};

class LinkProxy {
 public:
  // Maps (client port, proxy port) of an accepted connection to the id of
  // the node that dialed it, or 0.
  using Identify = std::function<int(int client_port, int proxy_port)>;

  // `target`: "127.0.0.1:port" of the real listener.
  LinkProxy(std::string target, Identify identify);
  ~LinkProxy();  // Stop()
  LinkProxy(const LinkProxy&) = delete;
  LinkProxy& operator=(const LinkProxy&) = delete;

  // Listens on 127.0.0.1 on a free port.
  absl::Status Start();
  void Stop();

  int port() const { return port_; }
  std::string address() const;

  // Traffic from node `from` (>= 1) to the target follows `rule`.
  void SetRule(int from, LinkRule rule);
  void ClearRules();
  LinkProxyStats stats() const;

 private:
  struct Connection;

  LinkRule RuleFor(int from) const;
  void AcceptLoop();
  void Serve(int client_fd);
  void Pump(std::shared_ptr<Connection> connection, bool upstream);
  void ReapFinished();

  const std::string target_;
  const Identify identify_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread accept_thread_;

  mutable absl::Mutex mu_;
  std::map<int, LinkRule> rules_ ABSL_GUARDED_BY(mu_);
  LinkProxyStats stats_ ABSL_GUARDED_BY(mu_);
  // Pump threads with a flag each sets when it returns (for reaping).
  struct Pumper {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::list<Pumper> pumpers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace spate::faults

#endif  // SPATE_TESTS_FAULTS_LINK_PROXY_H_
