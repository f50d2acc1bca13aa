#include "tools/spate/monitor_call.h"

#include <grpcpp/grpcpp.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "proto/admin.grpc.pb.h"
#include "tools/spate/common.h"

namespace spate::cli {

absl::StatusOr<MonitorResult> CallMonitor(
    const std::string& address, const std::string& path,
    const std::map<std::string, std::string>& params, absl::Duration timeout) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      DialFromFlags(address);
  if (!channel.ok()) return channel.status();
  std::unique_ptr<Admin::Stub> stub = Admin::NewStub(*channel);
  grpc::ClientContext context;
  AuthorizeFromFlags(&context);
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  MonitorRequest request;
  request.set_path(path);
  request.mutable_params()->insert(params.begin(), params.end());
  MonitorReply reply;
  const grpc::Status status = stub->Monitor(&context, request, &reply);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        absl::StrCat(address, ": ", status.error_message()));
  }
  MonitorResult result;
  result.address = address;
  result.http_status = reply.http_status();
  result.body = nlohmann::json::parse(reply.body(), nullptr,
                                      /*allow_exceptions=*/false);
  if (result.body.is_discarded()) {
    return absl::InternalError(
        absl::StrCat(address, ": the answer is not JSON: ", reply.body()));
  }
  return result;
}

absl::StatusOr<MonitorResult> CallAnyMonitor(
    const std::vector<std::string>& servers, const std::string& path,
    const std::map<std::string, std::string>& params, absl::Duration timeout) {
  std::vector<std::string> errors;
  for (const std::string& server : servers) {
    absl::StatusOr<MonitorResult> result =
        CallMonitor(server, path, params, timeout);
    if (result.ok()) return result;
    errors.push_back(std::string(result.status().message()));
  }
  return absl::UnavailableError(
      absl::StrCat("no server answered: ", absl::StrJoin(errors, "; ")));
}

}  // namespace spate::cli
