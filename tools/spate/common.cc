#include "tools/spate/common.h"

#include <cstdlib>
#include <ostream>

#include "absl/flags/flag.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "client/ids.h"

ABSL_FLAG(std::string, server, "",
          "comma-separated host:port list of servers, tried in order "
          "(default: $SPATE_SERVER, else 127.0.0.1:4222)");
ABSL_FLAG(std::string, client_id, "",
          "client id, [A-Za-z0-9_-]+ (default: spate-cli-<random>)");
ABSL_FLAG(int64_t, count, 0, "number of messages (0: see the command)");
ABSL_FLAG(absl::Duration, reconnect_wait, absl::Seconds(30),
          "how long to keep reconnecting (and resubscribing) after the "
          "connection breaks before giving up; 0 disables reconnection");

namespace spate::cli {

const std::vector<std::string>& CommonFlags() {
  static const std::vector<std::string>* flags =
      new std::vector<std::string>{"server", "client_id", "reconnect_wait"};
  return *flags;
}

std::vector<std::string> ServersFromFlags() {
  std::string list = absl::GetFlag(FLAGS_server);
  if (list.empty()) {
    const char* env = std::getenv("SPATE_SERVER");
    list = env != nullptr && env[0] != '\0' ? env : kDefaultServer;
  }
  std::vector<std::string> servers;
  for (absl::string_view server : absl::StrSplit(list, ',')) {
    server = absl::StripAsciiWhitespace(server);
    if (!server.empty()) servers.emplace_back(server);
  }
  return servers;
}

std::string ClientIdFromFlags() {
  std::string id = absl::GetFlag(FLAGS_client_id);
  return id.empty() ? "spate-cli-" + client::RandomAlnum(8) : id;
}

absl::StatusOr<std::unique_ptr<client::Connection>> ConnectFromFlags(
    client::ConnectionLostHandler lost) {
  client::ClientOptions options;
  options.servers = ServersFromFlags();
  options.client_id = ClientIdFromFlags();
  options.reconnect_wait = absl::GetFlag(FLAGS_reconnect_wait);
  options.connection_lost_handler = std::move(lost);
  return client::Connection::Connect(std::move(options));
}

int PrintError(const Io& io, absl::string_view command,
               const absl::Status& status) {
  *io.err << "spate " << command << ": " << status << std::endl;
  return kExitError;
}

int UsageError(const Io& io, absl::string_view command,
               absl::string_view message) {
  *io.err << "spate " << command << ": " << message << " (see `spate help "
          << command << "`)" << std::endl;
  return kExitUsage;
}

}  // namespace spate::cli
