#include "tools/spate/backup.h"

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "proto/admin.grpc.pb.h"
#include "tools/spate/common.h"

namespace spate::cli {
namespace {

constexpr char kBackupUsage[] =
    R"(usage: spate backup DIR [--server ADDRESS]

Asks the node at --server (the first address) to write a consistent copy of
its store into DIR, an absolute path on THAT node's host which must not
exist yet (its parent must). The node keeps serving meanwhile. To restore,
stop the node, replace its data_dir with the copy and start it again: it
rejoins with the state of the backup and its peers catch it up.)";

// A checkpoint of a large store flushes and links many files.
constexpr absl::Duration kBackupTimeout = absl::Minutes(10);

int RunBackup(const std::vector<std::string>& args, const Io& io) {
  if (args.size() != 1 || args[0].empty() || args[0][0] != '/') {
    return UsageError(io, "backup", "expected an absolute DIR");
  }
  const std::string server = ServersFromFlags().front();
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      DialFromFlags(server);
  if (!channel.ok()) return PrintError(io, "backup", channel.status());
  std::unique_ptr<Admin::Stub> stub = Admin::NewStub(*channel);
  grpc::ClientContext context;
  AuthorizeFromFlags(&context);
  context.set_deadline(absl::ToChronoTime(absl::Now() + kBackupTimeout));
  BackupRequest request;
  request.set_dir(args[0]);
  BackupResponse response;
  *io.err << "backing up " << server << " into " << args[0] << " ..."
          << std::endl;
  const grpc::Status status = stub->Backup(&context, request, &response);
  if (!status.ok()) {
    return PrintError(
        io, "backup",
        absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                     absl::StrCat(server, ": ", status.error_message())));
  }
  *io.out << "backup of " << server << " written to " << response.dir() << ": "
          << response.files() << " files, " << response.bytes() << " bytes"
          << std::endl;
  return kExitOk;
}

}  // namespace

Command BackupCommand() {
  return Command{"backup",
                 "backup DIR: a node writes a copy of its store",
                 kBackupUsage,
                 {},
                 RunBackup};
}

}  // namespace spate::cli
