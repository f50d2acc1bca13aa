// MonitorServer: the node's HTTP monitoring listener (cpp-httplib) on
// ServerConfig.monitor_address. Every GET is answered by MonitorEndpoints
// (server/monitor_endpoints.h lists the endpoints) from the path and query
// parameters; a small fixed thread pool serves requests.
//
// Lifecycle: Start binds (port 0 picks a free port; address() reports the
// bound one) and serves on its own thread; Stop (or the destructor) stops
// and joins. The endpoints must outlive it.
// Threading: Start/Stop from one thread; handlers run on the pool.
#ifndef SPATE_SERVER_MONITOR_SERVER_H_
#define SPATE_SERVER_MONITOR_SERVER_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "server/monitor_endpoints.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace spate::server {

struct MonitorServerOptions {
  std::string address;  // host:port
  int threads = 2;
};

class MonitorServer {
 public:
  static absl::StatusOr<std::unique_ptr<MonitorServer>> Start(
      const MonitorServerOptions& options, MonitorEndpoints* endpoints);
  ~MonitorServer();

  void Stop();
  // host:port with the port actually bound.
  const std::string& address() const { return address_; }

 private:
  explicit MonitorServer(MonitorEndpoints* endpoints);

  MonitorEndpoints* endpoints_;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  std::string address_;
};

}  // namespace spate::server

#endif  // SPATE_SERVER_MONITOR_SERVER_H_
