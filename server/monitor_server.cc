#include "server/monitor_server.h"

#include <httplib.h>

#include <map>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"

namespace spate::server {

MonitorServer::MonitorServer(MonitorEndpoints* endpoints)
    : endpoints_(endpoints), http_(std::make_unique<httplib::Server>()) {}

absl::StatusOr<std::unique_ptr<MonitorServer>> MonitorServer::Start(
    const MonitorServerOptions& options, MonitorEndpoints* endpoints) {
  std::unique_ptr<MonitorServer> server(new MonitorServer(endpoints));
  const size_t colon = options.address.rfind(':');
  int port = -1;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(options.address.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "monitor_address: not a host:port: \"", options.address, "\""));
  }
  const std::string host = options.address.substr(0, colon);
  const int threads = options.threads;
  server->http_->new_task_queue = [threads] {
    return new httplib::ThreadPool(threads);
  };
  // Every path goes to the endpoints, which also answer unknown ones.
  server->http_->Get(".*", [endpoints](const httplib::Request& request,
                                       httplib::Response& response) {
    std::map<std::string, std::string> params;
    for (const auto& [key, value] : request.params) {
      params.emplace(key, value);  // the first of repeated keys wins
    }
    MonitorAnswer answer = endpoints->Handle(request.path, params);
    response.status = answer.status;
    response.set_content(answer.body, answer.content_type.c_str());
  });
  const int bound = port == 0
                        ? server->http_->bind_to_any_port(host)
                        : (server->http_->bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on monitor_address ", options.address));
  }
  server->address_ = absl::StrCat(host, ":", bound);
  httplib::Server* http = server->http_.get();
  server->thread_ = std::thread([http] { http->listen_after_bind(); });
  LOG(INFO) << "serving monitoring address=" << server->address_;
  return server;
}

MonitorServer::~MonitorServer() { Stop(); }

void MonitorServer::Stop() {
  if (!thread_.joinable()) return;
  http_->stop();
  thread_.join();
}

}  // namespace spate::server
